"""The supervisor of a local training job: a small process of its own that runs the job's hosts.

The local backend starts it detached (:func:`detectctl.local.processes.spawn_detached`): in a
session of its own, so the job outlives the command that launched it and a Ctrl-C there does
not reach it. The supervisor then

- starts each host as ``python -m algorithm.train`` in its own process group, under the
  container contract (``DETECTCTL_OPT_ML`` points at the host's tree), the hosts finding each
  other torchrun-style on 127.0.0.1;
- writes each host's output, line by line and timestamped, to its log file;
- keeps ``job.json`` up to date: statuses, hosts and pids, and at the end the failure reason
  (from the hosts' failure files, or how a host died), the final metrics and the model;
- stops the job as SageMaker stops a container when it gets SIGTERM (``detectctl jobs stop``):
  SIGTERM to every host, which checkpoints and exits, SIGKILL after a grace period.

When one host fails, the others would wait for it forever: they are stopped too, and the job
fails with the first host's reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from detectctl.local.logs import LogWriter, log_file
from detectctl.local.processes import STOP_SIGNALS
from detectctl.local.state import JobDirectory, end, iso, now, process_start, transition

GRACE_VARIABLE = "DETECTCTL_STOP_GRACE"
DEFAULT_GRACE_SECONDS = 60.0
FAILED_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.2


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m detectctl.local.supervisor JOB_DIR\n")
        return 2
    return Supervisor(JobDirectory(Path(argv[0]))).run()


def _die_with_parent() -> None:
    """In a host, before exec: get SIGTERM when the supervisor dies (Linux), so a killed
    supervisor does not leave a job training unwatched."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Supervisor:
    """Runs one start of a job's hosts and records how it went."""

    def __init__(self, job: JobDirectory):
        self.job = job
        self.request = job.read_request()
        self.hosts: list[str] = self.request["hosts"]
        self.stop_requested = threading.Event()
        self.processes: dict[str, subprocess.Popen] = {}
        self.metrics: dict[str, tuple[float, str]] = {}
        self.grace = float(os.environ.get(GRACE_VARIABLE) or DEFAULT_GRACE_SECONDS)

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda *_: self.stop_requested.set())
        # Started with these blocked (spawn_detached): a stop sent meanwhile arrives now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        me = {"Pid": os.getpid(), "Start": process_start(os.getpid()) or 0}
        self.job.update(lambda state: self._started(state, me))
        try:
            if self.stop_requested.is_set():  # stopped before it started
                self.job.update(lambda state: self._ended(state, "Stopped"))
                return 0
            pumps = self._start_hosts()
            stopped, codes = self._watch()
            for pump in pumps:
                pump.join(timeout=10)
            self._finish(stopped, codes)
        except Exception as exc:  # the job must end with a reason, whatever went wrong here
            self._stop_hosts(self.grace)
            reason = f"the local supervisor failed: {type(exc).__name__}: {exc}"
            self.job.update(lambda state: end(state, "Failed", reason))
            raise
        return 0

    def _started(self, state: dict[str, Any], me: dict[str, int]) -> None:
        state.setdefault("Local", {})["Supervisor"] = me
        state["TrainingJobStatus"] = "InProgress"
        state["TrainingStartTime"] = iso(now())
        for key in ("FailureReason", "TrainingEndTime", "TrainingTimeInSeconds"):
            state.pop(key, None)
        transition(state, "Starting", "Starting the hosts on this machine")

    # --- hosts ---------------------------------------------------------------------------

    def _environment(self, host: str, port: int) -> dict[str, str]:
        threads = self.request["threads_per_process"]
        return {**os.environ, **self.request.get("environment", {}),
                "DETECTCTL_OPT_ML": str(self.job.host_root(host)),
                "DETECTCTL_MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                "DETECTCTL_PROCS_PER_HOST": str(self.request["processes_per_host"]),
                "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}

    def _start_hosts(self) -> list[threading.Thread]:
        port = _free_port()
        start = int(time.time())
        for host in self.hosts:
            root = self.job.host_root(host)
            failure = root / "output" / "failure"
            if failure.exists():  # a resumed job: last start's reason is not this one's
                failure.unlink()
            self.processes[host] = subprocess.Popen(
                [sys.executable, "-m", "algorithm.train"], env=self._environment(host, port),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, errors="replace", start_new_session=True,
                preexec_fn=_die_with_parent, cwd=root)
        recorded = [{"Host": host, "Pid": p.pid, "Start": process_start(p.pid) or 0}
                    for host, p in self.processes.items()]

        def training(state: dict[str, Any]) -> None:
            state["Local"]["Hosts"] = recorded
            transition(state, "Training", f"Training on {len(self.hosts)} local host(s)")

        self.job.update(training)
        pumps = []
        for host, process in self.processes.items():
            writer = LogWriter(log_file(self.job.logs, host, start))
            pump = threading.Thread(target=self._pump, args=(host, process, writer),
                                    daemon=True)
            pump.start()
            pumps.append(pump)
        return pumps

    def _pump(self, host: str, process: subprocess.Popen, writer: LogWriter) -> None:
        from algorithm.metrics import parse

        assert process.stdout is not None
        try:
            for line in process.stdout:
                line = line.rstrip("\n")
                writer.write(line)
                if host == self.hosts[0]:
                    for name, value in (parse(line) or {}).items():
                        self.metrics[name] = (value, iso(now()))
        finally:
            writer.close()

    def _watch(self) -> tuple[bool, dict[str, int]]:
        """Wait for every host; (whether the job was stopped, the hosts' exit codes in the
        order they were seen to end)."""
        ended: dict[str, int] = {}

        def poll() -> None:
            for host, process in self.processes.items():
                if host not in ended and process.poll() is not None:
                    ended[host] = process.returncode

        while True:
            poll()
            if self.stop_requested.is_set():
                self.job.update(lambda state: self._stopping(state))
                self._stop_hosts(self.grace)
                break
            if len(ended) == len(self.processes):
                return False, ended
            if any(code != 0 for code in ended.values()):
                time.sleep(2)  # let the others notice and write their own failure
                poll()
                # The others wait for the failed host in a collective: no checkpoint to wait for.
                self._stop_hosts(min(self.grace, FAILED_GRACE_SECONDS))
                break
            time.sleep(POLL_SECONDS)
        poll()
        return self.stop_requested.is_set(), ended

    def _stopping(self, state: dict[str, Any]) -> None:
        state["TrainingJobStatus"] = "Stopping"
        transition(state, "Stopping", "Stopping the training job")

    def _stop_hosts(self, grace: float) -> None:
        """SIGTERM to each host's main process (as `docker stop` signals a container's), which
        checkpoints and exits; whatever still runs after ``grace`` seconds is killed."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # --- the end --------------------------------------------------------------------------

    def _reason(self, codes: dict[str, int]) -> str:
        """Why the job failed: what the first host to fail said (its failure file), else how
        it died."""
        for host, code in codes.items():
            if code == 0:
                continue
            failure = self.job.host_root(host) / "output" / "failure"
            text = failure.read_text(encoding="utf-8", errors="replace").strip() \
                if failure.is_file() else ""
            if text:
                return text
            if code < 0:
                return (f"host {host} was killed by {signal.Signals(-code).name}; see "
                        f"`detectctl logs {self.job.name} --local`")
        return (f"a training process exited with {codes}; see "
                f"`detectctl logs {self.job.name} --local`")

    def _finish(self, stopped: bool, codes: dict[str, int]) -> None:
        if stopped:
            self.job.update(lambda state: self._ended(state, "Stopped"))
        elif any(code != 0 for code in codes.values()):
            reason = self._reason(codes)
            self.job.update(lambda state: self._ended(state, "Failed", reason))
        else:
            self.job.update(lambda state: transition(state, "Uploading",
                                                     "Packing the model artifact"))
            self._pack_model()
            self.job.update(lambda state: self._ended(state, "Completed"))

    def _ended(self, state: dict[str, Any], status: str, reason: Optional[str] = None) -> None:
        state["FinalMetricDataList"] = [{"MetricName": name, "Value": value, "Timestamp": when}
                                        for name, (value, when) in sorted(self.metrics.items())]
        if status == "Completed":
            state["ModelArtifacts"] = {"S3ModelArtifacts": str(self.job.model_archive)}
        end(state, status, reason)

    def _pack_model(self) -> None:
        """Copy algo-1's model out of its tree and pack it as SageMaker does (model.tar.gz),
        each written under a temporary name and renamed."""
        source = self.job.host_root(self.hosts[0]) / "model"
        staging = self.job.path / ".model.partial"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(source, staging)
        if self.job.model_dir.exists():
            shutil.rmtree(self.job.model_dir)
        os.replace(staging, self.job.model_dir)
        partial = self.job.path / ".model.tar.gz.partial"
        with tarfile.open(partial, "w:gz") as tar:
            for item in sorted(self.job.model_dir.iterdir()):
                tar.add(item, arcname=item.name)
        os.replace(partial, self.job.model_archive)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
