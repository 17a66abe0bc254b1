"""Training jobs on this machine: the same job and container contract, in local processes.

A local job is a directory (``~/.detectctl/jobs/NAME`` by default)::

    hosts/algo-N/        one SageMaker-style /opt/ml tree per host: input/config/*.json, the
                         channels (links to your local data), model/, output/, checkpoints/
    logs/algo-N.log      each host's output, as CloudWatch would hold it
    model/               the model artifact (algo-1's), ready to serve
    model.tar.gz         the same, packed as SageMaker packs it

Each host runs ``python -m algorithm.train`` with ``DETECTCTL_OPT_ML`` pointing at its tree; hosts
find each other with torchrun-style rendezvous on 127.0.0.1 and train with gloo on the CPU (NCCL
where this machine has GPUs). No Docker, no AWS account.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from detectctl.errors import UsageError

JOBS_VARIABLE = "DETECTCTL_HOME"
FORMATS = ("recordio", "sagemaker-json", "manifest")


@dataclass
class LocalTrainingResult:
    """How a local job ended."""

    name: str
    directory: Path
    status: str  # Completed, Failed or Stopped
    seconds: float
    failure_reason: str | None = None
    exit_codes: dict[str, int] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.directory / "model"

    @property
    def model_archive(self) -> Path:
        return self.directory / "model.tar.gz"


def jobs_home() -> Path:
    return Path(os.environ.get(JOBS_VARIABLE) or Path.home() / ".detectctl") / "jobs"


def train(
    *,
    name: str,
    train: str | Path,
    hyperparameters: Mapping[str, str],
    validation: str | Path | None = None,
    data_format: str | None = None,
    pretrained: str | Path | None = None,
    model: str | Path | None = None,
    hosts: int = 1,
    processes_per_host: int = 1,
    jobs_dir: Path | None = None,
    on_line: Callable[[str, str], None] | None = None,
) -> LocalTrainingResult:
    """Run a training job on this machine and wait for it.

    ``hyperparameters`` is SageMaker's string map (see ``Hyperparameters.to_sagemaker``);
    ``train``/``validation`` are local datasets in any format detectctl reads; ``hosts`` local
    "instances" each run ``processes_per_host`` workers. ``on_line(host, line)`` receives the
    output as it comes.
    """
    if hosts < 1 or processes_per_host < 1:
        raise UsageError("hosts and processes per host must be at least 1")
    directory = (jobs_dir or jobs_home()) / name
    if directory.exists():
        raise UsageError(f"a local job named {name!r} exists already ({directory})",
                         hint="choose another --name, or delete that directory")
    channels = {"train": _dataset(train, "--train", data_format)}
    if validation is not None:
        channels["validation"] = _dataset(validation, "--validation", data_format)
    extra: dict[str, Path] = {}
    if pretrained is not None:
        extra["pretrained"] = _existing(pretrained, "--pretrained")
    if model is not None:
        extra["model"] = _existing(model, "--model")

    names = [f"algo-{i}" for i in range(1, hosts + 1)]
    roots = {host: directory / "hosts" / host for host in names}
    (directory / "logs").mkdir(parents=True)
    for host, root in roots.items():
        _lay_out(root, host, names, hyperparameters, channels, extra)

    port = _free_port()
    threads_each = max(1, (os.cpu_count() or 1) // (hosts * processes_per_host))
    started = time.time()
    processes = {}
    for host, root in roots.items():
        env = {**os.environ, "DETECTCTL_OPT_ML": str(root), "DETECTCTL_MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "DETECTCTL_PROCS_PER_HOST": str(processes_per_host),
               "OMP_NUM_THREADS": str(threads_each), "PYTHONUNBUFFERED": "1"}
        processes[host] = subprocess.Popen(
            [sys.executable, "-m", "algorithm.train"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    readers = [threading.Thread(target=_pump, args=(host, p, directory / "logs" / f"{host}.log",
                                                     on_line), daemon=True)
               for host, p in processes.items()]
    for reader in readers:
        reader.start()

    stopped = False
    try:
        _wait_all(processes)
    except KeyboardInterrupt:
        # As SageMaker stops a job: SIGTERM, then the workers checkpoint and exit.
        stopped = True
        _stop(processes)
    for reader in readers:
        reader.join(timeout=5)

    codes = {host: p.returncode for host, p in processes.items()}
    result = LocalTrainingResult(name, directory, "Completed", time.time() - started,
                                 exit_codes=codes)
    failures = [_failure(roots[h]) for h, code in codes.items() if code != 0]
    if stopped:
        result.status = "Stopped"
    elif failures:
        result.status = "Failed"
        result.failure_reason = next((f for f in failures if f), None) or (
            f"a training process exited with {codes}; see {directory / 'logs'}")
    else:
        model_dir = roots["algo-1"] / "model"
        shutil.copytree(model_dir, result.model_dir)
        _pack(model_dir, result.model_archive)
    (directory / "job.json").write_text(json.dumps({
        "name": name, "status": result.status, "seconds": round(result.seconds, 1),
        "failure_reason": result.failure_reason, "hosts": names,
        "processes_per_host": processes_per_host, "hyperparameters": dict(hyperparameters),
        "channels": {k: str(v[1]) for k, v in channels.items()}}, indent=2) + "\n")
    return result


# --- laying out one host's /opt/ml ---------------------------------------------------------------

def _dataset(path: str | Path, option: str, data_format: str | None) -> tuple[str, Path]:
    from algorithm.data.sources import detect_format

    location = _existing(path, option)
    if data_format is not None and data_format not in FORMATS:
        raise UsageError(f"--format {data_format!r}: use one of {', '.join(FORMATS)}")
    try:
        return data_format or detect_format(str(location)), location
    except ValueError as exc:
        raise UsageError(f"{option} {path}: {exc}") from None


def _existing(path: str | Path, option: str) -> Path:
    location = Path(path).expanduser().resolve()
    if str(path).startswith("s3://"):
        raise UsageError(f"{option} {path}: a local job reads local files",
                         hint="download the data, or run the job on SageMaker")
    if not location.exists():
        raise UsageError(f"{option} {path}: no such file or directory")
    return location


def _lay_out(root: Path, host: str, hosts: list[str], hyperparameters: Mapping[str, str],
             channels: dict[str, tuple[str, Path]], extra: dict[str, Path]) -> None:
    config = root / "input" / "config"
    data = root / "input" / "data"
    config.mkdir(parents=True)
    data.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": host, "hosts": hosts, "network_interface_name": "lo"}))
    listed: dict[str, dict[str, str]] = {}
    for channel, (fmt, location) in channels.items():
        listed.update(_link_channel(data, channel, fmt, location))
    for channel, location in extra.items():
        target = data / channel
        target.mkdir()
        (target / location.name).symlink_to(location)
        listed[channel] = {"TrainingInputMode": "File"}
    (config / "inputdataconfig.json").write_text(json.dumps(listed, indent=2))


def _link_channel(data: Path, channel: str, fmt: str, location: Path) -> dict:
    target = data / channel
    if fmt == "sagemaker-json":
        images, annotations = (location / "images", location / "annotations") \
            if (location / "annotations").is_dir() else (location, Path(f"{location}_annotation"))
        target.symlink_to(images)
        (data / f"{channel}_annotation").symlink_to(annotations)
        if (location / "classes.json").is_file():
            _classes_channel(data, location / "classes.json")
        return {channel: {"ContentType": "application/x-image", "TrainingInputMode": "File"},
                f"{channel}_annotation": {"ContentType": "application/json",
                                          "TrainingInputMode": "File"}}
    target.mkdir()
    if location.is_dir():
        for item in location.iterdir():
            (target / item.name).symlink_to(item)
    elif fmt == "recordio":
        for sibling in location.parent.glob(location.stem + ".*"):
            (target / sibling.name).symlink_to(sibling)
        if (location.parent / "classes.json").is_file():
            (target / "classes.json").symlink_to(location.parent / "classes.json")
    else:
        _absolute_manifest(location, target / location.name)
        if (location.parent / "classes.json").is_file():
            (target / "classes.json").symlink_to(location.parent / "classes.json")
    content_type = "application/x-recordio" if fmt == "recordio" else None
    return {channel: {"TrainingInputMode": "File",
                      **({"ContentType": content_type} if content_type else {})}}


def _classes_channel(data: Path, classes_file: Path) -> None:
    target = data / "classes"
    if not target.exists():
        target.mkdir()
        (target / "classes.json").symlink_to(classes_file)


def _absolute_manifest(source: Path, target: Path) -> None:
    """A copy of a manifest whose relative ``source-ref`` paths are made absolute."""
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            ref = str(doc.get("source-ref", ""))
            if ref and "://" not in ref and not os.path.isabs(ref):
                doc["source-ref"] = str(source.parent / ref)
            line = json.dumps(doc)
        lines.append(line)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- running and collecting --------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(host: str, process: subprocess.Popen, log: Path,
          on_line: Callable[[str, str], None] | None) -> None:
    assert process.stdout is not None
    with open(log, "w", encoding="utf-8") as out:
        for line in process.stdout:
            out.write(line)
            out.flush()
            if on_line is not None:
                on_line(host, line.rstrip("\n"))


def _wait_all(processes: dict[str, subprocess.Popen]) -> None:
    """Wait for every host; when one fails, stop the others (they would wait for it forever)."""
    while True:
        codes = {h: p.poll() for h, p in processes.items()}
        if all(code is not None for code in codes.values()):
            return
        if any(code not in (None, 0) for code in codes.values()):
            time.sleep(2)  # let the others notice and write their own failure
            _stop(processes)
            return
        time.sleep(0.2)


def _stop(processes: dict[str, subprocess.Popen], grace: float = 60.0) -> None:
    """SIGTERM to each host's main process (as `docker stop` signals a container's), which
    checkpoints and exits; whatever still runs after ``grace`` seconds is killed."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.time() + grace
    for process in processes.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _failure(root: Path) -> str | None:
    path = root / "output" / "failure"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def _pack(model_dir: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)

