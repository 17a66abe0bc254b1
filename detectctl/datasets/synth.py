"""A deterministic synthetic detection dataset: shapes on textured backgrounds.

Image ``i`` depends only on (seed, i): the same seed gives the same images and boxes, whatever
the number of images asked for. About one image in ten has no objects; the others have 1 to 6
shapes of varied size, colour and overlap (later shapes may hide parts of earlier ones; a box
always covers its whole shape).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from detectctl.errors import UsageError

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star", "ring", "hexagon",
          "bar", "arrow")
EMPTY_FRACTION = 0.1
MAX_OBJECTS = 6
# A shape's side, as a fraction of the image's shorter side: uniform between these.
MIN_SIZE = 0.08
MAX_SIZE = 0.6


@dataclass
class SynthResult:
    """What synth wrote: ``paths`` (every file or folder), ``parts`` (the paths of each part:
    ``all``, or ``train`` and ``validation``), and the folders it created (``created``)."""

    output: str
    format: str
    images: int
    objects: int
    classes: list[str]
    paths: list[str] = field(default_factory=list)
    parts: dict[str, list[str]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "format": self.format, "images": self.images,
                "objects": self.objects, "classes": self.classes, "paths": self.paths,
                "parts": self.parts, "created": self.created}


def parse_image_size(text: str) -> tuple[int, int]:
    """``"500x375"`` -> (500, 375)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"image size {text!r} is not WIDTHxHEIGHT, e.g. 500x375") from None
    if not (32 <= width <= 4096 and 32 <= height <= 4096):
        raise UsageError(f"image size {text} must be between 32 and 4096 pixels a side")
    return width, height


def synth(output: str, *, images: int, classes: int, seed: int = 0, format: str = "recordio",
          image_size: tuple[int, int] = (500, 375), quality: int = 90,
          validation_fraction: float = 0.0, min_size: float = MIN_SIZE,
          progress: Optional[Callable[[int, int], None]] = None) -> SynthResult:
    """Write ``images`` synthetic images of ``classes`` shape classes at ``output`` in
    ``format`` (a ``.rec`` path, a directory, or a ``.manifest`` path, as for convert).

    With ``validation_fraction``, a random part of the images (drawn with ``seed``) goes to
    ``validation/`` and the rest to ``train/``: beside ``output`` when it names the data file
    (``demo/shapes.rec`` -> ``demo/train/shapes.rec``), as convert does, and inside ``output``
    otherwise (``demo`` -> ``demo/train/demo.rec``), which is the folder `dataset upload` takes.
    """
    from algorithm.data.sample import Sample
    from detectctl.datasets.convert import part_output, split_indices
    from detectctl.datasets.outputs import StagedOutput
    from detectctl.datasets.writers import open_writer, same_output
    from detectctl.formats import (
        MANIFEST,
        MANIFEST_SUFFIXES,
        RECORDIO,
        RECORDIO_SUFFIXES,
        SAGEMAKER_JSON,
        normalize,
    )
    from detectctl.formats import TRAINING_FORMATS as WRITE_FORMATS

    if not 1 <= classes <= len(SHAPES):
        raise UsageError(f"--classes {classes}: between 1 and {len(SHAPES)} shape classes")
    if images < 1:
        raise UsageError("--images must be at least 1")
    if not 0.0 < min_size <= MAX_SIZE:
        raise UsageError(f"--min-size {min_size}: a fraction of the image's shorter side, "
                         f"above 0 and at most {MAX_SIZE}")
    format = normalize(format, "--format", WRITE_FORMATS)
    parts = split_indices(images, validation_fraction, seed)
    named = output.endswith(RECORDIO_SUFFIXES + MANIFEST_SUFFIXES)
    if len(parts) > 1 and not named and format != SAGEMAKER_JSON:
        folder = output.rstrip("/\\") or "."
        output = os.path.join(folder, os.path.basename(os.path.abspath(folder)))
    if format == RECORDIO and not output.endswith(".rec"):
        output += ".rec"
    if format == MANIFEST and not output.endswith(MANIFEST_SUFFIXES):
        output += ".manifest"
    names = list(SHAPES[:classes])
    result = SynthResult(output, format, 0, 0, names)
    extra = {"source": "synth", "seed": seed}
    with StagedOutput(*(part_output(output, format, part) for part in parts),
                      same=same_output) as stage:
        result.created = stage.created
        for part, indices in parts.items():
            target = stage.path(part_output(output, format, part))
            with open_writer(format, target, names, extra) as writer:
                for index in indices:
                    data, objects = synth_image(index, seed, classes, image_size, quality,
                                                 min_size)
                    rows = np.array(objects, np.float64).reshape(-1, 5)
                    sample = Sample(key=f"synth_{index:06d}",
                                    boxes=rows[:, 1:].astype(np.float32),
                                    labels=rows[:, 0].astype(np.int64),
                                    difficult=np.zeros(len(rows), bool))
                    writer.add(sample, data, f"synth_{index:06d}.jpg", *image_size)
                    result.objects += len(objects)
                    result.images += 1
                    if progress is not None:
                        progress(result.images, images)
            result.parts[part] = [stage.final(p) for p in writer.paths]
            result.paths += result.parts[part]
    return result


