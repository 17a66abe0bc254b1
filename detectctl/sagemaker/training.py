"""SageMaker training jobs: a checked request in, a CreateTrainingJob out, then launched.

:func:`plan` picks the framework image for the instance's GPU architecture, lays out the
channels for the data format and packs ``algorithm/``; it calls AWS only where it must (the
account for the default bucket, a listing to recognise a data format) and not at all with
``offline=True``. :func:`launch` uploads the code once per content hash and sends the request.

Channel layouts follow the built-in algorithm:

- ``recordio``: ``train`` and ``validation``, ``application/x-recordio``.
- ``sagemaker-json`` (the built-in's "image" format): a prefix holding ``images/`` and
  ``annotations/`` becomes ``train`` and ``train_annotation`` (and the same for validation),
  all ``application/x-image``.
- ``manifest``: an augmented manifest, ``AugmentedManifestFile`` wrapped in RecordIO with the
  attributes ``source-ref`` and the label attribute; Pipe mode by default.

Whatever the format and input mode, the class names reach the job through ``classes``, a File
mode channel holding one ``classes.json`` (``/opt/ml/input/data/classes/classes.json``): the one
given, else the one `detectctl dataset upload` put beside the training data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl import costs, formats, instances, names, pretrained
from detectctl.aws.requests import ChannelSpec, TrainingJobSpec, training_job_request
from detectctl.backend import SAGEMAKER, Plan
from detectctl.errors import NotFoundError, PretrainedWeightsError, UsageError
from detectctl.packaging import SourceArchive, source_archive
from detectctl.s3uri import split_s3_uri
from detectctl.sagemaker.jobs import SageMakerTrainingJob, create_training_job
from detectctl.sagemaker.uploads import classes_uri

if TYPE_CHECKING:
    from detectctl.session import Session
    from detectctl.training import TrainingRequest

CLASSES_CHANNEL = "classes"
PRETRAINED_CHANNEL = "pretrained"
OUTPUT_PREFIX = "detectctl/jobs"
# torchrun-launched training in the PyTorch toolkit, on GPU instances (sagemaker SDK's
# TORCH_DISTRIBUTED_GPU_SUPPORTED_FRAMEWORK_VERSIONS starts there). Older images start
# train.py plainly and algorithm/train.py launches its own workers.
TORCH_DISTRIBUTED_SINCE = (1, 13, 1)
PLACEHOLDER_ROLE = "<execution-role-arn>"
PLACEHOLDER_ACCOUNT = "<account-id>"
PLACEHOLDER_WEIGHTS = "<weights-sha256>"


@dataclass(frozen=True)
class Weights:
    """torchvision's ImageNet weights file for the job, uploaded once per content hash."""

    path: Optional[Path]  # None: not on this machine yet (a dry run)
    key: str
    bucket: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class TrainingPlan(Plan):
    """A resolved training job: the request to send, the code to upload, what it costs."""

    backend = SAGEMAKER

    spec: TrainingJobSpec
    archive: SourceArchive
    data_format: str
    hyperparameters: Mapping[str, str]
    cost: costs.TrainingCost
    base_name: Optional[str] = None  # the job's name was generated from this
    derived_checkpoints: bool = False  # checkpoint_s3 was derived from the name
    weights: Optional[Weights] = None
    placeholders: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def confirm(self) -> bool:
        return True

    @property
    def request(self) -> dict[str, Any]:
        return training_job_request(self.spec)

    def to_dict(self) -> dict[str, Any]:
        return self.request

    def attempts(self) -> Iterator[TrainingPlan]:
        """This plan, then (when its name was generated) the same under the next names: the
        first one SageMaker does not know yet is the job."""
        yield self
        if self.base_name is None:
            return
        for name in names.candidates(self.base_name):
            if name != self.spec.name:
                checkpoints = (self.spec.checkpoint_s3.replace(f"/{self.spec.name}/",
                                                               f"/{name}/")
                               if self.derived_checkpoints and self.spec.checkpoint_s3
                               else self.spec.checkpoint_s3)
                yield dataclasses.replace(self, spec=dataclasses.replace(
                    self.spec, name=name, checkpoint_s3=checkpoints))

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


