"""Prediction heads: class scores and box regression for every default box of every feature map.

``SSDHead`` (VGG-16, ResNet-50) puts a 3x3 convolution on each feature map, as the paper;
``SSDLiteHead`` (MobileNetV3) a depthwise 3x3 then a pointwise 1x1 convolution (SSDLite). Both
return outputs in default-box order (see :mod:`algorithm.ssd.anchors`), laid out as torchvision's
heads lay them out, so torchvision's weights drop in.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn


def conv_bn_act(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
    padding: int = -1,
) -> nn.Sequential:
    """Convolution (no bias), BatchNorm, ReLU6: SSDLite's block (torchvision's layout and BN)."""
    if padding < 0:
        padding = (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels, eps=0.001, momentum=0.03),
        nn.ReLU6(inplace=True),
    )


def _flatten(outputs: Tensor, columns: int) -> Tensor:
    """[N, P * K, H, W] -> [N, H * W * P, K]: default-box order."""
    n, _, h, w = outputs.shape
    outputs = outputs.view(n, -1, columns, h, w).permute(0, 3, 4, 1, 2)  # [N, H, W, P, K]
    return outputs.reshape(n, -1, columns)


class _Head(nn.Module):
    def __init__(self, classification: nn.ModuleList, regression: nn.ModuleList, classes: int):
        super().__init__()
        self.classification = classification
        self.regression = regression
        self.classes = classes

    def forward(self, features: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """``features``: one Tensor[N, C_k, H_k, W_k] per map ->
        ``(cls_logits [N, A, classes], box_regression [N, A, 4])``."""
        scores: List[Tensor] = []
        boxes: List[Tensor] = []
        for x, classify, regress in zip(features, self.classification, self.regression):
            scores.append(_flatten(classify(x), self.classes))
            boxes.append(_flatten(regress(x), 4))
        return torch.cat(scores, dim=1), torch.cat(boxes, dim=1)


class SSDHead(_Head):
    """3x3 convolutions (the SSD paper), Xavier-initialised as torchvision's.

    Args:
        in_channels: channels of each feature map.
        boxes_per_location: default boxes per location of each map.
        classes: outputs per default box, background included.
    """

    def __init__(self, in_channels: Sequence[int], boxes_per_location: Sequence[int],
                 classes: int):
        classification = nn.ModuleList(
            nn.Conv2d(c, p * classes, kernel_size=3, padding=1)
            for c, p in zip(in_channels, boxes_per_location))
        regression = nn.ModuleList(
            nn.Conv2d(c, p * 4, kernel_size=3, padding=1)
            for c, p in zip(in_channels, boxes_per_location))
        for layer in list(classification) + list(regression):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        super().__init__(classification, regression, classes)


class SSDLiteHead(_Head):
    """Depthwise 3x3 + BN + ReLU6, then a 1x1 convolution (SSDLite), initialised N(0, 0.03)."""

    def __init__(self, in_channels: Sequence[int], boxes_per_location: Sequence[int],
                 classes: int):
        def block(channels: int, outputs: int) -> nn.Sequential:
            return nn.Sequential(conv_bn_act(channels, channels, 3, groups=channels),
                                 nn.Conv2d(channels, outputs, 1))

        classification = nn.ModuleList(
            block(c, p * classes) for c, p in zip(in_channels, boxes_per_location))
        regression = nn.ModuleList(
            block(c, p * 4) for c, p in zip(in_channels, boxes_per_location))
        for layer in list(classification.modules()) + list(regression.modules()):
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, mean=0.0, std=0.03)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        super().__init__(classification, regression, classes)
