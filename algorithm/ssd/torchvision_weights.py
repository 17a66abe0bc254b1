"""Starting from torchvision's SSD300: its ``ssd300_vgg16`` state dict in our VGG-16/300 model.

torchvision's model takes a list of RGB images in [0, 1], resizes each to 300x300 (bilinear) and
normalises it Caffe-style (mean (0.48235, 0.45882, 0.40784), std 1/255, i.e. 0-255 pixel values
minus the ImageNet mean). The converted model keeps that normalisation in its ``image_mean`` and
``image_std``, so on the same 300x300 input tensor both give the same head outputs. Its classes
are torchvision's labels minus one (torchvision's COCO checkpoint has 91 labels including
background: ``num_classes=90``).
"""

from __future__ import annotations

import re
from typing import Dict

from torch import Tensor

from .model import SSD, build_ssd
from .weights import CAFFE

# torchvision key pattern -> ours. backbone.extra.0 is [pool4, conv5_1, relu, conv5_2, relu,
# conv5_3, relu, [pool5, fc6, relu, fc7, relu]]: conv5_k sit at vgg16().features 24, 26, 28.
_RENAMES = (
    (r"^backbone\.features\.(\d+)\.", lambda m: f"backbone.features.{m.group(1)}."),
    (r"^backbone\.scale_weight$", lambda m: "backbone.scale"),
    (r"^backbone\.extra\.0\.([135])\.",
     lambda m: f"backbone.features.{23 + int(m.group(1))}."),
    (r"^backbone\.extra\.0\.7\.1\.", lambda m: "backbone.fc6."),
    (r"^backbone\.extra\.0\.7\.3\.", lambda m: "backbone.fc7."),
    (r"^backbone\.extra\.([1-9])\.",
     lambda m: f"backbone.extras.{int(m.group(1)) - 1}."),
    (r"^head\.classification_head\.module_list\.", lambda m: "head.classification."),
    (r"^head\.regression_head\.module_list\.", lambda m: "head.regression."),
)


def from_torchvision(state_dict: Dict[str, Tensor], num_classes: int) -> SSD:
    """Our VGG-16/300 SSD with the weights of a torchvision ``ssd300_vgg16`` state dict.

    Args:
        state_dict: ``torchvision.models.detection.ssd300_vgg16(...).state_dict()`` or the
            checkpoint file's content (``torch.load``); a ``{"model": ...}`` wrapper is opened.
        num_classes: object classes, background not counted (torchvision's ``num_classes - 1``).

    Returns:
        An :class:`SSD` whose ``forward`` equals torchvision's head outputs on the same input
        tensor and whose ``detect`` gives torchvision's detections, normalized, labels minus one.
    """
    if isinstance(state_dict.get("model"), dict):
        state_dict = state_dict["model"]
    key = "head.classification_head.module_list.0.weight"
    if key not in state_dict:
        raise ValueError(f"not a torchvision ssd300_vgg16 state dict: no {key!r}")
    outputs = state_dict[key].shape[0]  # 4 boxes per location x (classes + background)
    if outputs != 4 * (num_classes + 1):
        raise ValueError(f"num_classes={num_classes} does not fit the state dict, whose head has "
                         f"{outputs // 4} classes including background "
                         f"(num_classes={outputs // 4 - 1})")
    model = build_ssd("vgg-16", num_classes, 300)
    converted = {}
    for name, value in state_dict.items():
        for pattern, rename in _RENAMES:
            match = re.match(pattern, name)
            if match:
                converted[name[:match.start()] + rename(match) + name[match.end():]] = value
                break
        else:
            raise ValueError(f"unexpected key {name!r} in a torchvision ssd300_vgg16 state dict"
                             )
    converted["image_mean"] = model.image_mean.new_tensor(CAFFE[0]).view(1, 3, 1, 1)
    converted["image_std"] = model.image_std.new_tensor(CAFFE[1]).view(1, 3, 1, 1)
    model.load_state_dict(converted)
    return model
