"""The SageMaker training container contract: every ``/opt/ml`` path, in one place.

SageMaker lays out a training container as::

    /opt/ml/input/config/hyperparameters.json   {name: string value}
    /opt/ml/input/config/resourceconfig.json    {"current_host": "algo-1", "hosts": [...]}
    /opt/ml/input/config/inputdataconfig.json   {channel: {"ContentType", "TrainingInputMode"}}
    /opt/ml/input/data/<channel>/               File mode data
    /opt/ml/input/data/<channel>_<epoch>        Pipe mode: a FIFO per pass over the data
    /opt/ml/model/                              the model artifact (tarred by SageMaker)
    /opt/ml/output/failure                      why the job failed (shown as FailureReason)
    /opt/ml/checkpoints/                        synced to S3; survives spot interruptions

The root comes from ``DETECTCTL_OPT_ML`` (default ``/opt/ml``), so tests and the local backend
run the same job under a temporary directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

ROOT_VARIABLE = "DETECTCTL_OPT_ML"
DEFAULT_ROOT = "/opt/ml"
CHANNELS = ("train", "validation", "train_annotation", "validation_annotation", "model",
            "pretrained")
# SageMaker shows at most 1024 characters of a failure reason.
FAILURE_LIMIT = 1024


class ContractError(ValueError):
    """A container configuration file is missing or malformed."""


@dataclass(frozen=True)
class Paths:
    """The container's directories and files under one root."""

    root: Path

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> Paths:
        environ = os.environ if environ is None else environ
        return cls(Path(environ.get(ROOT_VARIABLE) or DEFAULT_ROOT))

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters_file(self) -> Path:
        return self.config_dir / "hyperparameters.json"

    @property
    def resource_config_file(self) -> Path:
        return self.config_dir / "resourceconfig.json"

    @property
    def input_data_config_file(self) -> Path:
        return self.config_dir / "inputdataconfig.json"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    def channel(self, name: str) -> Path:
        """A channel's directory (File and FastFile modes)."""
        return self.data_dir / name

    def pipe(self, name: str, epoch: int) -> Path:
        """A channel's FIFO for one pass over the data (Pipe mode; ``epoch`` counts from 0)."""
        return self.data_dir / f"{name}_{epoch}"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"


@dataclass(frozen=True)
class ResourceConfig:
    """Which hosts the job runs on and which one this is (``algo-1`` is the master)."""

    current_host: str = "algo-1"
    hosts: List[str] = field(default_factory=lambda: ["algo-1"])
    network_interface_name: Optional[str] = None

    @property
    def host_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def master_host(self) -> str:
        return self.hosts[0]


@dataclass(frozen=True)
class Channel:
    """One input channel as SageMaker configured it."""

    name: str
    content_type: Optional[str] = None
    input_mode: str = "File"
    record_wrapper: Optional[str] = None


def read_hyperparameters(paths: Paths) -> Dict[str, Any]:
    """The raw hyperparameter map (string values); empty when the file is absent."""
    if not paths.hyperparameters_file.exists():
        return {}
    data = _read_json(paths.hyperparameters_file)
    if not isinstance(data, dict):
        raise ContractError(f"{paths.hyperparameters_file}: expected a JSON object")
    return data


def read_resource_config(paths: Paths) -> ResourceConfig:
    """The host list; a single ``algo-1`` when the file is absent (a plain local run)."""
    if not paths.resource_config_file.exists():
        return ResourceConfig()
    data = _read_json(paths.resource_config_file)
    try:
        hosts = sorted(data["hosts"], key=_host_order)
        config = ResourceConfig(str(data["current_host"]), [str(h) for h in hosts],
                                data.get("network_interface_name"))
    except (KeyError, TypeError) as exc:
        raise ContractError(f"{paths.resource_config_file}: missing or bad field {exc}") from None
    if config.current_host not in config.hosts:
        raise ContractError(f"{paths.resource_config_file}: current_host "
                            f"{config.current_host!r} is not in hosts {config.hosts}")
    return config


def read_input_data_config(paths: Paths) -> Dict[str, Channel]:
    """Channels by name. Without the file, every channel directory present is a File channel."""
    if not paths.input_data_config_file.exists():
        return {name: Channel(name) for name in CHANNELS if paths.channel(name).is_dir()}
    data = _read_json(paths.input_data_config_file)
    if not isinstance(data, dict):
        raise ContractError(f"{paths.input_data_config_file}: expected a JSON object")
    channels = {}
    for name, spec in data.items():
        spec = spec or {}
        channels[name] = Channel(
            name=name,
            content_type=spec.get("ContentType"),
            input_mode=spec.get("TrainingInputMode", "File"),
            record_wrapper=spec.get("RecordWrapperType"),
        )
    return channels


def write_failure(paths: Paths, message: str) -> None:
    """Record why the job failed; SageMaker shows it as the job's FailureReason."""
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    text = message.strip()
    if len(text) > FAILURE_LIMIT:
        text = text[: FAILURE_LIMIT - 3] + "..."
    paths.failure_file.write_text(text + "\n", encoding="utf-8")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ContractError(f"{path}: not valid JSON: {exc}") from None


def _host_order(host: str) -> Any:
    # algo-2 before algo-10: SageMaker numbers hosts from 1, and rank follows the number.
    prefix, _, number = str(host).rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (str(host), 0)
