"""Checks that one input, in one reader's format, ends in nothing but the project's own errors,
within the memory bound; shared by the property tests and the corpus replay.

Each ``check_<reader>(data)`` builds the smallest dataset around ``data`` in a temporary folder
and runs what a user runs on it: ``dataset validate``, ``dataset stats``, the training Dataset
(every sample decoded and augmented), or ``evaluate`` and ``hyperparameters validate``.

Allowed outcomes: a result; a :class:`~detectctl.errors.DetectctlError` (the CLI prints it on one
line); from the data plane, a ``ValueError`` whose message names the input (what the training job
writes to its failure file). Anything else, or a peak of traced memory over :data:`BOUND` plus
:data:`PER_BYTE` times the input's size, fails the example.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import yaml  # noqa: F401  (imported before any memory is traced: imports are not the readers')
from PIL import Image

import algorithm.data.dataset
import algorithm.evaluation  # noqa: F401
import detectctl.datasets.coco
import detectctl.datasets.stats
import detectctl.datasets.validate
import detectctl.datasets.voc
import detectctl.evaluation
import detectctl.hyperparameters  # noqa: F401
from detectctl.errors import DetectctlError

# The stated memory bound of one example: a fixed allowance for the readers' own working set
# (numpy, a decoded 64x48 image, the augmentation's 128x128 output), plus a few times the input.
BOUND = 24 << 20
PER_BYTE = 64
IMAGE_SHAPE = 128


@contextlib.contextmanager
def bounded_memory(size: int) -> Iterator[None]:
    """Fail when the traced peak inside the block exceeds BOUND + PER_BYTE * size."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = BOUND + PER_BYTE * size
    assert peak <= limit, f"peak memory {peak:,} bytes > bound {limit:,} for {size:,} input bytes"


@contextlib.contextmanager
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="detectctl-fuzz-") as name:
        yield Path(name)


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


JPEG = jpeg()


def png(width: int = 16, height: int = 12) -> bytes:
    """A small 16-bit grayscale PNG (one of the modes the loader converts)."""
    values = (np.arange(width * height, dtype=np.uint16) * 257).reshape(height, width)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    return buffer.getvalue()


def only_own_errors(call: Callable[[], object]) -> None:
    """Run ``call``; a DetectctlError is a clean refusal, anything else propagates (and fails)."""
    with contextlib.suppress(DetectctlError):
        call()


def client_reads(path: Path, fmt: str | None = None) -> None:
    """What the client does with a dataset: validate and stats (each catches per-entry errors)."""
    from detectctl.datasets.stats import stats
    from detectctl.datasets.validate import validate

    only_own_errors(lambda: validate(str(path), fmt))
    only_own_errors(lambda: stats(str(path), fmt))


def training_reads(path: Path, fmt: str) -> None:
    """What the training job does: build the Dataset (a ValueError refuses the data, naming it)
    and read every sample (a bad one is handed over as a BadSample, never raised)."""
    from algorithm.data import BadSample, build_dataset

    try:
        dataset = build_dataset(str(path), fmt, IMAGE_SHAPE, train=True, seed=1, num_classes=3)
    except ValueError as exc:
        assert str(path) in str(exc) or os.path.basename(str(path)) in str(exc), exc
        return
    for item in dataset:
        if isinstance(item, BadSample):
            assert str(item.error)
            return
        image, boxes, _labels, _ = item
        assert image.shape == (3, IMAGE_SHAPE, IMAGE_SHAPE)
        assert bool((boxes >= 0).all() and (boxes <= 1).all())


# --- one function per reader ---------------------------------------------------------------


def check_recordio(data: bytes) -> None:
    """``data`` as a .rec file (no .idx: indexed by a scan)."""
    with folder() as root, bounded_memory(len(data)):
        (root / "data.rec").write_bytes(data)
        client_reads(root / "data.rec")
        training_reads(root / "data.rec", "recordio")


def check_recordio_index(data: bytes) -> None:
    """``data`` as the .idx of a valid two-record .rec."""
    with folder() as root, bounded_memory(len(data)):
        (root / "data.rec").write_bytes(valid_recordio())
        (root / "data.idx").write_bytes(data)
        client_reads(root / "data.rec")
        training_reads(root / "data.rec", "recordio")


def check_classes(data: bytes) -> None:
    """``data`` as the classes.json beside a valid .rec."""
    with folder() as root, bounded_memory(len(data)):
        (root / "data.rec").write_bytes(valid_recordio())
        (root / "classes.json").write_bytes(data)
        client_reads(root / "data.rec")
        training_reads(root / "data.rec", "recordio")


def check_sagemaker_json(data: bytes) -> None:
    """``data`` as the annotation JSON of one valid image."""
    with folder() as root, bounded_memory(len(data)):
        (root / "images").mkdir()
        (root / "annotations").mkdir()
        (root / "images" / "a.jpg").write_bytes(JPEG)
        (root / "annotations" / "a.json").write_bytes(data)
        client_reads(root)
        training_reads(root, "sagemaker-json")


def check_manifest(data: bytes) -> None:
    """``data`` as an augmented manifest whose lines may name images/a.jpg."""
    with folder() as root, bounded_memory(len(data)):
        (root / "images").mkdir()
        (root / "images" / "a.jpg").write_bytes(JPEG)
        (root / "data.manifest").write_bytes(data)
        client_reads(root / "data.manifest")
        training_reads(root / "data.manifest", "manifest")


