"""The data-format vocabulary: the one place detectctl names its dataset formats.

Three formats train (the built-in algorithm's input formats, and ``algorithm.data.sources``'s
names for them); two more are read for conversion only::

    recordio          a .rec file (+ .idx), RecordIO-packed images with their labels
    sagemaker-json    images/ + annotations/ (one JSON per image); the built-in algorithm calls
                      this the "image" format, and ``image`` is accepted as its alias
    manifest          an augmented manifest (JSON lines with source-ref and a label attribute)
    voc, coco         Pascal VOC and COCO, converted by `detectctl dataset convert`
"""

from __future__ import annotations

from typing import Optional

from detectctl.errors import UsageError

RECORDIO = "recordio"
SAGEMAKER_JSON = "sagemaker-json"
MANIFEST = "manifest"
VOC = "voc"
COCO = "coco"

TRAINING_FORMATS = (RECORDIO, SAGEMAKER_JSON, MANIFEST)
READ_FORMATS = (*TRAINING_FORMATS, VOC, COCO)
ALIASES = {"image": SAGEMAKER_JSON, "rec": RECORDIO}

RECORDIO_SUFFIXES = (".rec", ".recordio")
MANIFEST_SUFFIXES = (".manifest", ".jsonl")

# SageMaker channel content types, as the built-in algorithm documents them.
RECORDIO_CONTENT_TYPE = "application/x-recordio"
IMAGE_CONTENT_TYPE = "application/x-image"
JSON_CONTENT_TYPE = "application/json"
MODEL_CONTENT_TYPE = "application/x-sagemaker-model"


def normalize(name: str, option: str = "--format",
              allowed: tuple[str, ...] = TRAINING_FORMATS) -> str:
    """The canonical name of a format given by the user (aliases resolved), or a usage error
    naming ``option`` and what it takes."""
    canonical = ALIASES.get(name.strip().lower(), name.strip().lower())
    if canonical not in READ_FORMATS:
        raise UsageError(f"{option} {name!r}: unknown format", hint="one of " + ", ".join(allowed))
    if canonical not in allowed:
        raise UsageError(f"{option} {name!r}: not one of {', '.join(allowed)}",
                         hint="convert it first: detectctl dataset convert"
                         if allowed == TRAINING_FORMATS else None)
    return canonical


def from_name(path: str) -> Optional[str]:
    """The format a file's name shows (``.rec``, ``.manifest``), or None (a directory or a
    prefix: look inside)."""
    name = path.lower().rstrip("/")
    if name.endswith(RECORDIO_SUFFIXES):
        return RECORDIO
    if name.endswith(MANIFEST_SUFFIXES):
        return MANIFEST
    return None
