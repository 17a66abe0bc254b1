"""Local training jobs: a checked request in, a job directory and a detached supervisor out.

:func:`plan` resolves the request on this machine (local paths, data formats, torchvision's
weights from the torch hub cache) and refuses, by name, the options that only SageMaker has.
:func:`launch` reserves the job's directory, lays out one ``/opt/ml`` tree per host, records the
job and starts its supervisor (:mod:`detectctl.local.supervisor`); if any of that fails, the
directory is removed again. The job then runs on without the caller.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Optional

from detectctl import formats, names, pretrained
from detectctl.backend import LOCAL, LOCAL_INSTANCE, Plan, refuse
from detectctl.errors import (
    DetectctlError,
    MissingDependencyError,
    PretrainedWeightsError,
    UsageError,
)
from detectctl.local.layout import LocalChannel, lay_out
from detectctl.local.processes import code_path, spawn_detached
from detectctl.local.state import JobDirectory, end, iso, jobs_home, now, transition
from detectctl.s3uri import is_s3_uri
from detectctl.training import SAGEMAKER_ONLY, TrainingRequest


@dataclass(frozen=True)
class LocalPlan(Plan):
    """A local job, resolved: its directory, hosts, channels and hyperparameters."""

    directory: Path
    hosts: tuple[str, ...]
    hyperparameters: Mapping[str, str]
    channels: Mapping[str, LocalChannel]
    files: Mapping[str, Path]
    processes_per_host: int = 1
    threads_per_process: int = 1
    base_name: Optional[str] = None  # the name was generated from this
    offline: bool = False  # made for a dry run: not to be launched
    notes: tuple[str, ...] = field(default=())

    backend = LOCAL

    @property
    def name(self) -> str:
        return self.directory.name

    def summary(self) -> list[tuple[str, str]]:
        rows = [("job", self.name),
                ("instances", f"{len(self.hosts)} x local (this machine, "
                              f"{self.threads_per_process} thread(s) per process)")]
        rows += [(f"  {name}", f"{c.path} ({c.data_format})") for name, c in self.channels.items()]
        rows += [(f"  {name}", str(path)) for name, path in self.files.items()]
        given = ", ".join(f"{k}={v}" for k, v in self.hyperparameters.items()) or "(defaults)"
        rows += [("hyperparameters", given), ("directory", str(self.directory))]
        rows += [("note", note) for note in self.notes]
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"TrainingJobName": self.name, "Directory": str(self.directory),
                "Hosts": list(self.hosts), "ProcessesPerHost": self.processes_per_host,
                "ThreadsPerProcess": self.threads_per_process,
                "HyperParameters": dict(self.hyperparameters),
                "Channels": {name: {"Format": c.data_format, "Path": str(c.path)}
                             for name, c in self.channels.items()},
                "Files": {name: str(path) for name, path in self.files.items()}}


def _existing(path: str, option: str) -> Path:
    if is_s3_uri(path):
        raise UsageError(f"{option} {path}: a local job reads local files",
                         hint="download the data, or run the job on SageMaker")
    location = Path(path).expanduser().resolve()
    if not location.exists():
        raise UsageError(f"{option} {path}: no such file or directory")
    return location


def _channel(path: str, option: str, data_format: Optional[str]) -> LocalChannel:
    from algorithm.data.sources import detect_format

    location = _existing(path, option)
    if data_format is None:
        try:
            data_format = detect_format(str(location))
        except ValueError as exc:
            raise UsageError(f"{option} {path}: {exc}") from None
    return LocalChannel(formats.normalize(data_format), location)


def plan(request: TrainingRequest, *, jobs_dir: Optional[Path] = None, offline: bool = False,
         on_download: Optional[Callable[[int, Optional[int]], None]] = None) -> LocalPlan:
    """Resolve ``request`` on this machine. Raises ``UsageError`` (exit 2) naming the first
    option the local backend does not take, or the path that is not there."""
    refuse(LOCAL, request.given(*SAGEMAKER_ONLY))
    if request.instance_type != LOCAL_INSTANCE:
        raise UsageError(f"instance type {request.instance_type!r} is not local")
    if not offline and find_spec("torch") is None:
        raise MissingDependencyError("local jobs need PyTorch, which is not installed",
                                     hint="pip install 'detectctl[train]'")
    channels = {"train": _channel(request.train, "--train", request.data_format)}
    if request.validation:
        channels["validation"] = _channel(request.validation, "--validation",
                                          request.data_format)
        found, wanted = channels["validation"].data_format, channels["train"].data_format
        if found != wanted:
            raise UsageError(f"--validation {request.validation}: {found} data, but --train "
                             f"holds {wanted}", hint="convert one of them: detectctl dataset "
                                                     "convert")
    files: dict[str, Path] = {}
    notes = []
    for channel, value, option in (("pretrained", request.pretrained, "--pretrained"),
                                   ("model", request.model, "--model"),
                                   ("classes", request.classes, "--classes")):
        if value:
            files[channel] = _existing(value, option)
    if request.needs_pretrained_weights:
        try:
            files["pretrained"] = pretrained.resolve(request.base_network, download=not offline,
                                                     on_progress=on_download)
        except PretrainedWeightsError:
            if not offline:
                raise
            notes.append(f"torchvision's {request.base_network} weights are not cached here: "
                         "they are downloaded at launch")
    home = jobs_dir or jobs_home()
    name = request.name or names.unique_name(request.base_name)
    if request.name and (home / name).exists():
        raise UsageError(f"a local job named {name!r} exists already ({home / name})",
                         hint="choose another --name, or `detectctl jobs delete "
                              f"{name} --local`")
    hosts = tuple(f"algo-{i}" for i in range(1, request.instance_count + 1))
    return LocalPlan(directory=home / name, hosts=hosts,
                     hyperparameters=dict(request.hyperparameters), channels=channels,
                     files=files, threads_per_process=max(1, (os.cpu_count() or 1) // len(hosts)),
                     base_name=None if request.name else request.base_name, offline=offline,
                     notes=tuple(notes))


def _reserve(plan: LocalPlan) -> Path:
    """Create the job's directory; a generated name moves on to the next free one."""
    home = plan.directory.parent
    home.mkdir(parents=True, exist_ok=True)
    candidates = [plan.directory.name] if plan.base_name is None else names.candidates(
        plan.base_name)
    for name in candidates:
        try:
            (home / name).mkdir()
        except FileExistsError:
            continue
        return home / name
    raise UsageError(f"a local job named {plan.name!r} exists already ({plan.directory})",
                     hint="choose another --name")


