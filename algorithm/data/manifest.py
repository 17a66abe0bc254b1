"""Augmented manifests (SageMaker Ground Truth JSON lines).

Each line::

    {"source-ref": "s3://bucket/images/dog.jpg",
     "bounding-box": {"image_size": [{"width": 500, "height": 400, "depth": 3}],
                      "annotations": [{"class_id": 0, "left": 111, "top": 134,
                                       "width": 61, "height": 128}]},
     "bounding-box-metadata": {"class-map": {"0": "dog"}, "type": "groundtruth/object-detection"}}

The label attribute's name (``bounding-box`` here) is configurable; when not given, it is the
one attribute holding ``annotations``. In File mode the manifest is read from disk and
``source-ref`` resolved to a local file; in Pipe mode SageMaker streams, per line, one RecordIO
record with the image bytes and one with the label attribute's JSON (``AttributeNames``
``["source-ref", "<label attribute>"]``, ``RecordWrapperType`` ``RecordIO``). No torch here.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from algorithm.data.fields import (
    FormatError,
    class_id,
    decode_text,
    file_name,
    load_json,
    shown,
)
from algorithm.data.sagemaker_json import annotation_to_sample
from algorithm.data.sample import Sample, class_name
from algorithm.images import ImageError, image_size, open_image

MANIFEST_EXTENSIONS = (".manifest", ".jsonl")
DEFAULT_LABEL_ATTRIBUTE = "bounding-box"


def label_attribute(doc: Dict[str, Any], where: str, name: Optional[str] = None) -> str:
    """The name of the label attribute of a manifest line."""
    if name is not None:
        if name not in doc:
            raise FormatError(where, name, "label attribute missing")
        return name
    found = [k for k, v in doc.items() if isinstance(v, dict) and "annotations" in v]
    if len(found) != 1:
        raise FormatError(where, "", "cannot tell the label attribute (an attribute holding "
                                     f"'annotations'): found {found or 'none'}; name it")
    return found[0]


def class_map(doc: Dict[str, Any], attribute: str, where: str) -> Optional[Dict[int, str]]:
    """Class names by id from ``<attribute>-metadata.class-map``, or None when absent."""
    meta = doc.get(attribute + "-metadata")
    if not isinstance(meta, dict) or "class-map" not in meta:
        return None
    field = attribute + "-metadata.class-map"
    cmap = meta["class-map"]
    if not isinstance(cmap, dict):
        raise FormatError(where, field, 'must map class ids to names, e.g. {"0": "dog"}')
    return {class_id(k, where, f"{field}.{shown(k)}"): class_name(v, where, f"{field}.{shown(k)}")
            for k, v in cmap.items()}


def class_names(names: Dict[int, str], where: str) -> List[str]:
    """The class list of the class maps of every line together: names by id, ``"<id>"`` for an
    id no line names. Refused when the unnamed ids outnumber the named ones, so that the list
    is never longer than twice what the data holds (a class-map naming class 1000000 alone is
    a mistake, not a million classes)."""
    if not names:
        return []
    count = max(names) + 1
    if count > 2 * len(names):
        raise FormatError(where, "class-map", f"names {len(names)} class(es) with ids up to "
                                              f"{count - 1}: class ids must be 0..N-1")
    return [names.get(i, str(i)) for i in range(count)]


def resolve_source_ref(ref: str, base_dir: str) -> str:
    """A local path for ``source-ref``: an absolute or manifest-relative path, or for
    ``s3://bucket/key`` the key (or its file name, or ``images/<name>``) under ``base_dir``."""
    if ref.startswith("s3://"):
        key = ref[5:].partition("/")[2]
        name = os.path.basename(key)
        for candidate in (key, name, os.path.join("images", name)):
            path = os.path.join(base_dir, candidate)
            if os.path.exists(path):
                return path
        return os.path.join(base_dir, key)
    return ref if os.path.isabs(ref) else os.path.join(base_dir, ref)


