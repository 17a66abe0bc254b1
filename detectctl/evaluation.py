"""Offline evaluation: mAP of predictions against a dataset, with the training job's evaluator.

Predictions are JSON lines in the endpoint's response format, one image per line::

    {"file": "images/000123.jpg", "prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}

``file`` names the image as the dataset does: its path relative to the images directory
(SageMaker image + JSON), its ``source-ref`` (augmented manifest), or its record key (RecordIO,
the id in the ``.idx``/``.lst``). An image of the dataset without a prediction line counts as
one with no detections; a prediction line for an image the dataset lacks is an error.

Every value of a prediction line is checked as the dataset readers check theirs
(``algorithm.data.fields``): a class id is an integer in range, a score and the box corners are
finite numbers; anything else (binary data, nested rows, strings, NaN) is refused with the
line's number, exit 2. Without class names, the classes are the ids that occur, so no id, however
large, sizes an array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectctl.errors import DatasetError, UsageError

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

    from algorithm.evaluation import GroundTruth, evaluate

    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r}: use one of {', '.join(METRICS)}")
    if not 0 < iou <= 1:
        raise UsageError(f"--iou {iou}: must be in (0, 1]")
    samples, classes = _read_dataset(dataset, format)
    index = _index(samples)
    by_image = _read_predictions(Path(predictions), index,
                                 len(classes) if classes is not None else None)
    if classes is not None:
        ids = list(range(len(classes)))
        names = list(classes)
    else:  # the ids that occur, in order: dense whatever their values
        used = {int(c) for s in samples for c in s.labels}
        used |= {int(row[0]) for rows in by_image.values() for row in rows}
        ids = sorted(used) or [0]
        names = [str(i) for i in ids]
    dense = {class_id: i for i, class_id in enumerate(ids)}
    detections, truths = [], []
    for i, sample in enumerate(samples):
        rows = np.asarray(by_image.get(i, []), dtype=np.float64).reshape(-1, 6)
        rows[:, 0] = [dense[int(c)] for c in rows[:, 0]]
        detections.append(rows)
        truths.append(GroundTruth(sample.boxes, np.array([dense[int(c)] for c in sample.labels],
                                                         np.int64).reshape(-1),
                                  sample.difficult))
    result = evaluate(detections, truths, len(ids), iou, metric)
    counts = np.bincount(np.concatenate([t.labels for t in truths] + [np.zeros(0, int)]),
                         minlength=len(ids))
    return EvaluationReport(
        mAP=result.mAP, ap=result.per_class(names), metric=metric, iou=iou,
        images=len(samples), detections=int(sum(len(d) for d in detections)),
        images_without_predictions=sum(1 for i in range(len(samples)) if i not in by_image),
        ground_truth={names[c]: int(n) for c, n in enumerate(counts[:len(ids)])},
    )


def open_dataset(dataset: str | Path, format: str | None = None) -> Any:
    """The dataset's source (``len()``, ``[i]``: its samples), refused with one line when the
    path is missing, its format unknown or any entry unreadable."""
    from algorithm.data.sources import open_source

    if not os.path.exists(dataset):
        raise UsageError(f"--dataset {dataset}: no such file or directory")
    try:
        source = open_source(str(dataset), format)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--dataset {dataset}: {exc}") from None
    if source.problems:
        raise DatasetError(f"{dataset}: {len(source.problems)} unreadable entries, the first: "
                           f"{source.problems[0]}",
                           hint=f"run `detectctl dataset validate {dataset}`")
    return source


def _read_dataset(dataset: str | Path, format: str | None) -> tuple[list, list[str] | None]:
    """Every sample of the dataset, and its class names (None when it has none)."""
    from algorithm.data.sample import FormatError

    source = open_dataset(dataset, format)
    try:
        samples = [source[i] for i in range(len(source))]
    except FormatError as exc:
        raise DatasetError(str(exc), hint="run `detectctl dataset validate`") from None
    if not samples:
        raise DatasetError(f"{dataset}: no images to evaluate on")
    classes = source.classes
    if classes is not None:
        beyond = [int(c) for s in samples for c in s.labels if c >= len(classes)]
        if beyond:
            raise DatasetError(f"{dataset}: class id {beyond[0]} has no name ({len(classes)} "
                               "classes declared)", hint="run `detectctl dataset validate`")
    return samples, classes


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


def _read_predictions(path: Path, index: dict[str, int],
                      num_classes: int | None) -> dict[int, list]:
    """Rows ``[class_id, score, xmin, ymin, xmax, ymax]`` by image index; ``UsageError``
    naming the line for anything that is not a prediction line."""
    from algorithm.data.fields import FormatError, decode_text, file_name, parse_json

    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    by_image: dict[int, list] = {}
    with handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                line = decode_text(raw, where)
                if not line.strip():
                    continue
                doc = parse_json(line, where)
                if not isinstance(doc, dict) or "file" not in doc or "prediction" not in doc:
                    raise FormatError(where, "", 'expected {"file": ..., "prediction": [...]}')
                name = file_name(doc["file"], where, "file")
                rows = _rows(doc["prediction"], where, num_classes)
            except FormatError as exc:
                raise UsageError(str(exc)) from None
            found = index.get(name, index.get(os.path.basename(name)))
            if found is None:
                raise UsageError(f"{where}: file {name!r} is not in the dataset")
            by_image.setdefault(found, []).extend(rows)
    return by_image


def _rows(rows: Any, where: str, num_classes: int | None) -> list[list[float]]:
    from algorithm.data.fields import FormatError, class_id, number

    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 6 for r in rows):
        raise FormatError(where, "prediction", "must be a list of "
                                               "[class_id, score, xmin, ymin, xmax, ymax] rows")
    parsed = []
    for i, row in enumerate(rows):
        field = f"prediction[{i}]"
        label = class_id(row[0], where, field + "[0]")
        if num_classes is not None and label >= num_classes:
            raise FormatError(where, field + "[0]", f"class id {label} is not one of the "
                                                    f"dataset's {num_classes} classes "
                                                    f"(0..{num_classes - 1})")
        parsed.append([label] + [number(v, where, f"{field}[{k}]")
                                 for k, v in enumerate(row[1:], start=1)])
    return parsed
