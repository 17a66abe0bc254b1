"""A contact sheet: a grid of a dataset's images with their boxes and class names drawn."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from detectctl.datasets.readers import open_dataset
from detectctl.errors import DetectctlError, UsageError

CELL = 320


@dataclass
class PreviewResult:
    output: str
    images: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "images": self.images}


def preview(path: str, output: str, *, count: int = 16, format: Optional[str] = None,
            attribute: Optional[str] = None, image_set: Optional[str] = None,
            images_dir: Optional[str] = None) -> PreviewResult:
    """Draw ``count`` images spread evenly over the dataset into a PNG grid at ``output``."""
    from PIL import Image, ImageDraw

    from algorithm.data.sample import FormatError, open_image, to_rgb
    from detectctl.drawing import color, font, labelled_box

    if count < 1:
        raise UsageError("-n must be at least 1")
    data = open_dataset(path, format, attribute=attribute, image_set=image_set,
                        images_dir=images_dir)
    if not len(data):
        raise DetectctlError(f"{path}: no readable images",
                             hint=f"run `detectctl dataset validate {path}`")
    picks = sorted(set(np.linspace(0, len(data) - 1, min(count, len(data))).round().astype(int)))
    columns = math.ceil(math.sqrt(len(picks)))
    rows = math.ceil(len(picks) / columns)
    sheet = Image.new("RGB", (columns * CELL, rows * CELL), (40, 40, 40))
    face = font(12)
    names = data.classes or []
    shown = []
    for n, index in enumerate(picks):
        try:
            sample = data[int(index)]
            image = to_rgb(open_image(sample.read_image_bytes(), sample.key))
            image.thumbnail((CELL - 8, CELL - 8))
        except (FormatError, OSError, ValueError):
            continue
        draw = ImageDraw.Draw(image)
        w, h = image.size
        for box, label in zip(sample.boxes.tolist(), sample.labels.tolist()):
            name = names[label] if 0 <= label < len(names) else str(label)
            labelled_box(draw, (box[0] * w, box[1] * h, box[2] * w - 1, box[3] * h - 1),
                         name, color(label), face)
        x, y = (n % columns) * CELL, (n // columns) * CELL
        sheet.paste(image, (x + (CELL - w) // 2, y + (CELL - h) // 2))
        shown.append(sample.key)
    sheet.save(output, "PNG")
    return PreviewResult(output, shown)
