"""SageMaker endpoints: deploy a trained SSD, list, describe, delete, and ask for detections.

``deploy`` creates a model (the serving image + model.tar.gz, whose ``code/inference.py``
implements the SageMaker PyTorch handlers), an endpoint config and the endpoint; deploying to an
existing endpoint name swaps in a new config with UpdateEndpoint (no downtime). If the endpoint
fails, what this deploy created is removed unless asked to keep it, and DescribeEndpoint's
FailureReason is reported.

Requests and responses are those of :mod:`detectctl.endpoints`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, Optional

from detectctl import costs, instances, names
from detectctl.aws.requests import (
    EndpointSpec,
    endpoint_config_request,
    endpoint_request,
    model_request,
    update_endpoint_request,
)
from detectctl.backend import SAGEMAKER, Plan
from detectctl.display import timestamp
from detectctl.endpoints import Endpoint
from detectctl.errors import (
    DetectctlError,
    EndpointFailedError,
    NotFoundError,
    UsageError,
    WaitTimeoutError,
)
from detectctl.s3uri import is_s3_uri
from detectctl.sagemaker.class_names import for_endpoint
from detectctl.sagemaker.jobs import describe as describe_job
from detectctl.sagemaker.logs import CloudWatchStreams

if TYPE_CHECKING:
    from detectctl.session import Session

IDLE_AFTER = timedelta(days=1)
# The PyTorch inference images up to 2.6 serve with TorchServe; 2.6 is the last, and its
# support under the framework images' policy ended on this date (docs/aws.md).
TORCHSERVE_SUPPORT_ENDED = "2026-06-30"


@dataclass(frozen=True)
class DeployPlan(Plan):
    """What ``deploy`` will create; ``update`` when the endpoint exists already."""

    backend = SAGEMAKER

    spec: EndpointSpec
    source: str
    update: bool
    default_image: bool

    @property
    def name(self) -> str:
        return self.spec.endpoint_name

    @property
    def confirm(self) -> bool:
        return True

    @property
    def question(self) -> str:
        return f"{'Update' if self.update else 'Create'} endpoint {self.name}?"

    @property
    def wait_hint(self) -> str:
        return "usually 5-10 minutes"

    def to_dict(self) -> dict[str, Any]:
        return self.requests

    @property
    def requests(self) -> dict[str, dict[str, Any]]:
        last = update_endpoint_request if self.update else endpoint_request
        return {"CreateModel": model_request(self.spec),
                "CreateEndpointConfig": endpoint_config_request(self.spec),
                ("UpdateEndpoint" if self.update else "CreateEndpoint"): last(self.spec)}

    @property
    def cost_per_hour(self) -> float:
        return costs.hosting_per_hour(self.spec.instance_type, self.spec.instance_count)

    def summary(self) -> list[tuple[str, str]]:
        spec = self.spec
        image = spec.image
        if self.default_image:
            image += (f" (TorchServe; AWS support ended {TORCHSERVE_SUPPORT_ENDED}: "
                      "see docs/aws.md, or pass --image)")
        return [
            ("endpoint", spec.endpoint_name + (" (update, no downtime)" if self.update else "")),
            ("model", spec.model_data),
            ("instances", f"{spec.instance_count} x {spec.instance_type}"),
            ("image", image),
            ("cost", f"${self.cost_per_hour:,.3f}/hour while it runs "
                     f"(about ${self.cost_per_hour * 24 * 30:,.0f}/month)"),
        ]


def model_data_for(session: Session, source: str) -> tuple[str, Optional[str]]:
    """The model.tar.gz of ``source`` (an S3 URI, or a completed training job's artifact) and
    the job's role, if it is a job."""
    if is_s3_uri(source):
        if not source.endswith(".tar.gz"):
            raise UsageError(f"{source} is not a model.tar.gz",
                             hint="pass a training job name or an s3://.../model.tar.gz URI")
        return source, None
    job = describe_job(session, source)
    if job.status != "Completed":
        raise UsageError(f"training job {source} is {job.status}, not Completed",
                         hint=f"wait for it: detectctl jobs wait {source}")
    artifact = job.model_artifact
    if not artifact:
        raise DetectctlError(f"training job {source} has no model artifact")
    return artifact, job.description.get("RoleArn")


def plan(session: Session, source: str, *, instance_type: str, instance_count: int = 1,
         name: Optional[str] = None, image: Optional[str] = None,
         tags: Optional[dict[str, str]] = None) -> DeployPlan:
    """Resolve a deployment of ``source`` (a training job name or a model.tar.gz URI).

    The role is the configured one, else the training job's.
    """
    instance = instances.get(instance_type)
    if instance_count < 1:
        raise UsageError(f"--count must be at least 1, got {instance_count}")
    model_data, job_role = model_data_for(session, source)
    if name is None:
        name = source if not is_s3_uri(source) else names.unique_name("ssd")
    chosen = image or session.config.inference_image
    region = session.region
    spec = EndpointSpec(
        endpoint_name=name, model_name=names.unique_name(name),
        config_name=names.unique_name(name),
        role=session.configured_role or job_role or session.role,
        image=chosen or instances.inference_image(instance.name, region), region=region,
        model_data=model_data, instance_type=instance.name, instance_count=instance_count,
        tags=dict(tags or {}))
    return DeployPlan(spec=spec, source=source,
                      update=SageMakerEndpoint(session, name).exists(),
                      default_image=chosen is None)


def deploy(session: Session, plan: DeployPlan, *, wait: bool = True, timeout: float = 1800,
           poll: float = 30, keep_on_failure: bool = False) -> SageMakerEndpoint:
    """Create (or update) the endpoint; with ``wait``, until it is InService.

    Raises ``EndpointFailedError`` with SageMaker's reason if it fails, after removing what
    this call created (unless ``keep_on_failure``).
    """
    spec = plan.spec
    aws = session.aws
    endpoint = SageMakerEndpoint(session, spec.endpoint_name)
    previous = endpoint.description.get("EndpointConfigName") if plan.update else None
    created: list[tuple[str, str]] = []
    aws.call("sagemaker", "create_model", **model_request(spec))
    created.append(("model", spec.model_name))
    aws.call("sagemaker", "create_endpoint_config", **endpoint_config_request(spec))
    created.append(("endpoint_config", spec.config_name))
    if plan.update:
        aws.call("sagemaker", "update_endpoint", **update_endpoint_request(spec))
    else:
        aws.call("sagemaker", "create_endpoint", **endpoint_request(spec))
        created.append(("endpoint", spec.endpoint_name))
    if not wait:
        return endpoint
    try:
        aws.wait("sagemaker", "endpoint_in_service", timeout=timeout, delay=poll,
                 EndpointName=spec.endpoint_name)
    except WaitTimeoutError:
        raise WaitTimeoutError(
            f"endpoint {spec.endpoint_name} is not InService after {timeout:g} s; it is still "
            "being created", hint=f"see `detectctl endpoints describe {spec.endpoint_name}`"
        ) from None
    described = endpoint.refresh()
    if (described["EndpointStatus"] == "InService"
            and described.get("EndpointConfigName") == spec.config_name):
        if previous:
            _delete_config(session, previous)
        return endpoint
    reason = described.get("FailureReason") or described["EndpointStatus"]
    kept = "kept (--keep-on-failure)" if keep_on_failure else "removed"
    if not keep_on_failure:
        for kind, name in reversed(created):
            aws.call("sagemaker", f"delete_{kind}", **{_NAME_KEYS[kind]: name})
    action = "update" if plan.update else "deploy"
    raise EndpointFailedError(
        f"{action} of endpoint {spec.endpoint_name} failed: {reason}", reason=reason,
        hint=f"what this {action} created was {kept}; the serving logs are in CloudWatch, "
             f"/aws/sagemaker/Endpoints/{spec.endpoint_name}")


_NAME_KEYS = {"model": "ModelName", "endpoint_config": "EndpointConfigName",
              "endpoint": "EndpointName"}


def _delete_config(session: Session, config_name: str) -> list[str]:
    """Delete an endpoint config and its models; return what was deleted."""
    aws = session.aws
    try:
        config = aws.call("sagemaker", "describe_endpoint_config", EndpointConfigName=config_name)
    except NotFoundError:
        return []
    deleted = []
    for variant in config.get("ProductionVariants", []):
        try:
            aws.call("sagemaker", "delete_model", ModelName=variant["ModelName"])
            deleted.append(f"model {variant['ModelName']}")
        except NotFoundError:
            pass
    aws.call("sagemaker", "delete_endpoint_config", EndpointConfigName=config_name)
    return [f"endpoint config {config_name}", *deleted]


class SageMakerEndpoint(Endpoint):
    """A SageMaker endpoint serving a detectctl model."""

    backend = "sagemaker"

    def __init__(self, session: Session, name: str,
                 description: Optional[dict[str, Any]] = None):
        super().__init__(name, description)
        self.session = session

    def refresh(self) -> dict[str, Any]:
        self._description = self.session.aws.call("sagemaker", "describe_endpoint",
                                                  EndpointName=self.name)
        self.__dict__.pop("config", None)
        return self._description

    @cached_property
    def config(self) -> dict[str, Any]:
        """DescribeEndpointConfig of the endpoint's current config."""
        described = self.description
        if "EndpointConfigName" not in described:  # a ListEndpoints summary
            described = self.refresh()
        return self.session.aws.call("sagemaker", "describe_endpoint_config",
                                     EndpointConfigName=described["EndpointConfigName"])

    def details(self) -> dict[str, Any]:
        return {"endpoint": self.description, "config": self.config}

    @property
    def log_prefix(self) -> str:
        return "AllTraffic"  # streams are AllTraffic/<instance id>

    def log_streams(self) -> CloudWatchStreams:
        return CloudWatchStreams(self.session.aws, f"/aws/sagemaker/Endpoints/{self.name}")

    def to_sagemaker(self) -> Any:
        """``sagemaker.core.resources.Endpoint`` for this endpoint, on the session's credentials
        and region (``pip install 'detectctl[sagemaker]'``)."""
        from detectctl.sagemaker.bridge import endpoint_resource

        return endpoint_resource(self.session, self.name)

    @property
    def instance_type(self) -> str:
        return self.config["ProductionVariants"][0]["InstanceType"]

    @property
    def instance_count(self) -> int:
        variants = self.description.get("ProductionVariants") or self.config["ProductionVariants"]
        first = variants[0]
        return int(first.get("CurrentInstanceCount") or first.get("InitialInstanceCount") or 1)

    @property
    def cost_per_hour(self) -> Optional[float]:
        try:
            return costs.hosting_per_hour(self.instance_type, self.instance_count)
        except DetectctlError:
            return None

    @property
    def idle(self) -> bool:
        """In service for more than a day without a single invocation."""
        return (self.invocations_24h == 0 and self.status == "InService"
                and self.age > IDLE_AFTER)

    def invoke(self, body: bytes, content_type: str, *,
               custom_attributes: Optional[str] = None) -> bytes:
        """InvokeEndpoint with ``body``; the raw answer."""
        request: dict[str, Any] = {"EndpointName": self.name, "ContentType": content_type,
                                   "Accept": "application/json", "Body": body}
        if custom_attributes:
            request["CustomAttributes"] = custom_attributes
        answer = self.session.aws.call("sagemaker-runtime", "invoke_endpoint", **request)
        return answer["Body"].read()

    def class_names(self) -> Optional[list[str]]:
        """The names in the served model's ``classes.json``, or None when it has none (read
        once per model archive, then cached: see :mod:`detectctl.sagemaker.class_names`)."""
        return for_endpoint(self)

    def delete(self) -> list[str]:
        """Delete the endpoint, its config and the config's models; return what was deleted."""
        config = self.description.get("EndpointConfigName")
        self.session.aws.call("sagemaker", "delete_endpoint", EndpointName=self.name)
        deleted = [f"endpoint {self.name}"]
        if config:
            deleted += _delete_config(self.session, config)
        return deleted

    def summary(self) -> list[tuple[str, str]]:
        d = self.description
        rows = [("endpoint", self.name), ("status", self.status),
                ("config", d.get("EndpointConfigName", "-"))]
        try:
            rows.append(("instances", f"{self.instance_count} x {self.instance_type}"))
            rows.append(("model", ", ".join(v["ModelName"]
                                            for v in self.config["ProductionVariants"])))
        except NotFoundError:
            pass
        rows.append(("cost", f"{costs.money(self.cost_per_hour)}/hour"))
        if d.get("CreationTime"):
            rows.append(("created", timestamp(d["CreationTime"])))
        if d.get("FailureReason"):
            rows.append(("reason", d["FailureReason"]))
        return rows


def list_endpoints(session: Session, limit: int = 100) -> list[SageMakerEndpoint]:
    """Endpoints, newest first, with their invocations over the last day."""
    summaries = session.aws.paginate("sagemaker", "list_endpoints", "Endpoints", max_items=limit,
                                     SortBy="CreationTime", SortOrder="Descending")
    found = [SageMakerEndpoint(session, s["EndpointName"], description=s) for s in summaries]
    for endpoint, calls in zip(found, invocations_last_day(session, found).values()):
        endpoint.invocations_24h = calls
    return found


def invocations_last_day(session: Session, endpoints: list[SageMakerEndpoint]
                         ) -> dict[str, float]:
    """Invocations of each endpoint over the last 24 hours (CloudWatch, AllTraffic variant)."""
    if not endpoints:
        return {}
    now = datetime.now(timezone.utc)
    queries = [{
        "Id": f"e{i}",
        "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                       "Dimensions": [{"Name": "EndpointName", "Value": e.name},
                                      {"Name": "VariantName", "Value": "AllTraffic"}]},
            "Period": 86400, "Stat": "Sum"},
    } for i, e in enumerate(endpoints)]
    results = session.aws.call("cloudwatch", "get_metric_data", MetricDataQueries=queries,
                               StartTime=now - IDLE_AFTER, EndTime=now)
    sums = {r["Id"]: sum(r.get("Values", [])) for r in results.get("MetricDataResults", [])}
    return {e.name: sums.get(f"e{i}", 0.0) for i, e in enumerate(endpoints)}
