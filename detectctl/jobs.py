"""``TrainingJob``: a handle on a SageMaker training job (status, history, metrics, cost, logs).

    >>> job = detectctl.Session().training_job("ssd-vgg-16-2026-11-27-10-00-00-000")
    ... # doctest: +SKIP
    >>> job.status, job.metrics.get("validation:mAP")                        # doctest: +SKIP
    >>> for event in job.logs(follow=True): print(event.host, event.message)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from detectctl import costs
from detectctl.display import html_table, timestamp
from detectctl.errors import JobFailedError

if TYPE_CHECKING:
    from detectctl.logs import JobLogs
    from detectctl.session import Session

TERMINAL = ("Completed", "Failed", "Stopped")
# A training job cannot run longer than 28 days; waiting longer makes no sense.
LONGEST_WAIT_SECONDS = 28 * 24 * 3600


class TrainingJob:
    """A SageMaker training job. Attributes read the last description; ``refresh()`` updates it."""

    def __init__(self, session: Session, name: str,
                 description: Optional[dict[str, Any]] = None):
        self.session = session
        self.name = name
        self._description = description

    def refresh(self) -> dict[str, Any]:
        """DescribeTrainingJob, now."""
        self._description = self.session.aws.call(
            "sagemaker", "describe_training_job", TrainingJobName=self.name)
        return self._description

    @property
    def description(self) -> dict[str, Any]:
        return self._description if self._description is not None else self.refresh()

    @property
    def status(self) -> str:
        return self.description["TrainingJobStatus"]

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
    def model_artifact(self) -> Optional[str]:
        return self.description.get("ModelArtifacts", {}).get("S3ModelArtifacts")

    @property
    def billable_seconds(self) -> Optional[int]:
        return self.description.get("BillableTimeInSeconds")

    @property
    def cost(self) -> Optional[float]:
        """What the job was billed, estimated from the list price; None while it runs."""
        if self.billable_seconds is None:
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

    def wait(self, timeout: float = LONGEST_WAIT_SECONDS, poll: float = 30) -> str:
        """Wait until the job completes, fails or stops; return the status.

        Raises ``WaitTimeoutError`` after ``timeout`` seconds (the job keeps running).
        """
        self.session.aws.wait("sagemaker", "training_job_completed_or_stopped",
                              timeout=timeout, delay=poll, TrainingJobName=self.name)
        return self.refresh()["TrainingJobStatus"]

    def stop(self) -> None:
        """Ask SageMaker to stop the job (it saves the model it has, then ends Stopped)."""
        self.session.aws.call("sagemaker", "stop_training_job", TrainingJobName=self.name)

    def logs(self, *, follow: bool = False, hosts: Optional[list[str]] = None,
             since: Optional[datetime] = None,
             on_wait: Optional[Callable[[str], None]] = None) -> JobLogs:
        """The job's CloudWatch log events, every host merged in time order (an iterator).

        With ``follow``, the iterator ends when the job ends; its ``status`` is then the job's.
        ``on_wait(status)`` is called on each poll while the job has no log stream yet.
        """
        from detectctl.logs import JobLogs

        return JobLogs(self.session.aws, self.name, hosts=hosts, since=since,
                       status=(lambda: self.refresh()["TrainingJobStatus"]) if follow else None,
                       on_wait=on_wait)

    def raise_for_status(self) -> None:
        """Raise ``JobFailedError`` if the job ended Failed or Stopped."""
        if self.status in ("Failed", "Stopped"):
            reason = self.failure_reason
            message = f"training job {self.name} {self.status.lower()}"
            raise JobFailedError(f"{message}: {reason}" if reason else message,
                                 status=self.status, reason=reason,
                                 hint=f"see `detectctl logs {self.name}`")

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
        if self.billable_seconds is not None:
            rows.append(("billable", f"{self.billable_seconds} s per instance, about "
                                     f"{costs.money(self.cost)}"))
        if self.failure_reason:
            rows.append(("reason", self.failure_reason))
        for name, value in sorted(self.metrics.items()):
            rows.append((name, f"{value:g}"))
        if self.model_artifact and self.status == "Completed":
            rows.append(("model", self.model_artifact))
        return rows

    def __repr__(self) -> str:
        status = self._description.get("TrainingJobStatus") if self._description else None
        return f"TrainingJob({self.name!r}, status={status!r})"

    def _repr_html_(self) -> str:
        return html_table(self.summary())


def list_jobs(session: Session, *, status: Optional[str] = None,
              name_contains: Optional[str] = None, limit: int = 20) -> list[TrainingJob]:
    """The most recent training jobs, newest first, described by their list summaries."""
    request: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        request["StatusEquals"] = status
    if name_contains:
        request["NameContains"] = name_contains
    summaries = session.aws.paginate("sagemaker", "list_training_jobs", "TrainingJobSummaries",
                                     max_items=limit, **request)
    return [TrainingJob(session, s["TrainingJobName"], description=s) for s in summaries]
