"""Planning and launching training jobs: user options in, a checked CreateTrainingJob out.

:func:`plan` validates the hyperparameters, picks the framework image for the instance's GPU
architecture, lays out the channels for the data format and packs ``algorithm/``; it calls AWS
only where it must (the account for the default bucket, a listing to recognise a data format)
and not at all with ``offline=True``. :func:`launch` uploads the code once per content hash and
sends the request.

Channel layouts follow the built-in algorithm:

- ``recordio``: ``train`` and ``validation``, ``application/x-recordio``.
- ``image``: a prefix holding ``images/`` and ``annotations/`` becomes ``train`` and
  ``train_annotation`` (and the same for validation), all ``application/x-image``.
- ``manifest``: an augmented manifest, ``AugmentedManifestFile`` wrapped in RecordIO with the
  attributes ``source-ref`` and the label attribute; Pipe mode by default.

Whatever the format and input mode, the class names reach the job through ``classes``, a File
mode channel holding one ``classes.json`` (``/opt/ml/input/data/classes/classes.json``): the one
given, else the one `detectctl dataset upload` put beside the training data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl import costs, instances
from detectctl.aws.requests import ChannelSpec, TrainingJobSpec, training_job_request, unique_name
from detectctl.errors import NotFoundError, UsageError
from detectctl.packaging import SourceArchive, source_archive

if TYPE_CHECKING:
    from detectctl.jobs import TrainingJob
    from detectctl.session import Session

FORMATS = ("recordio", "image", "manifest")
INPUT_MODES = ("File", "Pipe", "FastFile")
RECORDIO = "application/x-recordio"
IMAGE = "application/x-image"
MODEL = "application/x-sagemaker-model"
JSON = "application/json"
CLASSES_CHANNEL = "classes"
DEFAULT_LABEL_ATTRIBUTE = "bounding-box"
OUTPUT_PREFIX = "detectctl/jobs"
# torchrun-launched training in the PyTorch toolkit, on GPU instances (sagemaker SDK's
# TORCH_DISTRIBUTED_GPU_SUPPORTED_FRAMEWORK_VERSIONS starts there). Older images start
# train.py plainly and algorithm/train.py launches its own workers.
TORCH_DISTRIBUTED_SINCE = (1, 13, 1)
PLACEHOLDER_ROLE = "<execution-role-arn>"
PLACEHOLDER_ACCOUNT = "<account-id>"


@dataclass(frozen=True)
class TrainingPlan:
    """A resolved training job: the request to send, the code to upload, what it costs."""

    spec: TrainingJobSpec
    archive: SourceArchive
    data_format: str
    hyperparameters: Mapping[str, str]
    cost: costs.TrainingCost
    placeholders: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def request(self) -> dict[str, Any]:
        return training_job_request(self.spec)

    @property
    def gpus(self) -> int:
        return instances.get(self.spec.instance_type).gpus * self.spec.instance_count

    def summary(self) -> list[tuple[str, str]]:
        """Label/value rows for the confirmation screen."""
        spec = self.spec
        instance = instances.get(spec.instance_type)
        rows = [
            ("job", spec.name),
            ("instances", f"{spec.instance_count} x {spec.instance_type}"),
            ("GPUs", f"{self.gpus} x {instance.gpu_model}"
                     + (" (torch distributed)" if spec.torch_distributed else "")),
            ("image", spec.image),
            ("data", f"{self.data_format}, {spec.input_mode} mode"),
        ]
        rows += [(f"  {c.name}", c.uri) for c in spec.channels]
        given = ", ".join(f"{k}={v}" for k, v in self.hyperparameters.items()) or "(defaults)"
        rows += [("hyperparameters", given), ("output", spec.output_path)]
        if spec.checkpoint_s3:
            rows.append(("checkpoints", spec.checkpoint_s3))
        rows.append(("cost", self.cost.describe()))
        rows += [("note", note) for note in self.notes]
        return rows


def detect_format(uri: str) -> Optional[str]:
    """The data format a URI's name shows (``.rec``, ``.manifest``), or None for a prefix."""
    name = uri.lower().rstrip("/")
    if name.endswith((".rec", ".recordio")):
        return "recordio"
    if name.endswith((".manifest", ".jsonl")):
        return "manifest"
    return None


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``("bucket", "key/prefix")`` from ``s3://bucket/key/prefix``."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match:
        raise UsageError(f"{uri!r} is not an S3 URI", hint="expected s3://bucket/prefix")
    return match.group(1), match.group(2)


