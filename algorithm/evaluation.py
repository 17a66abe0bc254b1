"""Detection mean average precision (Pascal VOC rules), vectorised with numpy.

One evaluator serves the training job's ``validation:mAP`` and ``detectctl evaluate``. It needs
only numpy, so the client uses it without torch.

Matching follows the VOC devkit: detections of a class are taken in decreasing score; each is
compared with every ground-truth box of its class in its image; if the best IoU is at least
``iou_threshold``, the detection is a true positive when that box is not yet taken, a false
positive when it is, and ignored when the box is ``difficult``; otherwise it is a false
positive. Because a detection never falls back to its second-best box, the greedy loop reduces
to "the first detection (in score order) whose best box is this box", which ``np.unique`` finds
for all detections at once.

Boxes are ``(xmin, ymin, xmax, ymax)`` normalised to [0, 1], so areas have no "+1 pixel" term.
IoU equal to the threshold counts as a match (COCO's convention; the VOC devkit uses ``>``,
which differs only on exact ties).

AP per class: ``voc07`` is the 11-point interpolated AP (recall 0, 0.1, ..., 1), the metric of
the built-in algorithm and of the VOC2007 devkit; ``voc12`` is the area under the interpolated
precision-recall curve (all points). mAP is the mean over classes that have at least one
non-difficult ground-truth box; other classes get AP ``nan`` and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

METRICS = ("voc07", "voc12")


@dataclass
class GroundTruth:
    """The annotated objects of one image.

    boxes (ndarray[M, 4]): (xmin, ymin, xmax, ymax), normalised.
    labels (ndarray[M]): class ids, 0-based.
    difficult (ndarray[M] of bool, optional): objects that neither count nor penalise.
    """

    boxes: np.ndarray
    labels: np.ndarray
    difficult: Optional[np.ndarray] = None


@dataclass
class Evaluation:
    """The result: ``mAP``, and per class ``ap`` (nan where the class has no ground truth),
    ``num_positives`` (non-difficult boxes) and ``num_detections``."""

    mAP: float
    ap: np.ndarray
    num_positives: np.ndarray
    num_detections: np.ndarray
    metric: str
    iou_threshold: float

    def per_class(self, class_names: Optional[Sequence[str]] = None) -> Dict[str, float]:
        names = class_names or [str(i) for i in range(len(self.ap))]
        return {names[i]: float(ap) for i, ap in enumerate(self.ap) if not np.isnan(ap)}


def evaluate(
    detections: Sequence[np.ndarray],
    ground_truths: Sequence[GroundTruth],
    num_classes: int,
    iou_threshold: float = 0.5,
    metric: str = "voc07",
) -> Evaluation:
    """Mean average precision of ``detections`` against ``ground_truths``, image by image.

    Args:
        detections: one ndarray[K, 6] per image, rows ``(class_id, score, xmin, ymin, xmax,
            ymax)``: the built-in algorithm's response format.
        ground_truths: one :class:`GroundTruth` per image, in the same order.
        num_classes: number of classes; class ids are 0..num_classes-1.
        iou_threshold: IoU at which a detection matches a box (``overlap_threshold``).
        metric: ``voc07`` (11-point) or ``voc12`` (all points).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection lists for {len(ground_truths)} images")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")

    gt_boxes, gt_labels, gt_difficult = _pad_ground_truth(ground_truths)
    positives = np.bincount(gt_labels[(gt_labels >= 0) & ~gt_difficult].ravel(),
                            minlength=num_classes)[:num_classes]

    det = _stack_detections(detections, num_classes)  # [D, 7]: image, class, score, box
    image = det[:, 0].astype(np.int64)
    label = det[:, 1].astype(np.int64)
    order = np.lexsort((-det[:, 2], label))  # by class, then score descending
    image, label, boxes = image[order], label[order], det[order, 3:7]

    tp, fp = _match(image, label, boxes, gt_boxes, gt_labels, gt_difficult, iou_threshold)

    ap = np.full(num_classes, np.nan)
    counts = np.bincount(label, minlength=num_classes)[:num_classes]
    starts = np.concatenate([[0], np.cumsum(counts)])
    for c in range(num_classes):
        if positives[c] == 0:
            continue
        lo, hi = starts[c], starts[c + 1]
        ctp, cfp = np.cumsum(tp[lo:hi]), np.cumsum(fp[lo:hi])
        recall = ctp / positives[c]
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        ap[c] = _average_precision(recall, precision, metric)
    valid = ~np.isnan(ap)
    m_ap = float(ap[valid].mean()) if valid.any() else 0.0
    return Evaluation(m_ap, ap, positives, counts, metric, iou_threshold)


