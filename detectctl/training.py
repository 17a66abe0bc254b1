"""A training request: what the user asked for, checked once, the same for every backend.

:func:`training_request` validates the hyperparameters with the schema, the options against each
other, the data format and the job name, and keeps the hyperparameters as the user gave them
(SageMaker's string map): every backend sends exactly those, and the job fills in the defaults.
A backend then refuses what it cannot honour (:func:`detectctl.backend.refuse`) and plans the
rest (:meth:`detectctl.backend.Backend.plan`).

Job files (``--config`` files, YAML or JSON, and the presets shipped in
:mod:`detectctl.presets`) hold hyperparameters and any of ``detectctl train``'s options under
their option names; :func:`merge_job_files` layers them (a preset, then a ``--config`` file) and
:func:`preset_arguments` merges the result with the options given on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from detectctl import formats, names
from detectctl.durations import parse_seconds
from detectctl.errors import UsageError
from detectctl.keyvalues import parse_key_values, split_list

INPUT_MODES = ("File", "Pipe", "FastFile")
DEFAULT_LABEL_ATTRIBUTE = "bounding-box"
DEFAULT_MAX_RUN_SECONDS = 86400

# train's option names (as in --config presets) -> TrainingRequest fields.
OPTION_FIELDS = {
    "instance": "instance_type", "count": "instance_count", "train": "train",
    "validation": "validation", "format": "data_format", "label_attribute": "label_attribute",
    "pretrained": "pretrained", "model": "model", "name": "name", "input_mode": "input_mode",
    "spot": "spot", "max_run": "max_run_seconds", "max_wait": "max_wait_seconds",
    "checkpoint_s3": "checkpoint_s3", "vpc_subnets": "subnets",
    "security_groups": "security_groups", "network_isolation": "network_isolation",
    "encrypt_inter_container": "encrypt_inter_container", "volume_size": "volume_size_gb",
    "tags": "tags", "image": "image", "classes": "classes",
}
FIELD_OPTIONS = {value: "--" + key.replace("_", "-") for key, value in OPTION_FIELDS.items()}
# The fields only SageMaker honours: the local backend refuses them by name when given, and
# leaves them out when a job file or preset set them (preset_arguments).
SAGEMAKER_ONLY = ("input_mode", "spot", "max_run_seconds", "max_wait_seconds", "checkpoint_s3",
                  "subnets", "security_groups", "network_isolation", "encrypt_inter_container",
                  "volume_size_gb", "tags", "image", "label_attribute")
# A job file's keys besides train's options; a description (the presets have one) says what the
# file is for and sets nothing.
JOB_FILE_KEYS = ("hyperparameters", "description")


@dataclass(frozen=True)
class TrainingRequest:
    """A checked training job request, before any backend resolves it.

    ``hyperparameters`` are the ones given, validated, as SageMaker's strings; ``name`` is None
    when the backend is to generate one from ``base_name``.
    """

    instance_type: str
    train: str
    hyperparameters: Mapping[str, str]
    base_network: str
    use_pretrained_model: bool
    instance_count: int = 1
    name: Optional[str] = None
    validation: Optional[str] = None
    data_format: Optional[str] = None
    label_attribute: str = DEFAULT_LABEL_ATTRIBUTE
    pretrained: Optional[str] = None
    model: Optional[str] = None
    classes: Optional[str] = None
    input_mode: Optional[str] = None
    spot: bool = False
    max_run_seconds: int = DEFAULT_MAX_RUN_SECONDS
    max_wait_seconds: Optional[int] = None
    checkpoint_s3: Optional[str] = None
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    network_isolation: bool = False
    encrypt_inter_container: bool = False
    volume_size_gb: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)
    image: Optional[str] = None

    @property
    def base_name(self) -> str:
        """What a generated job name starts with."""
        return names.job_base(self.base_network)

    @property
    def needs_pretrained_weights(self) -> bool:
        """The job starts from ImageNet weights that the user did not give: the backend
        resolves torchvision's file (see :mod:`detectctl.pretrained`)."""
        return self.use_pretrained_model and self.pretrained is None and self.model is None

    def given(self, *names_: str) -> dict[str, Any]:
        """``{option: value}`` of the fields among ``names_`` that differ from their defaults,
        under their command-line names (``--spot``): what a backend refuses by name."""
        defaults = {f.name: f.default for f in fields(self)}
        result = {}
        for name in names_:
            value = getattr(self, name)
            if value != defaults.get(name) and value not in (None, (), {}):
                result[FIELD_OPTIONS.get(name, name)] = value
        return result


