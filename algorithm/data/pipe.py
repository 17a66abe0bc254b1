"""Pipe mode: records streamed through a FIFO, one pass per epoch.

SageMaker creates one FIFO per channel and epoch, ``/opt/ml/input/data/<channel>_<epoch>``, and
writes the channel's S3 objects into it: raw ``.rec`` bytes for RecordIO, or for an augmented
manifest two RecordIO records per line (the image, then the label attribute's JSON).

A FIFO has exactly one stream of bytes, however many processes read it. So that every training
process and every DataLoader worker of a host can share one FIFO without tearing records apart,
each reader takes an exclusive lock (``flock`` on a lock file) while it reads one whole sample,
and reads unbuffered, so no process holds bytes that belong to another's sample. Every sample is
then read exactly once per epoch, by whichever process asked first. No torch here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import tempfile
from typing import List, Optional

from algorithm.data.recordio import RecordIOError, read_record


def fifo_path(channel_path: str, epoch: int) -> str:
    """The FIFO SageMaker opens for ``channel_path`` (``/opt/ml/input/data/train``) in an epoch."""
    return f"{channel_path}_{epoch}"


def is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def is_pipe(channel_path: str) -> bool:
    """True when ``channel_path`` is a Pipe-mode channel (a FIFO, or ``<path>_0`` is one)."""
    return is_fifo(channel_path) or is_fifo(fifo_path(channel_path, 0))


class _FdStream:
    """A minimal unbuffered binary stream over a file descriptor."""

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, n: int) -> bytes:
        return os.read(self.fd, n)

    def seekable(self) -> bool:
        return False


class PipeReader:
    """Reads whole samples (``records_per_sample`` RecordIO records each) from one FIFO.

    Safe to share across processes: open it before forking (DataLoader workers inherit the file
    descriptor), or open the same path in several processes before any of them reads.
    """

    def __init__(self, path: str, records_per_sample: int = 1, lock_path: Optional[str] = None):
        self.path = path
        self.records_per_sample = records_per_sample
        digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
        self.lock_path = lock_path or os.path.join(tempfile.gettempdir(),
                                                   f"detectctl-pipe-{digest}.lock")
        self._fd: Optional[int] = None
        self._lock_fd: Optional[int] = None
        self._lock_pid: Optional[int] = None
        self.count = 0

    def open(self) -> PipeReader:
        """Open the FIFO (blocks until SageMaker, or another writer, opens it)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self

    def close(self) -> None:
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None and (name == "_fd" or self._lock_pid == os.getpid()):
                os.close(fd)
            setattr(self, name, None)

    def _lock(self) -> int:
        # flock locks belong to an open file description, which forked children share: each
        # process opens the lock file itself.
        if self._lock_fd is None or self._lock_pid != os.getpid():
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock_pid = os.getpid()
        return self._lock_fd

    def read(self) -> Optional[List[bytes]]:
        """The next sample's records, or None at the end of the stream."""
        if self._fd is None:
            self.open()
        lock = self._lock()
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            stream = _FdStream(self._fd)
            records = []
            for _ in range(self.records_per_sample):
                record = read_record(stream)
                if record is None:
                    break
                records.append(record)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        if not records:
            return None
        if len(records) < self.records_per_sample:
            raise RecordIOError(f"{self.path}: stream ends in the middle of a sample "
                                f"({len(records)} of {self.records_per_sample} records)", 0)
        self.count += 1
        return records

    def __enter__(self) -> PipeReader:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
