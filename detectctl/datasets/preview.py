"""A contact sheet: a grid of a dataset's images with their boxes and class names drawn."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from detectctl.datasets.outputs import StagedOutput
from detectctl.datasets.readers import open_dataset
from detectctl.errors import DatasetError, UsageError

CELL = 320


@dataclass
class PreviewResult:
    """The picture written, the images drawn in it, those that could not be read (each with
    why), and the folders made on the way."""

    output: str
    images: list[str]
    unreadable: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "images": self.images, "unreadable": self.unreadable,
                "created": self.created}


def preview(path: str, output: str, *, count: int = 16, format: Optional[str] = None,
            attribute: Optional[str] = None, image_set: Optional[str] = None,
            images_dir: Optional[str] = None) -> PreviewResult:
    """Draw ``count`` images spread evenly over the dataset into a PNG grid at ``output``
    (replacing a file there; written whole or not at all). Images that cannot be read are left
    out and listed; when none can be, nothing is written."""
    from PIL import Image, ImageDraw

    from algorithm.data.sample import FormatError
    from algorithm.images import ImageError, load_image
    from detectctl.drawing import color, font, labelled_box

    if count < 1:
        raise UsageError("-n must be at least 1")
    data = open_dataset(path, format, attribute=attribute, image_set=image_set,
                        images_dir=images_dir)
    if not len(data):
        raise DatasetError(f"{path}: no readable images",
                           hint=f"run `detectctl dataset validate {path}`")
    picks = sorted(set(np.linspace(0, len(data) - 1, min(count, len(data))).round().astype(int)))
    columns = math.ceil(math.sqrt(len(picks)))
    rows = math.ceil(len(picks) / columns)
    sheet = Image.new("RGB", (columns * CELL, rows * CELL), (40, 40, 40))
    face = font(12)
    names = data.classes or []
    result = PreviewResult(output, [])
    for n, index in enumerate(picks):
        sample = None
        try:
            sample = data[int(index)]
            image = load_image(sample.read_image_bytes(), shrink_to=(CELL - 8, CELL - 8))
            image.thumbnail((CELL - 8, CELL - 8))
        except (FormatError, ImageError, OSError) as exc:
            where = sample.where or sample.key if sample is not None else f"#{index}"
            result.unreadable.append(str(exc) if isinstance(exc, FormatError)
                                     else f"{where}: {exc}")
            continue
        draw = ImageDraw.Draw(image)
        w, h = image.size
        for box, label in zip(np.clip(sample.boxes, 0, 1).tolist(), sample.labels.tolist()):
            name = names[label] if 0 <= label < len(names) else str(label)
            x0, y0 = box[0] * w, box[1] * h
            labelled_box(draw, (x0, y0, max(x0, box[2] * w - 1), max(y0, box[3] * h - 1)),
                         name, color(label), face)
        x, y = (n % columns) * CELL, (n // columns) * CELL
        sheet.paste(image, (x + (CELL - w) // 2, y + (CELL - h) // 2))
        result.images.append(sample.key)
    if not result.images:
        raise DatasetError(f"{path}: none of the {len(picks)} images picked could be read, the "
                           f"first: {result.unreadable[0]}",
                           hint=f"run `detectctl dataset validate {path}`")
    with StagedOutput(output, replace=True) as stage:
        sheet.save(stage.path(output), "PNG")
    result.created = stage.created
    return result
