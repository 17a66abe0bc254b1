"""SageMaker's image + JSON annotation format, and the annotation object it shares with manifests.

One JSON per image::

    {"file": "dog.jpg",
     "image_size": [{"width": 500, "height": 400, "depth": 3}],
     "annotations": [{"class_id": 0, "left": 111, "top": 134, "width": 61, "height": 128}],
     "categories": [{"class_id": 0, "name": "dog"}]}

Boxes are in pixels. ``difficult`` (0/1) on an annotation is our optional addition. On disk a
dataset is ``DIR/images/...`` and ``DIR/annotations/...json``; on SageMaker these are the
``train`` and ``train_annotation`` channels (``validation`` and ``validation_annotation``).
No torch here.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from algorithm.data.fields import FormatError, class_id, file_name, integer, load_json, number
from algorithm.data.sample import Sample, class_names_from_categories
from algorithm.images import MAX_PIXELS, ImageError, image_size

__all__ = ["IMAGE_EXTENSIONS", "SageMakerJsonSource", "annotation_to_sample", "declared_size",
           "list_files", "load_json", "parse_objects", "sample_to_annotation"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def declared_size(value: Any, where: str) -> Optional[Tuple[int, int]]:
    """(width, height) of an ``image_size`` field (a one-element list or a dict), or None.

    Each side is an integer from 1 to the most pixels an image may have."""
    if value is None:
        return None
    item = value[0] if isinstance(value, list) and len(value) == 1 else value
    if not isinstance(item, dict) or "width" not in item or "height" not in item:
        raise FormatError(where, "image_size", "expected [{\"width\": W, \"height\": H, "
                                               "\"depth\": 3}]")
    return (integer(item["width"], where, "image_size.width", 1, MAX_PIXELS),
            integer(item["height"], where, "image_size.height", 1, MAX_PIXELS))


def parse_objects(annotations: Any, where: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel boxes (left, top, right, bottom) [M, 4], labels [M], difficult [M] of a list of
    ``{class_id, left, top, width, height(, difficult)}``."""
    if not isinstance(annotations, list):
        raise FormatError(where, "annotations", "must be a list")
    boxes = np.zeros((len(annotations), 4), dtype=np.float64)
    labels = np.zeros(len(annotations), dtype=np.int64)
    difficult = np.zeros(len(annotations), dtype=bool)
    for i, ann in enumerate(annotations):
        field = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise FormatError(where, field, "must be an object")
        missing = [k for k in ("class_id", "left", "top", "width", "height") if k not in ann]
        if missing:
            raise FormatError(where, field, f"missing {missing[0]}")
        left, top, width, height = (number(ann[k], where, f"{field}.{k}")
                                    for k in ("left", "top", "width", "height"))
        labels[i] = class_id(ann["class_id"], where, f"{field}.class_id")
        boxes[i] = (left, top, left + width, top + height)
        difficult[i] = difficult_flag(ann.get("difficult", 0), where, f"{field}.difficult")
    return boxes, labels, difficult


def difficult_flag(value: Any, where: str, field: str) -> bool:
    """``difficult``: 0 or 1 (or false, true)."""
    return bool(value) if isinstance(value, bool) else bool(integer(value, where, field, 0, 1))


def annotation_to_sample(doc: Any, where: str, image_path: Optional[str], key: str,
                         size: Optional[Tuple[int, int]] = None) -> Sample:
    """A :class:`Sample` from one annotation object (``image_size`` + ``annotations``).

    Pixel boxes are normalised by the declared ``image_size``; ``size`` is the actual image size
    to use when none is declared.
    """
    if not isinstance(doc, dict):
        raise FormatError(where, "", "must be a JSON object")
    declared = declared_size(doc.get("image_size"), where)
    if "annotations" not in doc:
        raise FormatError(where, "annotations", "missing (use [] for an image without objects)")
    boxes_px, labels, difficult = parse_objects(doc["annotations"], where)
    norm = declared or size
    if norm is None:
        raise FormatError(where, "image_size", "missing, and the image size is unknown")
    scale = np.array([norm[0], norm[1], norm[0], norm[1]], dtype=np.float64)
    return Sample(key=key, boxes=(boxes_px / scale).astype(np.float32), labels=labels,
                  difficult=difficult, image_path=image_path, size=declared, where=where)


