"""Matching default boxes to ground truth, vectorised over a padded batch.

Targets come padded: ``boxes (Tensor[N, M, 4])`` ``(x1, y1, x2, y2)`` normalized and
``labels (Tensor[N, M])`` class ids from 0 (no background), ``-1`` for padding. A box with
``x2 <= x1`` or ``y2 <= y1`` is ignored like padding.

Matching (the SSD paper, as torchvision's ``SSDMatcher``): a default box is matched to the
ground-truth box it overlaps most if that IoU is at least ``iou_threshold``; then each ground-truth
box takes its best default box whatever the IoU (on a default box claimed twice, the later box
wins). Everything else is background.

Given :class:`~algorithm.ssd.anchors.DefaultBoxes`, nothing of size ``N x M x A`` is computed:
the default boxes that can overlap a box by the threshold form a small rectangle of each map's
grid per box shape, found by arithmetic on the grid; only those pairs get an IoU. Each ground
truth's best default box comes from the best row times the best column per box shape. Given a
plain ``Tensor[A, 4]``, the same matches come from the dense computation.
"""

from __future__ import annotations

from typing import List, NamedTuple, Tuple, Union

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
    image, anchor, slot = _match(anchors, boxes, labels, iou_threshold)
    matched = torch.full((boxes.shape[0], _centres(anchors).shape[0]), -1, dtype=torch.int64,
                         device=boxes.device)
    matched[image, anchor] = slot
    return matched


class MatchedTargets(NamedTuple):
    """Training targets with the regression targets of the matched default boxes only.

    ``cls_targets (Tensor[N, A] int64)``: 0 for background, ``label + 1`` for a matched box.
    ``image``, ``anchor`` (Tensor[P] int64): the matched ``(image, default box)`` pairs in
    row-major order (the order of ``cls_targets[cls_targets > 0]``).
    ``box_targets (Tensor[P, 4])``: the encoded matched box of each pair (see
    :func:`~algorithm.ssd.boxes.encode`).
    """

    cls_targets: Tensor
    image: Tensor
    anchor: Tensor
    box_targets: Tensor

    def to(self, device: torch.device, non_blocking: bool = False) -> MatchedTargets:
        return MatchedTargets(*(t.to(device, non_blocking=non_blocking) for t in self))


def match_targets(
    anchors: Anchors,
    boxes: Tensor,
    labels: Tensor,
    iou_threshold: float = 0.5,
    variances: Tuple[float, ...] = VARIANCES,
) -> MatchedTargets:
    """Classification targets of every default box, regression targets of the matched ones.

    What :func:`~algorithm.ssd.loss.multibox_loss` needs: the box loss only reads matched boxes,
    so their targets are not spread over a mostly-zero ``Tensor[N, A, 4]``.
    """
    image, anchor, slot = _match(anchors, boxes, labels, iou_threshold)
    centres = _centres(anchors)
    cls_targets = torch.zeros((boxes.shape[0], centres.shape[0]), dtype=torch.int64,
                              device=boxes.device)
    cls_targets[image, anchor] = labels[image, slot].to(torch.int64) + 1
    matched_boxes = boxes[image, slot].to(centres.dtype)  # [P, 4]
    box_targets = encode(matched_boxes, centres[anchor], variances)
    return MatchedTargets(cls_targets, image, anchor, box_targets)


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
    targets = match_targets(anchors, boxes, labels, iou_threshold, variances)
    cls_targets = targets.cls_targets
    box_targets = targets.box_targets.new_zeros((*cls_targets.shape, 4))
    box_targets[targets.image, targets.anchor] = targets.box_targets
    return cls_targets, box_targets


def _centres(anchors: Anchors) -> Tensor:
    """The default boxes, ``Tensor[A, 4]`` ``(cx, cy, w, h)``."""
    return anchors.boxes if isinstance(anchors, DefaultBoxes) else anchors