def check_voc(data: bytes) -> None:
    """``data`` as the XML of one VOC image."""
    with folder() as root, bounded_memory(len(data)):
        (root / "Annotations").mkdir()
        (root / "JPEGImages").mkdir()
        (root / "JPEGImages" / "a.jpg").write_bytes(JPEG)
        (root / "Annotations" / "a.xml").write_bytes(data)
        client_reads(root, "voc")


def check_coco(data: bytes) -> None:
    """``data`` as a COCO instances JSON beside images/a.jpg."""
    with folder() as root, bounded_memory(len(data)):
        (root / "images").mkdir()
        (root / "images" / "a.jpg").write_bytes(JPEG)
        (root / "instances_x.json").write_bytes(data)
        client_reads(root / "instances_x.json", "coco")


def check_image(data: bytes) -> None:
    """``data`` as the image of a valid annotation: the one loader, through every reader."""
    from algorithm.images import ImageError, load_image

    with folder() as root, bounded_memory(len(data)):
        with contextlib.suppress(ImageError):
            load_image(data, shrink_to=(IMAGE_SHAPE, IMAGE_SHAPE))
        (root / "data.rec").write_bytes(record([2, 5, 0, .1, .1, .6, .7], data))
        client_reads(root / "data.rec")
        training_reads(root / "data.rec", "recordio")


def check_hyperparameters(data: bytes, suffix: str = ".yaml") -> None:
    """``data`` as a hyperparameter file: `detectctl hyperparameters validate`."""
    from detectctl.hyperparameters import load_file, validate

    with folder() as root, bounded_memory(len(data)):
        path = root / f"hp{suffix}"
        path.write_bytes(data)
        only_own_errors(lambda: validate(load_file(path), source=str(path)))


def check_predictions(data: bytes) -> None:
    """``data`` as a predictions file scored against a one-image dataset: `detectctl
    evaluate`."""
    from detectctl.evaluation import evaluate_predictions

    with folder() as root, bounded_memory(len(data)):
        dataset = root / "data"
        (dataset / "images").mkdir(parents=True)
        (dataset / "annotations").mkdir()
        (dataset / "images" / "a.jpg").write_bytes(JPEG)
        (dataset / "annotations" / "a.json").write_text(json.dumps(VALID_ANNOTATION))
        (root / "p.jsonl").write_bytes(data)
        only_own_errors(lambda: evaluate_predictions(root / "p.jsonl", dataset))


CHECKS: dict[str, Callable[[bytes], None]] = {
    "recordio": check_recordio, "recordio-index": check_recordio_index,
    "classes": check_classes, "sagemaker-json": check_sagemaker_json,
    "manifest": check_manifest, "voc": check_voc, "coco": check_coco, "image": check_image,
    "hyperparameters": check_hyperparameters, "predictions": check_predictions,
}


# --- valid inputs, the seeds of the mutations ------------------------------------------------

VALID_ANNOTATION = {
    "file": "a.jpg", "image_size": [{"width": 64, "height": 48, "depth": 3}],
    "annotations": [{"class_id": 0, "left": 4, "top": 5, "width": 20, "height": 18},
                    {"class_id": 2, "left": 30, "top": 10, "width": 30, "height": 30,
                     "difficult": 1}],
    "categories": [{"class_id": 0, "name": "a"}, {"class_id": 1, "name": "b"},
                   {"class_id": 2, "name": "c"}]}

VALID_MANIFEST_LINE = {
    "source-ref": "images/a.jpg",
    "bounding-box": {"image_size": VALID_ANNOTATION["image_size"],
                     "annotations": VALID_ANNOTATION["annotations"]},
    "bounding-box-metadata": {"class-map": {"0": "a", "1": "b", "2": "c"},
                              "type": "groundtruth/object-detection"}}

VALID_COCO = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [4, 5, 20, 18],
                     "iscrowd": 0}],
    "categories": [{"id": 1, "name": "a"}, {"id": 3, "name": "c"}]}

VALID_VOC = ("<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height>"
             "<depth>3</depth></size><object><name>dog</name><difficult>0</difficult><bndbox>"
             "<xmin>5</xmin><ymin>6</ymin><xmax>24</xmax><ymax>23</ymax></bndbox></object>"
             "</annotation>")

VALID_HYPERPARAMETERS = {"num_classes": 3, "base_network": "mobilenet-v3-large",
                         "image_shape": 128, "lr_scheduler_step": "10,20",
                         "freeze_layer_pattern": "^backbone", "learning_rate": 0.01}

VALID_PREDICTION = {"file": "a.jpg", "prediction": [[0, 0.9, 0.06, 0.1, 0.38, 0.48],
                                                     [2, 0.5, 0.5, 0.2, 0.9, 0.8]]}


def record(label: list[float], image: bytes = JPEG, record_id: int = 0) -> bytes:
    from algorithm.data import recordio

    array = np.asarray(label, "<f4")
    payload = struct.pack("<IfQQ", array.size, 0.0, record_id, 0) + array.tobytes() + image
    return recordio.frame(payload)


def valid_recordio() -> bytes:
    return record([2, 5, 0, .1, .1, .5, .5]) + record([2, 6, 1, .2, .2, .9, .8, 1], jpeg(seed=1),
                                                       record_id=1)