def synth_image(index: int, seed: int, classes: int, image_size: tuple[int, int],
                quality: int = 90, min_size: float = MIN_SIZE
                ) -> tuple[bytes, list[list[float]]]:
    """JPEG bytes and rows ``[class, xmin, ymin, xmax, ymax]`` (normalised) of image ``index``."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng((seed, index))
    width, height = image_size
    image = Image.fromarray(_background(rng, width, height))
    draw = ImageDraw.Draw(image)
    count = 0 if rng.random() < EMPTY_FRACTION else int(rng.integers(1, MAX_OBJECTS + 1))
    objects = []
    for _ in range(count):
        label = int(rng.integers(classes))
        side = rng.uniform(min_size, MAX_SIZE) * min(width, height)
        aspect = rng.uniform(0.6, 1.6) if SHAPES[label] not in ("circle", "square", "ring") else 1
        w, h = max(8, int(side * math.sqrt(aspect))), max(8, int(side / math.sqrt(aspect)))
        w, h = min(w, width), min(h, height)
        x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        _draw_shape(draw, SHAPES[label], (x0, y0, x0 + w - 1, y0 + h - 1), color)
        objects.append([label, x0 / width, y0 / height, (x0 + w) / width, (y0 + h) / height])
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), objects


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random colour field, stripes or not, with fine noise: [H, W, 3] uint8."""
    from PIL import Image

    coarse = rng.integers(0, 256, (int(rng.integers(2, 8)), int(rng.integers(2, 8)), 3))
    field_ = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize(
        (width, height), Image.BICUBIC), np.float32)
    if rng.random() < 0.5:
        period = rng.uniform(6, 40)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:height, 0:width]
        stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        field_ += (rng.uniform(10, 40) * stripes)[..., None]
    field_ += rng.normal(0, rng.uniform(2, 12), (height, width, 1))
    return np.clip(field_, 0, 255).astype(np.uint8)


def _draw_shape(draw: Any, shape: str, box: tuple[int, int, int, int],
                color: tuple[int, ...]) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def poly(points: list[tuple[float, float]]) -> None:
        draw.polygon([(x0 + px * w, y0 + py * h) for px, py in points], fill=color)

    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    elif shape == "triangle":
        poly([(0.5, 0), (1, 1), (0, 1)])
    elif shape == "diamond":
        poly([(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)])
    elif shape == "cross":
        draw.rectangle((x0 + w * 0.35, y0, x0 + w * 0.65, y1), fill=color)
        draw.rectangle((x0, y0 + h * 0.35, x1, y0 + h * 0.65), fill=color)
    elif shape == "star":
        points = []
        for k in range(10):
            r = 0.5 if k % 2 == 0 else 0.2
            a = -math.pi / 2 + k * math.pi / 5
            points.append((0.5 + r * math.cos(a), 0.5 + r * math.sin(a)))
        # Stretch so the star's tips touch the box on every side.
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        poly([((px - min(xs)) / (max(xs) - min(xs)), (py - min(ys)) / (max(ys) - min(ys)))
              for px, py in points])
    elif shape == "ring":
        draw.ellipse(box, outline=color, width=max(2, int(min(w, h) * 0.18)))
    elif shape == "hexagon":
        poly([(0.25, 0), (0.75, 0), (1, 0.5), (0.75, 1), (0.25, 1), (0, 0.5)])
    elif shape == "bar":
        draw.rectangle(box, fill=color)
        draw.rectangle((x0 + w * 0.4, y0, x0 + w * 0.6, y1), fill=tuple(255 - c for c in color))
    elif shape == "arrow":
        poly([(0, 0.3), (0.6, 0.3), (0.6, 0), (1, 0.5), (0.6, 1), (0.6, 0.7), (0, 0.7)])
