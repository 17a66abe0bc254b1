"""A training job's CloudWatch logs: every host's stream merged in time order.

SageMaker writes one stream per host and container start in ``/aws/sagemaker/TrainingJobs``,
named ``<job>/algo-<N>-<epoch seconds>``. :class:`JobLogs` is an iterator of :class:`LogEvent`:

- it lists the job's streams with the DescribeLogStreams paginator (50 a page) on every poll,
  so hosts that start late are picked up;
- it reads each stream with GetLogEvents from its own forward token, until the token stops
  changing (CloudWatch's "no more for now");
- it yields what each poll gathered in timestamp order, ties kept per host;
- when following, it asks the job's status *before* each poll; the first poll after the job
  has ended drains what is left, and the iterator stops with ``status`` set;
- throttling is retried by botocore (adaptive mode); if it still gets through, the poll
  interval doubles up to a minute.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import NotFoundError, ThrottlingError, UsageError

if TYPE_CHECKING:
    from detectctl.aws import Aws

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
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
        return {"timestamp": self.time.isoformat(timespec="milliseconds"), "host": self.host,
                "stream": self.stream, "message": self.message}


def host_of(stream: str, job: str) -> str:
    """``algo-2`` from ``<job>/algo-2-1700000000``; the stream's own name when it has no host."""
    rest = stream[len(job) + 1:] if stream.startswith(job + "/") else stream
    match = _HOST_RE.match(rest)
    return match.group(1) if match else rest


def host_number(host: str) -> int:
    match = re.search(r"(\d+)$", host)
    return int(match.group(1)) if match else 0


def parse_since(text: str, now: Optional[datetime] = None) -> datetime:
    """``10m``, ``2h``, ``1d``, ``90s`` ago, or an ISO 8601 time (UTC when it has no zone)."""
    now = now or datetime.now(timezone.utc)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now - timedelta(**{unit: float(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration like 10m, 2h, 1d or an ISO "
                         "time like 2026-11-27T10:00") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class JobLogs:
    """Iterate over a training job's log events (see the module's description).

    ``status`` is a callable giving the job's status; with it the iterator follows the job
    until it ends. ``sleep`` and ``poll_seconds`` are there for tests and impatient people.
    """

    def __init__(self, aws: Aws, job: str, *, hosts: Optional[list[str]] = None,
                 since: Optional[datetime] = None,
                 status: Optional[Callable[[], str]] = None,
                 poll_seconds: float = POLL_SECONDS,
                 sleep: Callable[[float], None] = time.sleep,
                 on_wait: Optional[Callable[[str], None]] = None):
        self.aws = aws
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
        """The job's stream names (every page), only the chosen hosts'."""
        try:
            names = [s["logStreamName"] for s in self.aws.paginate(
                "logs", "describe_log_streams", "logStreams",
                logGroupName=LOG_GROUP, logStreamNamePrefix=self.job + "/")]
        except NotFoundError:
            return []
        if self.hosts:
            names = [n for n in names if host_of(n, self.job) in self.hosts]
        return names

    def _read(self, stream: str, token: Optional[str]) -> tuple[list[LogEvent], Optional[str]]:
        host = host_of(stream, self.job)
        events = []
        while True:
            request: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream,
                                       "startFromHead": True}
            # The same startTime with every token: the token continues that query.
            if self.since_ms is not None:
                request["startTime"] = self.since_ms
            if token:
                request["nextToken"] = token
            page = self.aws.call("logs", "get_log_events", **request)
            events += [LogEvent(e["timestamp"], host, stream, e["message"].rstrip("\n"))
                       for e in page.get("events", [])]
            new = page.get("nextForwardToken")
            if not new or new == token:
                return events, token
            token = new

    def poll(self) -> list[LogEvent]:
        """Everything new in every stream since the last poll, in time order.

        The streams' tokens move on only when the whole poll succeeds, so a poll cut short
        (throttled) is repeated without losing or repeating lines.
        """
        batch: list[LogEvent] = []
        tokens = {}
        for stream in self.streams():
            events, tokens[stream] = self._read(stream, self._tokens.get(stream))
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