def _format_from_listing(session: Session, uri: str) -> str:
    bucket, prefix = split_s3_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    keys = [o["Key"][len(prefix):] for o in session.aws.paginate(
        "s3", "list_objects_v2", "Contents", max_items=1000, Bucket=bucket, Prefix=prefix)]
    if any(k.endswith(formats.RECORDIO_SUFFIXES) for k in keys):
        return formats.RECORDIO
    if any(k.startswith("images/") for k in keys) and any(
            k.startswith("annotations/") for k in keys):
        return formats.SAGEMAKER_JSON
    if any(k.endswith(formats.MANIFEST_SUFFIXES) for k in keys):
        return formats.MANIFEST
    if not keys:
        raise NotFoundError(f"nothing under {uri}",
                            hint="upload the data first: detectctl dataset upload PATH URI")
    raise UsageError(f"cannot tell the data format under {uri}",
                     hint="pass --format " + ", ".join(formats.TRAINING_FORMATS))


def channels(kind: str, uri: str, data_format: str, *,
             label_attribute: str) -> list[ChannelSpec]:
    """The channels for one split (``kind`` is ``train`` or ``validation``)."""
    if data_format == formats.RECORDIO:
        return [ChannelSpec(kind, uri, formats.RECORDIO_CONTENT_TYPE)]
    if data_format == formats.SAGEMAKER_JSON:
        base = uri.rstrip("/") + "/"
        return [ChannelSpec(kind, base + "images/", formats.IMAGE_CONTENT_TYPE),
                ChannelSpec(f"{kind}_annotation", base + "annotations/",
                            formats.IMAGE_CONTENT_TYPE)]
    return [ChannelSpec(kind, uri, formats.RECORDIO_CONTENT_TYPE,
                        s3_data_type="AugmentedManifestFile", record_wrapper="RecordIO",
                        attribute_names=("source-ref", label_attribute))]


def classes_channel(session: Session, given: Optional[str], train: str,
                    offline: bool) -> tuple[Optional[ChannelSpec], Optional[str]]:
    """The ``classes`` channel: ``given``, else the ``classes.json`` that `detectctl dataset
    upload` put beside ``train`` if it is there; and a note when there is none or it is
    unchecked (``offline``)."""
    uri = given or classes_uri(train)
    if uri is None:
        return None, "no classes channel: the job gets no class names (pass --classes)"
    channel = ChannelSpec(CLASSES_CHANNEL, uri, formats.JSON_CONTENT_TYPE, input_mode="File")
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


def pretrained_weights(base_network: str, bucket: str, offline: bool,
                       on_download: Optional[Callable[[int, Optional[int]], None]] = None
                       ) -> Weights:
    """torchvision's weights for ``base_network`` (cached or downloaded now, unless
    ``offline``) and their key under the bucket, named by content hash."""
    file_name = pretrained.WEIGHTS[base_network][0]
    try:
        path: Optional[Path] = pretrained.resolve(base_network, download=not offline,
                                                  on_progress=on_download)
    except PretrainedWeightsError:
        if not offline:
            raise
        path = None
    key = (pretrained.weights_key(pretrained.sha256_of(path), file_name) if path is not None
           else f"{pretrained.KEY_PREFIX}/{PLACEHOLDER_WEIGHTS}/{file_name}")
    return Weights(path, key, bucket)


