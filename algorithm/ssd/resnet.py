"""ResNet-50 feature maps for SSD: conv4_x and conv5_x, then extra layers.

The feature maps are the outputs of ResNet-50's last two stages: conv4_x (``layer3``, stride 16,
1024 channels) and conv5_x (``layer4``, stride 32, 2048 channels), followed by extra layers with
BatchNorm (512, 512, 256, 256, ... channels), the layout of the built-in algorithm's ResNet-50 SSD
and of GluonCV's SSD512 ResNet-50 (80.1 VOC07 mAP). Why these stages: docs/ssd.md.
"""

from __future__ import annotations

from typing import List, Sequence

from torch import Tensor, nn
from torchvision.models import ResNet

from .layout import extra_layer_channels

# (1x1 channels, output channels) of the extra layers; later ones repeat the last.
EXTRA_CHANNELS = ((256, 512), (256, 512), (128, 256))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                  padding: int = 0) -> List[nn.Module]:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return [conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class ResNet50Features(nn.Module):
    """``forward(x [N, 3, S, S]) -> [conv4_x, conv5_x, extra_1, ...]``.

    Args:
        resnet: a torchvision ``ResNet`` (``resnet50()``), its ImageNet weights loaded or not;
            its stem and four stages are taken over, its classifier is not.
        extras: kinds of the extra layers (:func:`algorithm.ssd.layout.extra_layers`).
    """

    def __init__(self, resnet: ResNet, extras: Sequence[str]):
        super().__init__()
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        self.extras = nn.ModuleList()
        channels = [1024, 2048]
        for first, middle, out, spatial in extra_layer_channels(extras, 2048, EXTRA_CHANNELS):
            self.extras.append(nn.Sequential(
                *_conv_bn_relu(first, middle, 1),
                *_conv_bn_relu(middle, out, *spatial),
            ))
            channels.append(out)
        self.out_channels = channels

    def forward(self, x: Tensor) -> List[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        outputs = [x]
        x = self.layer4(x)
        outputs.append(x)
        for block in self.extras:
            x = block(x)
            outputs.append(x)
        return outputs