class ManifestSource:
    """The samples of an augmented manifest file (File mode).

    Lines that cannot be parsed are left out and listed in ``problems`` with their line numbers.
    """

    format = "manifest"

    def __init__(self, path: str, attribute: Optional[str] = None):
        self.path = path
        self.attribute = attribute
        self.problems: List[FormatError] = []
        self.classes: Optional[List[str]] = None
        self.samples: List[Sample] = []
        self._names: Optional[Dict[int, str]] = None
        base = os.path.dirname(os.path.abspath(path))
        seen: Dict[str, int] = {}
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            self.problems.append(FormatError(path, "", f"unreadable ({exc.strerror or exc})"))
            return
        for number, raw in enumerate(data.splitlines(), 1):
            where = f"{path}:{number}"
            try:
                line = decode_text(raw, where)
            except FormatError as exc:
                self.problems.append(exc)
                continue
            if not line.strip():
                continue
            try:
                sample = self._parse(line, where, base)
            except FormatError as exc:
                self.problems.append(exc)
                continue
            if sample.key in seen:
                self.problems.append(FormatError(where, "source-ref", f"duplicate: {sample.key} "
                                                                      f"is also on line "
                                                                      f"{seen[sample.key]}"))
                continue
            seen[sample.key] = number
            self.samples.append(sample)
        if self._names is not None:
            try:
                self.classes = class_names(self._names, path)
            except FormatError as exc:
                self.problems.append(exc)

    def _parse(self, line: str, where: str, base: str) -> Sample:
        doc = load_json(where, text=line)
        if not isinstance(doc, dict):
            raise FormatError(where, "", "must be a JSON object")
        ref = file_name(doc.get("source-ref"), where, "source-ref")
        attribute = label_attribute(doc, where, self.attribute)
        names = class_map(doc, attribute, where)
        if names is not None:
            self._names = self._names if self._names is not None else {}
            self._names.update(names)
        image_path = resolve_source_ref(ref, base)
        size = None
        if not isinstance(doc[attribute], dict) or not doc[attribute].get("image_size"):
            size = _size_or_none(image_path)
        return annotation_to_sample(doc[attribute], where, image_path, key=ref, size=size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def _size_or_none(path: str) -> Optional[tuple]:
    try:
        return image_size(path)
    except (ImageError, OSError):  # the validator reports unreadable images; here the size is
        return None                # just unknown


def sample_from_stream_pair(image: bytes, label: bytes, where: str) -> Sample:
    """A sample from Pipe mode's two records: the image bytes and the label attribute's JSON.

    The order is tolerated either way round (a JSON object never starts an image file).
    """
    if image[:1] == b"{" and label[:1] != b"{":
        image, label = label, image
    doc = load_json(where, text=decode_text(label, where))
    if isinstance(doc, dict) and "annotations" not in doc:
        # A whole manifest line rather than the bare attribute value.
        doc = doc[label_attribute(doc, where)]
    size = None
    if not isinstance(doc, dict) or not doc.get("image_size"):
        try:
            size = open_image(image).size
        except ImageError as exc:
            raise FormatError(where, "image", str(exc)) from None
    sample = annotation_to_sample(doc, where, None, key=where, size=size)
    sample.image_bytes = image
    return sample


def manifest_line(ref: str, doc: Dict[str, Any], attribute: str = DEFAULT_LABEL_ATTRIBUTE,
                  classes: Optional[List[str]] = None) -> str:
    """One manifest line for an image reference and its annotation object."""
    line: Dict[str, Any] = {"source-ref": ref,
                            attribute: {k: doc[k] for k in ("image_size", "annotations")}}
    meta: Dict[str, Any] = {"type": "groundtruth/object-detection"}
    if classes is not None:
        meta["class-map"] = {str(i): n for i, n in enumerate(classes)}
    line[attribute + "-metadata"] = meta
    return json.dumps(line) + "\n"
