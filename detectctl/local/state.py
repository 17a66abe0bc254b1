"""A local job's directory and its state file, written atomically and read by anyone.

A local job is a directory (``~/.detectctl/jobs/NAME``; ``DETECTCTL_HOME`` moves
``~/.detectctl``)::

    request.json         what was asked: hosts, hyperparameters, channels (written once)
    job.json             the job's state, in the shape of SageMaker's DescribeTrainingJob
    hosts/algo-N/        each host's /opt/ml tree (input/config, channels, model, output)
    checkpoints/         shared by the hosts, as a job's checkpoint S3 location is
    logs/algo-N-<start>.log   each host's output, one file per host and start of the job
    supervisor.log       the supervisor's own output
    model/, model.tar.gz the model artifact (algo-1's), and the same packed as SageMaker packs it

``job.json`` changes only through :meth:`JobDirectory.update`: under an exclusive lock, read,
change, write to a temporary file, rename. Readers never see a torn file. Its ``Local`` entry
holds what only this machine knows: the supervisor's and each host's pid and start time. A
process is alive only if its pid still runs with the same start time, so a pid reused by
another process does not count, and a job whose supervisor died is noticed by whoever reads it
next (:meth:`JobDirectory.describe`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from detectctl.errors import NotFoundError

HOME_VARIABLE = "DETECTCTL_HOME"
REQUEST = "request.json"
STATE = "job.json"
LOCK = ".lock"
TERMINAL = ("Completed", "Failed", "Stopped")
RUNNING = ("InProgress", "Stopping")
# How long a job may be launching (no supervisor recorded yet) before a reader gives up on it.
LAUNCH_SECONDS = 60
TIME_KEYS = ("CreationTime", "TrainingStartTime", "TrainingEndTime", "TransformStartTime",
             "TransformEndTime", "LastModifiedTime")


def home() -> Path:
    """Where local jobs and endpoints live: ``$DETECTCTL_HOME`` or ``~/.detectctl``."""
    return Path(os.environ.get(HOME_VARIABLE) or Path.home() / ".detectctl")


def jobs_home() -> Path:
    return home() / "jobs"


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


# --- processes ---------------------------------------------------------------------------------

def process_start(pid: int) -> Optional[int]:
    """When process ``pid`` started (clock ticks after boot, Linux), 0 where the system does
    not say; None when no such process runs (a zombie does not run)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _exists(pid)
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _exists(pid: int) -> Optional[int]:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


def this_process() -> dict[str, int]:
    pid = os.getpid()
    return {"Pid": pid, "Start": process_start(pid) or 0}


def alive(process: Optional[dict[str, Any]]) -> bool:
    """Whether ``{"Pid", "Start"}`` still runs (the same process, not a reused pid)."""
    if not process or not process.get("Pid"):
        return False
    started = process_start(int(process["Pid"]))
    return started is not None and (sys.platform != "linux" or started == process["Start"])


def signal_group(process: dict[str, Any], signum: int) -> bool:
    """Send ``signum`` to the process group that ``process`` leads, if it still runs."""
    if not alive(process):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(int(process["Pid"]), signum)
        return True
    return False


# --- state directories --------------------------------------------------------------------------

