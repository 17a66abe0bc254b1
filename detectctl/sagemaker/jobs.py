"""SageMaker training jobs: describe, list, stop, resume, and their CloudWatch logs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

from detectctl import names
from detectctl.backend import not_available
from detectctl.errors import AwsError, NotFoundError, UsageError
from detectctl.jobs import LONGEST_WAIT_SECONDS, TrainingJob
from detectctl.sagemaker.logs import CloudWatchStreams

if TYPE_CHECKING:
    from detectctl.logs import LogStreams
    from detectctl.session import Session

# What CreateTrainingJob takes back from DescribeTrainingJob to restart a job (resume).
_RESTART_FIELDS = ("RoleArn", "AlgorithmSpecification", "HyperParameters", "InputDataConfig",
                   "OutputDataConfig", "ResourceConfig", "StoppingCondition", "VpcConfig",
                   "CheckpointConfig", "EnableNetworkIsolation",
                   "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining")


class SageMakerTrainingJob(TrainingJob):
    """A SageMaker training job."""

    backend = "sagemaker"

    def __init__(self, session: Session, name: str,
                 description: Optional[dict[str, Any]] = None):
        super().__init__(name, description)
        self.session = session

    def refresh(self) -> dict[str, Any]:
        """DescribeTrainingJob, now."""
        self._description = self.session.aws.call(
            "sagemaker", "describe_training_job", TrainingJobName=self.name)
        return self._description

    def wait(self, timeout: float = LONGEST_WAIT_SECONDS, poll: Optional[float] = None) -> str:
        self.session.aws.wait("sagemaker", "training_job_completed_or_stopped",
                              timeout=timeout, delay=poll or 30, TrainingJobName=self.name)
        return self.refresh()["TrainingJobStatus"]

    def stop(self) -> None:
        """Ask SageMaker to stop the job (it saves the model it has, then ends Stopped)."""
        self.session.aws.call("sagemaker", "stop_training_job", TrainingJobName=self.name)

    def resume(self) -> TrainingJob:
        """A new job with this one's settings and checkpoint location: SageMaker restores the
        checkpoints into it and the training continues from the last one."""
        description = self.refresh()
        if self.status not in ("Stopped", "Failed"):
            raise UsageError(f"training job {self.name} is {self.status}; only a Stopped or "
                             "Failed job can be resumed")
        if not description.get("CheckpointConfig"):
            raise UsageError(f"training job {self.name} has no checkpoint location to resume "
                             "from", hint="start jobs with --checkpoint-s3 (spot jobs have one)")
        request = {key: description[key] for key in _RESTART_FIELDS if key in description}
        request["HyperParameters"] = dict(request.get("HyperParameters", {}))
        tags = self.session.aws.call("sagemaker", "list_tags",
                                     ResourceArn=description["TrainingJobArn"]).get("Tags", [])
        if tags:
            request["Tags"] = tags
        base = _resume_base(self.name)
        for name in names.candidates(base):
            request["TrainingJobName"] = name
            if "sagemaker_job_name" in request["HyperParameters"]:
                request["HyperParameters"]["sagemaker_job_name"] = f'"{name}"'
            if create_training_job(self.session, request):
                return SageMakerTrainingJob(self.session, name)
        raise UsageError(f"no free name for resuming {self.name}")

    def delete(self) -> None:
        self.check_delete()

    def check_delete(self) -> None:
        raise not_available("deleting a training job", "sagemaker",
                            hint="SageMaker keeps every job's description; its model and "
                                 "checkpoints are in S3")

    def log_streams(self) -> LogStreams:
        return CloudWatchStreams(self.session.aws)

    def to_sagemaker(self) -> Any:
        """``sagemaker.core.resources.TrainingJob`` for this job, on the session's credentials
        and region (``pip install 'detectctl[sagemaker]'``)."""
        from detectctl.sagemaker.bridge import training_job_resource

        return training_job_resource(self.session, self.name)


def create_training_job(session: Session, request: dict[str, Any]) -> bool:
    """Send CreateTrainingJob; False when its name is in use already (the caller takes the
    next name)."""
    try:
        session.aws.call("sagemaker", "create_training_job", **request)
    except AwsError as exc:
        if exc.code == "ResourceInUse":
            return False
        raise
    return True


def _resume_base(name: str) -> str:
    """``ssd-vgg-16-2026-11-27-10-00-00-000`` -> ``ssd-vgg-16``: a resumed job is named as a
    new one of the same kind."""
    return re.sub(r"-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\d{3}$", "", name)


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
    return [SageMakerTrainingJob(session, s["TrainingJobName"], description=s)
            for s in summaries]


def describe(session: Session, name: str) -> SageMakerTrainingJob:
    """A handle on an existing job (``NotFoundError`` naming it when there is none)."""
    job = SageMakerTrainingJob(session, name)
    try:
        job.refresh()
    except NotFoundError:
        raise NotFoundError(f"no SageMaker training job named {name}",
                            hint="see `detectctl jobs list`; local jobs need --local") from None
    return job
