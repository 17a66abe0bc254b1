"""The runner of a local transform job (see :mod:`detectctl.local.transform`):
``python -m detectctl.local.transformer JOB_DIR``, started detached.

It starts the model server, waits until it answers, sends it every input in order, writes
each answer where SageMaker's transform would, keeps counts in the job's state, and stops the
server at the end. SIGTERM (``transform stop``) stops it between two inputs: the job ends
Stopped with what it has written.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

from detectctl import transforms
from detectctl.local.endpoints import LISTENING, error_message, ping
from detectctl.local.logs import LogWriter, log_file
from detectctl.local.processes import STOP_SIGNALS
from detectctl.local.state import iso, now, process_start
from detectctl.local.transform import TransformDirectory, images_under

READY_TIMEOUT_SECONDS = 600
REQUEST_TIMEOUT_SECONDS = 120
PROGRESS_SECONDS = 1.0
MAX_LISTED_FAILURES = 1000


class Runner:
    def __init__(self, directory: TransformDirectory):
        self.job = directory
        self.request = directory.read_request()
        self.stop_requested = threading.Event()
        self.url: Optional[str] = None
        self.ready = threading.Event()
        self.server: Optional[subprocess.Popen] = None
        self.log = LogWriter(log_file(directory.logs, "algo-1", int(time.time())))
        self.lock = threading.Lock()
        self.done = self.failed = 0
        self.failures: list[dict[str, str]] = []

    def say(self, line: str) -> None:
        with self.lock:
            self.log.write(line)

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda *_: self.stop_requested.set())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        me = {"Pid": os.getpid(), "Start": process_start(os.getpid()) or 0}

        def started(state: dict[str, Any]) -> None:
            state["TransformStartTime"] = iso(now())
            state["Local"]["Runner"] = me

        self.job.update(started)
        try:
            reason = self._serve_and_send()
        except Exception as exc:  # the job must end with a reason, whatever went wrong
            reason = f"the local transform runner failed: {type(exc).__name__}: {exc}"
        finally:
            self._stop_server()
        status = "Stopped" if self.stop_requested.is_set() else (
            "Failed" if reason else "Completed")
        self._record(status, reason)
        self.say(f"transform {status.lower()}: {self.done} done, {self.failed} failed"
                 + (f": {reason}" if reason else ""))
        self.log.close()
        return 0

    # --- the server ------------------------------------------------------------------------

    def _start_server(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-m", "algorithm.serve", "--model-dir", self.request["model"],
             "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True)
        server = {"Pid": self.server.pid, "Start": process_start(self.server.pid) or 0}
        self.job.update(lambda s: s["Local"].update(Server=server))
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.server is not None and self.server.stdout is not None
        for raw in self.server.stdout:
            line = raw.rstrip("\n")
            # The server stamps its own lines: keep its text after the stamp.
            text = line.split(" ", 1)[1] if re.match(r"\d{4}-\d\d-\d\dT\S+Z ", line) else line
            self.say(text)
            found = LISTENING.search(text)
            if found:
                self.url = found.group(1)
        self.ready.set()  # the server ended: whoever waits stops waiting

    def _wait_ready(self) -> Optional[str]:
        """None once the server answers /ping; else why it does not."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            assert self.server is not None
            if self.server.poll() is not None:
                return f"the model server ended (exit {self.server.returncode}) before it " \
                       "answered; see `detectctl transform logs`"
            if self.url and ping(self.url):
                return None
            time.sleep(0.2)
        return None if self.stop_requested.is_set() else "the model server did not answer"

    def _stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()

    # --- the inputs --------------------------------------------------------------------------

    def _serve_and_send(self) -> Optional[str]:
        self._start_server()
        problem = self._wait_ready()
        if problem or self.stop_requested.is_set():
            return problem
        output = Path(self.request["output"])
        output.mkdir(parents=True, exist_ok=True)
        if self.request["kind"] == transforms.RECORDIO:
            self._records(Path(self.request["input"]), output)
        else:
            self._images(Path(self.request["input"]), output)
        return None

    def _images(self, folder: Path, output: Path) -> None:
        images = images_under(folder)
        self.job.update(lambda s: s["Local"].update(Total=len(images)))
        last = time.monotonic()
        for image in images:
            if self.stop_requested.is_set():
                return
            name = image.relative_to(folder).as_posix()
            answer = self._send(image.read_bytes(), transforms.CONTENT_TYPES[transforms.IMAGES],
                                "application/json", name)
            if answer is not None:
                target = output / (name + transforms.OUTPUT_SUFFIX)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.partial")
                partial.write_bytes(answer)
                partial.replace(target)
            last = self._progress(last)

    def _records(self, rec: Path, output: Path) -> None:
        from algorithm.data.recordio import frame

        target = output / (rec.name + transforms.OUTPUT_SUFFIX)
        partial = target.with_name(f".{target.name}.partial")
        last = time.monotonic()
        with open(partial, "wb") as out:
            for number, payload in enumerate(_records(rec)):
                if self.stop_requested.is_set():
                    break
                answer = self._send(frame(payload), transforms.CONTENT_TYPES[
                    transforms.RECORDIO], "application/jsonlines", f"{rec.name}#{number}")
                if answer is None:
                    answer = json.dumps({"error": self.failures[-1]["reason"]
                                         if self.failures else "failed"}).encode()
                out.write(answer.rstrip(b"\n") + b"\n")
                last = self._progress(last)
        partial.replace(target)

    def _send(self, body: bytes, content_type: str, accept: str, name: str) -> Optional[bytes]:
        assert self.url is not None
        request = urllib.request.Request(
            f"{self.url}/invocations", data=body, method="POST",
            headers={"Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:
                data = answer.read()
            self.done += 1
            return data
        except urllib.error.HTTPError as exc:
            reason = f"{exc.code}: {error_message(exc)}"
        except (urllib.error.URLError, OSError) as exc:
            reason = f"no answer: {getattr(exc, 'reason', exc)}"
        self.failed += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append({"input": name, "reason": reason})
        self.say(f"input {name} failed: {reason}")
        return None

    def _progress(self, last: float) -> float:
        if time.monotonic() - last < PROGRESS_SECONDS:
            return last
        self._record(None, None)
        return time.monotonic()

    def _record(self, status: Optional[str], reason: Optional[str]) -> None:
        done, failed, failures = self.done, self.failed, list(self.failures)

        def change(state: dict[str, Any]) -> None:
            state["Local"].update(Done=done, Failed=failed, FailedInputs=failures)
            if status:
                state["TransformJobStatus"] = status
                state["TransformEndTime"] = iso(now())
                if reason:
                    state["FailureReason"] = reason

        self.job.update(change)


def _records(rec: Path) -> Iterator[bytes]:
    from algorithm.data.recordio import iter_records

    with open(rec, "rb") as stream:
        for _, payload in iter_records(stream):
            yield payload


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m detectctl.local.transformer JOB_DIR\n")
        return 2
    return Runner(TransformDirectory(Path(argv[0]))).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
