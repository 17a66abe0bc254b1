"""Pillow drawing: boxes with labels (dataset previews, ``predict --draw``) and the bar charts of
``dataset stats --plot``. matplotlib is not a dependency."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectctl.errors import UsageError

if TYPE_CHECKING:
    from detectctl.detections import Detection

PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
           (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
           (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128))


def color(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


def font(size: int = 12) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def text_size(draw: Any, text: str, face: Any) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    return right - left, bottom - top


def labelled_box(draw: Any, box: Sequence[float], label: str, rgb: tuple[int, int, int],
                 face: Any, width: int = 2) -> None:
    """A rectangle with its label on a filled tab above its top-left corner (inside the box
    when there is no room above)."""
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1, y1), outline=rgb, width=width)
    tw, th = text_size(draw, label, face)
    ty = y0 - th - 4 if y0 - th - 4 >= 0 else y0
    draw.rectangle((x0, ty, x0 + tw + 4, ty + th + 4), fill=rgb)
    ink = (0, 0, 0) if sum(rgb) > 380 else (255, 255, 255)
    draw.text((x0 + 2, ty + 1), label, fill=ink, font=face)


def draw_detections(image_path: Path, detections: Sequence[Detection], output: Path) -> Path:
    """Write ``image_path`` with ``detections`` (boxes in [0, 1]) drawn to ``output``; return
    ``output``. Lines and labels grow with the image."""
    from PIL import Image, ImageDraw, UnidentifiedImageError

    try:
        with Image.open(image_path) as opened:
            image = opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise UsageError(f"{image_path}: cannot read the image: {exc}") from None
    canvas = ImageDraw.Draw(image)
    width, height = image.size
    side = min(width, height)
    face = font(max(12, round(side / 40)))
    for d in detections:
        box = (d.xmin * width, d.ymin * height, d.xmax * width, d.ymax * height)
        labelled_box(canvas, box, f"{d.label} {d.score:.2f}", color(d.class_id), face,
                     width=max(2, round(side / 200)))
    output.parent.mkdir(parents=True, exist_ok=True)
    image.save(output)
    return output


def bar_chart(draw: Any, rect: tuple[int, int, int, int], title: str, labels: Sequence[str],
              values: Sequence[float], face: Any, horizontal: bool = False) -> None:
    """A titled bar chart inside ``rect`` (x0, y0, x1, y1), values written on the bars."""
    x0, y0, x1, y1 = rect
    draw.rectangle(rect, outline=(200, 200, 200))
    draw.text((x0 + 8, y0 + 6), title, fill=(0, 0, 0), font=face)
    top = y0 + 28
    most = max([*values, 1])
    n = max(len(values), 1)
    if horizontal:
        label_w = min(140, max([text_size(draw, s, face)[0] for s in labels] + [10]) + 8)
        step = (y1 - top - 8) / n
        for i, (name, value) in enumerate(zip(labels, values)):
            y = top + i * step
            length = (x1 - x0 - label_w - 60) * value / most
            draw.text((x0 + 6, y), name[:20], fill=(0, 0, 0), font=face)
            draw.rectangle((x0 + label_w, y + 1, x0 + label_w + length, y + max(step - 2, 2)),
                           fill=color(i))
            draw.text((x0 + label_w + length + 4, y), f"{value:g}", fill=(0, 0, 0), font=face)
        return
    bottom = y1 - 22
    step = (x1 - x0 - 16) / n
    for i, (name, value) in enumerate(zip(labels, values)):
        x = x0 + 8 + i * step
        height = (bottom - top - 14) * value / most
        draw.rectangle((x + 1, bottom - height, x + max(step - 2, 2), bottom), fill=(0, 130, 200))
        if n <= 16 or i % max(1, n // 8) == 0:
            draw.text((x + 1, bottom + 4), name, fill=(0, 0, 0), font=face)
    draw.line((x0 + 8, bottom, x1 - 8, bottom), fill=(0, 0, 0))