def launch(plan: LocalPlan) -> JobDirectory:
    """Create the job and start its supervisor; the job's directory."""
    if plan.offline:
        raise UsageError("this plan was made offline (a dry run); plan the job again to launch "
                         "it")
    job = JobDirectory(_reserve(plan))
    try:
        job.checkpoints.mkdir()
        job.logs.mkdir()
        for host in plan.hosts:
            lay_out(job.host_root(host), host, list(plan.hosts), plan.hyperparameters,
                    plan.channels, plan.files, job.checkpoints)
        job.write_request({
            "hosts": list(plan.hosts), "processes_per_host": plan.processes_per_host,
            "threads_per_process": plan.threads_per_process,
            "environment": {"PYTHONPATH": code_path()}})
        job.update(lambda state: _created(state, plan, job))
    except BaseException:
        shutil.rmtree(job.path, ignore_errors=True)
        raise
    start_supervisor(job)
    return job


def _created(state: dict[str, Any], plan: LocalPlan, job: JobDirectory) -> None:
    state.update({
        "TrainingJobName": job.name, "TrainingJobStatus": "InProgress",
        "CreationTime": iso(now()), "HyperParameters": dict(plan.hyperparameters),
        "ResourceConfig": {"InstanceType": LOCAL_INSTANCE, "InstanceCount": len(plan.hosts)},
        "InputDataConfig": [{"ChannelName": name, "LocalPath": str(c.path),
                             "Format": c.data_format} for name, c in plan.channels.items()]
        + [{"ChannelName": name, "LocalPath": str(path)} for name, path in plan.files.items()],
        "OutputDataConfig": {"LocalPath": str(job.path)},
        "Local": {"Directory": str(job.path)}})
    transition(state, "Starting", "Launching the job's supervisor")


def start_supervisor(job: JobDirectory) -> None:
    """Start the job's supervisor, detached, and record it; a start that fails ends the job
    Failed."""
    env = {**os.environ, "PYTHONPATH": job.read_request()["environment"]["PYTHONPATH"]}
    try:
        supervisor = spawn_detached(
            [sys.executable, "-m", "detectctl.local.supervisor", str(job.path)],
            log=job.path / "supervisor.log", cwd=job.path, env=env, block_stop_signals=True)
    except DetectctlError as exc:
        reason = f"the supervisor did not start: {exc}"
        job.update(lambda state: end(state, "Failed", reason))
        return
    job.update(lambda state: state.setdefault("Local", {}).update(Supervisor=supervisor))
