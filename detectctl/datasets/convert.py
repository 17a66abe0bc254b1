"""Convert a dataset between formats, optionally splitting off a validation part."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from detectctl import formats
from detectctl.datasets.outputs import StagedOutput
from detectctl.datasets.readers import WRITE_FORMATS, open_dataset
from detectctl.errors import DatasetError, UsageError

Progress = Callable[[int, int], None]


@dataclass
class ConvertResult:
    """What a conversion wrote: per part (``all``, or ``train`` and ``validation``), and the
    folders it created on the way (``created``)."""

    source: str
    source_format: str
    format: str
    outputs: dict[str, list[str]] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    classes: Optional[list[str]] = None
    created: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_format": self.source_format,
                "format": self.format, "outputs": self.outputs, "images": self.images,
                "objects": self.objects, "classes": self.classes, "created": self.created}


def split_indices(count: int, validation_fraction: float, seed: int) -> dict[str, list[int]]:
    """``{"all": [...]}``, or ``{"train": [...], "validation": [...]}`` drawn with ``seed``;
    each part holds at least one image."""
    if not 0 <= validation_fraction < 1:
        raise UsageError(f"--validation-fraction {validation_fraction}: must be in [0, 1)")
    if validation_fraction == 0:
        return {"all": list(range(count))}
    if count < 2:
        raise UsageError(f"--validation-fraction {validation_fraction}: {count} image(s) cannot "
                         "make a training and a validation part")
    order = np.random.default_rng(seed).permutation(count)
    size = min(max(1, round(validation_fraction * count)), count - 1)
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

    Raises ``DatasetError`` when the source has entries that cannot be read (validate it
    first) or no images, ``UsageError`` for bad arguments, ``OutputError`` for an output that
    already exists or cannot be written. The output appears whole or not at all.
    """
    from detectctl.datasets.writers import open_writer, same_output

    to = formats.normalize(to, "--to", WRITE_FORMATS)
    if to == formats.RECORDIO and not output.endswith(".rec"):
        output += ".rec"
    data = open_dataset(source, source_format, attribute=attribute, image_set=image_set,
                        images_dir=images_dir)
    if data.problems:
        raise _problems_error(source, data.problems)
    if not len(data):
        raise DatasetError(f"{source}: no images to convert ({data.format})")
    parts = split_indices(len(data), validation_fraction, seed)
    extra: dict[str, Any] = {"source": data.format}
    if getattr(data, "source_ids", None):
        extra["source_ids"] = data.source_ids
    result = ConvertResult(source, data.format, to, classes=data.classes)
    done, total = 0, len(data)
    with StagedOutput(*(part_output(output, to, part) for part in parts),
                      same=same_output) as stage:
        result.created = stage.created
        for part, indices in parts.items():
            target = stage.path(part_output(output, to, part))
            with open_writer(to, target, data.classes, extra) as writer:
                for index in indices:
                    sample, image, header = _read(data, index, source)
                    writer.add(sample, image, image_name(sample, header, index), *header.size)
                    result.objects += sample.num_objects
                    done += 1
                    if progress is not None:
                        progress(done, total)
            result.outputs[part] = [stage.final(p) for p in writer.paths]
            result.images[part] = writer.count
    return result


def _read(data: Any, index: int, source: str) -> tuple[Any, bytes, Any]:
    """Sample ``index``, its encoded image and the image's checked header."""
    from algorithm.data.sample import FormatError
    from algorithm.images import ImageError, open_image

    sample = None
    try:
        sample = data[index]
        image = sample.read_image_bytes()
        return sample, image, open_image(image)
    except (FormatError, ImageError, OSError) as exc:
        where = (sample.where or sample.key) if sample is not None else f"{source}#{index}"
        message = str(exc) if isinstance(exc, FormatError) else f"{where}: image: {exc}"
        raise DatasetError(message, hint=f"run `detectctl dataset validate {source}`") from None


def _problems_error(source: str, problems: list) -> DatasetError:
    return DatasetError(f"{source}: {len(problems)} problem(s), first: {problems[0]}",
                        hint=f"run `detectctl dataset validate {source}` for the list")
