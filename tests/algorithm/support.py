"""Helpers shared by the SSD tests and tests/benchmarks/ssd_vs_torchvision.py."""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import Tensor
from torchvision.ops import box_iou

from algorithm.ssd.boxes import cxcywh_to_xyxy, encode


def head_outputs(anchors: Tensor, n: int, classes: int, seed: int = 0, background: float = 8.0,
                 noise: float = -2.4, objects: Union[int, Tuple[int, int]] = (1, 4),
                 jitter: float = 0.1) -> Tuple[Tensor, Tensor]:
    """SSD head outputs ``(logits [n, A, classes + 1], regression [n, A, 4])`` of images with
    objects, with a realistic score distribution.

    Each image has ``objects`` objects (a count, or an inclusive range to draw from) of random
    classes, sizes and places. Background logits are ``background + 1.5 z`` and class logits
    ``noise + 1.5 z``. A default box overlapping an object with IoU u > 0.2 loses 16 u on its
    background logit and gains 10 u on the object's class (u = 0.5: score ~0.9), and regresses
    to the object, with noise ``jitter``; the other boxes regress at random.
    """
    g = torch.Generator().manual_seed(seed)
    a = anchors.shape[0]
    logits = torch.cat((background + 1.5 * torch.randn(n, a, 1, generator=g),
                        noise + 1.5 * torch.randn(n, a, classes, generator=g)), dim=2)
    regression = 0.5 * torch.randn(n, a, 4, generator=g)
    corners = cxcywh_to_xyxy(anchors)
    for i in range(n):
        k = objects if isinstance(objects, int) else \
            int(torch.randint(objects[0], objects[1] + 1, (1,), generator=g))
        centre = torch.rand(k, 2, generator=g) * 0.8 + 0.1
        size = torch.rand(k, 2, generator=g) * 0.5 + 0.05
        boxes = torch.cat((centre - size / 2, centre + size / 2), 1).clamp(0, 1)
        label = torch.randint(1, classes + 1, (k,), generator=g)
        best, which = box_iou(boxes, corners).max(0)
        near = best > 0.2
        logits[i, near, 0] -= 16 * best[near]
        logits[i, near, label[which[near]]] += 10 * best[near]
        regression[i, near] = encode(boxes[which[near]], anchors[near])
        if jitter:
            regression[i, near] += jitter * torch.randn(int(near.sum()), 4, generator=g)
    return logits, regression
