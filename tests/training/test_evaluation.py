"""The mAP evaluator against an independent, loop-based VOC devkit-style implementation."""

import numpy as np
import pytest

from algorithm.evaluation import GroundTruth, evaluate


def _reference(detections, ground_truths, num_classes, threshold, metric):
    """A straightforward per-class, per-detection loop in the VOC devkit's manner."""
    aps = []
    for c in range(num_classes):
        gts = {}
        npos = 0
        for i, g in enumerate(ground_truths):
            keep = np.asarray(g.labels) == c
            diff = (np.zeros(len(g.labels), bool) if g.difficult is None
                    else np.asarray(g.difficult, bool))
            gts[i] = {"boxes": np.asarray(g.boxes, float).reshape(-1, 4)[keep],
                      "difficult": diff[keep], "taken": np.zeros(keep.sum(), bool)}
            npos += int((~diff[keep]).sum())
        dets = [(i, row[1], row[2:]) for i, d in enumerate(detections)
                for row in np.asarray(d, float).reshape(-1, 6) if int(row[0]) == c]
        dets.sort(key=lambda x: -x[1])  # stable: ties keep image order
        if npos == 0:
            continue
        tp, fp = [], []
        for i, _, box in dets:
            g = gts[i]
            best, jbest = -1.0, -1
            for j, gb in enumerate(g["boxes"]):
                iw = max(0.0, min(box[2], gb[2]) - max(box[0], gb[0]))
                ih = max(0.0, min(box[3], gb[3]) - max(box[1], gb[1]))
                inter = iw * ih
                union = ((box[2] - box[0]) * (box[3] - box[1])
                         + (gb[2] - gb[0]) * (gb[3] - gb[1]) - inter)
                iou = inter / union if union > 0 else 0.0
                if iou > best:
                    best, jbest = iou, j
            if best >= threshold:
                if g["difficult"][jbest]:
                    continue
                if not g["taken"][jbest]:
                    g["taken"][jbest] = True
                    tp.append(1)
                    fp.append(0)
                else:
                    tp.append(0)
                    fp.append(1)
            else:
                tp.append(0)
                fp.append(1)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / npos if len(tp) else np.zeros(0)
        prec = tp / np.maximum(tp + fp, 1e-12) if len(tp) else np.zeros(0)
        if metric == "voc07":
            ap = 0.0
            for k in range(11):
                mask = rec >= k / 10 - 1e-12
                ap += (prec[mask].max() if mask.any() else 0.0) / 11
        else:
            mrec = np.concatenate([[0], rec, [1]])
            mpre = np.concatenate([[0], prec, [0]])
            for k in range(len(mpre) - 2, -1, -1):
                mpre[k] = max(mpre[k], mpre[k + 1])
            ap = sum((mrec[k + 1] - mrec[k]) * mpre[k + 1] for k in range(len(mrec) - 1)
                     if mrec[k + 1] != mrec[k])
        aps.append(ap)
    return float(np.mean(aps)) if aps else 0.0


def _random_case(rng, images=40, classes=4):
    gts, dets = [], []
    for _ in range(images):
        m = rng.integers(0, 6)
        xy = rng.uniform(0, 0.7, (m, 2))
        wh = rng.uniform(0.05, 0.3, (m, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        labels = rng.integers(0, classes, m)
        gts.append(GroundTruth(boxes, labels, rng.random(m) < 0.15))
        rows = []
        for b, lab in zip(boxes, labels):
            for _ in range(rng.integers(0, 3)):  # duplicates and near misses
                jitter = rng.normal(0, 0.04, 4)
                cls = lab if rng.random() < 0.85 else rng.integers(0, classes)
                rows.append([cls, rng.random(), *(b + jitter)])
        for _ in range(rng.integers(0, 4)):  # pure false positives
            xy = rng.uniform(0, 0.8, 2)
            rows.append([rng.integers(0, classes), rng.random(), *xy, *(xy + 0.1)])
        dets.append(np.array(rows, dtype=float).reshape(-1, 6))
    return dets, gts


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("metric", ["voc07", "voc12"])
def test_matches_reference_implementation(seed, metric):
    rng = np.random.default_rng(seed)
    dets, gts = _random_case(rng)
    ours = evaluate(dets, gts, num_classes=4, iou_threshold=0.5, metric=metric)
    assert ours.mAP == pytest.approx(_reference(dets, gts, 4, 0.5, metric), abs=1e-12)


def test_perfect_detections_score_one():
    gts = [GroundTruth(np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.9]]), np.array([0, 1]))]
    dets = [np.array([[0, 0.9, 0.1, 0.1, 0.4, 0.5], [1, 0.8, 0.5, 0.5, 0.9, 0.9]])]
    for metric in ("voc07", "voc12"):
        result = evaluate(dets, gts, num_classes=2, metric=metric)
        assert result.mAP == pytest.approx(1.0)
        assert result.per_class(["cat", "dog"]) == {"cat": 1.0, "dog": 1.0}


def test_duplicate_is_a_false_positive_and_difficult_is_ignored():
    box = [0.1, 0.1, 0.5, 0.5]
    gts = [GroundTruth(np.array([box, [0.6, 0.6, 0.9, 0.9]]), np.array([0, 0]),
                       np.array([False, True]))]
    dets = [np.array([[0, 0.9, *box], [0, 0.8, *box], [0, 0.7, 0.6, 0.6, 0.9, 0.9]])]
    result = evaluate(dets, gts, num_classes=1, metric="voc12")
    # TP, then FP (duplicate); the detection of the difficult box is ignored.
    assert result.mAP == pytest.approx(1.0)  # recall reaches 1 at precision 1 first
    assert result.num_positives.tolist() == [1]


def test_classes_without_ground_truth_are_left_out():
    gts = [GroundTruth(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0]))]
    dets = [np.array([[0, 0.9, 0.1, 0.1, 0.5, 0.5], [2, 0.9, 0.6, 0.6, 0.9, 0.9]])]
    result = evaluate(dets, gts, num_classes=3)
    assert result.mAP == pytest.approx(1.0)
    assert np.isnan(result.ap[1]) and np.isnan(result.ap[2])


def test_images_without_objects_or_detections():
    gts = [GroundTruth(np.zeros((0, 4)), np.zeros(0, int)),
           GroundTruth(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0]))]
    dets = [np.array([[0, 0.95, 0.2, 0.2, 0.3, 0.3]]), np.zeros((0, 6))]
    result = evaluate(dets, gts, num_classes=1)
    assert result.mAP == 0.0
    assert evaluate([np.zeros((0, 6))], [gts[0]], num_classes=1).mAP == 0.0


def test_bad_input_named():
    gts = [GroundTruth(np.zeros((0, 4)), np.zeros(0, int))]
    with pytest.raises(ValueError, match=r"image 0, detection 0: class id 5 is not in 0\.\.1"):
        evaluate([np.array([[5, 0.9, 0, 0, 1, 1]])], gts, num_classes=2)
    with pytest.raises(ValueError, match="metric must be one of"):
        evaluate([], [], num_classes=2, metric="coco")
    with pytest.raises(ValueError, match="2 detection lists for 1 images"):
        evaluate([np.zeros((0, 6))] * 2, gts, num_classes=2)
