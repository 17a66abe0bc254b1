"""Offline evaluation: mAP of predictions against a dataset, with the training job's evaluator.

Predictions are JSON lines in the endpoint's response format, one image per line::

    {"file": "images/000123.jpg", "prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}

``file`` names the image as the dataset does: its path relative to the images directory
(SageMaker image + JSON), its ``source-ref`` (augmented manifest), or its record key (RecordIO,
the id in the ``.idx``/``.lst``). An image of the dataset without a prediction line counts as
one with no detections; a prediction line for an image the dataset lacks is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectctl.errors import DetectctlError, UsageError

METRICS = ("voc07", "voc12")


@dataclass
class EvaluationReport:
    """mAP and per-class AP of a set of predictions."""

    mAP: float
    ap: dict[str, float]
    metric: str
    iou: float
    images: int
    detections: int
    images_without_predictions: int
    ground_truth: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"mAP": self.mAP, "ap": self.ap, "metric": self.metric, "iou": self.iou,
                "images": self.images, "detections": self.detections,
                "images_without_predictions": self.images_without_predictions,
                "ground_truth": self.ground_truth}


def evaluate_predictions(predictions: str | Path, dataset: str | Path, *,
                         format: str | None = None, iou: float = 0.5,
                         metric: str = "voc07") -> EvaluationReport:
    """Score ``predictions`` (JSON lines) against the annotations of ``dataset``."""
    import numpy as np

    from algorithm.data.sources import open_source
    from algorithm.evaluation import GroundTruth, evaluate

    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    if not 0 < iou <= 1:
        raise UsageError(f"--iou {iou}: must be in (0, 1]")
    try:
        source = open_source(str(dataset), format)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{dataset}: {exc}") from None
    if source.problems:
        raise DetectctlError(f"{dataset}: {len(source.problems)} unreadable entries, the first: "
                             f"{source.problems[0]}", hint="run `detectctl dataset validate`")
    samples = [source[i] for i in range(len(source))]
    index = _index(samples)
    by_image = _read_predictions(Path(predictions), index)

    num_classes = len(source.classes) if source.classes else 1 + max(
        [int(s.labels.max()) for s in samples if len(s.labels)] + [0])
    names = list(source.classes) if source.classes else [str(i) for i in range(num_classes)]
    detections, truths = [], []
    for i, sample in enumerate(samples):
        rows = by_image.get(i, [])
        detections.append(np.asarray(rows, dtype=np.float64).reshape(-1, 6))
        truths.append(GroundTruth(sample.boxes, sample.labels, sample.difficult))
    try:
        result = evaluate(detections, truths, num_classes, iou, metric)
    except ValueError as exc:
        raise UsageError(f"{predictions}: {exc}") from None
    counts = np.bincount(np.concatenate([s.labels for s in samples] + [np.zeros(0, int)]),
                         minlength=num_classes)
    return EvaluationReport(
        mAP=result.mAP, ap=result.per_class(names), metric=metric, iou=iou,
        images=len(samples), detections=int(sum(len(d) for d in detections)),
        images_without_predictions=sum(1 for i in range(len(samples)) if i not in by_image),
        ground_truth={names[c]: int(n) for c, n in enumerate(counts[:num_classes])},
    )


def _index(samples: list) -> dict[str, int]:
    """Every name an image may be given by: its key, its file path, and its file name when
    that is unique in the dataset."""
    index: dict[str, int] = {}
    basenames: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        index.setdefault(str(sample.key), i)
        if sample.image_path:
            index.setdefault(sample.image_path, i)
            basenames.setdefault(os.path.basename(sample.image_path), []).append(i)
    for name, found in basenames.items():
        if len(found) == 1:
            index.setdefault(name, found[0])
    return index


def _read_predictions(path: Path, index: dict[str, int]) -> dict[int, list]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    by_image: dict[int, list] = {}
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(doc, dict) or "file" not in doc or "prediction" not in doc:
                raise UsageError(f'{where}: expected {{"file": ..., "prediction": [...]}}')
            name = str(doc["file"])
            found = index.get(name, index.get(os.path.basename(name)))
            if found is None:
                raise UsageError(f"{where}: file {name!r} is not in the dataset")
            rows = doc["prediction"]
            if not isinstance(rows, list) or any(
                    not isinstance(r, list) or len(r) != 6 for r in rows):
                raise UsageError(f"{where}: prediction must be a list of "
                                 "[class_id, score, xmin, ymin, xmax, ymax] rows")
            by_image.setdefault(found, []).extend(rows)
    return by_image
