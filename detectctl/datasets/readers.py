"""Open a dataset in any format the client reads: the three training formats and VOC, COCO."""

from __future__ import annotations

import os
from typing import Any, Optional

from detectctl import formats
from detectctl.errors import UsageError

READ_FORMATS = formats.READ_FORMATS
WRITE_FORMATS = formats.TRAINING_FORMATS


def guess_format(path: str) -> str:
    """The format of ``path`` from what is on disk (``UsageError`` when it cannot tell)."""
    from algorithm.data.sources import detect_format

    if os.path.isdir(os.path.join(path, "Annotations")):
        return formats.VOC
    if path.endswith(".json") and os.path.isfile(path):
        return formats.COCO
    try:
        return detect_format(path)
    except ValueError as exc:
        raise UsageError(str(exc).replace("one of ", "--format: one of "),
                         hint=f"formats: {', '.join(READ_FORMATS)}") from None


def open_dataset(path: str, format: Optional[str] = None, *, attribute: Optional[str] = None,
                 image_set: Optional[str] = None, images_dir: Optional[str] = None) -> Any:
    """A source over ``path``: ``len()``, ``[i]`` -> Sample, ``.classes``, ``.problems``.

    ``attribute``: an augmented manifest's label attribute; ``image_set``: a VOC
    ``ImageSets/Main`` list name; ``images_dir``: a COCO JSON's images directory.
    """
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file or directory")
    format = formats.normalize(format, "--format", READ_FORMATS) if format else \
        guess_format(path)
    if format == formats.VOC:
        from detectctl.datasets.voc import VOCSource

        return VOCSource(path, image_set)
    if format == formats.COCO:
        from detectctl.datasets.coco import COCOSource

        return COCOSource(path, images_dir)
    from algorithm.data.sample import FormatError
    from algorithm.data.sources import open_source, read_classes

    try:
        source = open_source(path, format, attribute)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if source.classes is None:
        # classes.json, which every detectctl writer leaves beside its output.
        directory = path if os.path.isdir(path) else os.path.dirname(path) or "."
        try:
            source.classes = read_classes(directory)
        except FormatError as exc:
            source.problems.append(exc)
    return source
