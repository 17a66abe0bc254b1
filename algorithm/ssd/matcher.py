"""Matching default boxes to ground truth, vectorised over a padded batch.

Targets come padded: ``boxes (Tensor[N, M, 4])`` ``(x1, y1, x2, y2)`` normalized and
``labels (Tensor[N, M])`` class ids from 0 (no background), ``-1`` for padding. A box with
``x2 <= x1`` or ``y2 <= y1`` is ignored like padding.

Matching (the SSD paper, as torchvision's ``SSDMatcher``): a default box is matched to the
ground-truth box it overlaps most if that IoU is at least ``iou_threshold``; then each ground-truth
box takes its best default box whatever the IoU (on a default box claimed twice, the later box
wins). Everything else is background.

Given :class:`~algorithm.ssd.anchors.DefaultBoxes`, IoU is computed per feature map from its row
and column overlaps (default boxes on a grid share them), and each ground truth's best default box
is found from the best row times the best column per box shape, without a pass over all boxes.
Given a plain ``Tensor[A, 4]``, the same numbers come from the dense computation.
"""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from .anchors import DefaultBoxes
from .boxes import VARIANCES, cxcywh_to_xyxy, encode

Anchors = Union[Tensor, DefaultBoxes]


def check_targets(boxes: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` naming the bad shape unless the padded targets fit together."""
    if boxes.dim() != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be Tensor[N, M, 4], got shape {tuple(boxes.shape)}")
    if tuple(labels.shape) != tuple(boxes.shape[:2]):
        raise ValueError(f"labels must be Tensor[N, M] matching boxes {tuple(boxes.shape)}, "
                         f"got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")


def valid_targets(boxes: Tensor, labels: Tensor) -> Tensor:
    """Tensor[N, M] bool: real (not padding) boxes with positive width and height."""
    return (labels >= 0) & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])


def match(anchors: Anchors, boxes: Tensor, labels: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Match default boxes to ground truth.

    Args:
        anchors: :class:`DefaultBoxes` (fast path) or ``Tensor[A, 4]`` ``(cx, cy, w, h)``.
        boxes (Tensor[N, M, 4]), labels (Tensor[N, M]): padded targets (see the module).

    Returns:
        Tensor[N, A] int64: index ``m`` of the matched ground-truth box, or -1 (background).
    """
    return _match(anchors, boxes, labels, iou_threshold)[0]


def assign_targets(
    anchors: Anchors,
    boxes: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.5,
    variances: Tuple[float, ...] = VARIANCES,
) -> Tuple[Tensor, Tensor]:
    """Classification and regression targets of every default box.

    Returns:
        cls_targets (Tensor[N, A] int64): 0 for background, ``label + 1`` for a matched box.
        box_targets (Tensor[N, A, 4]): encoded matched box (see
            :func:`~algorithm.ssd.boxes.encode`); zeros for background.
    """
    matched, image, anchor = _match(anchors, boxes, labels, iou_threshold)
    centres = anchors.boxes if isinstance(anchors, DefaultBoxes) else anchors
    slot = matched[image, anchor]
    cls_targets = torch.zeros_like(matched)
    cls_targets[image, anchor] = labels[image, slot].to(torch.int64) + 1
    matched_boxes = boxes[image, slot].to(centres.dtype)  # [P, 4]
    box_targets = centres.new_zeros((*matched.shape, 4))
    box_targets[image, anchor] = encode(matched_boxes, centres[anchor], variances)
    return cls_targets, box_targets


def _match(
    anchors: Anchors, boxes: Tensor, labels: Tensor, iou_threshold: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`match`, plus the matched ``(image, anchor)`` pairs, each once: Tensor[P] twice."""
    check_targets(boxes, labels)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold={iou_threshold} must be in (0, 1]")
    centres = anchors.boxes if isinstance(anchors, DefaultBoxes) else anchors
    n, m = boxes.shape[:2]
    num_anchors = centres.shape[0]
    matched = torch.full((n, num_anchors), -1, dtype=torch.int64, device=boxes.device)
    if m == 0:
        none = torch.zeros(0, dtype=torch.int64, device=boxes.device)
        return matched, none, none
    valid = valid_targets(boxes, labels)
    # Invalid boxes become empty boxes at the origin: no overlap with anything, never NaN.
    boxes = boxes.masked_fill(~valid.unsqueeze(-1), 0.0).to(centres.dtype)
    if isinstance(anchors, DefaultBoxes):
        ratio, best_ratio, best_anchor, anchor_of_column = _grid_overlaps(boxes, anchors)
    else:
        ratio, best_ratio, best_anchor, anchor_of_column = _dense_overlaps(boxes, anchors)

    # IoU >= t  <=>  (area sum) / intersection = 1 + 1 / IoU <= 1 + 1 / t.
    image, column = torch.nonzero(best_ratio <= 1.0 + 1.0 / iou_threshold, as_tuple=True)
    anchor = column if anchor_of_column is None else anchor_of_column[column]
    matched[image, anchor] = ratio[image, :, column].argmin(dim=1)  # [P, M] -> [P]

    # Each valid box claims its best default box; on a clash the later box wins (as
    # torchvision's index assignment does), decided here so that it is deterministic.
    slots = torch.arange(m, device=boxes.device)
    clash = (best_anchor.unsqueeze(2) == best_anchor.unsqueeze(1)) & valid.unsqueeze(1)
    clash &= slots.view(1, 1, m) > slots.view(1, m, 1)  # [N, M, M']: a later valid box m'
    claim_image, claim_slot = torch.nonzero(valid & ~clash.any(dim=2), as_tuple=True)
    claim_anchor = best_anchor[claim_image, claim_slot]
    matched[claim_image, claim_anchor] = claim_slot

    pairs = torch.cat((image * num_anchors + anchor, claim_image * num_anchors + claim_anchor))
    pairs = torch.unique(pairs)
    return matched, pairs // num_anchors, pairs % num_anchors


def _dense_overlaps(
    boxes: Tensor, anchors: Tensor
) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Overlap of every box with every default box.

    Returns:
        ratio (Tensor[N, M, A]): ``(box area + default box area) / intersection``, which is
            ``1 + 1 / IoU`` (``inf`` without overlap): lower is better, and it takes one pass,
            computed as ``(area sum / ih) * (1 / iw)``.
        best_ratio (Tensor[N, A]): the lowest ratio of each default box over the boxes.
        best_anchor (Tensor[N, M]): each box's best default box (the first of equals).
        anchor_of_column: ``None``: the columns of ``ratio`` are in default-box order.
    """
    corners = cxcywh_to_xyxy(anchors)
    ax1, ay1, ax2, ay2 = (c.contiguous() for c in corners.unbind(-1))  # [A]
    x1, y1, x2, y2 = (c.unsqueeze(-1) for c in boxes.unbind(-1))  # [N, M, 1]
    iw = torch.min(x2, ax2).sub_(torch.max(x1, ax1)).clamp_(min=0)
    ih = torch.min(y2, ay2).sub_(torch.max(y1, ay1)).clamp_(min=0)
    area_sum = (x2 - x1) * (y2 - y1) + anchors[:, 2] * anchors[:, 3]
    ratio = area_sum.div_(ih).mul_(iw.reciprocal_())
    return ratio, ratio.amin(dim=1), ratio.argmin(dim=2), None


def _grid_overlaps(
    boxes: Tensor, anchors: DefaultBoxes
) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """:func:`_dense_overlaps` from the row and column overlaps of each feature map.

    Default boxes on a grid share their x-extent along a column and their y-extent along a row,
    so the intersections need only ``rows + cols`` values per box shape, and one product per
    pair remains. Inside ``ratio`` each map is laid out ``[P, rows, cols]`` rather than in
    default-box order ``[rows, cols, P]``, so that the division runs over whole rows (vectorised)
    instead of P = 4 or 6 values at a time; ``anchor_of_column (Tensor[A])`` maps back.
    """
    centres = anchors.boxes
    device = boxes.device
    n, m = boxes.shape[:2]
    total = sum(size * size * per for size, per in anchors.grid)
    if total != centres.shape[0]:
        raise ValueError(f"DefaultBoxes.grid {anchors.grid} describes {total} boxes, but there "
                         f"are {centres.shape[0]}")

    # Interval tables: the x-extent of each (shape, column), the y-extent of each (shape, row).
    corners = cxcywh_to_xyxy(centres)
    columns: List[Tensor] = []
    rows: List[Tensor] = []
    offset = 0
    for size, per in anchors.grid:
        block = corners[offset:offset + size * size * per].view(size, size, per, 4)
        columns.append(block[0, :, :, 0::2].permute(2, 1, 0).reshape(2, -1))  # [2, P * cols]
        rows.append(block[:, 0, :, 1::2].permute(2, 1, 0).reshape(2, -1))  # [2, P * rows]
        offset += size * size * per
    cx1, cx2 = torch.cat(columns, dim=1)  # [sum P * cols] each
    ry1, ry2 = torch.cat(rows, dim=1)
    x1, y1, x2, y2 = (c.unsqueeze(-1) for c in boxes.unbind(-1))  # [N, M, 1]
    iw = torch.min(x2, cx2).sub_(torch.max(x1, cx1)).clamp_(min=0)  # [N, M, sum P * cols]
    ih = torch.min(y2, ry2).sub_(torch.max(y1, ry1)).clamp_(min=0)
    box_area = (x2 - x1) * (y2 - y1)  # [N, M, 1]
    area = centres[:, 2] * centres[:, 3]
    inverse_iw = iw.reciprocal()  # inf without overlap

    ratio = boxes.new_empty((n, m, centres.shape[0]))  # the only full-size buffer
    anchor_of_column: List[Tensor] = []
    best_ratio: List[Tensor] = []
    best_index: List[Tensor] = []
    offset = table = 0
    for size, per in anchors.grid:
        count = size * per
        ih_k = ih[..., table:table + count].view(n, m, per, size)  # [N, M, P, rows]
        iw_k = iw[..., table:table + count].view(n, m, per, size)  # [N, M, P, cols]
        inverse_k = inverse_iw[..., table:table + count].view(n, m, per, size)
        area_sum = box_area + area[offset:offset + per]  # [N, M, P]
        out = ratio[..., offset:offset + size * count].view(n, m, per, size, size)
        # Same operations, in the same order, as the dense path: the same numbers. A product
        # with 1 / iw, not a division: on the full-size buffer that is several times faster.
        torch.mul((area_sum.unsqueeze(-1) / ih_k).unsqueeze(4), inverse_k.unsqueeze(3), out=out)
        cells = torch.arange(size * size, device=device) * per
        shape = torch.arange(per, device=device)
        anchor_of_column.append((cells.view(1, -1) + shape.view(-1, 1)).view(-1) + offset)

        # For one shape the ratio only falls as the row and column overlaps grow, so the best
        # box of that shape sits at the best row and the best column.
        high, row = ih_k.max(dim=3)  # [N, M, P]
        wide, col = iw_k.max(dim=3)
        best_index.append(offset + (row * size + col) * per + shape)
        best_ratio.append(area_sum.div_(high).mul_(wide.reciprocal()))
        offset += size * count
        table += count

    values = torch.cat(best_ratio, dim=2)  # [N, M, sum P]
    indices = torch.cat(best_index, dim=2)
    low = values.amin(dim=2, keepdim=True)
    # The first default box among equally good ones, as argmin over all boxes picks.
    ties = indices.masked_fill(values > low, centres.shape[0])
    return ratio, ratio.amin(dim=1), ties.amin(dim=2), torch.cat(anchor_of_column)
