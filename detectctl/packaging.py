"""The training code a job runs: ``algorithm/`` packed as a SageMaker source archive.

The archive (``sourcedir.tar.gz``) holds the ``algorithm`` package and, at its root, ``train.py``:
a short entry point that runs ``algorithm/train.py`` as the module ``algorithm.train``. The
PyTorch training toolkit unpacks the archive into ``/opt/ml/code`` and starts ``train.py`` there
(``sagemaker_program``), plainly or under torchrun; the entry point puts the code directory on
``PYTHONPATH`` so that ``import algorithm`` works there and in the workers ``algorithm/train.py``
may launch itself, without installing anything.

The archive is byte-for-byte reproducible (sorted entries, fixed times and owners), so its
SHA-256 names it: the same code is uploaded once, ``s3://BUCKET/detectctl/source/<hash>/``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ENTRY_POINT = "train.py"
ENTRY_POINT_SOURCE = b'''"""SageMaker entry point: runs algorithm/train.py (packed by detectctl)."""
import os
import runpy
import sys

# Workers that algorithm/train.py launches itself must import `algorithm` from here too.
here = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
sys.path.insert(0, here)
runpy.run_module("algorithm.train", run_name="__main__", alter_sys=True)
'''
SOURCE_PREFIX = "detectctl/source"


@dataclass(frozen=True)
class SourceArchive:
    """The packed training code: its bytes and content hash."""

    data: bytes
    sha256: str

    def key(self) -> str:
        return f"{SOURCE_PREFIX}/{self.sha256[:16]}/sourcedir.tar.gz"

    def uri(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.key()}"


def algorithm_directory() -> Path:
    import algorithm

    return Path(algorithm.__file__).resolve().parent


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def source_archive(directory: Optional[Path] = None) -> SourceArchive:
    """Pack ``directory`` (default: the installed ``algorithm`` package) reproducibly."""
    from algorithm.package import package_files

    root = directory or algorithm_directory()
    files = package_files(root)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, ENTRY_POINT, ENTRY_POINT_SOURCE)
        for path in files:
            _add(archive, f"algorithm/{path.relative_to(root).as_posix()}", path.read_bytes())
    data = gzip.compress(raw.getvalue(), mtime=0)
    return SourceArchive(data=data, sha256=hashlib.sha256(data).hexdigest())