def _pad_ground_truth(ground_truths: Sequence[GroundTruth]):
    """Stack per-image boxes into [I, M, 4] with label -1 where padded."""
    most = max([len(g.labels) for g in ground_truths] + [1])
    count = len(ground_truths)
    boxes = np.zeros((count, most, 4), dtype=np.float64)
    labels = np.full((count, most), -1, dtype=np.int64)
    difficult = np.zeros((count, most), dtype=bool)
    for i, g in enumerate(ground_truths):
        m = len(g.labels)
        if m == 0:
            continue
        boxes[i, :m] = np.asarray(g.boxes, dtype=np.float64).reshape(m, 4)
        labels[i, :m] = np.asarray(g.labels, dtype=np.int64)
        if g.difficult is not None:
            difficult[i, :m] = np.asarray(g.difficult, dtype=bool)
    return boxes, labels, difficult


def _stack_detections(detections: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    parts: List[np.ndarray] = []
    for i, d in enumerate(detections):
        d = np.asarray(d, dtype=np.float64).reshape(-1, 6)
        if len(d) == 0:
            continue
        finite = np.isfinite(d).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"image {i}, detection {row}: {d[row].tolist()} is not all finite "
                             "numbers")
        bad = (d[:, 0] < 0) | (d[:, 0] >= num_classes) | (d[:, 0] != np.round(d[:, 0]))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"image {i}, detection {row}: class id {d[row, 0]:g} is not in "
                             f"0..{num_classes - 1}")
        parts.append(np.concatenate([np.full((len(d), 1), i, dtype=np.float64), d], axis=1))
    if not parts:
        return np.zeros((0, 7), dtype=np.float64)
    return np.concatenate(parts, axis=0)


def _match(image, label, boxes, gt_boxes, gt_labels, gt_difficult, threshold):
    """TP and FP flags for detections already sorted by (class, score descending)."""
    count = len(image)
    tp = np.zeros(count, dtype=np.float64)
    fp = np.zeros(count, dtype=np.float64)
    if count == 0:
        return tp, fp
    # Chunks bound the [D, M] IoU matrix's memory on large evaluations.
    best = np.empty(count, dtype=np.int64)
    best_iou = np.empty(count, dtype=np.float64)
    chunk = max(1, 4_000_000 // gt_boxes.shape[1])
    for lo in range(0, count, chunk):
        hi = min(count, lo + chunk)
        iou = _iou(boxes[lo:hi], gt_boxes[image[lo:hi]])  # [d, M]
        iou[gt_labels[image[lo:hi]] != label[lo:hi, None]] = -1.0
        best[lo:hi] = iou.argmax(axis=1)
        best_iou[lo:hi] = iou[np.arange(hi - lo), best[lo:hi]]
    matched = best_iou >= threshold
    difficult = matched & gt_difficult[image, best]
    candidate = matched & ~difficult
    # Within one class the order is by score, so the first detection claiming a box wins it.
    key = (image * gt_boxes.shape[1] + best)[candidate]
    _, first = np.unique(key, return_index=True)
    winners = np.flatnonzero(candidate)[first]
    tp[winners] = 1.0
    fp[~difficult] = 1.0
    fp[winners] = 0.0
    return tp, fp


def _iou(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of boxes[d] with each of gt[d, m]: [D, 4] x [D, M, 4] -> [D, M]."""
    b = boxes[:, None, :]
    w = np.clip(np.minimum(b[..., 2], gt[..., 2]) - np.maximum(b[..., 0], gt[..., 0]), 0, None)
    h = np.clip(np.minimum(b[..., 3], gt[..., 3]) - np.maximum(b[..., 1], gt[..., 1]), 0, None)
    inter = w * h
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    area_g = np.clip(gt[..., 2] - gt[..., 0], 0, None) * np.clip(gt[..., 3] - gt[..., 1], 0, None)
    union = area_b + area_g - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _average_precision(recall: np.ndarray, precision: np.ndarray, metric: str) -> float:
    if len(recall) == 0:
        return 0.0
    if metric == "voc07":
        # Max precision at recall >= t, for t = 0, 0.1, ..., 1 (0 when never reached).
        best_after = np.maximum.accumulate(precision[::-1])[::-1]
        points = np.linspace(0.0, 1.0, 11)
        index = np.searchsorted(recall, points - 1e-12, side="left")
        reached = index < len(recall)
        values = np.where(reached, best_after[np.minimum(index, len(recall) - 1)], 0.0)
        return float(values.mean())
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))
