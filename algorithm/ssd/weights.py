"""ImageNet weights for the base networks, read from a local file, and the input normalisation
they were trained with. The only module here that touches the file system; nothing is ever
downloaded.
"""

from __future__ import annotations

import inspect
import math
import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

Normalization = Tuple[Tuple[float, float, float], Tuple[float, float, float]]

# torchvision's ImageNet models, on RGB images in [0, 1].
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The Caffe VGG-16 (torchvision's VGG16_Weights.IMAGENET1K_FEATURES, ssd300_vgg16): RGB in
# [0, 255] minus the ImageNet mean, written as mean and std on images in [0, 1].
CAFFE = ((0.48235, 0.45882, 0.40784), (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0))

TORCHVISION_FILES = {
    "vgg-16": "vgg16-397923af.pth (IMAGENET1K_V1) or vgg16_features-amdegroot-88682ab5.pth "
              "(IMAGENET1K_FEATURES, the one torchvision's SSD300 starts from)",
    "resnet-50": "resnet50-0676ba61.pth (IMAGENET1K_V1) or resnet50-11ad3fa6.pth (IMAGENET1K_V2)",
    "mobilenet-v3-large": "mobilenet_v3_large-8738ca79.pth (IMAGENET1K_V1)",
}


def read_state_dict(path: str, base_network: str) -> Dict[str, Tensor]:
    """The state dict in the file at ``path`` (a plain state dict, or one under ``state_dict``
    or ``model``). Raises ``ValueError`` saying how to provide the file."""
    if not os.path.isfile(path):
        raise ValueError(
            f"backbone_weights={path!r}: no such file. Give the local path of torchvision's "
            f"ImageNet weights for {base_network}: {TORCHVISION_FILES[base_network]}, from "
            "https://download.pytorch.org/models/. In a training job "
            "with use_pretrained_model=1, deliver the file through the `pretrained` channel; "
            "nothing is downloaded.")
    kwargs = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:  # torch >= 1.13
        kwargs["weights_only"] = True
    try:
        state = torch.load(path, **kwargs)
    except Exception as exc:  # any unpickling failure means the same thing to the user
        raise ValueError(
            f"backbone_weights={path!r} is not a PyTorch weights file: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"backbone_weights={path!r} holds no state dict")
    return state


def load_into(network: nn.Module, state: Dict[str, Tensor], path: str,
              optional_prefix: str) -> None:
    """Load ``state`` into a torchvision network; keys under ``optional_prefix`` (the ImageNet
    classifier) may be missing. Raises ``ValueError`` naming the keys that do not fit."""
    try:
        missing, unexpected = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError(
            f"backbone_weights={path!r} does not fit {type(network).__name__}: {exc}") from None
    missing = [k for k in missing if not k.startswith(optional_prefix)]
    if missing or unexpected:
        raise ValueError(f"backbone_weights={path!r} does not fit torchvision's "
                         f"{type(network).__name__}: missing {missing[:5]}, "
                         f"unexpected {list(unexpected)[:5]}")


def vgg_classifier(state: Dict[str, Tensor]) -> Optional[Dict[str, Tensor]]:
    """The ImageNet classifier of a VGG-16 state dict, or ``None`` when the file has none or only
    placeholders (IMAGENET1K_FEATURES stores NaN there)."""
    keys = ("classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias")
    if not all(k in state for k in keys):
        return None
    if not all(bool(torch.isfinite(state[k]).all()) for k in keys):
        return None
    return {k: state[k] for k in keys}


def vgg_normalization(classifier: Optional[Dict[str, Tensor]]) -> Normalization:
    """IMAGENET1K_V1 (with a classifier) expects ImageNet normalisation; the Caffe-converted
    IMAGENET1K_FEATURES (without) expects Caffe's."""
    return IMAGENET if classifier is not None else CAFFE


def check_normalization(mean: Tuple[float, ...], std: Tuple[float, ...]) -> None:
    """Raise ``ValueError`` unless mean and std are three finite numbers, std positive."""
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"image mean and std need 3 values each, got {mean} and {std}")
    if not all(math.isfinite(m) for m in mean) or not all(s > 0 for s in std):
        raise ValueError(f"image std must be positive, got mean {mean} std {std}")
