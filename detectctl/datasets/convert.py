"""Convert a dataset between formats, optionally splitting off a validation part."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from detectctl import formats
from detectctl.datasets.readers import WRITE_FORMATS, open_dataset
from detectctl.errors import DetectctlError, UsageError

Progress = Callable[[int, int], None]


@dataclass
class ConvertResult:
    """What a conversion wrote: per part (``all``, or ``train`` and ``validation``)."""

    source: str
    source_format: str
    format: str
    outputs: dict[str, list[str]] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    classes: Optional[list[str]] = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_format": self.source_format,
                "format": self.format, "outputs": self.outputs, "images": self.images,
                "objects": self.objects, "classes": self.classes}


def split_indices(count: int, validation_fraction: float, seed: int) -> dict[str, list[int]]:
    """``{"all": [...]}``, or ``{"train": [...], "validation": [...]}`` drawn with ``seed``."""
    if not 0 <= validation_fraction < 1:
        raise UsageError(f"validation fraction {validation_fraction} must be in [0, 1)")
    if validation_fraction == 0:
        return {"all": list(range(count))}
    order = np.random.default_rng(seed).permutation(count)
    size = max(1, round(validation_fraction * count)) if count > 1 else 0
    return {"train": sorted(order[size:].tolist()), "validation": sorted(order[:size].tolist())}


def part_output(output: str, format: str, part: str) -> str:
    """Where one part goes: OUT itself, or ``train/`` and ``validation/`` beside it."""
    if part == "all":
        return output
    if format == formats.SAGEMAKER_JSON:
        return os.path.join(output, part)
    return os.path.join(os.path.dirname(output) or ".", part, os.path.basename(output))


def image_name(sample: Any, image: Any, index: int) -> str:
    """A file name for a sample's image, with the extension of its real format."""
    ext = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif",
           "WEBP": ".webp"}.get(image.format or "", ".img")
    if sample.image_path:
        stem = os.path.splitext(os.path.basename(sample.image_path))[0]
    else:
        stem = f"{sample.record_id if sample.record_id is not None else index:06d}"
    return stem + ext


def convert(source: str, output: str, *, to: str, source_format: Optional[str] = None,
            validation_fraction: float = 0.0, seed: int = 0, attribute: Optional[str] = None,
            image_set: Optional[str] = None, images_dir: Optional[str] = None,
            progress: Optional[Progress] = None) -> ConvertResult:
    """Read ``source`` and write it as ``to`` at ``output`` (a ``.rec`` path for recordio, a
    directory for sagemaker-json, a ``.manifest`` path for manifest).

    Raises ``DetectctlError`` when the source has entries that cannot be read (validate it
    first), ``UsageError`` for bad arguments or an output that already exists.
    """
    from algorithm.data.sample import FormatError, open_image
    from detectctl.datasets.writers import open_writer

    to = formats.normalize(to, "--to", WRITE_FORMATS)
    if to == formats.RECORDIO and not output.endswith(".rec"):
        output += ".rec"
    data = open_dataset(source, source_format, attribute=attribute, image_set=image_set,
                        images_dir=images_dir)
    if data.problems:
        raise _problems_error(source, data.problems)
    parts = split_indices(len(data), validation_fraction, seed)
    for part in parts:
        _refuse_existing(part_output(output, to, part))
    extra: dict[str, Any] = {"source": data.format}
    if getattr(data, "source_ids", None):
        extra["source_ids"] = data.source_ids
    result = ConvertResult(source, data.format, to, classes=data.classes)
    done, total = 0, len(data)
    for part, indices in parts.items():
        with open_writer(to, part_output(output, to, part), data.classes, extra) as writer:
            for index in indices:
                try:
                    sample = data[index]
                    image = sample.read_image_bytes()
                    header = open_image(image, sample.where or sample.key)
                except (FormatError, OSError) as exc:
                    raise DetectctlError(f"{exc}", hint="run `detectctl dataset validate "
                                                        f"{source}`") from None
                writer.add(sample, image, image_name(sample, header, index), *header.size)
                result.objects += sample.num_objects
                done += 1
                if progress is not None:
                    progress(done, total)
        result.outputs[part] = writer.paths
        result.images[part] = writer.count
    return result


def _problems_error(source: str, problems: list) -> DetectctlError:
    return DetectctlError(f"{source}: {len(problems)} problem(s), first: {problems[0]}",
                          hint=f"run `detectctl dataset validate {source}` for the list")


def _refuse_existing(path: str) -> None:
    if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
        raise UsageError(f"{path} already exists", hint="remove it or choose another --output")