def training_request(*, instance_type: str, train: str,
                     hyperparameters: Optional[Mapping[str, Any]] = None,
                     hyperparameter_source: Optional[str] = None,
                     instance_count: int = 1, name: Optional[str] = None,
                     validation: Optional[str] = None, data_format: Optional[str] = None,
                     label_attribute: str = DEFAULT_LABEL_ATTRIBUTE,
                     pretrained: Optional[str] = None, model: Optional[str] = None,
                     classes: Optional[str] = None, input_mode: Optional[str] = None,
                     spot: bool = False, max_run_seconds: int = DEFAULT_MAX_RUN_SECONDS,
                     max_wait_seconds: Optional[int] = None,
                     checkpoint_s3: Optional[str] = None, subnets: Sequence[str] = (),
                     security_groups: Sequence[str] = (), network_isolation: bool = False,
                     encrypt_inter_container: bool = False, volume_size_gb: int = 30,
                     tags: Optional[Mapping[str, str]] = None,
                     image: Optional[str] = None) -> TrainingRequest:
    """Check a training job's options. Raises ``UsageError`` subclasses (exit 2): a
    ``HyperparameterValidationError`` naming every bad hyperparameter, or one line for the
    first bad option."""
    from detectctl.hyperparameters import validate

    values = dict(hyperparameters or {})
    checked = validate(values, source=hyperparameter_source)
    strings = checked.to_sagemaker()
    given = {key: strings[key] for key in values if key in strings}
    if instance_count < 1:
        raise UsageError(f"--count must be at least 1, got {instance_count}")
    if input_mode is not None and input_mode not in INPUT_MODES:
        raise UsageError(f"--input-mode {input_mode!r}: one of {', '.join(INPUT_MODES)}")
    if max_wait_seconds is not None and not spot:
        raise UsageError("--max-wait applies to spot training only", hint="add --spot")
    if spot and max_wait_seconds is not None and max_wait_seconds < max_run_seconds:
        raise UsageError("--max-wait must be at least --max-run (it includes waiting for "
                         "spot capacity)")
    if bool(subnets) != bool(security_groups):
        raise UsageError("a VPC needs both --vpc-subnets and --security-groups")
    if volume_size_gb < 1:
        raise UsageError(f"--volume-size must be at least 1 GB, got {volume_size_gb}")
    return TrainingRequest(
        instance_type=instance_type, train=train, hyperparameters=given,
        base_network=checked.base_network,
        use_pretrained_model=bool(checked.use_pretrained_model),
        instance_count=instance_count, name=names.check_name(name) if name else None,
        validation=validation,
        data_format=formats.normalize(data_format) if data_format else None,
        label_attribute=label_attribute, pretrained=pretrained, model=model, classes=classes,
        input_mode=input_mode, spot=spot, max_run_seconds=max_run_seconds,
        max_wait_seconds=max_wait_seconds, checkpoint_s3=checkpoint_s3,
        subnets=tuple(subnets), security_groups=tuple(security_groups),
        network_isolation=network_isolation, encrypt_inter_container=encrypt_inter_container,
        volume_size_gb=volume_size_gb, tags=dict(tags or {}), image=image)


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


def merge_job_files(*files: Mapping[str, Any]) -> dict[str, Any]:
    """Job files (as :func:`load_job_file` returns them) layered, each overriding the ones
    before it: options by name (``max-run`` and ``max_run`` are one), hyperparameters one by
    one."""
    merged: dict[str, Any] = {"hyperparameters": {}}
    for file in files:
        for key, value in file.items():
            if key == "hyperparameters":
                merged["hyperparameters"].update(value)
            else:
                merged[key.replace("-", "_")] = value
    return merged


def preset_arguments(given: Mapping[str, Any], preset: Mapping[str, Any]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`training_request` arguments from a job file's options overridden by the options
    given (both under train's option names, ``None`` meaning not given), and the job file's
    options left out (name -> value).

    A job file describes a SageMaker job; run on the local backend instead (``--instance
    local``), its SageMaker-only settings (``max-run``, ``spot``, ...) are left out and returned,
    where the same options given on the command line are refused."""
    from detectctl.backend import LOCAL_INSTANCE

    values = {key.replace("-", "_"): value for key, value in preset.items()
              if key not in JOB_FILE_KEYS}
    unknown = sorted(set(values) - set(OPTION_FIELDS))
    if unknown:
        raise UsageError(f"--config: unknown key {unknown[0]!r}",
                         hint="keys: " + ", ".join([*JOB_FILE_KEYS, *sorted(OPTION_FIELDS)]))
    given = {key: value for key, value in given.items() if value is not None}
    left_out = {}
    if given.get("instance", values.get("instance")) == LOCAL_INSTANCE:
        for key in [key for key in values if OPTION_FIELDS[key] in SAGEMAKER_ONLY]:
            if key not in given:
                left_out[key] = values.pop(key)
    values.update(given)
    for key in ("max_run", "max_wait"):
        if isinstance(values.get(key), str):
            values[key] = parse_seconds(values[key], "--" + key.replace("_", "-"))
    if isinstance(values.get("tags"), (list, tuple)):
        values["tags"] = parse_key_values(split_list(values["tags"]) or [], "--tags")
    for key in ("vpc_subnets", "security_groups"):
        if isinstance(values.get(key), str):
            values[key] = split_list([values[key]])
    for required in ("instance", "train"):
        if values.get(required) is None:
            raise UsageError(f"missing --{required}",
                             hint="pass it, or set it in the --config file")
    return {OPTION_FIELDS[key]: value for key, value in values.items()}, left_out
