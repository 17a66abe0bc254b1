"""Check a dataset before anything is uploaded: every problem, in one pass, never a traceback.

Problems (the dataset is invalid): images that ``algorithm.images`` refuses (unreadable,
corrupt or truncated data, a mode with no RGB meaning, decompression bombs); boxes outside the
image or of zero or negative size; class ids out of range or classes not consecutive from 0;
images without annotation and annotations without image; duplicate images, annotations or
objects; more objects than ``label_width`` holds; a declared image size that differs from the
real one; malformed JSON, XML or records (with the line or record number); no images at all.

Warnings (valid, but worth knowing): images that are not 8-bit, 3-channel RGB (grayscale,
palette, CMYK, RGBA, 16-bit...). The one image loader converts them to 8-bit RGB wherever they
are read (training, serving, conversion), so they train fine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from detectctl.datasets.readers import open_dataset

# The image loader's limit (about 89.5 million pixels); larger images are treated as bombs.
DEFAULT_MAX_PIXELS = 89_478_485
DEFAULT_LABEL_WIDTH = 350
# Normalised coordinates may stray this far outside [0, 1] (rounding) before it is a problem.
BOX_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: the file (with line or record), field, and message."""

    file: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.file}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class ValidationReport:
    """The outcome of :func:`validate`. ``valid`` when there are no problems."""

    path: str
    format: str
    images: int = 0
    objects: int = 0
    classes: Optional[list[str]] = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "path": self.path, "format": self.format,
                "images": self.images, "objects": self.objects, "classes": self.classes,
                "problems": [p.to_dict() for p in self.problems],
                "warnings": [w.to_dict() for w in self.warnings]}


def validate(path: str, format: Optional[str] = None, *, num_classes: Optional[int] = None,
             label_width: int = DEFAULT_LABEL_WIDTH, max_pixels: int = DEFAULT_MAX_PIXELS,
             attribute: Optional[str] = None, image_set: Optional[str] = None,
             images_dir: Optional[str] = None,
             progress: Optional[Callable[[int, int], None]] = None) -> ValidationReport:
    """Check every image and annotation of ``path``; see the module docstring for the checks.

    ``images`` counts the images that could be read with their annotation, ``objects`` their
    objects. Raises ``UsageError`` only for arguments (a missing path, an unknown format).
    """
    from algorithm.data.sample import FormatError

    data = open_dataset(path, format, attribute=attribute, image_set=image_set,
                        images_dir=images_dir)
    report = ValidationReport(path, data.format, classes=data.classes)
    report.problems.extend(Problem(p.file, p.field, p.message) for p in data.problems)
    checker = _Checker(report, num_classes, label_width, max_pixels)
    for index in range(len(data)):
        try:
            sample = data[index]
        except FormatError as exc:
            report.problems.append(Problem(exc.file, exc.field, exc.message))
            continue
        checker.check(sample)
        if progress is not None:
            progress(index + 1, len(data))
    checker.check_classes(data.classes)
    if not len(data) and not report.problems:
        report.problems.append(Problem(path, "", f"no images: an empty {data.format} dataset"))
    return report


