"""Outputs that appear whole or not at all: every command that writes files goes through here.

``convert``, ``synth``, ``preview`` and ``stats --plot`` write under a temporary folder beside
their destination (``.detectctl-*``, on the same file system) and move what they wrote into
place only once all of it is written::

    with StagedOutput("data/voc07.rec") as stage:
        write_everything(stage.path("data/voc07.rec"))   # data/.detectctl-x1y2/voc07.rec
    # now data/voc07.rec, .idx, .lst and classes.json are there, or none of them is

A failure, Ctrl-C, or a full disk removes the temporary folder: nothing half-written is left to
pass ``validate`` or to block the rerun. Folders on the way to the destination that do not exist
are created (``created`` lists them, for the command to say so); the temporary folder sits in the
nearest one that exists, so a missing folder appears only with everything in it.

Nothing is overwritten unless asked (``replace=True``, for a picture): a file already at a
destination refuses the whole output, unless it is the same as the one written (the same bytes,
or what the caller's ``same`` says: the ``classes.json`` that two datasets in one folder share is
the same when it names the same classes) and is then left as it is.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from collections.abc import Callable
from types import TracebackType
from typing import Optional

from detectctl.errors import OutputError

PREFIX = ".detectctl-"


class StagedOutput:
    """Stage the files of one output (``targets``: the files or folders it makes) and commit
    them together on success; see the module docstring."""

    def __init__(self, *targets: str, replace: bool = False,
                 same: Optional[Callable[[str, str], bool]] = None):
        self.targets = [os.path.abspath(t) for t in targets]
        self.relative = not any(os.path.isabs(t) for t in targets)
        self.replace = replace
        self.same = same or same_bytes
        self.created: list[str] = []
        self.base = ""
        self.stage = ""

    def __enter__(self) -> StagedOutput:
        for target in self.targets:
            _refuse(target, self.replace)
        parents = [os.path.dirname(t) for t in self.targets]
        self.base = _existing_ancestor(os.path.commonpath(parents))
        if not os.path.isdir(self.base):
            raise OutputError(f"{self.base} is a file, not a folder",
                              hint="choose an output inside a folder")
        self.created = sorted({os.path.relpath(p) if self.relative else p
                               for p in parents if not os.path.isdir(p)})
        try:
            self.stage = tempfile.mkdtemp(prefix=PREFIX, dir=self.base)
        except OSError as exc:
            raise OutputError(f"cannot write in {self.base}: {exc.strerror or exc}") from None
        return self

    def path(self, final: str) -> str:
        """Where to write what belongs at ``final`` (its folder is made)."""
        staged = os.path.join(self.stage, os.path.relpath(os.path.abspath(final), self.base))
        os.makedirs(os.path.dirname(staged), exist_ok=True)
        return staged

    def final(self, staged: str) -> str:
        """Where a staged path lands once committed, relative when the targets were named
        relative."""
        landed = os.path.join(self.base, os.path.relpath(os.path.abspath(staged), self.stage))
        return os.path.relpath(landed) if self.relative else landed

    def __exit__(self, kind: Optional[type], error: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        try:
            if kind is None:
                self._commit()
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            # A write that failed (disk full, permissions): nothing was left behind.
            where = error.filename or self.targets[0]
            raise OutputError(f"writing {where}: {error.strerror or error}; nothing was "
                              "written") from None

    def _commit(self) -> None:
        moves: list[tuple[str, str]] = []
        conflicts: list[str] = []
        _plan(self.stage, self.base, self.replace, self.same, moves, conflicts)
        if conflicts:
            raise OutputError(f"{os.path.relpath(conflicts[0])} already exists"
                              + (f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1
                                 else "") + "; nothing was written",
                              hint="remove it or choose another output")
        done: list[tuple[str, str]] = []
        try:
            for source, destination in moves:
                os.replace(source, destination)
                done.append((source, destination))
        except OSError as exc:
            for source, destination in reversed(done):
                os.rename(destination, source)
            raise OutputError(f"moving the output into {self.base}: {exc.strerror or exc}; "
                              "nothing was written") from None


def _refuse(target: str, replace: bool) -> None:
    """An output that cannot be made: refused before anything is written."""
    if replace:
        if os.path.isdir(target):
            raise OutputError(f"{os.path.relpath(target)} is a folder; name a file",
                              hint=f"e.g. {os.path.relpath(os.path.join(target, 'out.png'))}")
        return
    if os.path.isfile(target) or (os.path.isdir(target) and os.listdir(target)):
        raise OutputError(f"{os.path.relpath(target)} already exists",
                          hint="remove it or choose another output")


def _existing_ancestor(path: str) -> str:
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def same_bytes(staged: str, existing: str) -> bool:
    return filecmp.cmp(staged, existing, shallow=False)


def _plan(source: str, destination: str, replace: bool, same: Callable[[str, str], bool],
          moves: list[tuple[str, str]], conflicts: list[str]) -> None:
    """What to move where: whole folders where the destination has none, file by file into
    folders that exist; conflicts are files already there that are not the ``same``."""
    for name in sorted(os.listdir(source)):
        staged, there = os.path.join(source, name), os.path.join(destination, name)
        if not os.path.lexists(there):
            moves.append((staged, there))
        elif os.path.isdir(staged) and os.path.isdir(there) and not os.path.islink(there):
            _plan(staged, there, replace, same, moves, conflicts)
        elif os.path.isfile(staged) and os.path.isfile(there) and replace:
            moves.append((staged, there))
        elif not (os.path.isfile(staged) and os.path.isfile(there) and same(staged, there)):
            conflicts.append(there)
