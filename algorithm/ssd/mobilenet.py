"""MobileNetV3-Large feature maps for SSDLite, as torchvision's ``ssdlite320_mobilenet_v3_large``.

Feature maps: the expansion layer of the last stride-16 block (C4, 672 channels) and the last
layer (C5, 960 channels), then four extra blocks (1x1, depthwise 3x3 with stride 2, 1x1) with 512,
256, 256 and 128 channels. The full (not reduced) tail is used, so ImageNet weights fit.
"""

from __future__ import annotations

from typing import List

from torch import Tensor, nn
from torchvision.models import MobileNetV3

from .heads import conv_bn_act

EXTRA_CHANNELS = (512, 256, 256, 128)


def _extra_block(in_channels: int, out_channels: int) -> nn.Sequential:
    middle = out_channels // 2
    return nn.Sequential(
        conv_bn_act(in_channels, middle, 1),
        conv_bn_act(middle, middle, 3, stride=2, groups=middle),
        conv_bn_act(middle, out_channels, 1),
    )


def _out_channels(module: nn.Module) -> int:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class MobileNetV3Features(nn.Module):
    """``forward(x [N, 3, S, S]) -> [C4, C5, extra_1, ..., extra_4]``.

    Args:
        mobilenet: a torchvision ``MobileNetV3`` (``mobilenet_v3_large()``), its ImageNet weights
            loaded or not; its ``features`` are taken over, its classifier is not.
    """

    def __init__(self, mobilenet: MobileNetV3):
        super().__init__()
        backbone = mobilenet.features
        c4 = [i for i, block in enumerate(backbone) if getattr(block, "_is_cn", False)][-1]
        expansion = backbone[c4].block[0]
        self.features = nn.Sequential(
            nn.Sequential(*backbone[:c4], expansion),  # up to C4's expansion layer
            nn.Sequential(backbone[c4].block[1:], *backbone[c4 + 1:]),  # from C4's depthwise
        )
        channels = [_out_channels(expansion), _out_channels(backbone[-1])]
        self.extras = nn.ModuleList()
        for out in EXTRA_CHANNELS:
            self.extras.append(_extra_block(channels[-1], out))
            channels.append(out)
        self.out_channels = channels
        for layer in self.extras.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, mean=0.0, std=0.03)

    def forward(self, x: Tensor) -> List[Tensor]:
        outputs = []
        for block in self.features:
            x = block(x)
            outputs.append(x)
        for block in self.extras:
            x = block(x)
            outputs.append(x)
        return outputs
