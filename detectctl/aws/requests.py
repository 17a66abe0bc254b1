"""SageMaker requests as pure functions: a spec (frozen dataclass) in, the request dict out.

What these return is exactly what is sent, and exactly what ``--dry-run`` prints. Nothing here
imports boto3 or touches the network, so the tests check requests by dict equality.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from algorithm.metrics import METRIC_DEFINITIONS
from detectctl import __version__

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# Under network isolation the container cannot fetch the source archive itself; SageMaker hands
# it over as this input channel (what the sagemaker SDK does too).
CODE_CHANNEL = "code"
CODE_CHANNEL_ARCHIVE = "/opt/ml/input/data/code/sourcedir.tar.gz"
# Where the PyTorch serving toolkit finds inference.py inside an unpacked model.tar.gz.
MODEL_CODE_DIRECTORY = "/opt/ml/model/code"
CREATED_BY = {"created-by": f"detectctl {__version__}"}



def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    merged = {**CREATED_BY, **tags}
    return [{"Key": key, "Value": value} for key, value in merged.items()]


@dataclass(frozen=True)
class ChannelSpec:
    """One training input channel; ``content_type`` as the built-in algorithm expects it."""

    name: str
    uri: str
    content_type: Optional[str] = None
    s3_data_type: str = "S3Prefix"
    input_mode: Optional[str] = None
    record_wrapper: Optional[str] = None
    attribute_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingJobSpec:
    """Everything CreateTrainingJob needs, resolved (see :mod:`detectctl.training`).

    ``hyperparameters`` are the user's, already validated and as strings; ``source_uri`` is the
    packaged ``algorithm/`` archive; ``torch_distributed`` asks the PyTorch training toolkit to
    launch one process per GPU with torchrun.
    """

    name: str
    role: str
    image: str
    region: str
    instance_type: str
    instance_count: int
    hyperparameters: Mapping[str, str]
    channels: tuple[ChannelSpec, ...]
    output_path: str
    source_uri: str
    entry_point: str = "train.py"
    torch_distributed: bool = False
    input_mode: str = "File"
    volume_size_gb: int = 30
    max_run_seconds: int = 86400
    spot: bool = False
    max_wait_seconds: Optional[int] = None
    checkpoint_s3: Optional[str] = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    network_isolation: bool = False
    encrypt_inter_container: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


def framework_hyperparameters(spec: TrainingJobSpec) -> dict[str, str]:
    """The ``sagemaker_*`` hyperparameters of the PyTorch training toolkit, JSON-encoded as the
    sagemaker SDK writes them."""
    directory = CODE_CHANNEL_ARCHIVE if spec.network_isolation else spec.source_uri
    values: dict[str, Any] = {
        "sagemaker_program": spec.entry_point,
        "sagemaker_submit_directory": directory,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": spec.name,
        "sagemaker_region": spec.region,
    }
    if spec.torch_distributed:
        values["sagemaker_torch_distributed_enabled"] = True
        values["sagemaker_instance_type"] = spec.instance_type
    return {key: json.dumps(value) for key, value in values.items()}


def channel_request(channel: ChannelSpec) -> dict[str, Any]:
    source: dict[str, Any] = {
        "S3DataType": channel.s3_data_type, "S3Uri": channel.uri,
        "S3DataDistributionType": "FullyReplicated",
    }
    if channel.attribute_names:
        source["AttributeNames"] = list(channel.attribute_names)
    request: dict[str, Any] = {"ChannelName": channel.name, "DataSource": {"S3DataSource": source}}
    if channel.content_type:
        request["ContentType"] = channel.content_type
    if channel.record_wrapper:
        request["RecordWrapperType"] = channel.record_wrapper
    if channel.input_mode:
        request["InputMode"] = channel.input_mode
    return request


def training_job_request(spec: TrainingJobSpec) -> dict[str, Any]:
    """The CreateTrainingJob request for ``spec``."""
    channels = list(spec.channels)
    if spec.network_isolation:
        channels.append(ChannelSpec(CODE_CHANNEL, spec.source_uri, input_mode="File"))
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": spec.max_run_seconds}
    if spec.spot:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait_seconds or 2 * spec.max_run_seconds
    request: dict[str, Any] = {
        "TrainingJobName": spec.name,
        "RoleArn": spec.role,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image,
            "TrainingInputMode": spec.input_mode,
            # The built-in algorithm's metric names and log lines (algorithm/metrics.py), so
            # tuning objectives such as validation:mAP carry over.
            "MetricDefinitions": [dict(d) for d in METRIC_DEFINITIONS],
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": {**spec.hyperparameters, **framework_hyperparameters(spec)},
        "InputDataConfig": [channel_request(c) for c in channels],
        "OutputDataConfig": {"S3OutputPath": spec.output_path},
        "ResourceConfig": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
            "VolumeSizeInGB": spec.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": spec.network_isolation,
        "EnableInterContainerTrafficEncryption": spec.encrypt_inter_container,
        "EnableManagedSpotTraining": spec.spot,
        "Tags": _tags(spec.tags),
    }
    if spec.checkpoint_s3:
        request["CheckpointConfig"] = {"S3Uri": spec.checkpoint_s3,
                                       "LocalPath": CHECKPOINT_LOCAL_PATH}
    if spec.subnets or spec.security_groups:
        request["VpcConfig"] = {"Subnets": list(spec.subnets),
                                "SecurityGroupIds": list(spec.security_groups)}
    return request


@dataclass(frozen=True)
class EndpointSpec:
    """A model, its endpoint config and the endpoint: what ``detectctl deploy`` creates.

    ``model_data`` is a model.tar.gz holding the weights and ``code/inference.py``.
    """

    endpoint_name: str
    model_name: str
    config_name: str
    role: str
    image: str
    region: str
    model_data: str
    instance_type: str
    instance_count: int = 1
    entry_point: str = "inference.py"
    tags: Mapping[str, str] = field(default_factory=dict)


def model_request(spec: EndpointSpec | TransformJobSpec) -> dict[str, Any]:
    """The CreateModel request: the serving image, the artifact and the toolkit's settings."""
    return {
        "ModelName": spec.model_name,
        "ExecutionRoleArn": spec.role,
        "PrimaryContainer": {
            "Image": spec.image,
            "ModelDataUrl": spec.model_data,
            "Environment": {
                "SAGEMAKER_PROGRAM": spec.entry_point,
                "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIRECTORY,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": spec.region,
            },
        },
        "Tags": _tags(spec.tags),
    }


