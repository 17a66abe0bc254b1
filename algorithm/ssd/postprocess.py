"""Post-processing: from head outputs to detections in the built-in algorithm's format.

Per image: softmax over classes; per class, the scores above ``score_threshold``, at most
``top_k`` of them; boxes decoded and clipped to ``[0, 1]``; non-maximum suppression within each
class at ``nms_threshold``; the best ``max_detections`` kept. The result equals torchvision's
``SSD.postprocess_detections`` (same steps, same order) in normalized coordinates.

How it stays fast on CPU, where this runs for every request of an endpoint:

- Candidates are found per default box first: a class can score above ``t`` only where the
  background scores below ``1 - t``, and most default boxes are confidently background. Class
  scores are gathered only for the rest.
- NMS uses torchvision's kernel without its per-class Python loop: the (image, class) groups are
  packed into few kernel calls, each group shifted to its own region of the plane (the coordinate
  trick of ``batched_nms``) so groups never suppress each other. The kernel compares every kept
  box with every later box of a call, so a call holds at most ``MAX_BOXES_PER_CALL`` boxes (one
  larger group gets a call of its own): few calls, little wasted comparison.
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

    # Default boxes that may hold a class above the threshold (a little slack for rounding).
    log_probs = torch.log_softmax(logits, dim=-1)  # [N * A, C + 1]
    where = torch.nonzero(log_probs[:, 0] < math.log1p(-score_threshold) + 1e-4).squeeze(1)
    probs = log_probs.index_select(0, where).exp_()  # [B, C + 1]

    group, where, score, counts = _candidates(probs, where, score_threshold, n, a, top_k)
    label, image = group // n, group % n
    regression = box_regression.float().reshape(n * a, 4).index_select(0, where)
    boxes = decode(regression, anchors.index_select(0, where % a)).clamp_(0.0, 1.0)
    keep = _grouped_nms(boxes, score, group, counts, nms_threshold)

    # Best first within each image (scores are in (0, 1]), at most max_detections of them.
    key = image[keep].to(torch.float64) * 2.0 - score[keep].to(torch.float64)
    keep = keep[torch.sort(key, stable=True).indices]
    per_image = torch.bincount(image[keep], minlength=n)
    starts = torch.cumsum(per_image, 0) - per_image
    rank = torch.arange(keep.numel(), device=keep.device) - starts[image[keep]]
    keep = keep[rank < max_detections]
    rows = torch.cat((label[keep].unsqueeze(1).to(boxes.dtype), score[keep].unsqueeze(1),
                      boxes[keep]), dim=1)  # [K, 6]
    return list(rows.split(per_image.clamp(max=max_detections).tolist()))


def _candidates(
    probs: Tensor, where: Tensor, threshold: float, n: int, a: int, top_k: int
) -> Tuple[Tensor, Tensor, Tensor, List[int]]:
    """Class scores above ``threshold``, grouped by ``group = class * N + image``, top_k per group.

    Args:
        probs (Tensor[B, C + 1]): softmax scores of the default boxes ``where`` (Tensor[B],
            increasing ``image * A + anchor``).

    Returns:
        group, where, score (Tensor[K] each, ``group`` non-decreasing) and the number of
        candidates of every group ``0 .. C * N - 1``.
    """
    classes = probs.shape[1] - 1
    # Class-major: candidates of one class come out in image order, so groups are contiguous.
    label, row = torch.nonzero(probs[:, 1:].t() > threshold, as_tuple=True)
    if label.numel() * _DENSE_FRACTION > classes * n * a:
        return _candidates_dense(probs, where, threshold, n, a, top_k)
    where = where.index_select(0, row)
    group = label * n + where // a
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
        counts = counts.clamp(max=top_k)
    return group, where, score, counts.tolist()


def _candidates_dense(
    probs: Tensor, where: Tensor, threshold: float, n: int, a: int, top_k: int
) -> Tuple[Tensor, Tensor, Tensor, List[int]]:
    """:func:`_candidates` when very many scores pass (an untrained model): one top-k per
    (class, image) row of a dense [C, N * A] score table, as torchvision takes them per class."""
    classes = probs.shape[1] - 1
    table = probs.new_zeros((classes, n * a))
    table[:, where] = probs[:, 1:].t()
    values, indices = table.view(classes, n, a).topk(min(top_k, a), dim=2)  # [C, N, k]
    label, image, rank = torch.nonzero(values > threshold, as_tuple=True)
    group = label * n + image
    counts = torch.bincount(group, minlength=classes * n)
    where = image * a + indices[label, image, rank]
    return group, where, values[label, image, rank], counts.tolist()


def _grouped_nms(
    boxes: Tensor, scores: Tensor, group: Tensor, counts: List[int], iou_threshold: float
) -> Tensor:
    """NMS within each group of candidates; indices kept, best first within each call.

    Args:
        boxes (Tensor[K, 4]), scores (Tensor[K]), group (Tensor[K]): candidates, ``group``
            non-decreasing.
        counts: candidates of every group id from 0, in order.
    """
    bound = MAX_BOXES_PER_CALL if boxes.device.type == "cpu" else MAX_BOXES_PER_CALL_GPU
    # Each group gets its own region of the plane; float64 keeps the shifted boxes exact.
    shift = group.to(torch.float64).mul_(_GROUP_SPACING).unsqueeze(1)
    shifted = boxes.to(torch.float64).add_(shift)
    scores = scores.to(torch.float64)
    kept = [torch.zeros(0, dtype=torch.int64, device=boxes.device)]
    start = end = 0
    for count in counts:
        if end > start and end - start + count > bound:
            kept.append(nms(shifted[start:end], scores[start:end], iou_threshold) + start)
            start = end
        end += count
    if end > start:
        kept.append(nms(shifted[start:end], scores[start:end], iou_threshold) + start)
    return torch.cat(kept)
