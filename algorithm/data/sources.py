"""One reading interface over every on-disk format, and the classes file.

``open_source(path, format)`` returns a *source*: ``len(source)``, ``source[i]`` -> :class:`Sample`
(which may raise :class:`FormatError` for a bad entry), ``source.classes`` (names or None),
``source.problems`` (entries left out because they could not be parsed or paired) and
``source.path``. Formats: ``recordio``, ``sagemaker-json``, ``manifest``. No torch here.
"""

from __future__ import annotations

import json
import os
from typing import Any, List, Optional, Tuple

from algorithm.data.fields import load_json
from algorithm.data.manifest import MANIFEST_EXTENSIONS, ManifestSource
from algorithm.data.recordio import RecordIOError, read_idx, read_record, unpack_detection
from algorithm.data.sagemaker_json import SageMakerJsonSource
from algorithm.data.sample import (
    CLASSES_FILE,
    FormatError,
    Sample,
    class_name,
    objects_to_arrays,
)

FORMATS = ("recordio", "sagemaker-json", "manifest")


def read_classes(directory: str) -> Optional[List[str]]:
    """Class names from ``classes.json`` in ``directory``, or None when there is none.

    The file is ``{"classes": ["name of class 0", ...]}`` (other keys are kept for people, e.g.
    the COCO category ids the classes came from).
    """
    path = os.path.join(directory, CLASSES_FILE)
    if not os.path.isfile(path):
        return None
    doc = load_json(path)
    names = doc.get("classes") if isinstance(doc, dict) else None
    if not isinstance(names, list):
        raise FormatError(path, "classes", 'expected {"classes": ["name", ...]}')
    return [class_name(n, path, f"classes[{i}]") for i, n in enumerate(names)]


def write_classes(directory: str, classes: List[str], **extra: Any) -> str:
    """Write ``classes.json`` in ``directory``; returns its path."""
    path = os.path.join(directory, CLASSES_FILE)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"classes": list(classes), **extra}, f, indent=2)
        f.write("\n")
    return path


class _PreadStream:
    """A read-only stream over ``os.pread``: no shared file offset, so forked DataLoader workers
    can read one descriptor at once."""

    def __init__(self, fd: int, offset: int):
        self.fd, self.offset = fd, offset

    def read(self, n: int) -> bytes:
        data = os.pread(self.fd, n, self.offset)
        self.offset += len(data)
        return data

    def seekable(self) -> bool:
        return False


def sample_from_record(payload: bytes, where: str) -> Sample:
    """A :class:`Sample` from one RecordIO detection record."""
    try:
        header, rows, image = unpack_detection(payload)
    except ValueError as exc:
        raise FormatError(where, "label", str(exc)) from None
    boxes, labels, difficult = objects_to_arrays(rows, where)
    return Sample(key=str(header.id), boxes=boxes, labels=labels, difficult=difficult,
                  image_bytes=image, record_id=int(header.id), where=where)


class RecordIOSource:
    """The records of one or more ``.rec`` files (random access by ``.idx``, else by a scan).

    ``path`` is a ``.rec`` file or a directory holding them (a SageMaker channel).
    """

    format = "recordio"

    def __init__(self, path: str):
        self.path = path
        self.problems: List[FormatError] = []
        if os.path.isdir(path):
            files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".rec"))
            directory = path
        else:
            files, directory = [path], os.path.dirname(path) or "."
        if not files:
            self.problems.append(FormatError(path, "", "no .rec file found"))
        self.files = files
        try:
            self.classes = read_classes(directory)
        except FormatError as exc:
            self.problems.append(exc)
            self.classes = None
        self.entries: List[Tuple[int, int]] = []  # (file index, offset)
        for number, file in enumerate(files):
            self.entries.extend((number, off) for off in self._offsets(file))
        self._fds: dict = {}
        self._pid = os.getpid()

    def _offsets(self, rec: str) -> List[int]:
        idx = os.path.splitext(rec)[0] + ".idx"
        scanned, error = _scan(rec)
        if error is not None:
            self.problems.append(error)
        if not os.path.isfile(idx):
            return scanned
        try:
            keyed = read_idx(idx)
        except FormatError as exc:  # not a text file
            self.problems.append(exc)
            return scanned
        except ValueError as exc:
            self.problems.append(FormatError(idx, "", str(exc)))
            return scanned
        valid = set(scanned)
        seen = set()
        for key, offset in keyed:
            if key in seen:
                self.problems.append(FormatError(idx, "key", f"duplicate: key {key}"))
            elif offset not in valid:
                self.problems.append(FormatError(idx, "offset", f"key {key}: offset {offset} "
                                                                f"is not the start of a record"))
            seen.add(key)
        indexed = {offset for _, offset in keyed}
        for number, offset in enumerate(scanned):
            if offset not in indexed:
                self.problems.append(FormatError(f"{rec}#{number}", "", f"record at byte "
                                                 f"{offset} is missing from {idx}"))
        return scanned

    def __len__(self) -> int:
        return len(self.entries)

    def _fd(self, number: int) -> int:
        if self._pid != os.getpid():
            self._fds, self._pid = {}, os.getpid()
        if number not in self._fds:
            self._fds[number] = os.open(self.files[number], os.O_RDONLY)
        return self._fds[number]

    def __getitem__(self, index: int) -> Sample:
        number, offset = self.entries[index]
        where = f"{self.files[number]}#{index}"
        try:
            payload = read_record(_PreadStream(self._fd(number), offset), offset)
        except RecordIOError as exc:
            raise FormatError(where, "", str(exc)) from None
        if payload is None:
            raise FormatError(where, "", f"no record at byte {offset}")
        return sample_from_record(payload, where)


