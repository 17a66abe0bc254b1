"""Local jobs' log files: each line timestamped when written, read as log streams.

The supervisor writes each host's output to ``logs/<host>-<start>.log`` (one file per host and
start of the job, as SageMaker opens one CloudWatch stream per host and container start), each
line prefixed with the UTC time it was read at::

    2026-11-29T10:00:00.123Z #quality_metric: host=algo-1, epoch=1, ...

:class:`LogFiles` reads them as streams named ``<job>/<host>-<start>``, so
:class:`detectctl.logs.JobLogs` merges them exactly as it merges CloudWatch streams. A stream's
token is the byte offset of its first unread line; a line still being written (no newline yet)
waits for the next read.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Optional

from detectctl.logs import LogEvent, host_of

_FILE = re.compile(r"(algo-\d+)-(\d+)\.log")
_STAMP_LENGTH = len("2026-11-29T10:00:00.123Z")


def stamp_line(line: str, when: Optional[datetime] = None) -> str:
    """``line`` as a log file holds it: the UTC time, a space, the text, a newline."""
    when = when or datetime.now(timezone.utc)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%S.')}{when.microsecond // 1000:03d}Z {line}\n"


def parse_line(line: str, fallback_ms: int) -> tuple[int, str]:
    """(milliseconds since the epoch, text) of a stamped line; unstamped text keeps
    ``fallback_ms``."""
    stamp, text = line[:_STAMP_LENGTH], line[_STAMP_LENGTH + 1:]
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return fallback_ms, line
    return int(when.timestamp() * 1000), text


def log_file(directory: Path, host: str, start: int) -> Path:
    return directory / f"{host}-{start}.log"


class LogWriter:
    """Appends stamped lines to one host's log file, flushed line by line."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, line: str) -> None:
        self._out.write(stamp_line(line))
        self._out.flush()

    def close(self) -> None:
        self._out.close()


class LogFiles:
    """The log files of local jobs, as :class:`detectctl.logs.LogStreams`."""

    def __init__(self, directory: Path):
        self.directory = directory

    def streams(self, job: str) -> list[str]:
        found = []
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                match = _FILE.fullmatch(path.name)
                if match:
                    found.append((int(match.group(2)), int(match.group(1)[5:]), path.stem))
        return [f"{job}/{stem}" for _, _, stem in sorted(found)]

    def read(self, stream: str, token: Optional[str], since_ms: Optional[int]
             ) -> tuple[list[LogEvent], Optional[str]]:
        job, _, stem = stream.partition("/")
        host = host_of(stream, job)
        offset = int(token or 0)
        try:
            with open(self.directory / f"{stem}.log", "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], token
        complete = data[:data.rfind(b"\n") + 1]
        events = []
        last = 0
        for raw in complete.decode("utf-8", errors="replace").splitlines():
            last, text = parse_line(raw, last)
            if since_ms is None or last >= since_ms:
                events.append(LogEvent(last, host, stream, text))
        return events, str(offset + len(complete))
