"""Dataset statistics: images, objects, per-class counts, boxes per image, box sizes and aspects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from detectctl.datasets.readers import open_dataset

# Box size is sqrt(box area / image area): 0.1 is a box a tenth of the image's side.
SIZE_BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
# Aspect is box width / height in pixels.
ASPECT_BINS = (0.0, 1 / 4, 1 / 2, 1 / 1.5, 1.5, 2.0, 4.0, float("inf"))


@dataclass
class DatasetStats:
    """What :func:`stats` counts. ``skipped`` entries could not be read (see validate)."""

    path: str
    format: str
    images: int = 0
    objects: int = 0
    empty_images: int = 0
    skipped: int = 0
    class_ids: list[int] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    per_class: list[int] = field(default_factory=list)
    boxes_per_image: dict[int, int] = field(default_factory=dict)
    sizes: list[float] = field(default_factory=list)
    aspects: list[float] = field(default_factory=list)

    def histogram(self, values: list[float], bins: tuple) -> list[int]:
        counts, _ = np.histogram(np.clip(values, bins[0], 1e9), bins=np.array(bins))
        return counts.tolist()

    def size_histogram(self) -> list[int]:
        return self.histogram(self.sizes, SIZE_BINS)

    def aspect_histogram(self) -> list[int]:
        return self.histogram(self.aspects, ASPECT_BINS)

    @staticmethod
    def bin_labels(bins: tuple) -> list[str]:
        def fmt(v: float) -> str:
            return "inf" if v == float("inf") else f"{v:.2g}"

        return [f"{fmt(a)}-{fmt(b)}" for a, b in zip(bins[:-1], bins[1:])]

    def percentiles(self, values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        qs = np.percentile(values, [0, 25, 50, 75, 100])
        return {k: round(float(v), 4) for k, v in zip(("min", "p25", "median", "p75", "max"), qs)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "format": self.format, "images": self.images,
            "objects": self.objects, "empty_images": self.empty_images, "skipped": self.skipped,
            "classes": [{"class_id": i, "name": n, "objects": c}
                        for i, n, c in zip(self.class_ids, self.classes, self.per_class)],
            "boxes_per_image": {str(k): v for k, v in sorted(self.boxes_per_image.items())},
            "box_size": {"bins": self.bin_labels(SIZE_BINS), "counts": self.size_histogram(),
                         **self.percentiles(self.sizes)},
            "box_aspect": {"bins": self.bin_labels(ASPECT_BINS),
                           "counts": self.aspect_histogram(), **self.percentiles(self.aspects)},
        }


def stats(path: str, format: Optional[str] = None, *, attribute: Optional[str] = None,
          image_set: Optional[str] = None, images_dir: Optional[str] = None,
          progress: Optional[Callable[[int, int], None]] = None) -> DatasetStats:
    """Count the images and objects of ``path``. Reads image headers only, not pixels.

    Classes are the declared ones and every id in use (an id far beyond the others is listed
    alone, not with every id below it)."""
    from algorithm.data.sample import FormatError
    from algorithm.images import ImageError, open_image

    data = open_dataset(path, format, attribute=attribute, image_set=image_set,
                        images_dir=images_dir)
    result = DatasetStats(path, data.format, skipped=len(data.problems))
    per_class: Counter = Counter()
    per_image: Counter = Counter()
    for index in range(len(data)):
        try:
            sample = data[index]
            size = sample.size or open_image(sample.read_image_bytes()).size
        except (FormatError, ImageError, OSError):
            result.skipped += 1
            continue
        result.images += 1
        result.objects += sample.num_objects
        per_image[sample.num_objects] += 1
        per_class.update(sample.labels.tolist())
        if sample.num_objects:
            w = (sample.boxes[:, 2] - sample.boxes[:, 0]).astype(np.float64)
            h = (sample.boxes[:, 3] - sample.boxes[:, 1]).astype(np.float64)
            result.sizes.extend(np.sqrt(np.clip(w * h, 0, None)).tolist())
            ok = h > 0
            result.aspects.extend((w[ok] * size[0] / (h[ok] * size[1])).tolist())
        if progress is not None:
            progress(index + 1, len(data))
    result.empty_images = per_image.get(0, 0)
    result.boxes_per_image = dict(per_image)
    names = list(data.classes or [])
    result.class_ids = sorted(set(range(len(names))) | set(per_class))
    result.classes = [names[i] if i < len(names) else str(i) for i in result.class_ids]
    result.per_class = [per_class.get(i, 0) for i in result.class_ids]
    return result


@dataclass
class Plot:
    """A picture written: where, and the folders made on the way."""

    output: str
    created: list[str] = field(default_factory=list)


def plot(result: DatasetStats, output: str) -> Plot:
    """Draw the statistics as a PNG at ``output`` (four panels, replacing a file there, written
    whole or not at all)."""
    from PIL import Image, ImageDraw

    from detectctl.datasets.outputs import StagedOutput
    from detectctl.drawing import bar_chart, font

    width, height = 1000, 760
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    face, title = font(11), font(15)
    draw.text((16, 10), f"{result.path}: {result.images} images, {result.objects} objects, "
                        f"{result.empty_images} without objects", fill=(0, 0, 0), font=title)
    top, mid = 40, 40 + (height - 40) // 2
    bar_chart(draw, (10, top, width // 2 - 5, mid - 5), "objects per class",
              result.classes, result.per_class, face, horizontal=True)
    most = max(result.boxes_per_image, default=0)
    bar_chart(draw, (width // 2 + 5, top, width - 10, mid - 5), "images by number of objects",
              [str(k) for k in range(most + 1)],
              [result.boxes_per_image.get(k, 0) for k in range(most + 1)], face)
    bar_chart(draw, (10, mid + 5, width // 2 - 5, height - 10),
              "box size: sqrt(box area / image area)", result.bin_labels(SIZE_BINS),
              result.size_histogram(), face)
    bar_chart(draw, (width // 2 + 5, mid + 5, width - 10, height - 10),
              "box aspect: width / height", result.bin_labels(ASPECT_BINS),
              result.aspect_histogram(), face)
    with StagedOutput(output, replace=True) as stage:
        image.save(stage.path(output), "PNG")
    return Plot(output, stage.created)
