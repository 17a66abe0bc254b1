"""Small datasets the dataset tests build: synthetic shapes in every training format."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from algorithm.data.sample import Sample
from detectctl.datasets.synth import synth_image
from detectctl.datasets.writers import open_writer

CLASSES = ["circle", "square", "triangle"]
SIZE = (96, 72)


def jpeg(width: int = 64, height: int = 48, color: tuple = (120, 30, 200), mode: str = "RGB",
         seed: int = 0) -> bytes:
    """A small JPEG (or, for modes JPEG cannot hold, a PNG) with some texture."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(0, 20, (height, width, 3)) + color, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG" if mode in ("RGB", "L", "CMYK") else "PNG")
    return buffer.getvalue()


def synth_samples(count: int = 8, seed: int = 0) -> list[tuple[Sample, bytes]]:
    """(sample, JPEG bytes) pairs; the third object of image 1 is made difficult."""
    out = []
    for i in range(count):
        data, rows = synth_image(i, seed, len(CLASSES), SIZE, quality=85)
        rows = np.array(rows, np.float64).reshape(-1, 5)
        difficult = np.zeros(len(rows), bool)
        if i == 1 and len(rows) > 2:
            difficult[2] = True
        out.append((Sample(key=f"img{i}", boxes=rows[:, 1:].astype(np.float32),
                           labels=rows[:, 0].astype(np.int64), difficult=difficult), data))
    return out


def write(format: str, output: str, samples: list[tuple[Sample, bytes]],
          classes: list[str] | None = CLASSES) -> str:
    """Write samples in a training format; returns the path to read back."""
    with open_writer(format, output, classes) as writer:
        for i, (sample, data) in enumerate(samples):
            writer.add(sample, data, f"img{i}.jpg", *Image.open(io.BytesIO(data)).size)
    return writer.paths[0] if format != "sagemaker-json" else output


def output_path(tmp: str, format: str, name: str = "data") -> str:
    return os.path.join(tmp, {"recordio": f"{name}.rec", "manifest": f"{name}.manifest"}.get(
        format, name))
