"""A training job's log: every host's stream merged in time order, whichever backend ran it.

A backend gives the streams through a :class:`LogStreams` source: SageMaker's are CloudWatch
streams (:mod:`detectctl.sagemaker.logs`), the local backend's are files
(:mod:`detectctl.local.logs`). Streams are named ``<job>/algo-<N>-<start seconds>``, one per host
and start of the job. :class:`JobLogs` is an iterator of :class:`LogEvent` that

- lists the job's streams on every poll, so hosts that start late (or a resumed job's new
  streams) are picked up;
- reads each stream from its own position (a token the source defines) until it has no more
  for now;
- yields what each poll gathered in timestamp order, ties kept per host, hosts in number order;
- when following, asks the job's status *before* each poll; the first poll after the job has
  ended drains what is left, and the iterator stops with ``status`` set;
- when the source is throttled (``ThrottlingError``), doubles the poll interval up to a minute
  and repeats the poll without losing or repeating lines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Protocol

from detectctl.errors import ThrottlingError

TERMINAL = ("Completed", "Failed", "Stopped")
POLL_SECONDS = 5.0
MAX_POLL_SECONDS = 60.0
_HOST_RE = re.compile(r"^(algo-\d+)")


@dataclass(frozen=True)
class LogEvent:
    """One log line: ``timestamp`` in milliseconds since the epoch, the ``host`` (``algo-1``)
    and ``stream`` it came from."""

    timestamp: int
    host: str
    stream: str
    message: str

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp / 1000, tz=timezone.utc)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``): ``{"host", "time", "message"}``."""
        return {"host": self.host, "time": self.time.isoformat(timespec="milliseconds"),
                "message": self.message}


class LogStreams(Protocol):
    """Where a backend keeps a job's log streams."""

    def streams(self, job: str) -> list[str]:
        """The job's stream names (``<job>/algo-N-<start>``), every one of them."""

    def read(self, stream: str, token: Optional[str], since_ms: Optional[int]
             ) -> tuple[list[LogEvent], Optional[str]]:
        """Every event after ``token`` (from the start when None), and the token to continue
        from; events before ``since_ms`` are left out."""


def host_of(stream: str, job: str) -> str:
    """``algo-2`` from ``<job>/algo-2-1700000000``; the stream's own name when it has no host."""
    rest = stream[len(job) + 1:] if stream.startswith(job + "/") else stream
    match = _HOST_RE.match(rest)
    return match.group(1) if match else rest


def host_number(host: str) -> int:
    match = re.search(r"(\d+)$", host)
    return int(match.group(1)) if match else 0


class JobLogs:
    """Iterate over a training job's log events (see the module's description).

    ``status`` is a callable giving the job's status; with it the iterator follows the job
    until it ends. ``sleep`` and ``poll_seconds`` are there for tests and impatient people.
    """

    def __init__(self, source: LogStreams, job: str, *, hosts: Optional[list[str]] = None,
                 since: Optional[datetime] = None,
                 status: Optional[Callable[[], str]] = None,
                 poll_seconds: float = POLL_SECONDS,
                 sleep: Callable[[float], None] = time.sleep,
                 on_wait: Optional[Callable[[str], None]] = None):
        self.source = source
        self.job = job
        self.hosts = set(hosts or ())
        self.since_ms = int(since.timestamp() * 1000) if since else None
        self._status = status
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._on_wait = on_wait
        self.status: Optional[str] = None
        self._tokens: dict[str, str] = {}
        self.stream_count = 0

    def streams(self) -> list[str]:
        """The job's stream names, only the chosen hosts'."""
        names = self.source.streams(self.job)
        if self.hosts:
            names = [n for n in names if host_of(n, self.job) in self.hosts]
        return names

    def poll(self) -> list[LogEvent]:
        """Everything new in every stream since the last poll, in time order.

        The streams' tokens move on only when the whole poll succeeds, so a poll cut short
        (throttled) is repeated without losing or repeating lines.
        """
        batch: list[LogEvent] = []
        tokens = {}
        for stream in self.streams():
            events, tokens[stream] = self.source.read(stream, self._tokens.get(stream),
                                                      self.since_ms)
            batch += events
        self._tokens.update((k, v) for k, v in tokens.items() if v)
        self.stream_count = len(tokens)
        # A stable sort: equal timestamps keep each stream's own order, hosts in number order.
        batch.sort(key=lambda e: (e.timestamp, host_number(e.host)))
        return batch

    def __iter__(self) -> Iterator[LogEvent]:
        if self._status is None:
            yield from self.poll()
            return
        interval = self.poll_seconds
        while True:
            status = self._status()
            try:
                batch = self.poll()
            except ThrottlingError:
                interval = min(interval * 2, MAX_POLL_SECONDS)
                self._sleep(interval)
                continue
            yield from batch
            if status in TERMINAL:
                self.status = status
                return
            if not self.stream_count and self._on_wait:
                self._on_wait(status)
            interval = self.poll_seconds if batch else min(interval * 1.5, MAX_POLL_SECONDS / 4)
            self._sleep(interval)