def _maps(anchors: DefaultBoxes) -> List[Tuple[int, int, int]]:
    """``(size, per, offset)`` of each feature map: its side, its boxes per location and the
    index of its first default box. Raises ``ValueError`` if ``grid`` does not fit ``boxes``."""
    maps = []
    offset = 0
    for size, per in anchors.grid:
        maps.append((size, per, offset))
        offset += size * size * per
    if offset != anchors.boxes.shape[0]:
        raise ValueError(f"DefaultBoxes.grid {anchors.grid} describes {offset} boxes, but there "
                         f"are {anchors.boxes.shape[0]}")
    return maps


def _match(
    anchors: Anchors, boxes: Tensor, labels: Tensor, iou_threshold: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """The matches as ``(image, anchor, slot)`` (Tensor[P] int64 each), in row-major order of
    ``(image, anchor)``, each pair once: default box ``anchor`` of image ``image`` matches its
    ground-truth box ``slot``."""
    check_targets(boxes, labels)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold={iou_threshold} must be in (0, 1]")
    centres = _centres(anchors)
    m = boxes.shape[1]
    num_anchors = centres.shape[0]
    if m == 0:
        none = torch.zeros(0, dtype=torch.int64, device=boxes.device)
        return none, none, none
    valid = valid_targets(boxes, labels)
    # Invalid boxes become empty boxes at the origin: no overlap with anything, never NaN.
    boxes = boxes.masked_fill(~valid.unsqueeze(-1), 0.0).to(centres.dtype)
    # IoU >= t  <=>  (area sum) / intersection = 1 + 1 / IoU <= 1 + 1 / t.
    limit = 1.0 + 1.0 / iou_threshold
    if isinstance(anchors, DefaultBoxes):
        maps = _maps(anchors)
        image, slot, anchor, ratio = _grid_candidates(boxes, anchors, maps, iou_threshold)
        keep = ratio <= limit
        image, slot, anchor, ratio = image[keep], slot[keep], anchor[keep], ratio[keep]
        # Per default box, the box of the lowest ratio, the first of equals (as argmin picks):
        # candidates come in box order, so sort by ratio, then by default box, both stable.
        order = torch.sort(ratio, stable=True)[1]
        key = image[order] * num_anchors + anchor[order]
        key, by_key = torch.sort(key, stable=True)
        order = order[by_key]
        first = torch.ones_like(key, dtype=torch.bool)
        first[1:] = key[1:] != key[:-1]
        image, anchor, slot = image[order[first]], anchor[order[first]], slot[order[first]]
        best_anchor = _grid_best(boxes, anchors, maps)
    else:
        ratio, best_anchor = _dense_overlaps(boxes, centres)
        image, anchor = torch.nonzero(ratio.amin(dim=1) <= limit, as_tuple=True)
        slot = ratio[image, :, anchor].argmin(dim=1)  # [P, M] -> [P]

    # Each valid box claims its best default box; on a clash the later box wins (as
    # torchvision's index assignment does), decided here so that it is deterministic.
    slots = torch.arange(m, device=boxes.device)
    clash = (best_anchor.unsqueeze(2) == best_anchor.unsqueeze(1)) & valid.unsqueeze(1)
    clash &= slots.view(1, 1, m) > slots.view(1, m, 1)  # [N, M, M']: a later valid box m'
    claim_image, claim_slot = torch.nonzero(valid & ~clash.any(dim=2), as_tuple=True)
    claim_anchor = best_anchor[claim_image, claim_slot]

    # Claims override threshold matches: after a stable sort they come last among equal keys.
    key = torch.cat((image * num_anchors + anchor, claim_image * num_anchors + claim_anchor))
    slot = torch.cat((slot, claim_slot))
    key, order = torch.sort(key, stable=True)
    last = torch.ones_like(key, dtype=torch.bool)
    last[:-1] = key[:-1] != key[1:]
    key, slot = key[last], slot[order[last]]
    # torch.div, not //: on torch 1.12 (the P2 image) // on tensors warns of its deprecation.
    return torch.div(key, num_anchors, rounding_mode="floor"), key % num_anchors, slot


def _dense_overlaps(boxes: Tensor, anchors: Tensor) -> Tuple[Tensor, Tensor]:
    """Overlap of every box with every default box.

    Returns:
        ratio (Tensor[N, M, A]): ``(box area + default box area) / intersection``, which is
            ``1 + 1 / IoU`` (``inf`` without overlap): lower is better, and it takes one pass,
            computed as ``(area sum / ih) * (1 / iw)``.
        best_anchor (Tensor[N, M]): each box's best default box (the first of equals).
    """
    corners = cxcywh_to_xyxy(anchors)
    ax1, ay1, ax2, ay2 = (c.contiguous() for c in corners.unbind(-1))  # [A]
    x1, y1, x2, y2 = (c.unsqueeze(-1) for c in boxes.unbind(-1))  # [N, M, 1]
    iw = torch.min(x2, ax2).sub_(torch.max(x1, ax1)).clamp_(min=0)
    ih = torch.min(y2, ay2).sub_(torch.max(y1, ay1)).clamp_(min=0)
    area_sum = (x2 - x1) * (y2 - y1) + anchors[:, 2] * anchors[:, 3]
    ratio = area_sum.div_(ih).mul_(iw.reciprocal_())
    return ratio, ratio.argmin(dim=2)


def _grid_best(boxes: Tensor, anchors: DefaultBoxes, maps: List[Tuple[int, int, int]]) -> Tensor:
    """Each box's best default box (the first of equals), as :func:`_dense_overlaps` finds it.

    Default boxes on a grid share their x-extent along a column and their y-extent along a row,
    so the intersections need only ``rows + cols`` values per box shape. For one shape the ratio
    only falls as the row and column overlaps grow, so the best box of that shape sits at the
    best row and the best column; the best shape then decides.

    Returns:
        Tensor[N, M] int64.
    """
    centres = anchors.boxes
    n, m = boxes.shape[:2]

    # Interval tables: the x-extent of each (shape, column), the y-extent of each (shape, row).
    corners = cxcywh_to_xyxy(centres)
    columns: List[Tensor] = []
    rows: List[Tensor] = []
    for size, per, offset in maps:
        block = corners[offset:offset + size * size * per].view(size, size, per, 4)
        columns.append(block[0, :, :, 0::2].permute(2, 1, 0).reshape(2, -1))  # [2, P * cols]
        rows.append(block[:, 0, :, 1::2].permute(2, 1, 0).reshape(2, -1))  # [2, P * rows]
    cx1, cx2 = torch.cat(columns, dim=1)  # [sum P * cols] each
    ry1, ry2 = torch.cat(rows, dim=1)
    x1, y1, x2, y2 = (c.unsqueeze(-1) for c in boxes.unbind(-1))  # [N, M, 1]
    iw = torch.min(x2, cx2).sub_(torch.max(x1, cx1)).clamp_(min=0)  # [N, M, sum P * cols]
    ih = torch.min(y2, ry2).sub_(torch.max(y1, ry1)).clamp_(min=0)
    box_area = (x2 - x1) * (y2 - y1)  # [N, M, 1]
    area = centres[:, 2] * centres[:, 3]

    best_ratio: List[Tensor] = []
    best_index: List[Tensor] = []
    table = 0
    for size, per, offset in maps:
        count = size * per
        high, row = ih[..., table:table + count].view(n, m, per, size).max(dim=3)  # [N, M, P]
        wide, col = iw[..., table:table + count].view(n, m, per, size).max(dim=3)
        area_sum = box_area + area[offset:offset + per]  # [N, M, P]
        shape = torch.arange(per, device=boxes.device)
        best_index.append(offset + (row * size + col) * per + shape)
        best_ratio.append(area_sum.div_(high).mul_(wide.reciprocal()))
        table += count

    values = torch.cat(best_ratio, dim=2)  # [N, M, sum P]
    indices = torch.cat(best_index, dim=2)
    low = values.amin(dim=2, keepdim=True)
    # The first default box among equally good ones, as argmin over all boxes picks.
    return indices.masked_fill(values > low, centres.shape[0]).amin(dim=2)


def _grid_candidates(
    boxes: Tensor, anchors: DefaultBoxes, maps: List[Tuple[int, int, int]], iou_threshold: float
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``(box, default box)`` pairs that may overlap by ``iou_threshold``, with their ratio.

    IoU >= t means intersection >= t / (1 + t) * (sum of the areas); the intersection is at most
    its width times the lower of the two heights, which sets a least intersection width, and
    that bounds the centres of the default boxes of one shape to an interval: a run of columns,
    found by arithmetic on the grid's spacing (with a little slack for rounding). Likewise for
    the rows (rows and columns share their centres), so the candidates of a box and a shape are
    a rectangle of the grid. Only those pairs get a ratio, computed as :func:`_dense_overlaps`
    computes it (the same numbers), so the exact test on it decides as the dense path does.

    Returns:
        image, slot, anchor, ratio (Tensor[Q] each): the candidates, in the order of the boxes.
    """
    centres = anchors.boxes
    device = boxes.device
    n, m = boxes.shape[:2]
    # One row per (map, shape): the map's side, its boxes per location, and the shape's default
    # box at row 0, column 0.
    groups = [(size, per, offset + shape) for size, per, offset in maps for shape in range(per)]
    size, per, first = torch.tensor(groups, device=device).unbind(1)  # [G] each
    cx0, _, aw, ah = centres[first].to(torch.float64).unsqueeze(1).unbind(-1)  # [G, 1]
    cells = 0.5 / cx0  # the centre of column j is (j + 0.5) / cells

    bx1, by1, bx2, by2 = boxes.reshape(1, -1, 4).to(torch.float64).unbind(-1)  # [1, B]
    bw, bh = bx2 - bx1, by2 - by1
    # inter >= t / (1 + t) * (sum of areas), and inter <= iw * (the lower height).
    part = iou_threshold / (1.0 + iou_threshold) * (bw * bh + aw * ah)  # [G, B]
    need_w = part / torch.min(bh, ah)
    need_h = part / torch.min(bw, aw)
    slack = 1e-5  # normalized units: covers the rounding of the float32 grid
    col0 = ((bx1 + need_w - 0.5 * aw - slack) * cells - 0.5).ceil_().clamp_(min=0)
    col1 = ((bx2 - need_w + 0.5 * aw + slack) * cells - 0.5).floor_()
    row0 = ((by1 + need_h - 0.5 * ah - slack) * cells - 0.5).ceil_().clamp_(min=0)
    row1 = ((by2 - need_h + 0.5 * ah + slack) * cells - 0.5).floor_()
    last = (size - 1).unsqueeze(1)
    cols = (torch.min(col1, last) - col0 + 1).clamp_(min=0)
    rows = (torch.min(row1, last) - row0 + 1).clamp_(min=0)
    # The intersection is no wider and no higher than either box.
    fits = (need_w <= torch.min(bw, aw) + slack) & (need_h <= torch.min(bh, ah) + slack)
    counts = (cols * rows * fits).view(-1).to(torch.int64)  # [G * B]
    group = torch.repeat_interleave(counts)  # [Q]: the (shape, box) of each candidate
    within = torch.arange(group.shape[0], device=device)
    within -= (counts.cumsum(0) - counts)[group]
    width = cols.view(-1).to(torch.int64)[group]
    row = row0.view(-1).to(torch.int64)[group] + torch.div(within, width, rounding_mode="floor")
    col = col0.view(-1).to(torch.int64)[group] + within % width
    shape, box = torch.div(group, n * m, rounding_mode="floor"), group % (n * m)
    anchor = first[shape] + (row * size[shape] + col) * per[shape]

    # The ratio as the dense path computes it, pair by pair.
    x1, y1, x2, y2 = boxes.reshape(-1, 4)[box].unbind(-1)
    ax1, ay1, ax2, ay2 = cxcywh_to_xyxy(centres[anchor]).unbind(-1)
    iw = torch.min(x2, ax2).sub_(torch.max(x1, ax1)).clamp_(min=0)
    ih = torch.min(y2, ay2).sub_(torch.max(y1, ay1)).clamp_(min=0)
    area_sum = (x2 - x1) * (y2 - y1) + centres[anchor, 2] * centres[anchor, 3]
    ratio = area_sum.div_(ih).mul_(iw.reciprocal_())
    return torch.div(box, m, rounding_mode="floor"), box % m, anchor, ratio