def plan(session: Session, request: TrainingRequest, *, offline: bool = False) -> TrainingPlan:
    """Resolve ``request`` for SageMaker. Raises ``UsageError`` subclasses (exit 2) for what
    SageMaker would refuse."""
    instance = instances.for_training(request.instance_type)
    for uri in (request.train, request.validation, request.pretrained, request.model,
                request.checkpoint_s3, request.classes):
        if uri is not None:
            split_s3_uri(uri)

    data_format = request.data_format or formats.from_name(request.train)
    if data_format is None:
        if offline:
            raise UsageError(f"cannot tell the data format of {request.train} without "
                             "listing it",
                             hint="pass --format " + ", ".join(formats.TRAINING_FORMATS))
        data_format = _format_from_listing(session, request.train)
    layout = channels("train", request.train, data_format,
                      label_attribute=request.label_attribute)
    if request.validation:
        layout += channels("validation", request.validation, data_format,
                           label_attribute=request.label_attribute)

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

    notes = []
    if placeholders:
        notes.append(", ".join(placeholders) + " stand for values resolved at launch (pass "
                     "--role and --bucket to fix them)")
    weights = None
    if request.pretrained:
        layout.append(ChannelSpec(PRETRAINED_CHANNEL, request.pretrained))
    elif request.needs_pretrained_weights:
        weights = pretrained_weights(request.base_network, bucket, offline, session.on_download)
        layout.append(ChannelSpec(PRETRAINED_CHANNEL, weights.uri))
        if weights.path is None:
            placeholders.append(PLACEHOLDER_WEIGHTS)
            notes.append(f"torchvision's {request.base_network} weights are not cached here: "
                         "they are downloaded and uploaded at launch")
    if request.model:
        layout.append(ChannelSpec("model", request.model, formats.MODEL_CONTENT_TYPE))
    names_channel, note = classes_channel(session, request.classes, request.train, offline)
    if names_channel:
        layout.append(names_channel)
    if note:
        notes.append(note)

    image = request.image or instances.training_image(instance.name, region)
    version = image_version(image)
    distributed = (instance.gpus * request.instance_count > 1
                   and (version is None or version >= TORCH_DISTRIBUTED_SINCE))
    name = request.name or names.unique_name(request.base_name)
    checkpoint_s3 = request.checkpoint_s3
    if request.spot and checkpoint_s3 is None:
        checkpoint_s3 = f"s3://{bucket}/{OUTPUT_PREFIX}/{name}/checkpoints"
    archive = source_archive()
    spec = TrainingJobSpec(
        name=name, role=role, image=image, region=region, instance_type=instance.name,
        instance_count=request.instance_count, hyperparameters=dict(request.hyperparameters),
        channels=tuple(layout), output_path=f"s3://{bucket}/{OUTPUT_PREFIX}",
        source_uri=archive.uri(bucket), torch_distributed=distributed,
        input_mode=request.input_mode or (
            "Pipe" if data_format == formats.MANIFEST else "File"),
        volume_size_gb=request.volume_size_gb, max_run_seconds=request.max_run_seconds,
        spot=request.spot, max_wait_seconds=request.max_wait_seconds,
        checkpoint_s3=checkpoint_s3, subnets=request.subnets,
        security_groups=request.security_groups, network_isolation=request.network_isolation,
        encrypt_inter_container=request.encrypt_inter_container, tags=dict(request.tags),
    )
    cost = costs.training(instance.name, request.instance_count, request.max_run_seconds,
                          request.spot)
    return TrainingPlan(spec=spec, archive=archive, data_format=data_format,
                        hyperparameters=dict(request.hyperparameters), cost=cost,
                        base_name=None if request.name else request.base_name,
                        derived_checkpoints=request.spot and request.checkpoint_s3 is None,
                        weights=weights,
                        placeholders=tuple(placeholders), notes=tuple(notes))


def upload_once(session: Session, bucket: str, key: str, body: Any, content_type: str) -> bool:
    """Put an object unless one is at ``key`` already (keys named by content hash); True if
    sent. ``body`` is bytes or a path."""
    try:
        session.aws.call("s3", "head_object", Bucket=bucket, Key=key)
        return False
    except NotFoundError:
        pass
    if isinstance(body, Path):
        session.aws.call("s3", "upload_file", Filename=str(body), Bucket=bucket, Key=key,
                         ExtraArgs={"ContentType": content_type})
    else:
        session.aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=body,
                         ContentType=content_type)
    return True


def launch(session: Session, plan: TrainingPlan,
           confirm: Callable[[str], bool] = lambda question: True) -> SageMakerTrainingJob:
    """Create the bucket if needed (asking ``confirm``), upload the code and the pretrained
    weights once per content hash, start the job."""
    if plan.placeholders:
        raise UsageError("this plan was made offline and has placeholders: "
                         + ", ".join(plan.placeholders))
    bucket = session.ensure_bucket(confirm)
    upload_once(session, bucket, plan.archive.key(), plan.archive.data, "application/gzip")
    if plan.weights is not None and plan.weights.path is not None:
        upload_once(session, plan.weights.bucket, plan.weights.key, plan.weights.path,
                    "application/octet-stream")
    for attempt in plan.attempts():
        if create_training_job(session, attempt.request):
            return SageMakerTrainingJob(session, attempt.name)
    raise UsageError(f"a SageMaker training job named {plan.name} exists already",
                     hint="choose another --name")
