"""Pascal VOC import: ``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<set>.txt``.

VOC pixel coordinates are 1-based and inclusive, so a box covering pixels ``xmin..xmax`` spans
``[xmin - 1, xmax]`` in pixel edges; that is what is normalised. ``difficult`` is kept. Classes
are the 20 VOC classes in their usual order when every name found is one of them, otherwise the
names found, sorted.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Optional

import numpy as np

from algorithm.data.sample import FormatError, Sample

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
            self.samples.append(Sample(
                key=os.path.relpath(image_path, path), boxes=boxes.astype(np.float32),
                labels=np.array([index[o[0]] for o in objects], np.int64),
                difficult=np.array([o[2] for o in objects], bool),
                image_path=image_path, size=size, where=where))

    def _image_set(self, name: str) -> list[str]:
        path = os.path.join(self.path, "ImageSets", "Main", name + ".txt")
        try:
            with open(path, encoding="utf-8") as f:
                return [line.split()[0] for line in f if line.strip()]
        except OSError as exc:
            self.problems.append(FormatError(path, "", f"image set unreadable ({exc})"))
            return []

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def _parse_xml(xml_path: str, images: str) -> tuple:
    """(where, image path, [(name, (x0, y0, x1, y1) edges, difficult)], (width, height))."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise FormatError(xml_path, "", f"malformed XML at line {line} column {column}: "
                                        f"{str(exc).split(':')[0]}") from None
    except OSError as exc:
        raise FormatError(xml_path, "", f"unreadable ({exc})") from None
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        filename = os.path.splitext(os.path.basename(xml_path))[0] + ".jpg"
    image_path = os.path.join(images, filename)
    if not os.path.exists(image_path):
        raise FormatError(xml_path, "filename", f"annotation without image: {image_path} not "
                                                "found")
    try:
        size = (int(root.findtext("size/width")), int(root.findtext("size/height")))
        if size[0] <= 0 or size[1] <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise FormatError(xml_path, "size", "needs positive integer width and height") from None
    objects = []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise FormatError(xml_path, f"object[{i}].name", "missing")
        try:
            edges = (float(obj.findtext("bndbox/xmin")) - 1, float(obj.findtext("bndbox/ymin")) - 1,
                     float(obj.findtext("bndbox/xmax")), float(obj.findtext("bndbox/ymax")))
        except (TypeError, ValueError):
            raise FormatError(xml_path, f"object[{i}].bndbox",
                              "needs numeric xmin, ymin, xmax, ymax") from None
        difficult = (obj.findtext("difficult") or "0").strip() not in ("0", "")
        objects.append((name, edges, difficult))
    return xml_path, image_path, objects, size
