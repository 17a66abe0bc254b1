"""Local training jobs as handles: describe, wait, stop, resume, delete, logs."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import UsageError
from detectctl.jobs import TrainingJob
from detectctl.local.logs import LogFiles
from detectctl.local.state import RUNNING, JobDirectory, jobs_home, signal_group, transition

if TYPE_CHECKING:
    from detectctl.logs import LogStreams


class LocalTrainingJob(TrainingJob):
    """A training job running (or run) on this machine, in its job directory."""

    backend = "local"
    poll_seconds = 1.0

    def __init__(self, directory: Path, description: Optional[dict[str, Any]] = None):
        super().__init__(Path(directory).name, description)
        self.job = JobDirectory(Path(directory))

    @property
    def directory(self) -> Path:
        return self.job.path

    def refresh(self) -> dict[str, Any]:
        self._description = self.job.describe()
        return self._description

    def stop(self) -> None:
        """SIGTERM to the supervisor, which stops the hosts as SageMaker stops containers:
        each saves a checkpoint and exits; the job ends Stopped."""
        if self.refresh()["TrainingJobStatus"] not in RUNNING:
            raise UsageError(f"training job {self.name} is {self.status}; nothing to stop")
        supervisor = self.description.get("Local", {}).get("Supervisor")
        if supervisor is None or not signal_group(supervisor, signal.SIGTERM):
            self.refresh()  # the supervisor is gone: describing ends the job

    def resume(self) -> TrainingJob:
        """Start the job again from its last checkpoint, under the same name."""
        from detectctl.local.training import start_supervisor

        if self.refresh()["TrainingJobStatus"] not in ("Stopped", "Failed"):
            raise UsageError(f"training job {self.name} is {self.status}; only a Stopped or "
                             "Failed job can be resumed")
        checkpoint = any(self.job.checkpoints.glob("*.pt"))
        message = ("Restarting from the last checkpoint" if checkpoint
                   else "Restarting from the start (no checkpoint was saved)")

        def restarting(state: dict[str, Any]) -> None:
            state["TrainingJobStatus"] = "InProgress"
            state.get("Local", {}).pop("Supervisor", None)
            state.pop("ModelArtifacts", None)
            transition(state, "Restarting", message)

        self.job.update(restarting)
        start_supervisor(self.job)
        self.refresh()
        return self

    def check_delete(self) -> None:
        if self.refresh()["TrainingJobStatus"] in RUNNING:
            raise UsageError(f"training job {self.name} is {self.status}",
                             hint=f"stop it first: detectctl jobs stop {self.name} --local")

    def delete(self) -> None:
        """Remove the job's directory: its hosts' trees, logs, checkpoints and model."""
        self.check_delete()
        shutil.rmtree(self.directory)

    def log_streams(self) -> LogStreams:
        return LogFiles(self.job.logs)

    @property
    def checkpoint(self) -> Optional[Path]:
        """The last checkpoint, if one was saved."""
        found = sorted(self.job.checkpoints.glob("*.pt"))
        return found[-1] if found else None


def list_jobs(jobs_dir: Optional[Path] = None, *, status: Optional[str] = None,
              name_contains: Optional[str] = None, limit: int = 20) -> list[TrainingJob]:
    """Local jobs, newest first."""
    home = jobs_dir or jobs_home()
    found = []
    for path in home.iterdir() if home.is_dir() else ():
        job = JobDirectory(path)
        if not job.exists() or (name_contains and name_contains not in job.name):
            continue
        description = job.describe()
        if status and description.get("TrainingJobStatus") != status:
            continue
        found.append(LocalTrainingJob(path, description))
    found.sort(key=lambda j: j.description.get("CreationTime") or 0, reverse=True)
    return found[:limit]
