"""SageMaker batch transform: CreateModel + CreateTransformJob, the job's handle, and the model
removed once the job has ended (unless kept).

The job runs the model on the PyTorch inference image (or ``--image``) exactly as an endpoint
would: the same handlers, one record per request. Its logs are CloudWatch streams in
``/aws/sagemaker/TransformJobs``, ``<job>/<instance id>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from detectctl import costs, instances, names, transforms
from detectctl.aws.requests import TransformJobSpec, model_request, transform_job_request
from detectctl.backend import SAGEMAKER, Plan
from detectctl.errors import NotFoundError
from detectctl.s3uri import split_s3_uri
from detectctl.sagemaker.endpoints import model_data_for
from detectctl.sagemaker.logs import CloudWatchStreams

if TYPE_CHECKING:
    from detectctl.session import Session
    from detectctl.transforms import TransformRequest

LOG_GROUP = "/aws/sagemaker/TransformJobs"


@dataclass(frozen=True)
class TransformPlan(Plan):
    """The model and the transform job ``launch`` will create, and what they cost."""

    spec: TransformJobSpec
    source: str
    keep_model: bool = False

    backend = SAGEMAKER

    @property
    def name(self) -> str:
        return self.spec.job_name

    @property
    def confirm(self) -> bool:
        return True

    @property
    def question(self) -> str:
        return f"Start transform job {self.name}?"

    @property
    def cost_per_hour(self) -> float:
        return costs.hosting_per_hour(self.spec.instance_type, self.spec.instance_count)

    def to_dict(self) -> dict[str, Any]:
        return {"CreateModel": model_request(self.spec),
                "CreateTransformJob": transform_job_request(self.spec)}

    def summary(self) -> list[tuple[str, str]]:
        spec = self.spec
        kind = "records of a .rec" if spec.records else "images"
        return [("transform job", spec.job_name), ("model", spec.model_data),
                ("input", f"{spec.input_uri} ({kind}, {spec.content_type})"),
                ("output", f"{spec.output_uri} ({spec.accept})"),
                ("instances", f"{spec.instance_count} x {spec.instance_type}"),
                ("image", spec.image),
                ("cost", f"${self.cost_per_hour:,.3f}/hour while it runs"),
                ("model after", "kept (--keep-model)" if self.keep_model
                 else "deleted when the job ends")]


def plan(session: Session, request: TransformRequest) -> TransformPlan:
    """Resolve ``request`` on SageMaker: the model's artifact and role, the image for the
    instance type, the request of each resource."""
    instance = instances.get(request.instance_type)
    split_s3_uri(request.input)
    split_s3_uri(request.output)
    model_data, job_role = model_data_for(session, request.source)
    name = request.name or names.unique_name(f"{request.source.rpartition('/')[2][:30]}-batch")
    region = session.region
    spec = TransformJobSpec(
        job_name=name, model_name=names.unique_name(name), role=session.configured_role
        or job_role or session.role, image=request.image or session.config.inference_image
        or instances.inference_image(instance.name, region), region=region,
        model_data=model_data, instance_type=instance.name, input_uri=request.input,
        output_uri=request.output, content_type=transforms.CONTENT_TYPES[request.input_kind],
        accept=transforms.ACCEPT[request.input_kind], instance_count=request.instance_count,
        tags=dict(request.tags))
    return TransformPlan(spec=spec, source=request.source, keep_model=request.keep_model)


def launch(session: Session, plan: TransformPlan,
           confirm: Callable[[str], bool] = lambda question: True) -> SageMakerTransformJob:
    """Create the model, then the job; a job SageMaker refuses leaves no model behind."""
    session.aws.call("sagemaker", "create_model", **model_request(plan.spec))
    try:
        session.aws.call("sagemaker", "create_transform_job", **transform_job_request(plan.spec))
    except BaseException:
        session.aws.call("sagemaker", "delete_model", ModelName=plan.spec.model_name)
        raise
    return SageMakerTransformJob(session, plan.name)


class SageMakerTransformJob(transforms.TransformJob):
    """A SageMaker batch transform job."""

    backend = SAGEMAKER

    def __init__(self, session: Session, name: str,
                 description: Optional[dict[str, Any]] = None):
        super().__init__(name, description)
        self.session = session

    def refresh(self) -> dict[str, Any]:
        self._description = self.session.aws.call("sagemaker", "describe_transform_job",
                                                   TransformJobName=self.name)
        return self._description

    def stop(self) -> None:
        self.session.aws.call("sagemaker", "stop_transform_job", TransformJobName=self.name)

    def log_streams(self) -> CloudWatchStreams:
        return CloudWatchStreams(self.session.aws, LOG_GROUP)

    def release(self) -> list[str]:
        """Delete the model the job used (it is no use once the job has ended)."""
        model = self.description.get("ModelName")
        if not model:
            return []
        try:
            self.session.aws.call("sagemaker", "delete_model", ModelName=model)
        except NotFoundError:
            return []
        return [f"model {model}"]


def list_jobs(session: Session, limit: int = 20) -> list[transforms.TransformJob]:
    summaries = session.aws.paginate("sagemaker", "list_transform_jobs",
                                     "TransformJobSummaries", max_items=limit,
                                     SortBy="CreationTime", SortOrder="Descending")
    return [SageMakerTransformJob(session, s["TransformJobName"], s) for s in summaries]
