"""Model artifacts (model.tar.gz, or the directory it unpacks to) read without torch: the class
names in ``classes.json`` at their top.

Training writes ``classes.json`` (``{"classes": ["name of class 0", ...]}``) into
``/opt/ml/model``, so it sits at the top level of the job's model.tar.gz. Reading it from an
archive streams the archive and stops at that member: nothing after it is read or decompressed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Optional

from detectctl.errors import DetectctlError

CLASSES_FILE = "classes.json"


def from_archive(stream: IO[bytes], where: str) -> Optional[list[str]]:
    """The names in ``classes.json`` at the top of a model.tar.gz read from ``stream`` (read
    only up to that member), or None when the archive has none."""
    import tarfile
    import zlib

    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and os.path.normpath(member.name) == CLASSES_FILE:
                    data = archive.extractfile(member).read()  # type: ignore[union-attr]
                    break
            else:
                return None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DetectctlError(f"{where}: not a readable model.tar.gz ({exc})") from None
    return _names(data, where)


def _names(data: bytes, where: str) -> list[str]:
    try:
        names = json.loads(data)["classes"]
        if not isinstance(names, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise DetectctlError(f"{where}: {CLASSES_FILE} is not "
                             '{"classes": ["name", ...]}') from None
    return [str(name) for name in names]


def class_names(model: Path) -> Optional[list[str]]:
    """The class names of a model on this machine (a directory or a model.tar.gz), or None
    when it has no ``classes.json``."""
    if model.is_dir():
        path = model / CLASSES_FILE
        return _names(path.read_bytes(), str(path)) if path.is_file() else None
    try:
        with open(model, "rb") as stream:
            return from_archive(stream, str(model))
    except OSError as exc:
        raise DetectctlError(f"{model}: cannot read: {exc.strerror}") from None