def endpoint_config_request(spec: EndpointSpec) -> dict[str, Any]:
    """The CreateEndpointConfig request: one variant taking all traffic."""
    return {
        "EndpointConfigName": spec.config_name,
        "ProductionVariants": [{
            "VariantName": "AllTraffic",
            "ModelName": spec.model_name,
            "InstanceType": spec.instance_type,
            "InitialInstanceCount": spec.instance_count,
            "InitialVariantWeight": 1.0,
        }],
        "Tags": _tags(spec.tags),
    }


def endpoint_request(spec: EndpointSpec) -> dict[str, Any]:
    """The CreateEndpoint request."""
    return {"EndpointName": spec.endpoint_name, "EndpointConfigName": spec.config_name,
            "Tags": _tags(spec.tags)}


def update_endpoint_request(spec: EndpointSpec) -> dict[str, Any]:
    """The UpdateEndpoint request: SageMaker swaps configs without downtime."""
    return {"EndpointName": spec.endpoint_name, "EndpointConfigName": spec.config_name}


@dataclass(frozen=True)
class TransformJobSpec:
    """A model and the batch transform job that uses it: what ``detectctl transform``
    creates. ``content_type`` and ``accept`` follow the input: images one by one
    (``application/x-image``, answers ``application/json``), or a ``.rec`` split into records
    (``application/x-recordio``, answers ``application/jsonlines`` assembled line by line)."""

    job_name: str
    model_name: str
    role: str
    image: str
    region: str
    model_data: str
    instance_type: str
    input_uri: str
    output_uri: str
    content_type: str
    accept: str
    instance_count: int = 1
    entry_point: str = "inference.py"
    max_payload_mb: int = 6
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def records(self) -> bool:
        return self.content_type == "application/x-recordio"


def transform_job_request(spec: TransformJobSpec) -> dict[str, Any]:
    """The CreateTransformJob request: one record per request, answers assembled by line for
    a ``.rec``, one ``<name>.out`` per image otherwise."""
    return {
        "TransformJobName": spec.job_name,
        "ModelName": spec.model_name,
        "BatchStrategy": "SingleRecord",
        "MaxPayloadInMB": spec.max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": spec.input_uri}},
            "ContentType": spec.content_type,
            "SplitType": "RecordIO" if spec.records else "None",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": spec.output_uri, "Accept": spec.accept,
                            "AssembleWith": "Line" if spec.records else "None"},
        "TransformResources": {"InstanceType": spec.instance_type,
                               "InstanceCount": spec.instance_count},
        "Tags": _tags(spec.tags),
    }


def bucket_request(bucket: str, region: str) -> dict[str, Any]:
    """The CreateBucket request (us-east-1 takes no location constraint)."""
    request: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    return request
