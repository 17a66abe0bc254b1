"""One annotated image, the same whatever format it came from.

Readers of every format produce :class:`Sample`; writers, the validator and the training Dataset
consume it. Boxes are ``(xmin, ymin, xmax, ymax)`` normalised to [0, 1] by the image size, labels
are 0-based class ids. No torch here: the client reuses this module.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

# The image modes a reader converts to RGB (see docs/datasets.md, "3 channels"); anything else,
# e.g. 16-bit or floating-point images, is refused.
CONVERTIBLE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")

# Name of the class-names file that travels beside RecordIO files (docs/datasets.md).
CLASSES_FILE = "classes.json"


class FormatError(ValueError):
    """A file or record that does not follow its format.

    ``file`` names the file (with ``:line`` or ``#record`` where that helps), ``field`` the
    offending field (empty when the whole entry is bad).
    """

    def __init__(self, file: str, field: str, message: str):
        super().__init__(f"{file}: {field + ': ' if field else ''}{message}")
        self.file = file
        self.field = field
        self.message = message


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

    def read_image_bytes(self) -> bytes:
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
    boxes, labels, difficult = objects_to_arrays(objects)
    return Sample(key=key, boxes=boxes, labels=labels, difficult=difficult, **kwargs)


def objects_to_arrays(objects: Sequence[Sequence[float]]
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [M, 4], labels [M] and difficult [M] of rows ``[class, x0, y0, x1, y1(, d)]``."""
    rows = np.asarray(objects, dtype=np.float64)
    rows = rows.reshape(len(rows), -1) if rows.size else np.zeros((0, 6))
    difficult = rows[:, 5] > 0 if rows.shape[1] > 5 else np.zeros(len(rows), dtype=bool)
    return rows[:, 1:5].astype(np.float32), rows[:, 0].astype(np.int64), difficult


def open_image(data: bytes, key: str = "image") -> Any:
    """Open encoded image bytes with Pillow (header only; decode happens on ``load``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise FormatError(key, "image", "not a readable image (unknown format or corrupt "
                                        "header)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(key, "image", f"not a readable image ({exc})") from None


def to_rgb(image: Any) -> Any:
    """The image in RGB, converting the modes of :data:`CONVERTIBLE_MODES`."""
    if image.mode == "RGB":
        return image
    if image.mode not in CONVERTIBLE_MODES:
        raise ValueError(f"unsupported image mode {image.mode}")
    return image.convert("RGB")


def class_names_from_categories(categories: List[dict], where: str) -> List[str]:
    """Names ordered by ``class_id`` from ``[{"class_id": 0, "name": "dog"}, ...]``."""
    names = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "class_id" not in cat:
            raise FormatError(where, f"categories[{i}]", "needs class_id and name")
        try:
            cid = int(cat["class_id"])
        except (TypeError, ValueError):
            raise FormatError(where, f"categories[{i}].class_id",
                              f"not an integer: {cat['class_id']!r}") from None
        names[cid] = str(cat.get("name", cid))
    if sorted(names) != list(range(len(names))):
        raise FormatError(where, "categories",
                          f"class ids must be consecutive from 0, got {sorted(names)}")
    return [names[i] for i in range(len(names))]
