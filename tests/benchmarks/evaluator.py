"""mAP evaluator speed: ours (algorithm/evaluation.py) vs pycocotools' COCOeval at IoU 0.5.

Same detections, same run. The data is VOC-like: 5,000 images of 500x375 pixels, 20 classes,
about 3 objects per image (10% difficult), and about 23 detections per image: jittered copies of
the objects (some with the wrong class, some duplicates) plus background false positives, with
scores that favour the good ones. COCOeval is configured to compute only what we compute: one IoU
threshold (0.5), one area range (all), up to 100 detections per image. Goal: >= 20x.

    pip install pycocotools
    python tests/benchmarks/evaluator.py [--images 5000] [--repeat 3]

Writes results/evaluator.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from algorithm.evaluation import GroundTruth, evaluate
from tests.benchmarks import result_files

WIDTH, HEIGHT, CLASSES = 500, 375, 20
RESULT_FILES = ["evaluator.json"]
RESULT_KEYS = {
    "images": "int", "detections": "int", "repeat": "int", "pycocotools": "str",
    "ours_s": "number", "pycocotools_s": "number", "speedup": "number",
    "ours_voc07_mAP": "number", "ours_voc12_mAP": "number", "pycocotools_AP50": "number",
}


def make_data(images: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gts, dets = [], []
    for _ in range(images):
        m = int(rng.integers(1, 6))
        xy = rng.uniform(0, 0.75, (m, 2))
        wh = rng.uniform(0.05, 0.25, (m, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, 1.0)], axis=1)
        labels = rng.integers(0, CLASSES, m)
        gts.append(GroundTruth(boxes, labels, rng.random(m) < 0.1))
        rows = []
        for b, lab in zip(boxes, labels):
            for _ in range(int(rng.integers(2, 6))):
                cls = lab if rng.random() < 0.8 else rng.integers(0, CLASSES)
                rows.append([cls, rng.beta(5, 2), *np.clip(b + rng.normal(0, 0.03, 4), 0, 1)])
        for _ in range(int(rng.integers(8, 19))):
            xy = rng.uniform(0, 0.85, 2)
            rows.append([rng.integers(0, CLASSES), rng.beta(2, 5), *xy,
                         *np.minimum(xy + rng.uniform(0.03, 0.15, 2), 1)])
        dets.append(np.array(rows, dtype=np.float64))
    return dets, gts


def to_coco(dets, gts):
    from pycocotools.coco import COCO

    scale = np.array([WIDTH, HEIGHT, WIDTH, HEIGHT], dtype=np.float64)
    images, annotations, results = [], [], []
    for i, (d, g) in enumerate(zip(dets, gts)):
        images.append({"id": i, "width": WIDTH, "height": HEIGHT})
        for box, label, difficult in zip(g.boxes * scale, g.labels, g.difficult):
            x1, y1, x2, y2 = box.tolist()
            annotations.append({"id": len(annotations) + 1, "image_id": i,
                                "category_id": int(label), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                                "ignore": int(difficult)})
        for row in d:
            x1, y1, x2, y2 = (row[2:] * scale).tolist()
            results.append({"image_id": i, "category_id": int(row[0]), "score": float(row[1]),
                            "bbox": [x1, y1, x2 - x1, y2 - y1]})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": annotations,
                    "categories": [{"id": c} for c in range(CLASSES)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        detections = coco.loadRes(results)
    return coco, detections


def run_coco(coco, detections) -> float:
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, detections, "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, :, 0, 0]  # [recall points, classes]
    valid = precision[0] > -1
    return float(precision[:, valid].mean()) if valid.any() else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=result_files.RESULTS / "evaluator.json")
    args = parser.parse_args()

    dets, gts = make_data(args.images)
    count = sum(len(d) for d in dets)
    coco, coco_dets = to_coco(dets, gts)

    ours_t, theirs_t = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        ours = evaluate(dets, gts, CLASSES, 0.5, "voc07")
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        coco_ap = run_coco(coco, coco_dets)
        theirs_t.append(time.perf_counter() - start)
    ours12 = evaluate(dets, gts, CLASSES, 0.5, "voc12")
    ours_s, theirs_s = statistics.median(ours_t), statistics.median(theirs_t)
    result = {
        "images": args.images, "detections": count, "repeat": args.repeat,
        "pycocotools": importlib.metadata.version("pycocotools"),
        "ours_s": ours_s, "pycocotools_s": theirs_s, "speedup": theirs_s / ours_s,
        "ours_voc07_mAP": ours.mAP, "ours_voc12_mAP": ours12.mAP, "pycocotools_AP50": coco_ap,
    }
    print(f"{args.images} images, {count} detections, median of {args.repeat}")
    print(f"  ours (voc07)          {ours_s * 1000:9.1f} ms   mAP {ours.mAP:.4f}"
          f"  (voc12 {ours12.mAP:.4f})")
    print(f"  pycocotools COCOeval  {theirs_s * 1000:9.1f} ms   AP50 {coco_ap:.4f}"
          "  (101-point, COCO matching)")
    print(f"  speed-up {theirs_s / ours_s:.1f}x (goal >= 20x)")
    result_files.write(args.json, result, RESULT_KEYS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
