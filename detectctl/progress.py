"""Training progress read from a job's log: epochs, losses, throughput, validation mAP, ETA.

The job prints the built-in algorithm's metric lines (:mod:`algorithm.metrics`) and, at the end
of every epoch, a summary line ``epoch E/N: ...`` followed by ``#progress_metric``.
:class:`TrainingProgress` is fed the job's log events in order and hands back an
:class:`EpochProgress` each time an epoch ends; between epochs its attributes say where the job
is (for a live display). Both backends print the same lines, so this works for either.

The JSON form of an epoch (``detectctl train --json``, ``jobs attach --json``) is::

    {"event": "epoch", "time": "2026-11-29T10:00:00.000+00:00", "epoch": 3, "epochs": 20,
     "cross_entropy": 1.23, "smooth_l1": 0.45, "throughput": 48.2,
     "validation_map": 0.41, "best_map": 0.41, "best_epoch": 3, "eta_seconds": 410.0}

``validation_map``, ``best_map``, ``best_epoch`` are null without a validation channel, and
``eta_seconds`` until an epoch's length is known.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from algorithm.metrics import parse

if TYPE_CHECKING:
    from detectctl.jobs import TrainingJob
    from detectctl.logs import LogEvent

_EPOCH = re.compile(r"epoch=(\d+)")
_SUMMARY = re.compile(r"\bepoch (\d+)/(\d+):")
_BATCH = re.compile(r"batch=(\d+)")


@dataclass(frozen=True)
class EpochProgress:
    """Where a job stood at the end of an epoch."""

    time: datetime
    epoch: int
    epochs: Optional[int]
    cross_entropy: Optional[float]
    smooth_l1: Optional[float]
    throughput: Optional[float]
    validation_map: Optional[float]
    best_map: Optional[float]
    best_epoch: Optional[int]
    eta_seconds: Optional[float]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["time"] = self.time.isoformat(timespec="milliseconds")
        return {"event": "epoch", **values}

    def describe(self) -> str:
        """One line, as the plain (non-terminal) display prints it."""
        from detectctl.durations import describe_seconds

        parts = [f"epoch {self.epoch}/{self.epochs or '?'}"]
        if self.cross_entropy is not None and self.smooth_l1 is not None:
            parts.append(f"cross_entropy {self.cross_entropy:.4f}, smooth_l1 "
                         f"{self.smooth_l1:.4f}")
        if self.throughput is not None:
            parts.append(f"{self.throughput:.1f} images/s")
        if self.validation_map is not None:
            parts.append(f"validation mAP {self.validation_map:.4f} (best {self.best_map:.4f} "
                         f"at epoch {self.best_epoch})")
        if self.eta_seconds is not None:
            parts.append(f"ETA {describe_seconds(self.eta_seconds)}")
        return ", ".join(parts)


class TrainingProgress:
    """Follows a job's metric lines; see the module's description."""

    def __init__(self, epochs: Optional[int] = None):
        self.epochs = epochs
        self.epoch: Optional[int] = None  # the epoch being trained or just ended
        self.ended_epoch: Optional[int] = None  # the last epoch that ended
        self.batch: Optional[int] = None
        self.cross_entropy: Optional[float] = None
        self.smooth_l1: Optional[float] = None
        self.throughput: Optional[float] = None
        self.validation_map: Optional[float] = None
        self.best_map: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.eta_seconds: Optional[float] = None
        self.completed = 0  # epochs ended while this tracker watched
        self._first: Optional[int] = None  # ms of the first line seen
        self._last_end: Optional[int] = None
        self._epoch_ms: list[int] = []

    @classmethod
    def for_job(cls, job: TrainingJob) -> TrainingProgress:
        """A tracker that knows the job's number of epochs (given, or the default)."""
        from algorithm.hyperparameters import schema

        given = job.hyperparameters.get("epochs")
        default = next(f.default for f in schema() if f.name == "epochs")
        return cls(int(given) if given and given.isdigit() else default)

    @property
    def fraction(self) -> float:
        """How much of the job is done, from the epochs ended (0 to 1)."""
        if not self.epochs or self.ended_epoch is None:
            return 0.0
        return max(0.0, min(1.0, self.ended_epoch / self.epochs))

    def update(self, event: LogEvent) -> Optional[EpochProgress]:
        """Take one log event; an :class:`EpochProgress` when it ends an epoch."""
        if self._first is None:
            self._first = event.timestamp
        message = event.message
        summary = _SUMMARY.search(message)
        if summary:
            self.epochs = int(summary.group(2))
            return None
        found = parse(message)
        if not found:
            return None
        name, value = next(iter(found.items()))
        epoch = _EPOCH.search(message)
        if epoch:
            number = int(epoch.group(1))
            if number != self.epoch:
                self.epoch = number
        if name in ("train:cross_entropy", "train:smooth_l1"):
            setattr(self, name.partition(":")[2], value)
            batch = _BATCH.search(message)
            self.batch = int(batch.group(1)) if batch else self.batch
        elif name == "train:throughput":
            self.throughput = value
        elif name == "validation:mAP":
            self.validation_map = value
            if self.best_map is None or value > self.best_map:
                self.best_map, self.best_epoch = value, self.epoch
        elif name == "train:progress":
            return self._epoch_ended(event)
        return None

    def _epoch_ended(self, event: LogEvent) -> EpochProgress:
        start = self._last_end if self._last_end is not None else self._first
        if start is not None and event.timestamp > start:
            self._epoch_ms.append(event.timestamp - start)
        self._last_end = event.timestamp
        self.ended_epoch = self.epoch
        self.completed += 1
        self.batch = None
        if self._epoch_ms and self.epochs and self.epoch is not None:
            mean = sum(self._epoch_ms) / len(self._epoch_ms) / 1000
            self.eta_seconds = max(0, self.epochs - self.epoch) * mean
        return EpochProgress(
            time=datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc),
            epoch=self.epoch or 0, epochs=self.epochs, cross_entropy=self.cross_entropy,
            smooth_l1=self.smooth_l1, throughput=self.throughput,
            validation_map=self.validation_map, best_map=self.best_map,
            best_epoch=self.best_epoch, eta_seconds=self.eta_seconds)
