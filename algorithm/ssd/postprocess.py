"""Post-processing: from head outputs to detections in the built-in algorithm's format.

Per image: softmax over classes; per class, the scores above ``score_threshold``, at most
``top_k`` of them; boxes decoded and clipped to ``[0, 1]``; non-maximum suppression within each
class at ``nms_threshold``; the best ``max_detections`` kept. The result equals torchvision's
``SSD.postprocess_detections`` (same steps, same order) in normalized coordinates.

How it stays fast on CPU, where this runs for every request of an endpoint:

- Candidates are found per default box first, without exponentials: a class's softmax score is
  below ``exp(l_c - l_0)``, so it can pass ``t`` only where its logit beats the background's by
  ``log t``. The softmax is computed for those default boxes only (the same numbers as a
  softmax over all).
- NMS uses torchvision's kernel without its per-class Python loop: the (image, class) groups are
  packed into few kernel calls, each group shifted to its own region of the plane (the coordinate
  trick of ``batched_nms``) so groups never suppress each other. The kernel compares every kept
  box with every later box of a call, so a call holds at most ``MAX_BOXES_PER_CALL`` boxes (one
  larger group gets a call of its own): few calls, little wasted comparison.
- Before the kernel, rounds over all groups at once take each group's best remaining box (a
  sure survivor) and remove what it suppresses, with the kernel's arithmetic; and the kernel
  sees an image's lower-scored boxes only if its best ones leave fewer than
  ``max_detections`` survivors. Both give exactly the kernel's detections, on fewer boxes.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor
from torchvision.ops import nms

from .boxes import decode

# The kernel compares every kept box with every later box of a call: on CPU its cost grows with
# (kept boxes) x (boxes) per call, and ~256 boxes balance that against the ~15 us a call costs
# (measured on SSD300-VOC outputs). On GPU it compares all pairs in parallel but holds a bit
# mask of boxes x boxes: bounded larger.
MAX_BOXES_PER_CALL = 256
MAX_BOXES_PER_CALL_GPU = 4096

# When more than 1 / _DENSE_FRACTION of all (box, class) scores pass (an untrained model), the
# top_k of each (class, image) come from a top-k over a dense table, as torchvision takes them,
# rather than from sorting the candidates.
_DENSE_FRACTION = 16

# Room between the groups of one call: boxes are clipped to [0, 1].
_GROUP_SPACING = 2.0

# The kernel first sees the boxes among each image's best _SPARE * max_detections candidates
# (see _survivors): enough for max_detections survivors unless a quarter of them are suppressed.
_SPARE = 1.25

# NMS rounds over all groups at once go on while each removes at least 1 / _ROUND_GAIN of the
# boxes left: on CPU a round costs about an eighth of what the kernel spends on those boxes.
_ROUND_GAIN = 8

# Slack of the logit test for candidates (in nats): far above float32 rounding.
_LOGIT_SLACK = 1e-3


def postprocess_detections(
    cls_logits: Tensor,
    box_regression: Tensor,
    anchors: Tensor,
    score_threshold: float = 0.01,
    nms_threshold: float = 0.45,
    top_k: int = 400,
    max_detections: int = 200,
) -> List[Tensor]:
    """Detections of each image, best first.

    Args:
        cls_logits (Tensor[N, A, C + 1]): class scores, index 0 = background.
        box_regression (Tensor[N, A, 4]): ``(tx, ty, tw, th)`` per default box.
        anchors (Tensor[A, 4]): default boxes ``(cx, cy, w, h)``, normalized.
        score_threshold: keep class scores above this.
        nms_threshold: IoU above which the weaker of two detections of one class is removed.
        top_k: most candidates per class and image before NMS.
        max_detections: most detections per image.

    Returns:
        One Tensor[K, 6] per image, rows ``(class_id, score, x1, y1, x2, y2)``: ``class_id`` from
        0 (background excluded), coordinates normalized and clipped to ``[0, 1]``, best first.
    """
    n, a, classes = cls_logits.shape
    classes -= 1
    if box_regression.shape != (n, a, 4) or anchors.shape != (a, 4):
        raise ValueError(
            "expected cls_logits [N, A, C + 1], box_regression [N, A, 4], anchors [A, 4]; got "
            f"{tuple(cls_logits.shape)}, {tuple(box_regression.shape)}, {tuple(anchors.shape)}")
    if not 0.0 <= score_threshold < 1.0:
        raise ValueError(f"score_threshold={score_threshold} must be in [0, 1)")
    if not 0.0 < nms_threshold <= 1.0:
        raise ValueError(f"nms_threshold={nms_threshold} must be in (0, 1]")
    if top_k < 1 or max_detections < 1:
        raise ValueError(f"top_k={top_k} and max_detections={max_detections} must be >= 1")
    logits = cls_logits.float().reshape(n * a, classes + 1)
    where = _possible_boxes(logits, score_threshold)
    # The same numbers as a softmax over all rows: each row's softmax depends on that row only.
    probs = torch.softmax(logits.index_select(0, where), dim=1)  # [B, C + 1]

    group, where, score = _candidates(probs, where, score_threshold, n, a, top_k)
    label = torch.div(group, n, rounding_mode="floor")  # not //, which warns on torch 1.12
    regression = box_regression.float().reshape(n * a, 4).index_select(0, where)
    boxes = decode(regression, anchors.index_select(0, where % a)).clamp_(0.0, 1.0)
    # The GPU kernel compares IoU with a float32 threshold: there it takes every decision.
    index, table, scores = _survivors(boxes, score, group, n, classes, nms_threshold,
                                      max_detections, rounds=boxes.device.type == "cpu")

    # Each image's best survivors, best first (scores are > 0; padding is -inf).
    best, column = scores.topk(min(max_detections, scores.shape[1]), dim=1)  # [N, D]
    found = best > -math.inf
    keep = index.index_select(0, table.gather(1, column)[found])
    rows = torch.cat((label[keep].unsqueeze(1).to(boxes.dtype), score[keep].unsqueeze(1),
                      boxes[keep]), dim=1)  # [K, 6]
    return list(rows.split(found.sum(dim=1).tolist()))


def _possible_boxes(logits: Tensor, threshold: float) -> Tensor:
    """Rows of ``logits (Tensor[B, C + 1])`` where some class may score above ``threshold``.

    A class's softmax score is ``exp(l_c) / sum_k exp(l_k) < exp(l_c - l_0)``, so it passes ``t``
    only if ``l_c - l_0 > log t``: a test on the best class logit, without any exponential.
    ``_LOGIT_SLACK`` covers float rounding (logits up to ~10^4 in magnitude).

    Returns:
        Tensor[B'] int64: the row indices, increasing.
    """
    if threshold <= 0.0:
        return torch.arange(logits.shape[0], device=logits.device)
    if logits.shape[1] < 2:
        return torch.zeros(0, dtype=torch.int64, device=logits.device)
    # Maximum over the classes by halving the columns: elementwise maxima of two halves run
    # several times faster on CPU than a reduction over a short last dimension.
    best = logits[:, 1:]
    while best.shape[1] > 1:
        width = best.shape[1]
        half = (width + 1) // 2  # an odd middle column sits in both halves
        best = torch.max(best[:, :half], best[:, width - half:])
    margin = best.squeeze(1) - logits[:, 0]
    return torch.nonzero(margin > math.log(threshold) - _LOGIT_SLACK).squeeze(1)


def _candidates(
    probs: Tensor, where: Tensor, threshold: float, n: int, a: int, top_k: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """Class scores above ``threshold``, grouped by ``group = class * N + image``, top_k per group.

    Args:
        probs (Tensor[B, C + 1]): softmax scores of the default boxes ``where`` (Tensor[B],
            increasing ``image * A + anchor``).

    Returns:
        group, where, score: Tensor[K] each, ``group`` non-decreasing.
    """
    classes = probs.shape[1] - 1
    # Class-major: candidates of one class come out in image order, so groups are contiguous.
    label, row = torch.nonzero(probs[:, 1:].t() > threshold, as_tuple=True)
    if label.numel() * _DENSE_FRACTION > classes * n * a:
        return _candidates_dense(probs, where, threshold, n, a, top_k)
    where = where.index_select(0, row)
    group = label * n + torch.div(where, a, rounding_mode="floor")
    score = probs.view(-1).index_select(0, row * (classes + 1) + label + 1)
    counts = torch.bincount(group, minlength=classes * n)
    if group.numel() and int(counts.max()) > top_k:
        # Best first within each group, then keep the first top_k of each.
        order = torch.sort(score, descending=True, stable=True).indices
        order = order[torch.sort(group[order], stable=True).indices]
        group, where, score = group[order], where[order], score[order]
        starts = torch.cumsum(counts, 0) - counts
        keep = torch.arange(group.numel(), device=group.device) - starts[group] < top_k
        group, where, score = group[keep], where[keep], score[keep]
    return group, where, score


def _candidates_dense(
    probs: Tensor, where: Tensor, threshold: float, n: int, a: int, top_k: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`_candidates` when very many scores pass (an untrained model): one top-k per
    (class, image) row of a dense [C, N * A] score table, as torchvision takes them per class."""
    classes = probs.shape[1] - 1
    table = probs.new_zeros((classes, n * a))
    table[:, where] = probs[:, 1:].t()
    values, indices = table.view(classes, n, a).topk(min(top_k, a), dim=2)  # [C, N, k]
    label, image, rank = torch.nonzero(values > threshold, as_tuple=True)
    where = image * a + indices[label, image, rank]
    return label * n + image, where, values[label, image, rank]


def _survivors(
    boxes: Tensor,
    score: Tensor,
    group: Tensor,
    n: int,
    classes: int,
    iou_threshold: float,
    max_detections: int,
    rounds: bool,
) -> Tuple[Tensor, Tensor, Tensor]:
    """NMS within each group of candidates, as far as each image's best ``max_detections``
    survivors need.

    With ``rounds``, rounds over all groups at once find the first survivors of each group and
    remove what they suppress (:func:`_best_box_rounds`). The kernel decides on the boxes left.
    An image keeps only its best ``max_detections`` survivors, and whether a box survives
    depends only on the better boxes of its group, so the kernel first sees only the boxes
    left among each image's best ``_SPARE * max_detections``; the others go to a second call
    with those first survivors, and only for images that have fewer than ``max_detections``
    survivors above them. Suppressed boxes suppress nothing, so this gives exactly what one NMS
    over all candidates would, for every box an image keeps.

    Args:
        boxes (Tensor[K, 4]), score (Tensor[K]), group (Tensor[K]): candidates, ``group``
            non-decreasing (``class * N + image``).

    Returns:
        index (Tensor[S]): candidates that survive (not every survivor of a long image).
        table (Tensor[N, W]): position in ``index`` of each image's survivors, -1 padding.
        scores (Tensor[N, W]): their scores, ``-inf`` padding.
    """
    image = group % n
    # Each group gets its own region of the plane; float64 keeps the shifted boxes exact.
    shift = group.to(torch.float64).mul_(_GROUP_SPACING).unsqueeze(1)
    shifted = boxes.to(torch.float64).add_(shift)
    scores64 = score.to(torch.float64)
    if rounds:
        found, rest = _best_box_rounds(shifted, score, group, iou_threshold)
    else:
        found = torch.zeros(0, dtype=torch.int64, device=boxes.device)
        rest = torch.arange(score.numel(), device=boxes.device)

    def kernel(subset: Tensor) -> Tensor:
        """Survivors of ``subset`` (Tensor[R], increasing)."""
        kept = _packed_nms(shifted.index_select(0, subset), scores64.index_select(0, subset),
                           group.index_select(0, subset), iou_threshold)
        return subset.index_select(0, kept)

    index, table, scores = _image_table(torch.cat((found, rest)).sort().values, group, score,
                                        n, classes)
    alive = torch.zeros_like(score, dtype=torch.bool)
    alive[index] = True
    most = math.ceil(_SPARE * max_detections)
    floor = score.new_full((n,), -math.inf)
    if most < scores.shape[1]:
        floor = scores.topk(most, dim=1, sorted=False).values.amin(dim=1)  # -inf when fewer
    above = score >= floor.index_select(0, image)
    first = rest[above.index_select(0, rest)]
    kept = torch.zeros_like(alive)
    kept[found] = True
    kept[kernel(first)] = True
    short = (torch.bincount(image[kept & above], minlength=n) < max_detections)
    short &= floor > -math.inf
    if bool(short.any()):
        second = rest[(short.index_select(0, image) & (kept | ~above)).index_select(0, rest)]
        kept[second] = False
        kept[kernel(second)] = True
    gone = (alive & ~kept).index_select(0, index)
    table.masked_fill_(gone.index_select(0, table.clamp(min=0).view(-1)).view(table.shape), -1)
    scores.masked_fill_(table < 0, -math.inf)
    return index, table, scores


def _image_table(
    index: Tensor, group: Tensor, score: Tensor, n: int, classes: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """Candidates ``index`` (Tensor[M], increasing) side by side, a row per image.

    Returns:
        index, table (Tensor[N, W]): position in ``index`` at ``(image, column)``, -1 padding,
        scores (Tensor[N, W]): their scores, ``-inf`` padding.
    """
    group = group.index_select(0, index)
    counts = torch.bincount(group, minlength=classes * n)  # [C * N]
    starts = torch.cumsum(counts, 0) - counts
    before = torch.cumsum(counts.view(classes, n), 0).view(-1) - counts  # earlier classes
    position = torch.arange(index.numel(), device=index.device)
    column = position - starts.index_select(0, group) + before.index_select(0, group)
    width = int(counts.view(classes, n).sum(dim=0).max()) if index.numel() else 0
    table = torch.full((n, width), -1, dtype=torch.int64, device=index.device)
    table[group % n, column] = position
    scores = score.new_full((n, width), -math.inf)
    scores[group % n, column] = score.index_select(0, index)
    return index, table, scores


def _best_box_rounds(
    shifted: Tensor, scores: Tensor, group: Tensor, iou_threshold: float
) -> Tuple[Tensor, Tensor]:
    """The first rounds of NMS, for all groups at once.

    The best box of a group always survives, and it suppresses what it overlaps; then the best
    box left survives, and so on. Each round takes the best remaining box of every group (the
    first of equals, as the kernel's stable order does) and removes the boxes it suppresses,
    computing IoU with the kernel's float64 operations in the kernel's order, so every decision
    is the kernel's. Rounds stop once one removes less than ``1 / _ROUND_GAIN`` of the boxes
    left; the kernel then needs fewer calls and comparisons for the rest, which no survivor
    found so far suppresses.

    Args:
        shifted (Tensor[K, 4] float64), scores (Tensor[K]), group (Tensor[K]): candidates,
            ``group`` non-decreasing.

    Returns:
        survivors found (Tensor[F]) and the boxes left (Tensor[R], increasing): indices.
    """
    device = scores.device
    index = torch.arange(scores.numel(), device=device)
    if scores.numel() == 0:
        return index, index
    counts = torch.bincount(group)
    groups, width = counts.numel(), int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    # The scores of the boxes left, a row per group; -1 marks a box no longer there.
    cell = index - starts.index_select(0, group) + group * width
    table = scores.new_full((groups * width,), -1.0)
    table[cell] = scores
    rows = torch.arange(groups, device=device) * width
    area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
    # The boxes left: (index, group, cell) and (x1, y1, x2, y2, area), compacted each round.
    left = torch.stack((index, group, cell), dim=1)  # [L, 3]
    every = torch.cat((shifted, area.unsqueeze(1)), dim=1)  # [K, 5]
    geometry = every
    found = []
    while True:
        column = table.view(groups, width).argmax(dim=1)  # the first of equals
        best = starts + column
        found.append(best[table.index_select(0, rows + column) > -1.0])
        table.index_fill_(0, rows + column, -1.0)
        best = best.index_select(0, left[:, 1])  # [L]
        first = every.index_select(0, best)
        overlap = torch.min(first[:, 2:4], geometry[:, 2:4]).sub_(
            torch.max(first[:, :2], geometry[:, :2])).clamp_(min=0.0)  # [L, 2]: width, height
        inter = overlap[:, 0] * overlap[:, 1]
        iou = inter / first[:, 4].add(geometry[:, 4]).sub_(inter)
        gone = (iou > iou_threshold) | (best == left[:, 0])
        stay = torch.nonzero(~gone).squeeze(1)
        table.index_fill_(0, left[:, 2][gone], -1.0)
        removed = left.shape[0] - stay.numel()
        left, geometry = left.index_select(0, stay), geometry.index_select(0, stay)
        if not stay.numel() or removed < (removed + stay.numel()) / _ROUND_GAIN:
            return torch.cat(found), left[:, 0]


def _packed_nms(boxes: Tensor, scores: Tensor, group: Tensor, iou_threshold: float) -> Tensor:
    """torchvision's NMS kernel on groups packed into few calls; indices kept.

    Args:
        boxes (Tensor[K, 4]): each group already shifted to its own region of the plane.
        scores (Tensor[K]): of the same dtype as ``boxes``.
        group (Tensor[K]): non-decreasing.
    """
    bound = MAX_BOXES_PER_CALL if boxes.device.type == "cpu" else MAX_BOXES_PER_CALL_GPU
    counts = torch.unique_consecutive(group, return_counts=True)[1].tolist()
    kept = [torch.zeros(0, dtype=torch.int64, device=boxes.device)]
    start = end = 0
    for count in counts:
        if end > start and end - start + count > bound:
            kept.append(nms(boxes[start:end], scores[start:end], iou_threshold) + start)
            start = end
        end += count
    if end > start:
        kept.append(nms(boxes[start:end], scores[start:end], iou_threshold) + start)
    return torch.cat(kept)
