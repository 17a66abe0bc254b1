"""VGG-16 as the SSD paper modifies it, with its extra feature layers.

From torchvision's ``vgg16``: pool3 rounds up (ceil mode), conv4_3's output is L2-normalised with a
learned per-channel scale initialised to 20, pool5 becomes 3x3 with stride 1, fc6 becomes a 3x3
convolution with dilation 6 and 1024 channels, fc7 a 1x1 convolution with 1024 channels. Feature
maps: conv4_3 (stride 8), fc7 (stride 16), then one per extra layer (see
:mod:`algorithm.ssd.layout`).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VGG

from .layout import extra_layer_channels

CONV4_3_RELU = 22  # index in vgg16().features of the ReLU after conv4_3
POOL3, POOL5 = 16, 30
L2NORM_SCALE = 20.0

# (1x1 channels, output channels) of the extra layers; later ones repeat the last.
EXTRA_CHANNELS = ((256, 512), (128, 256))


class VGG16Features(nn.Module):
    """Feature maps of SSD's VGG-16: ``forward(x [N, 3, S, S]) -> [conv4_3 L2-normalised, fc7,
    extra_1, ...]``.

    Args:
        vgg: a torchvision ``VGG`` (``vgg16()``), its ImageNet weights loaded or not; its
            ``features`` are taken over, its classifier is not.
        extras: kinds of the extra layers (:func:`algorithm.ssd.layout.extra_layers`).
    """

    def __init__(self, vgg: VGG, extras: Sequence[str]):
        super().__init__()
        features = vgg.features
        if len(features) != 31 or not isinstance(features[POOL3], nn.MaxPool2d):
            raise ValueError("expected torchvision's vgg16 (31 feature layers), got "
                             f"{len(features)} layers")
        features[POOL3].ceil_mode = True
        features[POOL5] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.features = features
        self.scale = nn.Parameter(torch.full((512,), L2NORM_SCALE))
        self.fc6 = nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6)
        self.fc7 = nn.Conv2d(1024, 1024, kernel_size=1)
        self.extras = nn.ModuleList()
        channels = [512, 1024]
        for first, middle, out, spatial in extra_layer_channels(extras, 1024, EXTRA_CHANNELS):
            self.extras.append(nn.Sequential(
                nn.Conv2d(first, middle, kernel_size=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(middle, out, *spatial),
                nn.ReLU(inplace=True),
            ))
            channels.append(out)
        self.out_channels = channels
        for layer in [self.fc6, self.fc7, *self.extras.modules()]:
            if isinstance(layer, nn.Conv2d):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> List[Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index == CONV4_3_RELU:
                outputs.append(self.scale.view(1, -1, 1, 1) * F.normalize(x))
        x = F.relu(self.fc6(x), inplace=True)
        x = F.relu(self.fc7(x), inplace=True)
        outputs.append(x)
        for block in self.extras:
            x = block(x)
            outputs.append(x)
        return outputs


def reduce_fc(vgg_state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """fc6 and fc7 of an ImageNet VGG-16 subsampled into SSD's atrous fc6 and fc7 (the paper's
    "subsample parameters from fc6 and fc7"): every 4th output (and input) channel, every 3rd
    tap of fc6's 7x7 kernel. Returns ``{"fc6.weight", "fc6.bias", "fc7.weight", "fc7.bias"}``.
    """
    fc6 = vgg_state["classifier.0.weight"].view(4096, 512, 7, 7)
    fc7 = vgg_state["classifier.3.weight"].view(4096, 4096, 1, 1)
    return {
        "fc6.weight": fc6[::4, :, ::3, ::3].clone(),  # [1024, 512, 3, 3]
        "fc6.bias": vgg_state["classifier.0.bias"][::4].clone(),
        "fc7.weight": fc7[::4, ::4].clone(),  # [1024, 1024, 1, 1]
        "fc7.bias": vgg_state["classifier.3.bias"][::4].clone(),
    }