def _format_from_listing(session: Session, uri: str) -> str:
    bucket, prefix = split_s3_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    keys = [o["Key"][len(prefix):] for o in session.aws.paginate(
        "s3", "list_objects_v2", "Contents", max_items=1000, Bucket=bucket, Prefix=prefix)]
    if any(k.endswith(".rec") for k in keys):
        return "recordio"
    if any(k.startswith("images/") for k in keys) and any(
            k.startswith("annotations/") for k in keys):
        return "image"
    if any(k.endswith(".manifest") for k in keys):
        return "manifest"
    if not keys:
        raise NotFoundError(f"nothing under {uri}",
                            hint="upload the data first: detectctl dataset upload PATH URI")
    raise UsageError(f"cannot tell the data format under {uri}",
                     hint="pass --format recordio, image or manifest")


def channels(kind: str, uri: str, data_format: str, *,
             label_attribute: str = DEFAULT_LABEL_ATTRIBUTE) -> list[ChannelSpec]:
    """The channels for one split (``kind`` is ``train`` or ``validation``)."""
    if data_format == "recordio":
        return [ChannelSpec(kind, uri, RECORDIO)]
    if data_format == "image":
        base = uri.rstrip("/") + "/"
        return [ChannelSpec(kind, base + "images/", IMAGE),
                ChannelSpec(f"{kind}_annotation", base + "annotations/", IMAGE)]
    if data_format == "manifest":
        return [ChannelSpec(kind, uri, RECORDIO, s3_data_type="AugmentedManifestFile",
                            record_wrapper="RecordIO",
                            attribute_names=("source-ref", label_attribute))]
    raise UsageError(f"unknown data format {data_format!r}", hint="one of: " + ", ".join(FORMATS))


def classes_channel(session: Session, given: Optional[str], train: str,
                    offline: bool) -> tuple[Optional[ChannelSpec], Optional[str]]:
    """The ``classes`` channel: ``given``, else the ``classes.json`` that `detectctl dataset
    upload` put beside ``train`` if it is there; and a note when there is none or it is
    unchecked (``offline``)."""
    from detectctl.uploads import classes_uri

    uri = given or classes_uri(train)
    if uri is None:
        return None, "no classes channel: the job gets no class names (pass --classes)"
    channel = ChannelSpec(CLASSES_CHANNEL, uri, JSON, input_mode="File")
    if offline:
        return channel, None if given else (
            f"classes channel {uri}: where `detectctl dataset upload` puts classes.json, "
            "not checked offline")
    bucket, key = split_s3_uri(uri)
    try:
        session.aws.call("s3", "head_object", Bucket=bucket, Key=key)
    except NotFoundError:
        if given:
            raise NotFoundError(f"--classes {uri}: no such object",
                                hint="upload the dataset's classes.json there") from None
        return None, f"no {uri}: the job gets no class names (pass --classes)"
    return channel, None