def _scan(rec: str) -> Tuple[List[int], Optional[FormatError]]:
    """Offsets of every whole record of a ``.rec`` file, reading headers only."""
    import struct

    from algorithm.data.recordio import LENGTH_MASK, MAGIC

    offsets: List[int] = []
    start = pos = 0
    try:
        size = os.path.getsize(rec)
        with open(rec, "rb") as f:
            in_record = False
            while pos < size:
                head = f.read(8)
                if len(head) < 8:
                    raise RecordIOError("truncated record header", pos)
                magic, lrec = struct.unpack("<II", head)
                if magic != MAGIC:
                    raise RecordIOError(f"bad magic 0x{magic:08x}", pos)
                cflag, length = lrec >> 29, lrec & LENGTH_MASK
                if in_record != (cflag in (2, 3)):
                    raise RecordIOError(f"unexpected continuation flag {cflag}", pos)
                if not in_record:
                    start = pos
                pos += 8 + ((length + 3) & ~3)
                if pos > size:
                    raise RecordIOError(f"record truncated: the file ends {pos - size} bytes "
                                        "early", start)
                in_record = cflag in (1, 2)
                if not in_record:
                    offsets.append(start)
                f.seek(pos)
            if in_record:
                raise RecordIOError("file ends inside a multi-part record", start)
    except RecordIOError as exc:
        return offsets, FormatError(f"{rec}#{len(offsets)}", "", str(exc))
    except OSError as exc:
        return offsets, FormatError(rec, "", f"unreadable ({exc})")
    return offsets, None


def detect_format(path: str) -> str:
    """Guess the format of ``path`` from what is on disk."""
    if path.endswith(".rec"):
        return "recordio"
    if path.endswith(MANIFEST_EXTENSIONS):
        return "manifest"
    if os.path.isdir(path):
        names = os.listdir(path)
        if any(n.endswith(".rec") for n in names):
            return "recordio"
        if "annotations" in names or os.path.isdir(path + "_annotation"):
            return "sagemaker-json"
        if any(n.endswith(MANIFEST_EXTENSIONS) for n in names):
            return "manifest"
    raise ValueError(f"cannot tell the format of {path}; name it (one of {', '.join(FORMATS)})")


def sagemaker_json_dirs(path: str) -> Tuple[str, str]:
    """(images, annotations) directories: ``DIR/images`` and ``DIR/annotations``, or a channel
    ``.../train`` beside ``.../train_annotation``."""
    if os.path.isdir(os.path.join(path, "annotations")):
        return os.path.join(path, "images"), os.path.join(path, "annotations")
    return path, path.rstrip("/") + "_annotation"


def open_source(path: str, format: Optional[str] = None, attribute: Optional[str] = None) -> Any:
    """A source over ``path`` in ``format`` (guessed when None); see the module docstring."""
    format = format or detect_format(path)
    if format == "recordio":
        return RecordIOSource(path)
    if format == "sagemaker-json":
        return SageMakerJsonSource(*sagemaker_json_dirs(path))
    if format == "manifest":
        if os.path.isdir(path):
            found = sorted(n for n in os.listdir(path) if n.endswith(MANIFEST_EXTENSIONS))
            if not found:
                raise ValueError(f"no .manifest file in {path}")
            path = os.path.join(path, found[0])
        return ManifestSource(path, attribute)
    raise ValueError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
