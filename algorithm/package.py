"""Which files of the ``algorithm`` package travel with it: into a training job's source
archive (``detectctl/packaging.py``) and into a model artifact's ``code/algorithm``
(``algorithm/artifact.py``). One rule for both, and no torch here, since detectctl imports it.

A package's sources only: no hidden files or folders (a checkout's tool caches, such as
``.ruff_cache``), no ``__pycache__`` or compiled files, no lint settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

SKIPPED_NAMES = ("__pycache__", "ruff.toml")
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def included(parts: Sequence[str]) -> bool:
    """Whether the file at ``parts`` (its path inside the package, split) travels."""
    return (not any(p.startswith(".") or p in SKIPPED_NAMES for p in parts)
            and not parts[-1].endswith(SKIPPED_SUFFIXES))


def package_files(root: Path) -> List[Path]:
    """The files under ``root`` that travel, sorted."""
    return sorted(p for p in Path(root).rglob("*")
                  if p.is_file() and included(p.relative_to(root).parts))