def image_version(image: str) -> Optional[tuple[int, ...]]:
    """The framework version in an image tag (``...:2.8.0-gpu-py312`` -> (2, 8, 0))."""
    match = re.search(r":(\d+)\.(\d+)(?:\.(\d+))?", image)
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def parse_seconds(text: str, what: str) -> int:
    """``"86400"``, ``"90m"``, ``"6h"``, ``"2d"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match:
        raise UsageError(f"{what} {text!r}: expected seconds or a duration like 90m, 6h, 2d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def parse_key_values(pairs: Sequence[str], what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a usage error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {pair!r}: expected KEY=VALUE")
        result[key.strip()] = value
    return result


def load_job_file(path: Path) -> dict[str, Any]:
    """A job preset (YAML or JSON): a ``hyperparameters`` map and train options, or a bare
    hyperparameter map."""
    from detectctl.hyperparameters import load_file

    data = load_file(path)
    if "hyperparameters" not in data:
        return {"hyperparameters": data}
    if not isinstance(data["hyperparameters"], dict):
        raise UsageError(f"{path}: hyperparameters must be a map")
    return data


def plan(session: Session, *, instance_type: str, train: str, validation: Optional[str] = None,
         instance_count: int = 1, hyperparameters: Optional[Mapping[str, Any]] = None,
         name: Optional[str] = None, data_format: Optional[str] = None,
         input_mode: Optional[str] = None, label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
         pretrained: Optional[str] = None, model: Optional[str] = None,
         spot: bool = False, max_run_seconds: int = 86400,
         max_wait_seconds: Optional[int] = None, checkpoint_s3: Optional[str] = None,
         subnets: Sequence[str] = (), security_groups: Sequence[str] = (),
         network_isolation: bool = False, encrypt_inter_container: bool = False,
         volume_size_gb: int = 30, tags: Optional[Mapping[str, str]] = None,
         image: Optional[str] = None, classes: Optional[str] = None, offline: bool = False,
         hyperparameter_source: Optional[str] = None) -> TrainingPlan:
    """Resolve a training job. Raises ``UsageError`` subclasses (exit 2) for bad options and
    ``HyperparameterValidationError`` naming every bad hyperparameter."""
    from detectctl.hyperparameters import validate

    instance = instances.for_training(instance_type)
    if instance_count < 1:
        raise UsageError(f"--count must be at least 1, got {instance_count}")
    values = dict(hyperparameters or {})
    checked = validate(values, source=hyperparameter_source).to_sagemaker()
    given = {key: checked[key] for key in values if key in checked}
    if input_mode is not None and input_mode not in INPUT_MODES:
        raise UsageError(f"unknown input mode {input_mode!r}",
                         hint="one of: " + ", ".join(INPUT_MODES))
    if max_wait_seconds is not None and not spot:
        raise UsageError("--max-wait applies to spot training only", hint="add --spot")
    if spot and max_wait_seconds is not None and max_wait_seconds < max_run_seconds:
        raise UsageError("--max-wait must be at least --max-run (it includes waiting for "
                         "spot capacity)")
    if bool(subnets) != bool(security_groups):
        raise UsageError("a VPC needs both --vpc-subnets and --security-groups")
    for uri in (train, validation, pretrained, model, checkpoint_s3, classes):
        if uri is not None:
            split_s3_uri(uri)

    data_format = data_format or detect_format(train)
    if data_format is None:
        if offline:
            raise UsageError(f"cannot tell the data format of {train} without listing it",
                             hint="pass --format recordio, image or manifest")
        data_format = _format_from_listing(session, train)
    layout = channels("train", train, data_format, label_attribute=label_attribute)
    if validation:
        layout += channels("validation", validation, data_format,
                           label_attribute=label_attribute)
    if pretrained:
        layout.append(ChannelSpec("pretrained", pretrained))
    if model:
        layout.append(ChannelSpec("model", model, MODEL))
    names, note = classes_channel(session, classes, train, offline)
    if names:
        layout.append(names)

    placeholders = []
    region = session.region
    role = session.configured_role if offline else session.role
    if role is None:
        role = PLACEHOLDER_ROLE
        placeholders.append(PLACEHOLDER_ROLE)
    if offline and session.configured_bucket is None:
        bucket = f"sagemaker-{region}-{PLACEHOLDER_ACCOUNT}"
        placeholders.append(PLACEHOLDER_ACCOUNT)
    else:
        bucket = session.bucket
    image = image or instances.training_image(instance.name, region)
    version = image_version(image)
    distributed = (instance.gpus * instance_count > 1
                   and (version is None or version >= TORCH_DISTRIBUTED_SINCE))
    base = f"ssd-{checked.get('base_network', 'vgg-16')}"
    name = name or unique_name(base)
    if spot and checkpoint_s3 is None:
        checkpoint_s3 = f"s3://{bucket}/{OUTPUT_PREFIX}/{name}/checkpoints"
    archive = source_archive()
    spec = TrainingJobSpec(
        name=name, role=role, image=image, region=region, instance_type=instance.name,
        instance_count=instance_count, hyperparameters=given, channels=tuple(layout),
        output_path=f"s3://{bucket}/{OUTPUT_PREFIX}", source_uri=archive.uri(bucket),
        torch_distributed=distributed,
        input_mode=input_mode or ("Pipe" if data_format == "manifest" else "File"),
        volume_size_gb=volume_size_gb, max_run_seconds=max_run_seconds, spot=spot,
        max_wait_seconds=max_wait_seconds, checkpoint_s3=checkpoint_s3,
        subnets=tuple(subnets), security_groups=tuple(security_groups),
        network_isolation=network_isolation, encrypt_inter_container=encrypt_inter_container,
        tags=dict(tags or {}),
    )
    cost = costs.training(instance.name, instance_count, max_run_seconds, spot)
    return TrainingPlan(spec=spec, archive=archive, data_format=data_format,
                        hyperparameters=given, cost=cost, placeholders=tuple(placeholders),
                        notes=(note,) if note else ())


def upload_source(session: Session, archive: SourceArchive, bucket: str) -> bool:
    """Upload the code archive unless an object of that content hash is there; True if sent."""
    try:
        session.aws.call("s3", "head_object", Bucket=bucket, Key=archive.key())
        return False
    except NotFoundError:
        session.aws.call("s3", "put_object", Bucket=bucket, Key=archive.key(),
                         Body=archive.data, ContentType="application/gzip")
        return True


def launch(session: Session, plan: TrainingPlan,
           confirm: Callable[[str], bool] = lambda question: True) -> TrainingJob:
    """Create the bucket if needed (asking ``confirm``), upload the code, start the job."""
    from detectctl.jobs import TrainingJob

    if plan.placeholders:
        raise UsageError("this plan was made offline and has placeholders: "
                         + ", ".join(plan.placeholders))
    bucket = session.ensure_bucket(confirm)
    upload_source(session, plan.archive, bucket)
    session.aws.call("sagemaker", "create_training_job", **plan.request)
    return TrainingJob(session, plan.spec.name)