def sample_to_annotation(sample: Sample, file: str, width: int, height: int,
                         classes: Optional[List[str]] = None) -> Dict[str, Any]:
    """The annotation JSON object of a sample whose image is ``width`` x ``height``."""
    annotations = []
    for box, label, hard in zip(sample.boxes.tolist(), sample.labels.tolist(),
                                sample.difficult.tolist()):
        left, top = box[0] * width, box[1] * height
        ann = {"class_id": int(label), "left": _round(left), "top": _round(top),
               "width": _round(box[2] * width - left), "height": _round(box[3] * height - top)}
        if hard:
            ann["difficult"] = 1
        annotations.append(ann)
    doc: Dict[str, Any] = {"file": file,
                           "image_size": [{"width": width, "height": height, "depth": 3}],
                           "annotations": annotations}
    if classes is not None:
        doc["categories"] = [{"class_id": i, "name": n} for i, n in enumerate(classes)]
    return doc


def _round(value: float) -> float:
    """Pixel values with 3 decimals (integers stay integers), enough for 1e-4 normalised."""
    r = round(float(value), 3)
    return int(r) if r.is_integer() else r


def list_files(root: str, extensions: Tuple[str, ...]) -> List[str]:
    """Paths relative to ``root`` of the files with these extensions, sorted, recursively."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            if name.lower().endswith(extensions) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


class SageMakerJsonSource:
    """The samples of an images directory and an annotations directory.

    Entries that cannot be parsed or paired are left out and listed in ``problems``.
    """

    format = "sagemaker-json"

    def __init__(self, images_dir: str, annotations_dir: str):
        self.path = os.path.dirname(os.path.normpath(images_dir))
        self.images_dir = images_dir
        self.annotations_dir = annotations_dir
        self.problems: List[FormatError] = []
        self.classes: Optional[List[str]] = None
        self.samples: List[Sample] = []
        images = list_files(images_dir, IMAGE_EXTENSIONS) if os.path.isdir(images_dir) else []
        if not os.path.isdir(images_dir):
            self.problems.append(FormatError(images_dir, "", "images directory not found"))
        if not os.path.isdir(annotations_dir):
            self.problems.append(FormatError(annotations_dir, "",
                                             "annotations directory not found"))
            return
        by_name = {}
        for rel in images:
            by_name.setdefault(os.path.basename(rel), rel)
        annotated: set = set()
        known = set(images)
        for rel in list_files(annotations_dir, (".json",)):
            where = os.path.join(annotations_dir, rel)
            try:
                sample = self._parse(where, known, by_name, annotated)
            except FormatError as exc:
                self.problems.append(exc)
                continue
            self.samples.append(sample)
        for rel in images:
            if rel not in annotated:
                self.problems.append(FormatError(os.path.join(images_dir, rel), "",
                                                 "image without annotation"))

    def _parse(self, where: str, images: set, by_name: Dict[str, str],
               annotated: set) -> Sample:
        doc = load_json(where)
        if not isinstance(doc, dict):
            raise FormatError(where, "", "must be a JSON object")
        if not doc.get("file"):
            raise FormatError(where, "file", "missing: the image's path under images/")
        file = file_name(doc["file"], where, "file")
        rel = file if file in images else by_name.get(os.path.basename(file))
        if rel is None:
            raise FormatError(where, "file", f"annotation without image: {file} not found in "
                                             f"{self.images_dir}")
        if rel in annotated:
            raise FormatError(where, "file", f"duplicate: {rel} is annotated more than once")
        annotated.add(rel)
        if "categories" in doc:
            names = class_names_from_categories(doc["categories"], where)
            if self.classes is None:
                self.classes = names
            elif names != self.classes:
                raise FormatError(where, "categories", "differ from those of other annotations")
        image_path = os.path.join(self.images_dir, rel)
        size = None if doc.get("image_size") else _image_size(image_path, where)
        return annotation_to_sample(doc, where, image_path, key=rel, size=size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def _image_size(path: str, where: str) -> Tuple[int, int]:
    try:
        return image_size(path)
    except (ImageError, OSError) as exc:
        raise FormatError(where, "image_size", f"missing, and the image is unreadable ({exc})"
                          ) from None
