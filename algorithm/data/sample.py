"""One annotated image, the same whatever format it came from.

Readers of every format produce :class:`Sample`; writers, the validator and the training Dataset
consume it. Boxes are ``(xmin, ymin, xmax, ymax)`` normalised to [0, 1] by the image size, labels
are 0-based class ids. No torch here: the client reuses this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from algorithm.data.fields import MAX_CLASS_ID, FormatError, class_id, shown

__all__ = ["CLASSES_FILE", "FormatError", "Sample", "class_name", "class_names_from_categories",
           "make_sample", "objects_to_arrays"]

# Name of the class-names file that travels beside RecordIO files (docs/datasets.md).
CLASSES_FILE = "classes.json"


@dataclass
class Sample:
    """An image and its objects.

    Attributes:
        key: the image's name in its dataset (file path, record id), for messages.
        boxes (ndarray[M, 4] float32): (xmin, ymin, xmax, ymax), normalised to [0, 1].
        labels (ndarray[M] int64): 0-based class ids.
        difficult (ndarray[M] bool): objects evaluation ignores (VOC ``difficult``, COCO crowd).
        image_bytes: the encoded image, when the format embeds it (RecordIO, Pipe mode).
        image_path: where the encoded image lies, when it is a file of its own.
        size: (width, height) the annotation declares, if any (pixel formats normalise by it).
        record_id: the RecordIO header id, when read from RecordIO.
        where: where the annotation lies (``file``, ``file:line``, ``file#record``), for messages.
    """

    key: str
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    image_bytes: Optional[bytes] = None
    image_path: Optional[str] = None
    size: Optional[Tuple[int, int]] = None
    record_id: Optional[int] = None
    where: str = ""

    def __post_init__(self) -> None:
        # Whatever the reader, a sample holds finite boxes and class ids in range: nothing
        # downstream (augmentation, statistics, evaluation) has to guard against NaN or huge ids.
        where = self.where or self.key
        boxes = self.boxes.reshape(-1, 4)
        if boxes.size and not np.isfinite(boxes).all():
            i = int(np.flatnonzero(~np.isfinite(boxes).all(axis=1))[0])
            text = ", ".join(f"{v:g}" for v in boxes[i].tolist())
            raise FormatError(where, f"objects[{i}]", f"box ({text}) is not finite (after "
                                                      "normalising by the image size)")
        if len(self.labels) and not ((self.labels >= 0) & (self.labels <= MAX_CLASS_ID)).all():
            bad = int(np.flatnonzero((self.labels < 0) | (self.labels > MAX_CLASS_ID))[0])
            raise FormatError(where, f"objects[{bad}]", f"class id {int(self.labels[bad])} out "
                                                        f"of range (0..{MAX_CLASS_ID})")

    def read_image_bytes(self) -> bytes:
        """The encoded image; ``OSError`` when its file cannot be read."""
        if self.image_bytes is not None:
            return self.image_bytes
        if self.image_path is None:
            raise FormatError(self.key, "", "no image")
        with open(self.image_path, "rb") as f:
            return f.read()

    @property
    def num_objects(self) -> int:
        return int(self.labels.shape[0])


def make_sample(key: str, objects: Sequence[Sequence[float]], **kwargs: Any) -> Sample:
    """A :class:`Sample` from rows ``[class, xmin, ymin, xmax, ymax(, difficult)]`` (normalised)."""
    boxes, labels, difficult = objects_to_arrays(objects, kwargs.get("where") or key)
    return Sample(key=key, boxes=boxes, labels=labels, difficult=difficult, **kwargs)


def objects_to_arrays(objects: Any, where: str = "objects"
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [M, 4], labels [M] and difficult [M] of rows ``[class, x0, y0, x1, y1(, d)]``.

    Raises :class:`FormatError` at ``where`` for a class id that is not an integer in
    ``0 .. MAX_CLASS_ID`` (checked before the cast, which would make anything of it).
    """
    rows = np.asarray(objects, dtype=np.float64)
    rows = rows.reshape(len(rows), -1) if rows.size else np.zeros((0, 6))
    ids = rows[:, 0]
    bad = ~(np.isfinite(ids) & (ids == np.round(ids)) & (ids >= 0) & (ids <= MAX_CLASS_ID))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = float(ids[i])
        shown_value = int(value) if value.is_integer() and abs(value) < 1e18 else value
        class_id(shown_value, where, f"objects[{i}]")  # raises, with the reason
    difficult = rows[:, 5] > 0 if rows.shape[1] > 5 else np.zeros(len(rows), dtype=bool)
    return rows[:, 1:5].astype(np.float32), ids.astype(np.int64), difficult


def class_names_from_categories(categories: Any, where: str) -> List[str]:
    """Names ordered by ``class_id`` from ``[{"class_id": 0, "name": "dog"}, ...]``."""
    if not isinstance(categories, list):
        raise FormatError(where, "categories", 'expected [{"class_id": 0, "name": "dog"}, ...]')
    names = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "class_id" not in cat:
            raise FormatError(where, f"categories[{i}]", "needs class_id and name")
        cid = class_id(cat["class_id"], where, f"categories[{i}].class_id")
        if cid in names:
            raise FormatError(where, f"categories[{i}].class_id", f"duplicate: class id {cid}")
        names[cid] = class_name(cat.get("name", cid), where, f"categories[{i}].name")
    if sorted(names) != list(range(len(names))):
        shown_ids = ", ".join(str(i) for i in sorted(names)[:10])
        raise FormatError(where, "categories",
                          f"class ids must be consecutive from 0, got {shown_ids}"
                          + (", ..." if len(names) > 10 else ""))
    return [names[i] for i in range(len(names))]


def class_name(value: Any, where: str, field: str) -> str:
    """A class name: a string (a number is taken as its text), never an object or a list."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return shown(value)
    raise FormatError(where, field, f"a class name must be a string, got {shown(value)}")