class _Checker:
    def __init__(self, report: ValidationReport, num_classes: Optional[int], label_width: int,
                 max_pixels: int):
        self.report = report
        self.num_classes = num_classes
        self.label_width = label_width
        self.max_pixels = max_pixels
        self.hashes: dict[str, str] = {}
        self.record_ids: dict[int, str] = {}
        self.used: set[int] = set()

    def problem(self, where: str, field: str, message: str) -> None:
        self.report.problems.append(Problem(where, field, message))

    def check(self, sample: Any) -> None:
        where = sample.where or sample.key
        if sample.record_id is not None:
            if sample.record_id in self.record_ids:
                self.problem(where, "id", f"duplicate: record id {sample.record_id} also in "
                                          f"{self.record_ids[sample.record_id]}")
            self.record_ids.setdefault(sample.record_id, where)
        try:
            data = sample.read_image_bytes()
        except OSError:
            self.problem(where, "image", f"annotation without image: {sample.image_path} not "
                                         "found or unreadable")
            return
        digest = hashlib.sha1(data).hexdigest()
        if digest in self.hashes:
            self.problem(sample.image_path or where, "image",
                         f"duplicate: same image as {self.hashes[digest]}")
        self.hashes.setdefault(digest, sample.image_path or where)
        size = self.check_image(data, sample.image_path or where)
        if size is None:
            return
        if sample.size is not None and tuple(sample.size) != tuple(size):
            self.problem(where, "image_size", f"declared {sample.size[0]}x{sample.size[1]}, "
                                              f"the image is {size[0]}x{size[1]}")
        self.check_objects(sample, where)
        self.report.images += 1
        self.report.objects += sample.num_objects

    def check_image(self, data: bytes, where: str) -> Optional[tuple]:
        """The image's (width, height), or None after reporting why it cannot be used. The
        image is decoded whole (a JPEG at 1/8 scale, which still reads every byte) by the
        loader that training and serving use."""
        from algorithm.images import ImageError, decode, open_image

        try:
            image = open_image(data, self.max_pixels)
            mode, size = image.mode, image.size
            decode(image, scale=8)
        except ImageError as exc:
            self.problem(where, "image", str(exc))
            return None
        if mode != "RGB":
            self.report.warnings.append(Problem(
                where, "image", f"{mode} image, not 8-bit 3-channel RGB: converted to 8-bit RGB "
                                "when read"))
        return size

    def check_objects(self, sample: Any, where: str) -> None:
        boxes, labels = sample.boxes.astype(np.float64), sample.labels
        width = 6 if sample.difficult.any() else 5
        most = (self.label_width - 2) // width
        if sample.num_objects > most:
            self.problem(where, "annotations", f"{sample.num_objects} objects, more than "
                                               f"label_width={self.label_width} holds ({most} "
                                               f"of width {width}); raise label_width")
        seen: dict[tuple, int] = {}
        for i, (box, label) in enumerate(zip(boxes, labels)):
            field = f"annotations[{i}]"
            text = "(" + ", ".join(f"{v:.4f}" for v in box) + ")"
            if box[2] <= box[0] or box[3] <= box[1]:
                self.problem(where, field, f"box {text} has zero or negative size")
            if (box < -BOX_TOLERANCE).any() or (box > 1 + BOX_TOLERANCE).any():
                self.problem(where, field, f"box {text} lies outside the image "
                                           "(normalised coordinates outside [0, 1])")
            if self.num_classes is not None and label >= self.num_classes:
                allowed = f"0..{self.num_classes - 1}"
                self.problem(where, field + ".class_id", f"class id {label} out of range "
                                                         f"({allowed})")
            else:
                self.used.add(int(label))
            key = (int(label), *np.round(box, 6).tolist())
            if key in seen:
                self.problem(where, field, f"duplicate: same class and box as "
                                           f"annotations[{seen[key]}]")
            seen.setdefault(key, i)

    def check_classes(self, classes: Optional[list[str]]) -> None:
        where = self.report.path
        if classes is not None:
            if self.num_classes is not None and len(classes) != self.num_classes:
                self.problem(where, "classes", f"{len(classes)} classes declared, but "
                                               f"--num-classes is {self.num_classes}")
            beyond = sorted(c for c in self.used if c >= len(classes))
            if beyond:
                self.problem(where, "classes", f"class ids {beyond} have no declared name "
                                               f"({len(classes)} classes declared)")
            return
        missing = first_missing(self.used)
        if missing:
            count = max(self.used) + 1 - len(self.used)
            self.problem(where, "classes", f"class ids are not consecutive from 0: no object "
                                           f"of class {', '.join(map(str, missing))}"
                                           + (f" (and {count - len(missing)} more)"
                                              if count > len(missing) else ""))


def first_missing(used: set[int], count: int = 10) -> list[int]:
    """The first ``count`` ids missing from ``used`` below its largest, in time and memory
    bounded by ``len(used)`` whatever the ids."""
    missing: list[int] = []
    expected = 0
    for value in sorted(used):
        while expected < value and len(missing) < count:
            missing.append(expected)
            expected += 1
        expected = value + 1
        if len(missing) >= count:
            break
    return missing
