"""Local batch transform: the model server over a folder of images or a ``.rec``, as a local
job that outlives the command that started it.

A transform job is a directory (``~/.detectctl/transforms/NAME``)::

    request.json       the model, the input, the output, the kind of input
    transform.json     its state, in the shape of DescribeTransformJob, plus the runner's
                       pid, the counts done and failed, and the inputs that failed
    logs/algo-1-<start>.log   the runner's and the server's lines

The runner (:mod:`detectctl.local.transformer`) starts ``algorithm/serve.py`` on a free port,
sends it every input as SageMaker's transform agent would (an image, or one RecordIO record, a
request), and writes the answers where SageMaker would: ``<output>/<image path>.out``, or
``<output>/<name>.rec.out`` with a JSON line per record. An input the server refuses does not
stop the rest: it is counted, listed in the state, and its line in a ``.rec.out`` is
``{"error": reason}``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from detectctl import names, transforms
from detectctl.backend import LOCAL, LOCAL_INSTANCE, Plan, refuse
from detectctl.errors import DetectctlError, UsageError
from detectctl.local.endpoints import resolve_model
from detectctl.local.logs import LogFiles
from detectctl.local.processes import code_path, spawn_detached
from detectctl.local.state import (
    StateDirectory,
    alive,
    home,
    iso,
    now,
    parse_times,
    signal_group,
    write_json,
)
from detectctl.logs import TERMINAL
from detectctl.s3uri import is_s3_uri

STATE = "transform.json"
REQUEST = "request.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class TransformDirectory(StateDirectory):
    STATE = STATE
    KIND = "local transform job"
    LIST_COMMAND = "transform list"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def read_request(self) -> dict[str, Any]:
        import json

        return json.loads((self.path / REQUEST).read_text(encoding="utf-8"))

    def describe(self) -> dict[str, Any]:
        """The state with times as datetimes; a running job whose runner has died ends
        Failed first."""
        state = self.read()
        runner = state.get("Local", {}).get("Runner")
        if state.get("TransformJobStatus") in ("InProgress", "Stopping") and runner \
                and not alive(runner):
            state = self.update(_runner_died)
        return parse_times(state)


def _runner_died(state: dict[str, Any]) -> None:
    runner = state.get("Local", {}).get("Runner")
    if state.get("TransformJobStatus") not in ("InProgress", "Stopping") or alive(runner):
        return
    server = state.get("Local", {}).get("Server")
    if server:
        signal_group(server, signal.SIGKILL)
    state["TransformJobStatus"] = "Failed"
    state["FailureReason"] = (f"the transform job's runner (pid {runner['Pid']}) ended "
                              "without recording how the job ended")
    state["TransformEndTime"] = iso(now())


def images_under(folder: Path) -> list[Path]:
    """The images of a folder, in a stable order (dotfiles left out)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


@dataclass(frozen=True)
class LocalTransformPlan(Plan):
    directory: Path
    model: Path
    source: str
    input: Path
    output: Path
    input_kind: str

    backend = LOCAL

    @property
    def name(self) -> str:
        return self.directory.name

    def summary(self) -> list[tuple[str, str]]:
        return [("transform job", self.name), ("model", str(self.model)),
                ("input", f"{self.input} ({self.input_kind})"), ("output", str(self.output))]

    def to_dict(self) -> dict[str, Any]:
        return {"TransformJobName": self.name, "Model": str(self.model),
                "Input": str(self.input), "InputKind": self.input_kind,
                "Output": str(self.output), "Directory": str(self.directory)}


def plan(request: transforms.TransformRequest, home_dir: Optional[Path] = None
         ) -> LocalTransformPlan:
    refuse(LOCAL, {"--count": request.instance_count if request.instance_count != 1 else None,
                   "--image": request.image, "--keep-model": request.keep_model,
                   "--tags": request.tags})
    if request.instance_type != LOCAL_INSTANCE:
        raise UsageError(f"instance type {request.instance_type!r} is not local")
    base = home_dir or home()
    model = resolve_model(request.source, base / "jobs")
    for option, value in (("--input", request.input), ("--output", request.output)):
        if is_s3_uri(value):
            raise UsageError(f"{option} {value}: a local transform reads and writes local "
                             "files", hint="run it on SageMaker, or copy the data here")
    source = Path(request.input).expanduser().resolve()
    if request.input_kind == transforms.RECORDIO and not source.is_file():
        raise UsageError(f"--input {request.input}: no such file")
    if request.input_kind == transforms.IMAGES:
        if not source.is_dir():
            raise UsageError(f"--input {request.input}: not a folder of images (or a .rec)")
        if not images_under(source):
            raise UsageError(f"--input {request.input}: no images in it",
                             hint="images end in " + ", ".join(IMAGE_SUFFIXES))
    output = Path(request.output).expanduser().resolve()
    if output.is_file():
        raise UsageError(f"--output {request.output}: a file; give a folder")
    name = request.name or names.unique_name(f"{Path(request.source).name[:30]}-batch")
    directory = base / "transforms" / name
    if directory.exists():
        raise UsageError(f"a local transform job named {name} exists already",
                         hint="choose another --name")
    return LocalTransformPlan(directory=directory, model=model, source=request.source,
                              input=source, output=output, input_kind=request.input_kind)


