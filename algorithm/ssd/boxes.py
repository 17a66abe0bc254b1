"""Box formats, pairwise IoU and the SSD box coder.

Two formats appear throughout: ``xyxy`` = ``(x1, y1, x2, y2)`` and ``cxcywh`` = ``(cx, cy, w, h)``,
both normalized to the image side (``[0, 1]`` inside the image). Default boxes are ``cxcywh``;
ground truth and detections are ``xyxy``.

The coder is the SSD paper's, with the variances of its Caffe release ``(0.1, 0.1, 0.2, 0.2)``
(torchvision's ``BoxCoder(weights=(10, 10, 5, 5))`` is the same coder):
``t = ((gcx - acx) / (0.1 aw), (gcy - acy) / (0.1 ah), log(gw / aw) / 0.2, log(gh / ah) / 0.2)``.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

VARIANCES = (0.1, 0.1, 0.2, 0.2)

# Largest log-scale a decoded box may take (as torchvision's BoxCoder): exp() of a wild
# regression output would otherwise overflow to inf.
MAX_LOG_SCALE = math.log(1000.0 / 16)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``boxes (Tensor[..., 4])``: ``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """``boxes (Tensor[..., 4])``: ``(x1, y1, x2, y2)`` -> ``(cx, cy, w, h)``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    w = x2 - x1
    h = y2 - y1
    return torch.stack((x1 + 0.5 * w, y1 + 0.5 * h, w, h), dim=-1)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU of two sets of ``xyxy`` boxes, batched over leading dimensions of ``boxes1``.

    Args:
        boxes1 (Tensor[..., M, 4]): ``(x1, y1, x2, y2)``; boxes of zero area give IoU 0.
        boxes2 (Tensor[A, 4]): ``(x1, y1, x2, y2)`` with positive area.

    Returns:
        Tensor[..., M, A]
    """
    x1, y1, x2, y2 = (c.unsqueeze(-1) for c in boxes1.unbind(-1))  # [..., M, 1]
    ax1, ay1, ax2, ay2 = (c.contiguous() for c in boxes2.unbind(-1))  # [A]
    # Three buffers of the full size, reused in place: fresh allocations of this size cost more
    # than the arithmetic on CPU.
    iou = torch.min(x2, ax2)
    tmp = torch.max(x1, ax1)
    iou.sub_(tmp).clamp_(min=0)
    ih = torch.min(y2, ay2, out=tmp)
    ih.sub_(torch.max(y1, ay1)).clamp_(min=0)
    inter = iou.mul_(ih)
    area1 = (x2 - x1) * (y2 - y1)
    area2 = (ax2 - ax1) * (ay2 - ay1)
    union = torch.add(area1, area2, out=ih).sub_(inter)
    return inter.div_(union)


def encode(boxes: Tensor, anchors: Tensor, variances: Tuple[float, ...] = VARIANCES) -> Tensor:
    """Regression targets of ``xyxy`` boxes relative to ``cxcywh`` default boxes.

    Args:
        boxes (Tensor[..., 4]): ``(x1, y1, x2, y2)`` with positive width and height.
        anchors (Tensor[..., 4]): ``(cx, cy, w, h)``, broadcastable to ``boxes``.

    Returns:
        Tensor[..., 4]: ``(tx, ty, tw, th)``.
    """
    x1, y1, x2, y2 = boxes.unbind(-1)
    acx, acy, aw, ah = anchors.unbind(-1)
    w = x2 - x1
    h = y2 - y1
    tx = (x1 + 0.5 * w - acx) / (aw * variances[0])
    ty = (y1 + 0.5 * h - acy) / (ah * variances[1])
    tw = torch.log(w / aw) / variances[2]
    th = torch.log(h / ah) / variances[3]
    return torch.stack((tx, ty, tw, th), dim=-1)


def decode(regression: Tensor, anchors: Tensor, variances: Tuple[float, ...] = VARIANCES) -> Tensor:
    """Boxes from regression outputs: the inverse of :func:`encode`.

    Args:
        regression (Tensor[..., A, 4]): ``(tx, ty, tw, th)``.
        anchors (Tensor[A, 4]): ``(cx, cy, w, h)``.

    Returns:
        Tensor[..., A, 4]: ``(x1, y1, x2, y2)``, not clipped.
    """
    tx, ty, tw, th = regression.unbind(-1)
    acx, acy, aw, ah = anchors.to(regression.dtype).unbind(-1)
    cx = tx * variances[0] * aw + acx
    cy = ty * variances[1] * ah + acy
    half_w = 0.5 * torch.exp((tw * variances[2]).clamp(max=MAX_LOG_SCALE)) * aw
    half_h = 0.5 * torch.exp((th * variances[3]).clamp(max=MAX_LOG_SCALE)) * ah
    return torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=-1)
