"""Detections drawn on their image (Pillow): a box and a label per object."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from detectctl.errors import UsageError

if TYPE_CHECKING:
    from detectctl.endpoints import Detection

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#469990", "#9a6324")


def draw(image_path: Path, detections: Sequence[Detection], output: Path) -> Path:
    """Write ``image_path`` with ``detections`` drawn to ``output``; return ``output``."""
    from PIL import Image, ImageDraw, UnidentifiedImageError

    try:
        with Image.open(image_path) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"{image_path}: cannot read the image: {exc}") from None
    canvas = ImageDraw.Draw(image)
    width, height = image.size
    line = max(2, round(min(width, height) / 200))
    for d in detections:
        colour = PALETTE[d.class_id % len(PALETTE)]
        box = (d.xmin * width, d.ymin * height, d.xmax * width, d.ymax * height)
        canvas.rectangle(box, outline=colour, width=line)
        text = f"{d.label} {d.score:.2f}"
        left, top, right, bottom = canvas.textbbox((box[0], box[1]), text)
        top_of_label = max(0, box[1] - (bottom - top) - 2)
        canvas.rectangle((left, top_of_label, right + 4, top_of_label + bottom - top + 2),
                         fill=colour)
        canvas.text((left + 2, top_of_label), text, fill="white")
    output.parent.mkdir(parents=True, exist_ok=True)
    image.save(output)
    return output