def launch(plan: LocalTransformPlan) -> LocalTransformJob:
    directory = TransformDirectory(plan.directory)
    directory.path.mkdir(parents=True)
    try:
        (directory.path / "logs").mkdir()
        write_json(directory.path / REQUEST, {
            "model": str(plan.model), "input": str(plan.input), "output": str(plan.output),
            "kind": plan.input_kind})
        directory.update(lambda state: state.update({
            "TransformJobName": plan.name, "TransformJobStatus": "InProgress",
            "CreationTime": iso(now()), "ModelName": str(plan.model),
            "TransformInput": {"DataSource": {"S3DataSource": {"S3Uri": str(plan.input)}},
                               "ContentType": transforms.CONTENT_TYPES[plan.input_kind]},
            "TransformOutput": {"S3OutputPath": str(plan.output),
                                "Accept": transforms.ACCEPT[plan.input_kind]},
            "TransformResources": {"InstanceType": LOCAL_INSTANCE, "InstanceCount": 1},
            "Local": {"Done": 0, "Failed": 0, "FailedInputs": []}}))
        env = {**os.environ, "PYTHONPATH": code_path()}
        runner = spawn_detached(
            [sys.executable, "-m", "detectctl.local.transformer", str(directory.path)],
            log=directory.path / "runner.log", cwd=directory.path, env=env,
            block_stop_signals=True)
    except BaseException:
        shutil.rmtree(directory.path, ignore_errors=True)
        raise
    directory.update(lambda state: state["Local"].setdefault("Runner", runner))
    return LocalTransformJob(directory.path)


class LocalTransformJob(transforms.TransformJob):
    backend = LOCAL
    poll_seconds = 1.0

    def __init__(self, path: Path, description: Optional[dict[str, Any]] = None):
        super().__init__(Path(path).name, description)
        self.directory = TransformDirectory(Path(path))

    def refresh(self) -> dict[str, Any]:
        self._description = self.directory.describe()
        return self._description

    def stop(self) -> None:
        runner = self.refresh().get("Local", {}).get("Runner")
        if self.status in TERMINAL or not runner or not signal_group(runner, signal.SIGTERM):
            raise DetectctlError(f"transform job {self.name} is {self.status}; nothing to stop")

    def log_streams(self) -> LogFiles:
        return LogFiles(self.directory.logs)

    @property
    def progress(self) -> Optional[tuple[int, Optional[int]]]:
        local = self.description.get("Local", {})
        return local.get("Done", 0) + local.get("Failed", 0), local.get("Total")

    @property
    def failed_inputs(self) -> list[dict[str, str]]:
        return list(self.description.get("Local", {}).get("FailedInputs", []))

    def summary(self) -> list[tuple[str, str]]:
        rows = super().summary()
        local = self.description.get("Local", {})
        total = local.get("Total")
        rows.append(("inputs", f"{local.get('Done', 0)} of {total if total is not None else '?'}"
                               f" done, {local.get('Failed', 0)} failed"))
        rows += [("failed", f"{f['input']}: {f['reason']}") for f in self.failed_inputs[:10]]
        if len(self.failed_inputs) > 10:
            rows.append(("failed", f"... {len(self.failed_inputs) - 10} more (--json)"))
        return rows


def list_jobs(home_dir: Optional[Path] = None, limit: int = 20) -> list[transforms.TransformJob]:
    folder = (home_dir or home()) / "transforms"
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        directory = TransformDirectory(path)
        if directory.exists():
            found.append(LocalTransformJob(path, directory.describe()))
    found.sort(key=lambda j: j.description.get("CreationTime") or 0, reverse=True)
    return found[:limit]
