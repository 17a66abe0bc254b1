"""``TrainingJob``: a handle on a training job, the same whichever backend runs it.

    >>> job = detectctl.Session().training_job("ssd-vgg-16-2026-11-27-10-00-00-000")
    ... # doctest: +SKIP
    >>> job.status, job.metrics.get("validation:mAP")                        # doctest: +SKIP
    >>> for event in job.logs(follow=True): print(event.host, event.message)  # doctest: +SKIP

A job's description has the shape of SageMaker's DescribeTrainingJob on every backend
(``TrainingJobStatus``, ``SecondaryStatus``, ``FailureReason``, ``ResourceConfig``,
``ModelArtifacts``, ``FinalMetricDataList``, ``SecondaryStatusTransitions``, times), so what is
read from it is written once, here. A backend subclass says how to describe, stop, resume and
delete the job and where its log streams are.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from detectctl import costs
from detectctl.backend import not_available
from detectctl.display import timestamp
from detectctl.errors import JobFailedError, WaitTimeoutError
from detectctl.logs import TERMINAL, JobLogs
from detectctl.resources import Resource

if TYPE_CHECKING:
    from detectctl.logs import LogStreams
    from detectctl.progress import TrainingProgress

# A training job cannot run longer than 28 days; waiting longer makes no sense.
LONGEST_WAIT_SECONDS = 28 * 24 * 3600


class TrainingJob(Resource):
    """A training job. Attributes read the last description; ``refresh()`` updates it."""

    KIND = "TrainingJob"
    STATUS_KEY = "TrainingJobStatus"

    # --- what each backend provides ------------------------------------------------------

    @abstractmethod
    def stop(self) -> None:
        """Ask the job to stop: it saves a checkpoint, then ends Stopped."""

    @abstractmethod
    def resume(self) -> TrainingJob:
        """Continue a Stopped or Failed job from its last checkpoint; the job that does it."""

    @abstractmethod
    def check_delete(self) -> None:
        """Raise a ``UsageError`` saying why the job cannot be deleted (now, or ever)."""

    @abstractmethod
    def delete(self) -> None:
        """Remove what the job left behind (the local backend's job directory)."""

    @abstractmethod
    def log_streams(self) -> LogStreams:
        """Where the job's log streams are."""

    # --- the same on every backend --------------------------------------------------------

    @property
    def secondary_status(self) -> Optional[str]:
        return self.description.get("SecondaryStatus")

    @property
    def failure_reason(self) -> Optional[str]:
        return self.description.get("FailureReason")

    @property
    def instance_type(self) -> str:
        return self.description["ResourceConfig"]["InstanceType"]

    @property
    def instance_count(self) -> int:
        return int(self.description["ResourceConfig"]["InstanceCount"])

    @property
    def hyperparameters(self) -> dict[str, str]:
        """The hyperparameters the job was given (the framework's ``sagemaker_*`` left out)."""
        return {k: v for k, v in self.description.get("HyperParameters", {}).items()
                if not k.startswith("sagemaker_")}

    @property
    def model_artifact(self) -> Optional[str]:
        """The model.tar.gz: an S3 URI on SageMaker, a path on this machine for local jobs."""
        return self.description.get("ModelArtifacts", {}).get("S3ModelArtifacts") or None

    @property
    def billable_seconds(self) -> Optional[int]:
        return self.description.get("BillableTimeInSeconds")

    @property
    def cost(self) -> Optional[float]:
        """What the job was billed, estimated from the list price; None while it runs and for
        local jobs."""
        if self.billable_seconds is None or self.backend == "local":
            return None
        return costs.billed(self.instance_type, self.instance_count, self.billable_seconds)

    @property
    def metrics(self) -> dict[str, float]:
        """The final value of each metric (``validation:mAP``, ``train:cross_entropy``, ...)."""
        final = self.description.get("FinalMetricDataList", [])
        return {m["MetricName"]: m["Value"] for m in final}

    @property
    def history(self) -> list[dict[str, Any]]:
        """Secondary status transitions: ``Status``, ``StartTime``, ``EndTime``,
        ``StatusMessage``."""
        return list(self.description.get("SecondaryStatusTransitions", []))

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def wait(self, timeout: float = LONGEST_WAIT_SECONDS, poll: Optional[float] = None) -> str:
        """Wait until the job completes, fails or stops; return the status.

        Raises ``WaitTimeoutError`` after ``timeout`` seconds (the job keeps running).
        """
        deadline = time.monotonic() + timeout
        poll = poll or self.poll_seconds
        while self.refresh()["TrainingJobStatus"] not in TERMINAL:
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"training job {self.name} is still "
                                       f"{self.status} after {timeout:g} s")
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        return self.status

    def logs(self, *, follow: bool = False, hosts: Optional[list[str]] = None,
             since: Optional[datetime] = None,
             on_wait: Optional[Callable[[str], None]] = None,
             poll_seconds: Optional[float] = None) -> JobLogs:
        """The job's log events, every host merged in time order (an iterator).

        With ``follow``, the iterator ends when the job ends; its ``status`` is then the job's.
        ``on_wait(status)`` is called on each poll while the job has no log stream yet.
        """
        return JobLogs(self.log_streams(), self.name, hosts=hosts, since=since,
                       status=(lambda: self.refresh()["TrainingJobStatus"]) if follow else None,
                       on_wait=on_wait, poll_seconds=poll_seconds or self.poll_seconds)

    def progress(self) -> TrainingProgress:
        """A tracker of the job's epochs, losses and validation mAP, fed with its log events
        (see :mod:`detectctl.progress`)."""
        from detectctl.progress import TrainingProgress

        return TrainingProgress.for_job(self)

    def to_sagemaker(self) -> Any:
        """The sagemaker SDK's resource for this job (``sagemaker.core.resources.TrainingJob``),
        for what the SDK offers beyond detectctl. SageMaker jobs only; needs
        ``pip install 'detectctl[sagemaker]'``."""
        raise not_available("to_sagemaker()", self.backend,
                            hint="it hands back sagemaker SDK resources, which exist for "
                                 "SageMaker jobs only")

    def raise_for_status(self) -> None:
        """Raise ``JobFailedError`` if the job ended Failed or Stopped."""
        if self.status in ("Failed", "Stopped"):
            reason = self.failure_reason
            message = f"training job {self.name} {self.status.lower()}"
            raise JobFailedError(f"{message}: {reason}" if reason else message,
                                 status=self.status, reason=reason,
                                 hint=f"see `detectctl logs {self.name}{self.cli_options}`")

    def summary(self) -> list[tuple[str, str]]:
        """Label/value rows: what a person wants to see about the job."""
        d = self.description
        rows = [("job", self.name), ("status", self.status + (
            f" ({self.secondary_status})" if self.secondary_status else ""))]
        if "ResourceConfig" in d:
            rows.append(("instances", f"{self.instance_count} x {self.instance_type}"))
        for label, key in (("created", "CreationTime"), ("started", "TrainingStartTime"),
                           ("ended", "TrainingEndTime")):
            if d.get(key):
                rows.append((label, timestamp(d[key])))
        if self.billable_seconds is not None and self.cost is not None:
            rows.append(("billable", f"{self.billable_seconds} s per instance, about "
                                     f"{costs.money(self.cost)}"))
        if self.failure_reason:
            rows.append(("reason", self.failure_reason))
        for name, value in sorted(self.metrics.items()):
            rows.append((name, f"{value:g}"))
        if self.model_artifact and self.status == "Completed":
            rows.append(("model", self.model_artifact))
        return rows

