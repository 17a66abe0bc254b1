"""The SSD detector (VGG-16, ResNet-50, MobileNetV3-Large/SSDLite): model, default boxes,
matching, MultiBox loss and post-processing. See docs/ssd.md.

Training::

    model = build_ssd("vgg-16", num_classes=20, image_shape=300, backbone_weights=path)
    cls_logits, box_regression = model(images)            # images: [N, 3, 300, 300] in [0, 1]
    losses = multibox_loss(cls_logits, box_regression, model.default_boxes, boxes, labels)
    (losses["cross_entropy"] + losses["smooth_l1"]).backward()

Inference::

    detections = model.detect(images, nms_threshold=0.45)  # [K, 6] per image
"""

from .anchors import DefaultBoxes
from .boxes import decode, encode
from .layout import Layout, layout
from .loss import multibox_loss, multibox_loss_from
from .matcher import MatchedTargets, assign_targets, match, match_targets
from .model import SSD, build_ssd
from .postprocess import postprocess_detections
from .torchvision_weights import from_torchvision

__all__ = [
    "SSD",
    "DefaultBoxes",
    "Layout",
    "MatchedTargets",
    "assign_targets",
    "build_ssd",
    "decode",
    "encode",
    "from_torchvision",
    "layout",
    "match",
    "match_targets",
    "multibox_loss",
    "multibox_loss_from",
    "postprocess_detections",
]
