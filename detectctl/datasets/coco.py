"""COCO import: an ``instances_*.json`` file and its images directory.

Category ids (1..90 with gaps in COCO itself) are remapped to 0..N-1 in increasing id order;
``source_ids`` in ``classes.json`` keeps the mapping (class i was COCO category
``source_ids[i]``). Crowd annotations (``iscrowd: 1``) are kept as *difficult* objects: like
VOC's difficult ones, evaluation neither rewards nor penalises detections on them, which is what
COCO's own evaluation does with crowd regions. Images without annotations are kept, without
objects. ``bbox`` is ``[x, y, width, height]`` in pixels. Two categories with one id are refused
(which name would the objects have?).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from algorithm.data.fields import FormatError, file_name, integer, load_json, number
from algorithm.data.sagemaker_json import difficult_flag
from algorithm.data.sample import Sample, class_name
from algorithm.images import MAX_PIXELS

# COCO's ids (images, categories) are 64-bit integers.
ID_RANGE = (-(2**63), 2**63 - 1)


def default_images_dir(json_path: str) -> str:
    """COCO's layout: ``annotations/instances_val2017.json`` -> ``val2017/`` beside
    ``annotations/``; else ``images/`` beside the JSON; else the JSON's directory."""
    directory = os.path.dirname(os.path.abspath(json_path))
    stem = os.path.splitext(os.path.basename(json_path))[0]
    split = stem.split("_", 1)[1] if "_" in stem else stem
    for candidate in (os.path.join(os.path.dirname(directory), split),
                      os.path.join(directory, split), os.path.join(directory, "images")):
        if os.path.isdir(candidate):
            return candidate
    return directory


class COCOSource:
    """The images of a COCO detection JSON."""

    format = "coco"

    def __init__(self, path: str, images_dir: Optional[str] = None):
        self.path = path
        self.images_dir = images_dir or default_images_dir(path)
        self.problems: list[FormatError] = []
        self.samples: list[Sample] = []
        self.classes: Optional[list[str]] = None
        self.source_ids: list[int] = []
        try:
            doc = load_json(path)
            if not isinstance(doc, dict):
                raise FormatError(path, "", "must be a JSON object")
            self._load(doc)
        except FormatError as exc:
            self.problems.append(exc)

    def _load(self, doc: dict[str, Any]) -> None:
        path = self.path
        for name in ("images", "annotations", "categories"):
            if not isinstance(doc.get(name), list):
                raise FormatError(path, name, "missing or not a list")
        categories = self._categories(doc["categories"])
        self.source_ids = sorted(categories)
        self.classes = [categories[c] for c in self.source_ids]
        remap = {c: i for i, c in enumerate(self.source_ids)}
        images: dict[int, dict[str, Any]] = {}
        for i, image in enumerate(doc["images"]):
            try:
                image_id, entry = self._image(image, f"images[{i}]")
            except FormatError as exc:
                self.problems.append(exc)
                continue
            if image_id in images:
                self.problems.append(FormatError(path, f"images[{i}].id",
                                                 f"duplicate: image id {image_id}"))
                continue
            images[image_id] = entry
        for i, ann in enumerate(doc["annotations"]):
            field = f"annotations[{i}]"
            try:
                image_id, category, box, crowd = self._annotation(ann, field)
            except FormatError as exc:
                self.problems.append(exc)
                continue
            if image_id not in images:
                self.problems.append(FormatError(path, field + ".image_id",
                                                 f"no image with id {image_id}"))
                continue
            if category not in remap:
                self.problems.append(FormatError(path, field + ".category_id",
                                                 f"no category with id {category}"))
                continue
            images[image_id]["objects"].append((remap[category], box, crowd))
        for entry in images.values():
            width, height = entry["size"]
            objects = entry["objects"]
            boxes = np.array([o[1] for o in objects], np.float64).reshape(-1, 4)
            try:
                self.samples.append(Sample(
                    key=entry["file"],
                    boxes=(boxes / (width, height, width, height)).astype(np.float32),
                    labels=np.array([o[0] for o in objects], np.int64),
                    difficult=np.array([o[2] for o in objects], bool),
                    image_path=os.path.join(self.images_dir, entry["file"]),
                    size=(width, height), where=entry["where"]))
            except FormatError as exc:
                self.problems.append(exc)

    def _categories(self, categories: list) -> dict[int, str]:
        """Names by COCO category id; a repeated id is a problem (which name would it be?)."""
        names: dict[int, str] = {}
        for i, cat in enumerate(categories):
            field = f"categories[{i}]"
            try:
                if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
                    raise FormatError(self.path, field, "needs id and name")
                category = integer(cat["id"], self.path, field + ".id", *ID_RANGE)
                name = class_name(cat["name"], self.path, field + ".name")
                if category in names:
                    raise FormatError(self.path, field + ".id", f"duplicate: category id "
                                                                f"{category} is both "
                                                                f"{names[category]!r} and "
                                                                f"{name!r}")
            except FormatError as exc:
                self.problems.append(exc)
                continue
            names[category] = name
        return names

    def _image(self, image: Any, field: str) -> tuple[int, dict[str, Any]]:
        if not isinstance(image, dict) or not {"id", "file_name", "width", "height"} <= set(image):
            raise FormatError(self.path, field, "needs id, file_name, width, height")
        image_id = integer(image["id"], self.path, field + ".id", *ID_RANGE)
        size = (integer(image["width"], self.path, field + ".width", 1, MAX_PIXELS),
                integer(image["height"], self.path, field + ".height", 1, MAX_PIXELS))
        return image_id, {"file": file_name(image["file_name"], self.path, field + ".file_name"),
                          "objects": [], "size": size, "where": f"{self.path}: {field}"}

    def _annotation(self, ann: Any, field: str) -> tuple[int, int, tuple, bool]:
        if not isinstance(ann, dict) or not {"image_id", "category_id", "bbox"} <= set(ann):
            raise FormatError(self.path, field, "needs image_id, category_id and bbox [x, y, "
                                                "width, height]")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise FormatError(self.path, field + ".bbox", "expected [x, y, width, height]")
        x, y, w, h = (number(v, self.path, f"{field}.bbox[{k}]") for k, v in enumerate(bbox))
        return (integer(ann["image_id"], self.path, field + ".image_id", *ID_RANGE),
                integer(ann["category_id"], self.path, field + ".category_id", *ID_RANGE),
                (x, y, x + w, y + h),
                difficult_flag(ann.get("iscrowd", 0), self.path, field + ".iscrowd"))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]
