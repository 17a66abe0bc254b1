"""Every validation problem, each on a small broken dataset built here, found in one pass."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from algorithm.data import recordio
from detectctl.datasets.validate import validate
from tests.datasets.support import CLASSES, jpeg, write


def ann(file, objects, size=(64, 48), categories=True, **extra):
    doc = {"file": file, "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
           "annotations": [{"class_id": c, "left": x, "top": y, "width": w, "height": h}
                           for c, x, y, w, h in objects], **extra}
    if categories:
        doc["categories"] = [{"class_id": i, "name": n} for i, n in enumerate(CLASSES)]
    return json.dumps(doc)


def png_header(width, height):
    """A PNG that claims a size and holds no pixels: a decompression bomb's header."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


@pytest.fixture()
def broken(tmp_path):
    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    good = jpeg(64, 48)
    files = {
        "good.jpg": good,
        "unreadable.jpg": b"this is not an image",
        "truncated.jpg": good[: len(good) // 2],
        "gray.jpg": jpeg(64, 48, mode="L", seed=2),
        "sixteen.png": None,
        "bomb.png": png_header(20000, 20000),
        "same.jpg": good,
        "orphan.jpg": jpeg(64, 48, seed=5),
        "boxes.jpg": jpeg(64, 48, seed=6),
        "crowded.jpg": jpeg(64, 48, seed=7),
        "size.jpg": jpeg(64, 48, seed=8),
        "tiny.jpg": jpeg(4, 3, seed=9),
        "float.tif": None,
    }
    buffer = io.BytesIO()
    Image.new("I;16", (64, 48)).save(buffer, "PNG")
    files["sixteen.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.new("F", (64, 48)).save(buffer, "TIFF")
    files["float.tif"] = buffer.getvalue()
    for name, data in files.items():
        (images / name).write_bytes(data)
    notes = {
        "good": ann("good.jpg", [(0, 1, 1, 20, 20)]),
        "unreadable": ann("unreadable.jpg", []),
        "truncated": ann("truncated.jpg", []),
        "gray": ann("gray.jpg", [(1, 2, 2, 10, 10)]),
        "sixteen": ann("sixteen.png", []),
        "bomb": ann("bomb.png", [], size=(20000, 20000)),
        "same": ann("same.jpg", [(0, 1, 1, 20, 20)]),
        "boxes": ann("boxes.jpg", [(0, 50, 40, 30, 30), (1, 10, 10, 0, 5), (2, 5, 5, -3, 4),
                                   (7, 1, 1, 5, 5), (1, 2, 2, 8, 8), (1, 2, 2, 8, 8)]),
        "crowded": ann("crowded.jpg", [(0, i, i, 4, 4) for i in range(3)]),
        "size": ann("size.jpg", [], size=(100, 48)),
        "tiny": ann("tiny.jpg", [(0, 0, 0, 2, 2)], size=(4, 3)),
        "float": ann("float.tif", []),
        "missing": ann("missing.jpg", []),
        "twice": ann("good.jpg", []),
        "malformed": '{"file": "x.jpg",\n "annotations": [}',
        "nofile": json.dumps({"annotations": []}),
    }
    for stem, text in notes.items():
        (annotations / f"{stem}.json").write_text(text)
    return tmp_path


def messages(report):
    return [f"{p.file} | {p.field} | {p.message}" for p in report.problems]


def find(report, *words):
    found = [m for m in messages(report) if all(w in m for w in words)]
    assert found, f"no problem with {words} in:\n" + "\n".join(messages(report))
    return found


def test_every_problem_in_one_pass(broken):
    report = validate(str(broken), num_classes=3, label_width=12)
    assert not report.valid
    find(report, "unreadable.jpg", "not a readable image")
    find(report, "truncated.jpg", "truncated or corrupt")
    find(report, "float.tif", "unsupported image mode F")
    find(report, "bomb.png", "decompression bomb")
    find(report, "same.jpg", "duplicate: same image as", "good.jpg")
    find(report, "orphan.jpg", "image without annotation")
    find(report, "missing.json", "annotation without image")
    find(report, "twice.json", "duplicate", "annotated more than once")
    find(report, "malformed.json", "malformed JSON at line 2")
    find(report, "nofile.json", "file", "missing")
    find(report, "boxes.json", "annotations[0]", "outside the image")
    find(report, "boxes.json", "annotations[1]", "zero or negative size")
    find(report, "boxes.json", "annotations[2]", "zero or negative size")
    find(report, "boxes.json", "annotations[3].class_id", "class id 7 out of range (0..2)")
    find(report, "boxes.json", "annotations[5]", "duplicate: same class and box")
    find(report, "crowded.json", "3 objects, more than label_width=12 holds (2")
    find(report, "size.json", "image_size", "declared 100x48, the image is 64x48")
    # Grayscale and 16-bit images are converted when read, as training and serving read them:
    # a warning, not a problem. So is an image of a few pixels.
    for name in ("gray.jpg", "sixteen.png", "tiny.jpg"):
        assert not [m for m in messages(report) if name in m]
    for name in ("gray.jpg", "sixteen.png"):
        assert any(name in w.file and "converted to 8-bit RGB" in w.message
                   for w in report.warnings)
    assert report.images == 8  # good, gray, sixteen, same, boxes, crowded, size, tiny


def test_a_clean_dataset_is_valid(tmp_path, samples):
    report = validate(write("sagemaker-json", str(tmp_path / "ok"), samples), num_classes=3)
    assert report.valid, messages(report)
    assert report.images == len(samples)
    assert report.objects == sum(s.num_objects for s, _ in samples)
    assert report.to_dict()["valid"] is True


def test_classes_not_consecutive_and_count_mismatch(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for i, cid in enumerate((0, 2)):
        (tmp_path / "images" / f"{i}.jpg").write_bytes(jpeg(seed=i))
        (tmp_path / "annotations" / f"{i}.json").write_text(
            ann(f"{i}.jpg", [(cid, 1, 1, 10, 10)], categories=False))
    report = validate(str(tmp_path))
    find(report, "classes", "not consecutive from 0: no object of class 1")
    declared = tmp_path / "annotations" / "0.json"
    doc = json.loads(declared.read_text())
    doc["categories"] = [{"class_id": 0, "name": "a"}, {"class_id": 2, "name": "c"}]
    declared.write_text(json.dumps(doc))
    find(validate(str(tmp_path)), "0.json", "categories", "consecutive from 0")


def test_declared_classes_against_num_classes(rec):
    report = validate(rec, num_classes=5)
    find(report, "classes", "3 classes declared, but --num-classes is 5")


def test_malformed_manifest_lines_are_numbered(tmp_path, samples):
    path = write("manifest", str(tmp_path / "m.manifest"), samples[:2])
    with open(path, "a") as f:
        f.write('{"source-ref": "images/img0.jpg", oops}\n')
        f.write('{"source-ref": "images/nothere.jpg", "bounding-box": '
                '{"image_size": [{"width": 96, "height": 72}], "annotations": []}}\n')
        f.write('{"source-ref": "images/img0.jpg", "bounding-box": '
                '{"image_size": [{"width": 96, "height": 72}], "annotations": []}}\n')
    report = validate(path)
    find(report, "m.manifest:3", "malformed JSON")
    find(report, "m.manifest:4", "annotation without image")
    find(report, "m.manifest:5", "duplicate", "line 1")


def test_malformed_records_are_numbered(tmp_path, rec):
    data = Path(rec).read_bytes()
    path = tmp_path / "bad.rec"
    label = recordio.detection_label([[0, .1, .1, .5, .5]], 5)
    bad_label = recordio.pack(recordio.IRHeader(0, [2.0, 5.0, 1.0], 99, 0), jpeg())
    broken_tail = recordio.frame(recordio.pack(recordio.IRHeader(0, label, 100, 0), jpeg()))
    path.write_bytes(data + recordio.frame(bad_label) + broken_tail[:-10])
    report = validate(str(path))
    find(report, "bad.rec#9", "truncated")
    find(report, "bad.rec#8", "label", "not a multiple of the object width")


def test_rec_index_problems(tmp_path, rec):
    import shutil

    copy = tmp_path / "copy.rec"
    shutil.copy(rec, copy)
    (tmp_path / "copy.idx").write_text("0\t0\n1\t12345\nnot a line\n")
    report = validate(str(copy))
    find(report, "copy.idx", "line 3", "key<TAB>offset")
    (tmp_path / "copy.idx").write_text("0\t0\n1\t12345\n")
    report = validate(str(copy))
    find(report, "copy.idx", "offset 12345 is not the start of a record")
    find(report, "copy.rec#2", "missing from")


def test_malformed_voc_xml(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "JPEGImages" / "a.jpg").write_bytes(jpeg())
    (tmp_path / "JPEGImages" / "b.jpg").write_bytes(jpeg(seed=1))
    (tmp_path / "Annotations" / "a.xml").write_text("<annotation>\n<size><width>64</wid")
    report = validate(str(tmp_path))
    find(report, "a.xml", "malformed XML at line 2")
    find(report, "b.jpg", "image without annotation")


def test_malformed_coco_json(tmp_path):
    path = tmp_path / "instances_x.json"
    path.write_text('{"images": [], "annotations": [],\n "categories": [}')
    find(validate(str(path)), "instances_x.json", "malformed JSON at line 2")