class StateDirectory:
    """A directory whose state file changes only under a lock, atomically."""

    STATE = STATE
    KIND = "local resource"
    LIST_COMMAND = "jobs list"

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return (self.path / self.STATE).is_file()

    def read(self) -> dict[str, Any]:
        """The state as stored (times as ISO strings)."""
        try:
            return json.loads((self.path / self.STATE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"no {self.KIND} named {self.name}",
                                hint=f"see `detectctl {self.LIST_COMMAND} --local`") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        with open(self.path / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the state under the lock and write it atomically; the new
        state."""
        with self._locked():
            try:
                state = self.read()
            except NotFoundError:
                state = {}
            change(state)
            state["LastModifiedTime"] = iso(now())
            write_json(self.path / self.STATE, state)
            return state


class JobDirectory(StateDirectory):
    """One local job's directory: its request, its state, and where everything else goes."""

    KIND = "local training job"
    LIST_COMMAND = "jobs list"

    def host_root(self, host: str) -> Path:
        return self.path / "hosts" / host

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def model_archive(self) -> Path:
        return self.path / "model.tar.gz"

    def read_request(self) -> dict[str, Any]:
        return json.loads((self.path / REQUEST).read_text(encoding="utf-8"))

    def write_request(self, request: dict[str, Any]) -> None:
        write_json(self.path / REQUEST, request)

    def describe(self) -> dict[str, Any]:
        """The state with times as datetimes; a running job whose supervisor has died is
        ended Failed first (and any host it left running is killed)."""
        state = self.read()
        if state.get("TrainingJobStatus") in RUNNING and not self._supervised(state):
            state = self.update(_supervisor_died)
        return parse_times(state)

    def _supervised(self, state: dict[str, Any]) -> bool:
        supervisor = state.get("Local", {}).get("Supervisor")
        if supervisor is None:  # being launched: the launcher records the supervisor next
            changed = datetime.fromisoformat(state.get("LastModifiedTime") or iso(now()))
            return (now() - changed).total_seconds() < LAUNCH_SECONDS
        return alive(supervisor)


def _supervisor_died(state: dict[str, Any]) -> None:
    supervisor = state.get("Local", {}).get("Supervisor")
    if state.get("TrainingJobStatus") not in RUNNING or alive(supervisor):
        return  # another reader got there first
    for host in state.get("Local", {}).get("Hosts", []):
        signal_group(host, signal.SIGKILL)
    if supervisor is None:
        end(state, "Failed", "the job's supervisor never started (see supervisor.log)")
        return
    end(state, "Failed", f"the job's supervisor process (pid {supervisor['Pid']}) ended "
                         "without recording how the job ended; its hosts were stopped (see "
                         "supervisor.log)")


# --- state changes -----------------------------------------------------------------------------

def transition(state: dict[str, Any], status: str, message: str) -> None:
    """Move the secondary status on (SageMaker's SecondaryStatusTransitions)."""
    stamp = iso(now())
    history = state.setdefault("SecondaryStatusTransitions", [])
    if history and "EndTime" not in history[-1]:
        history[-1]["EndTime"] = stamp
    history.append({"Status": status, "StartTime": stamp, "StatusMessage": message})
    state["SecondaryStatus"] = status


def end(state: dict[str, Any], status: str, reason: Optional[str] = None) -> None:
    """End the job: ``Completed``, ``Failed`` or ``Stopped``."""
    state["TrainingJobStatus"] = status
    transition(state, status, reason or {"Completed": "Training job completed",
                                         "Stopped": "Training job stopped"}.get(status, ""))
    state["SecondaryStatusTransitions"][-1]["EndTime"] = state[
        "SecondaryStatusTransitions"][-1]["StartTime"]
    if reason:
        state["FailureReason"] = reason
    else:
        state.pop("FailureReason", None)
    stamp = iso(now())
    state["TrainingEndTime"] = stamp
    started = state.get("TrainingStartTime")
    if started:
        state["TrainingTimeInSeconds"] = int(
            (datetime.fromisoformat(stamp) - datetime.fromisoformat(started)).total_seconds())


def parse_times(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` with its ISO times as datetimes (as boto3 returns them)."""
    described = dict(state)
    for key in TIME_KEYS:
        if isinstance(described.get(key), str):
            described[key] = datetime.fromisoformat(described[key])
    described["SecondaryStatusTransitions"] = [
        {k: datetime.fromisoformat(v) if k in ("StartTime", "EndTime") else v
         for k, v in t.items()} for t in state.get("SecondaryStatusTransitions", [])]
    return described


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                     delete=False, encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(out.name, path)
