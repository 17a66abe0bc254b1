"""Writers of the three training formats. Each also leaves ``classes.json`` beside its output.

- ``RecordIOWriter``: ``PATH.rec`` + ``PATH.idx`` + ``PATH.lst``, as MXNet's ``im2rec`` writes
  them (header width 2, object width 5, or 6 when an image has difficult objects). Images are
  stored as they are encoded, not re-encoded.
- ``SageMakerJsonWriter``: ``DIR/images/<name>`` and ``DIR/annotations/<stem>.json``.
- ``ManifestWriter``: ``PATH.manifest`` with ``source-ref`` relative to it, images in
  ``images/`` beside it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import numpy as np

from algorithm.data import recordio
from algorithm.data.manifest import DEFAULT_LABEL_ATTRIBUTE, manifest_line
from algorithm.data.sagemaker_json import sample_to_annotation
from algorithm.data.sample import Sample
from algorithm.data.sources import write_classes
from detectctl import formats
from detectctl.datasets.outputs import same_bytes


class _Writer:
    def __init__(self, classes: Optional[list[str]], classes_extra: Optional[dict] = None):
        self.classes = classes
        self.classes_extra = classes_extra or {}
        self.count = 0
        self.paths: list[str] = []
        self._names: set[str] = set()

    def unique_name(self, name: str) -> str:
        """``name``, or ``name`` with a counter before its extension when already taken."""
        stem, ext = os.path.splitext(name)
        candidate, n = name, 1
        while candidate.lower() in self._names:
            candidate = f"{stem}_{n}{ext}"
            n += 1
        self._names.add(candidate.lower())
        return candidate

    def save_image(self, directory: str, name: str, image: bytes) -> str:
        """Write ``image`` as ``directory/<unique name>``; returns the name used."""
        name = self.unique_name(name)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(image)
        return name

    def write_classes(self, directory: str) -> None:
        if self.classes is not None:
            self.paths.append(write_classes(directory, self.classes, **self.classes_extra))

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class RecordIOWriter(_Writer):
    def __init__(self, path: str, classes: Optional[list[str]] = None,
                 classes_extra: Optional[dict] = None):
        super().__init__(classes, classes_extra)
        if not path.endswith(".rec"):
            path += ".rec"
        self.directory = os.path.dirname(path) or "."
        os.makedirs(self.directory, exist_ok=True)
        base = path[:-4]
        self.paths = [path, base + ".idx", base + ".lst"]
        # The writer owns its files until close().
        self._rec = open(path, "wb")  # noqa: SIM115
        self._idx = open(base + ".idx", "w", encoding="utf-8")  # noqa: SIM115
        self._lst = open(base + ".lst", "w", encoding="utf-8")  # noqa: SIM115

    def add(self, sample: Sample, image: bytes, name: str, width: int, height: int) -> None:
        width_per_object = 6 if sample.difficult.any() else 5
        rows = np.concatenate([sample.labels[:, None].astype(np.float64),
                               sample.boxes.astype(np.float64),
                               sample.difficult[:, None].astype(np.float64)], axis=1)
        label = recordio.detection_label(rows.tolist(), width_per_object)
        key = self.count
        offset = self._rec.tell()
        self._rec.write(recordio.frame(recordio.pack(recordio.IRHeader(0, label, key, 0), image)))
        self._idx.write(f"{key}\t{offset}\n")
        self._lst.write(recordio.lst_line(key, label, self.unique_name(name)))
        self.count += 1

    def close(self) -> None:
        for f in (self._rec, self._idx, self._lst):
            f.close()
        self.write_classes(self.directory)


class SageMakerJsonWriter(_Writer):
    def __init__(self, directory: str, classes: Optional[list[str]] = None,
                 classes_extra: Optional[dict] = None):
        super().__init__(classes, classes_extra)
        self.directory = directory
        self.images = os.path.join(directory, "images")
        self.annotations = os.path.join(directory, "annotations")
        os.makedirs(self.images, exist_ok=True)
        os.makedirs(self.annotations, exist_ok=True)
        self.paths = [self.images, self.annotations]

    def add(self, sample: Sample, image: bytes, name: str, width: int, height: int) -> None:
        name = self.save_image(self.images, name, image)
        doc = sample_to_annotation(sample, name, width, height, self.classes)
        with open(os.path.join(self.annotations, os.path.splitext(name)[0] + ".json"), "w",
                  encoding="utf-8") as f:
            json.dump(doc, f)
        self.count += 1

    def close(self) -> None:
        self.write_classes(self.directory)


class ManifestWriter(_Writer):
    def __init__(self, path: str, classes: Optional[list[str]] = None,
                 classes_extra: Optional[dict] = None,
                 attribute: str = DEFAULT_LABEL_ATTRIBUTE):
        super().__init__(classes, classes_extra)
        if not path.endswith((".manifest", ".jsonl")):
            path += ".manifest"
        self.directory = os.path.dirname(path) or "."
        self.images = os.path.join(self.directory, "images")
        os.makedirs(self.images, exist_ok=True)
        self.attribute = attribute
        self.paths = [path, self.images]
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def add(self, sample: Sample, image: bytes, name: str, width: int, height: int) -> None:
        name = self.save_image(self.images, name, image)
        doc = sample_to_annotation(sample, name, width, height)
        self._file.write(manifest_line(f"images/{name}", doc, self.attribute, self.classes))
        self.count += 1

    def close(self) -> None:
        self._file.close()
        self.write_classes(self.directory)


def same_output(staged: str, existing: str) -> bool:
    """Whether a file already where a writer's file goes is the same: its bytes, or for a
    ``classes.json`` the classes it names (its other keys are notes: source, seed)."""
    from algorithm.data.sample import CLASSES_FILE, FormatError
    from algorithm.data.sources import read_classes

    if os.path.basename(existing) == CLASSES_FILE:
        try:
            return read_classes(os.path.dirname(staged)) == read_classes(os.path.dirname(existing))
        except FormatError:
            return False
    return same_bytes(staged, existing)


def open_writer(format: str, output: str, classes: Optional[list[str]] = None,
                classes_extra: Optional[dict] = None) -> Any:
    """A writer of ``format`` (``recordio``, ``sagemaker-json``, ``manifest``) at ``output``."""
    writer = {formats.RECORDIO: RecordIOWriter, formats.SAGEMAKER_JSON: SageMakerJsonWriter,
              formats.MANIFEST: ManifestWriter}[format]
    return writer(output, classes, classes_extra)
