"""Batch transform: a model's detections for every image of a dataset, written as files.

As the built-in algorithm answered batch transform jobs: the input is a prefix (or folder) of
images, or a RecordIO ``.rec``; the output is one ``<input name>.out`` per image holding the
endpoint's JSON answer, or, for a ``.rec``, one ``<name>.rec.out`` with a JSON line per record
(``application/jsonlines``). On SageMaker a transform job does it (CreateModel +
CreateTransformJob); on the local backend, the same model server does it in a local job.

:func:`transform_request` checks the options once for both backends; :class:`TransformJob`
is the handle, the same whichever backend runs it (its description has the shape of
DescribeTransformJob).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from detectctl import formats, names
from detectctl.display import timestamp
from detectctl.errors import JobFailedError, UsageError, WaitTimeoutError
from detectctl.logs import TERMINAL, JobLogs
from detectctl.resources import Resource

if TYPE_CHECKING:
    from detectctl.logs import LogStreams

IMAGES = "images"
RECORDIO = "recordio"
# What the endpoint gets per item, and what each output holds.
CONTENT_TYPES = {IMAGES: formats.IMAGE_CONTENT_TYPE, RECORDIO: formats.RECORDIO_CONTENT_TYPE}
ACCEPT = {IMAGES: "application/json", RECORDIO: "application/jsonlines"}
OUTPUT_SUFFIX = ".out"


@dataclass(frozen=True)
class TransformRequest:
    """A checked batch transform request, before a backend resolves it."""

    source: str
    input: str
    output: str
    instance_type: str
    input_kind: str
    instance_count: int = 1
    name: Optional[str] = None
    image: Optional[str] = None
    keep_model: bool = False
    tags: dict[str, str] = field(default_factory=dict)


def input_kind(path: str) -> str:
    """``recordio`` for a ``.rec``, else ``images`` (a prefix or folder of images)."""
    return RECORDIO if formats.from_name(path) == formats.RECORDIO else IMAGES


def transform_request(*, source: str, input: str, output: str, instance_type: str,
                      instance_count: int = 1, name: Optional[str] = None,
                      image: Optional[str] = None, keep_model: bool = False,
                      tags: Optional[dict[str, str]] = None) -> TransformRequest:
    """Check a batch transform's options (``UsageError``, exit 2, for the first bad one)."""
    if instance_count < 1:
        raise UsageError(f"--count must be at least 1, got {instance_count}")
    if formats.from_name(input) == formats.MANIFEST:
        raise UsageError(f"--input {input}: a manifest is not a transform input",
                         hint="give a prefix (or folder) of images, or a .rec")
    return TransformRequest(source=source, input=input, output=output,
                            instance_type=instance_type, input_kind=input_kind(input),
                            instance_count=instance_count,
                            name=names.check_name(name) if name else None, image=image,
                            keep_model=keep_model, tags=dict(tags or {}))


class TransformJob(Resource):
    """A batch transform job. Attributes read the last description; ``refresh()`` updates
    it."""

    KIND = "TransformJob"
    STATUS_KEY = "TransformJobStatus"

    @abstractmethod
    def stop(self) -> None:
        """Ask the job to stop."""

    @abstractmethod
    def log_streams(self) -> LogStreams:
        """Where the job's log streams are."""

    @property
    def progress(self) -> Optional[tuple[int, Optional[int]]]:
        """(inputs done, inputs in all) where the backend counts them, else None."""
        return None

    def release(self) -> list[str]:
        """Remove what the job needed only while it ran (SageMaker: its model); what was
        removed."""
        return []

    @property
    def failure_reason(self) -> Optional[str]:
        return self.description.get("FailureReason")

    @property
    def output(self) -> str:
        return self.description.get("TransformOutput", {}).get("S3OutputPath", "-")

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def wait(self, timeout: float = 28 * 24 * 3600, poll: Optional[float] = None) -> str:
        deadline = time.monotonic() + timeout
        poll = poll or self.poll_seconds
        while self.refresh()["TransformJobStatus"] not in TERMINAL:
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"transform job {self.name} is still {self.status} "
                                       f"after {timeout:g} s")
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        return self.status

    def logs(self, *, follow: bool = False, since: Optional[datetime] = None,
             on_wait: Optional[Callable[[str], None]] = None) -> JobLogs:
        return JobLogs(self.log_streams(), self.name, since=since,
                       status=(lambda: self.refresh()["TransformJobStatus"]) if follow else None,
                       on_wait=on_wait, poll_seconds=self.poll_seconds)

    def raise_for_status(self) -> None:
        if self.status in ("Failed", "Stopped"):
            reason = self.failure_reason
            message = f"transform job {self.name} {self.status.lower()}"
            raise JobFailedError(f"{message}: {reason}" if reason else message,
                                 status=self.status, reason=reason,
                                 hint=f"see `detectctl transform describe {self.name}"
                                      f"{self.cli_options}`")

    def summary(self) -> list[tuple[str, str]]:
        d = self.description
        rows = [("transform job", self.name), ("status", self.status)]
        if d.get("ModelName"):
            rows.append(("model", d["ModelName"]))
        source = d.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {})
        if source.get("S3Uri"):
            rows.append(("input", source["S3Uri"]))
        rows.append(("output", self.output))
        resources = d.get("TransformResources", {})
        if resources:
            rows.append(("instances", f"{resources.get('InstanceCount')} x "
                                      f"{resources.get('InstanceType')}"))
        for label, key in (("created", "CreationTime"), ("started", "TransformStartTime"),
                           ("ended", "TransformEndTime")):
            if d.get(key):
                rows.append((label, timestamp(d[key])))
        if self.failure_reason:
            rows.append(("reason", self.failure_reason))
        return rows
