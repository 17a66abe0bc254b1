"""Pascal VOC import: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<set>.txt``.

VOC pixel coordinates are 1-based and inclusive, so a box covering pixels ``xmin..xmax`` spans
``[xmin - 1, xmax]`` in pixel edges; that is what is normalised. ``difficult`` is kept. Classes
are the 20 VOC classes in their usual order when every name found is one of them, otherwise the
names found, sorted.
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from typing import Optional
from xml.parsers import expat

import numpy as np

from algorithm.data.fields import FormatError, file_name, integer, number, read_text
from algorithm.data.sample import Sample
from algorithm.images import MAX_PIXELS

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


class VOCSource:
    """The images of a VOC year directory (``VOCdevkit/VOC2007``), optionally one image set."""

    format = "voc"

    def __init__(self, path: str, image_set: Optional[str] = None):
        self.path = path
        self.problems: list[FormatError] = []
        self.samples: list[Sample] = []
        annotations = os.path.join(path, "Annotations")
        images = os.path.join(path, "JPEGImages")
        if not os.path.isdir(annotations):
            self.problems.append(FormatError(annotations, "", "VOC Annotations directory not "
                                                              "found"))
            self.classes: Optional[list[str]] = None
            return
        if image_set:
            ids = self._image_set(image_set)
        else:
            ids = sorted(n[:-4] for n in os.listdir(annotations) if n.endswith(".xml"))
        parsed = []
        seen: set[str] = set()
        for image_id in ids:
            xml_path = os.path.join(annotations, image_id + ".xml")
            if image_id in seen:
                self.problems.append(FormatError(xml_path, "", f"duplicate: {image_id} is listed "
                                                               "more than once"))
                continue
            seen.add(image_id)
            try:
                parsed.append(_parse_xml(xml_path, images))
            except FormatError as exc:
                self.problems.append(exc)
        if os.path.isdir(images) and not image_set:
            for name in sorted(os.listdir(images)):
                stem = os.path.splitext(name)[0]
                if stem not in seen and not name.startswith("."):
                    self.problems.append(FormatError(os.path.join(images, name), "",
                                                     "image without annotation"))
        names = sorted({obj[0] for _, _, objects, _ in parsed for obj in objects})
        self.classes = list(VOC_CLASSES) if set(names) <= set(VOC_CLASSES) else names
        index = {name: i for i, name in enumerate(self.classes)}
        for where, image_path, objects, size in parsed:
            boxes = np.array([o[1] for o in objects], np.float64).reshape(-1, 4)
            boxes = boxes / np.array([size[0], size[1], size[0], size[1]], np.float64)
            try:
                self.samples.append(Sample(
                    key=os.path.relpath(image_path, path), boxes=boxes.astype(np.float32),
                    labels=np.array([index[o[0]] for o in objects], np.int64),
                    difficult=np.array([o[2] for o in objects], bool),
                    image_path=image_path, size=size, where=where))
            except FormatError as exc:
                self.problems.append(exc)

    def _image_set(self, name: str) -> list[str]:
        path = os.path.join(self.path, "ImageSets", "Main", name + ".txt")
        ids = []
        try:
            for number_, line in enumerate(read_text(path).splitlines(), 1):
                if line.strip():
                    ids.append(file_name(line.split()[0], f"{path}:{number_}", ""))
        except FormatError as exc:
            self.problems.append(exc)
        return ids

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


class _EntityDeclared(Exception):
    pass


def _refuse_entities(xml_path: str) -> None:
    """Raise _EntityDeclared at the first entity declaration (a "billion laughs"), before
    ElementTree expands any; malformed XML is left for ElementTree to report."""
    parser = expat.ParserCreate()

    def refuse(*_: object) -> None:
        raise _EntityDeclared()

    parser.EntityDeclHandler = refuse
    with open(xml_path, "rb") as f, contextlib.suppress(expat.ExpatError):
        parser.ParseFile(f)


def _parse_xml(xml_path: str, images: str) -> tuple:
    """(where, image path, [(name, (x0, y0, x1, y1) edges, difficult)], (width, height))."""
    try:
        _refuse_entities(xml_path)
        root = ET.parse(xml_path).getroot()
    except _EntityDeclared:
        raise FormatError(xml_path, "", "XML entity declarations are not read (VOC annotations "
                                        "have none; they can expand a small file into "
                                        "gigabytes)") from None
    except ET.ParseError as exc:
        line, column = exc.position
        raise FormatError(xml_path, "", f"malformed XML at line {line} column {column}: "
                                        f"{str(exc).split(':')[0]}") from None
    except OSError as exc:
        raise FormatError(xml_path, "", f"unreadable ({exc.strerror or exc})") from None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        filename = os.path.splitext(os.path.basename(xml_path))[0] + ".jpg"
    image_path = os.path.join(images, file_name(filename, xml_path, "filename"))
    if not os.path.exists(image_path):
        raise FormatError(xml_path, "filename", f"annotation without image: {image_path} not "
                                                "found")
    for side in ("width", "height"):
        if root.findtext(f"size/{side}") is None:
            raise FormatError(xml_path, "size", "needs positive integer width and height")
    size = (integer(root.findtext("size/width"), xml_path, "size.width", 1, MAX_PIXELS),
            integer(root.findtext("size/height"), xml_path, "size.height", 1, MAX_PIXELS))
    objects = []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise FormatError(xml_path, f"object[{i}].name", "missing")
        values = [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
        if None in values:
            raise FormatError(xml_path, f"object[{i}].bndbox",
                              "needs numeric xmin, ymin, xmax, ymax")
        x0, y0, x1, y1 = (number(v, xml_path, f"object[{i}].bndbox.{k}")
                          for v, k in zip(values, ("xmin", "ymin", "xmax", "ymax")))
        edges = (x0 - 1, y0 - 1, x1, y1)
        difficult = (obj.findtext("difficult") or "0").strip() not in ("0", "")
        objects.append((name, edges, difficult))
    return xml_path, image_path, objects, size
