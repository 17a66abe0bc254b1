"""Model artifacts (model.tar.gz, or the directory it unpacks to) read without torch: the class
names, hyperparameters and metrics at their top.

Training writes ``classes.json`` (``{"classes": ["name of class 0", ...]}``),
``hyperparameters.json`` and ``metrics.json`` into ``/opt/ml/model`` (algorithm/artifact.py), so
they sit at the top level of the job's model.tar.gz. Reading them from an archive streams the
archive and stops once it has them: nothing after is read or decompressed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Optional

from detectctl.errors import DetectctlError

CLASSES_FILE = "classes.json"
HYPERPARAMETERS_FILE = "hyperparameters.json"
METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.pt"
# JSON members bigger than this are not a detectctl model's (they would only cost memory).
MAX_MEMBER_BYTES = 1 << 20


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
    return parse_class_names(data, where)


def parse_class_names(data: bytes, where: str) -> list[str]:
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
        return parse_class_names(path.read_bytes(), str(path)) if path.is_file() else None
    try:
        with open(model, "rb") as stream:
            return from_archive(stream, str(model))
    except OSError as exc:
        raise DetectctlError(f"{model}: cannot read: {exc.strerror}") from None


def read_members(stream: IO[bytes], where: str, wanted: tuple[str, ...]) -> dict[str, bytes]:
    """The top-level members named in ``wanted`` of a model.tar.gz read from ``stream``,
    stopping once all are found."""
    import tarfile
    import zlib

    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for member in archive:
                name = os.path.normpath(member.name)
                if member.isfile() and name in wanted and name not in found:
                    if member.size > MAX_MEMBER_BYTES:
                        raise DetectctlError(f"{where}: {name} is {member.size} bytes; not a "
                                             "detectctl model's")
                    found[name] = archive.extractfile(member).read()  # type: ignore[union-attr]
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DetectctlError(f"{where}: not a readable model.tar.gz ({exc})") from None
    return found


def read_directory(folder: Path, wanted: tuple[str, ...]) -> dict[str, bytes]:
    """The files named in ``wanted`` that a model directory holds."""
    return {name: (folder / name).read_bytes() for name in wanted if (folder / name).is_file()}
