"""COCO import: an ``instances_*.json`` file and its images directory.

Category ids (1..90 with gaps in COCO itself) are remapped to 0..N-1 in increasing id order;
``source_ids`` in ``classes.json`` keeps the mapping (class i was COCO category
``source_ids[i]``). Crowd annotations (``iscrowd: 1``) are kept as *difficult* objects: like
VOC's difficult ones, evaluation neither rewards nor penalises detections on them, which is what
COCO's own evaluation does with crowd regions. Images without annotations are kept, without
objects. ``bbox`` is ``[x, y, width, height]`` in pixels.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from algorithm.data.sagemaker_json import load_json
from algorithm.data.sample import FormatError, Sample


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
        categories = {}
        for i, cat in enumerate(doc["categories"]):
            try:
                categories[int(cat["id"])] = str(cat["name"])
            except (KeyError, TypeError, ValueError):
                self.problems.append(FormatError(path, f"categories[{i}]", "needs id and name"))
        self.source_ids = sorted(categories)
        self.classes = [categories[c] for c in self.source_ids]
        remap = {c: i for i, c in enumerate(self.source_ids)}
        images: dict[int, dict[str, Any]] = {}
        for i, image in enumerate(doc["images"]):
            try:
                image_id = int(image["id"])
                entry = {"file": str(image["file_name"]), "objects": [],
                         "size": (int(image["width"]), int(image["height"])),
                         "where": f"{path}: images[{i}]"}
            except (KeyError, TypeError, ValueError):
                self.problems.append(FormatError(path, f"images[{i}]",
                                                 "needs id, file_name, width, height"))
                continue
            if image_id in images:
                self.problems.append(FormatError(path, f"images[{i}].id",
                                                 f"duplicate: image id {image_id}"))
                continue
            images[image_id] = entry
        for i, ann in enumerate(doc["annotations"]):
            field = f"annotations[{i}]"
            try:
                image_id, category = int(ann["image_id"]), int(ann["category_id"])
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                self.problems.append(FormatError(path, field, "needs image_id, category_id and "
                                                              "bbox [x, y, width, height]"))
                continue
            if image_id not in images:
                self.problems.append(FormatError(path, field + ".image_id",
                                                 f"no image with id {image_id}"))
                continue
            if category not in remap:
                self.problems.append(FormatError(path, field + ".category_id",
                                                 f"no category with id {category}"))
                continue
            images[image_id]["objects"].append(
                (remap[category], (x, y, x + w, y + h), bool(ann.get("iscrowd", 0))))
        for entry in images.values():
            width, height = entry["size"]
            objects = entry["objects"]
            boxes = np.array([o[1] for o in objects], np.float64).reshape(-1, 4)
            self.samples.append(Sample(
                key=entry["file"],
                boxes=(boxes / (width, height, width, height)).astype(np.float32),
                labels=np.array([o[0] for o in objects], np.int64),
                difficult=np.array([o[2] for o in objects], bool),
                image_path=os.path.join(self.images_dir, entry["file"]),
                size=(width, height), where=entry["where"]))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]
