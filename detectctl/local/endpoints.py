"""Local endpoints: the model server (``algorithm/serve.py``) on 127.0.0.1, outliving the command
that started it.

An endpoint is a directory (``~/.detectctl/endpoints/NAME``)::

    endpoint.json       its state, in the shape of SageMaker's DescribeEndpoint, plus the URL,
                        the model and the server's pid and start time
    logs/algo-1-<start>.log   the server's output: one line per request and per error

``deploy`` starts the server detached on a free port and waits until ``/ping`` answers (the
model is loaded and warmed up). A server that has died shows as Failed with its last log line,
to whoever looks next. ``delete`` stops the server (SIGTERM: it finishes what it holds) and
removes the directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl import artifacts, names
from detectctl.backend import LOCAL, LOCAL_INSTANCE, Plan, refuse
from detectctl.endpoints import Endpoint
from detectctl.errors import DetectctlError, EndpointFailedError, UsageError, WaitTimeoutError
from detectctl.local.logs import LogFiles
from detectctl.local.processes import spawn_detached
from detectctl.local.state import (
    StateDirectory,
    alive,
    home,
    iso,
    now,
    parse_times,
    signal_group,
)
from detectctl.local.training import code_path
from detectctl.s3uri import is_s3_uri

if TYPE_CHECKING:
    from detectctl.logs import LogStreams

STATE = "endpoint.json"
HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 600
STOP_GRACE_SECONDS = 30
REQUEST_TIMEOUT_SECONDS = 120
LISTENING = re.compile(r"listening on (http://[^\s:/]+:\d+)")
RUNNING = ("Creating", "InService")
_ERROR_LINE = re.compile(r"\S+Z error")  # the server's stamped one-line errors


def endpoints_home() -> Path:
    return home() / "endpoints"


class EndpointDirectory(StateDirectory):
    STATE = STATE
    KIND = "local endpoint"
    LIST_COMMAND = "endpoints list"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def describe(self) -> dict[str, Any]:
        """The state with times as datetimes; an endpoint whose server has died is marked
        Failed first, with the server's last log line."""
        state = self.read()
        if state.get("EndpointStatus") in RUNNING and not self._serving(state):
            state = self.update(lambda current: _server_died(current, self))
        return parse_times(state)

    def _serving(self, state: dict[str, Any]) -> bool:
        server = state.get("Local", {}).get("Server")
        return server is None or alive(server)  # None: being created

    def last_log_line(self) -> Optional[str]:
        """The server's last error line (its one-line reason), else its last line."""
        files = sorted(self.logs.glob("*.log"), key=lambda p: p.stat().st_mtime)
        for path in reversed(files):
            lines = [line for line in path.read_text(encoding="utf-8", errors="replace")
                     .splitlines() if line.strip()]
            errors = [line for line in lines if _ERROR_LINE.match(line)]
            if errors or lines:
                return (errors or lines)[-1]
        return None


def _server_died(state: dict[str, Any], directory: EndpointDirectory) -> None:
    server = state.get("Local", {}).get("Server")
    if state.get("EndpointStatus") not in RUNNING or server is None or alive(server):
        return
    last = directory.last_log_line() or "no output"
    state["EndpointStatus"] = "Failed"
    state["FailureReason"] = f"the server (pid {server['Pid']}) is not running; its last " \
                             f"log line: {last}"


@dataclass(frozen=True)
class LocalDeployPlan(Plan):
    """A local endpoint to start: its name, the model it serves, where that model came from."""

    directory: Path
    model: Path
    source: str

    backend = LOCAL

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def wait_hint(self) -> str:
        return "loading the model, usually seconds"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "algorithm.serve", "--model-dir", str(self.model),
                "--host", HOST, "--port", "0"]

    def summary(self) -> list[tuple[str, str]]:
        return [("endpoint", self.name), ("model", str(self.model)), ("source", self.source),
                ("instances", "1 x local (this machine)")]

    def to_dict(self) -> dict[str, Any]:
        return {"EndpointName": self.name, "Directory": str(self.directory),
                "Model": str(self.model), "Source": self.source, "Command": self.command()}


def resolve_model(source: str, jobs_dir: Path) -> Path:
    """The model a source names: a local job's, a model.tar.gz, or a model directory."""
    if is_s3_uri(source):
        raise UsageError(f"{source}: a local endpoint serves a model on this machine",
                         hint="download the model.tar.gz and deploy the file")
    job = jobs_dir / source
    if "/" not in source and (job / "job.json").is_file():
        state = json.loads((job / "job.json").read_text(encoding="utf-8"))
        if state.get("TrainingJobStatus") != "Completed":
            raise UsageError(f"training job {source} is {state.get('TrainingJobStatus')}, not "
                             "Completed", hint=f"wait for it: detectctl jobs wait {source} "
                                               "--local")
        return job / "model"
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise UsageError(f"{source}: no local training job, model.tar.gz or model directory "
                         "of that name", hint="see `detectctl jobs list --local`")
    if path.is_dir() and not (path / "model.pt").is_file():
        raise UsageError(f"{source}: not a model directory (it has no model.pt)")
    return path


def plan(source: str, *, instance_type: str = LOCAL_INSTANCE, name: Optional[str] = None,
         home_dir: Optional[Path] = None, instance_count: Optional[int] = None,
         image: Optional[str] = None, tags: Optional[dict[str, str]] = None) -> LocalDeployPlan:
    """Resolve serving ``source`` on this machine."""
    refuse(LOCAL, {"--count": instance_count if instance_count not in (None, 1) else None,
                   "--image": image, "--tags": tags})
    if instance_type != LOCAL_INSTANCE:
        raise UsageError(f"instance type {instance_type!r} is not local")
    base = home_dir or home()
    model = resolve_model(source, base / "jobs")
    if name is None:
        local_job = "/" not in source and (base / "jobs" / source / "job.json").is_file()
        name = source if local_job else names.unique_name("ssd")
    names.check_name(name)
    directory = EndpointDirectory(base / "endpoints" / name)
    if directory.exists():
        state = directory.describe()
        if state["EndpointStatus"] in RUNNING:
            raise UsageError(f"a local endpoint named {name} is {state['EndpointStatus']} "
                             f"already ({state.get('Url')})",
                             hint=f"delete it first (detectctl endpoints delete {name} "
                                  "--local), or choose another --name")
    return LocalDeployPlan(directory=directory.path, model=model, source=source)


def deploy(plan: LocalDeployPlan, *, wait: bool = True,
           timeout: float = READY_TIMEOUT_SECONDS, poll: float = 0.2,
           keep_on_failure: bool = False) -> LocalEndpoint:
    """Start the server detached; with ``wait``, until ``/ping`` answers. A server that fails to
    start is removed with its endpoint (unless ``keep_on_failure``) and its reason raised."""
    directory = EndpointDirectory(plan.directory)
    if directory.path.exists():
        shutil.rmtree(directory.path)  # a Failed endpoint of the same name
    directory.logs.mkdir(parents=True)
    directory.update(lambda state: state.update({
        "EndpointName": plan.name, "EndpointStatus": "Creating", "CreationTime": iso(now()),
        "ModelDataUrl": str(plan.model), "Source": plan.source,
        "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": LOCAL_INSTANCE,
                                "CurrentInstanceCount": 1}], "Local": {}}))
    log = directory.logs / f"algo-1-{int(time.time())}.log"
    env = {**os.environ, "PYTHONPATH": code_path()}
    try:
        server = spawn_detached(plan.command(), log=log, cwd=directory.path, env=env)
    except DetectctlError:
        shutil.rmtree(directory.path, ignore_errors=True)
        raise
    directory.update(lambda state: state["Local"].update(Server=server))
    endpoint = LocalEndpoint(directory.path)
    if wait:
        try:
            endpoint.wait_in_service(timeout, log, poll)
        except EndpointFailedError:
            if not keep_on_failure:
                endpoint.delete()
            raise
    return endpoint


class LocalEndpoint(Endpoint):
    """A model served on this machine by ``algorithm/serve.py``."""

    backend = "local"

    def __init__(self, directory: Path, description: Optional[dict[str, Any]] = None):
        super().__init__(Path(directory).name, description)
        self.directory = EndpointDirectory(Path(directory))

    def refresh(self) -> dict[str, Any]:
        self._description = self.directory.describe()
        return self._description

    @property
    def url(self) -> Optional[str]:
        return self.description.get("Url")

    @property
    def instance_type(self) -> str:
        return LOCAL_INSTANCE

    @property
    def instance_count(self) -> int:
        return 1

    def wait_in_service(self, timeout: float, log: Path, poll: float = 0.2) -> None:
        """Wait for the server's address in its log, then for ``/ping`` to answer 200."""
        deadline = time.monotonic() + timeout
        url = None
        while time.monotonic() < deadline:
            state = self.refresh()
            if state["EndpointStatus"] == "Failed":
                raise EndpointFailedError(f"endpoint {self.name} failed: "
                                          f"{state.get('FailureReason')}",
                                          reason=state.get("FailureReason"))
            if url is None:
                found = LISTENING.search(log.read_text(encoding="utf-8", errors="replace"))
                if found:
                    url = found.group(1)
                    self.directory.update(lambda s, url=url: s.update(Url=url))
            if url is not None and ping(url):
                self.directory.update(lambda s: s.update(EndpointStatus="InService"))
                self.refresh()
                return
            time.sleep(poll)
        raise WaitTimeoutError(f"endpoint {self.name} is not InService after {timeout:g} s",
                               hint=f"see `detectctl endpoints logs {self.name} --local`")

    def invoke(self, body: bytes, content_type: str, *,
               custom_attributes: Optional[str] = None) -> bytes:
        url = self.url if self.refresh()["EndpointStatus"] == "InService" else None
        if url is None:
            raise DetectctlError(f"endpoint {self.name} is {self.status}"
                                 + (f": {self.failure_reason}" if self.failure_reason else ""))
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        request = urllib.request.Request(f"{url}/invocations", data=body, headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:
                return answer.read()
        except urllib.error.HTTPError as exc:
            reason = error_message(exc)
            kind = UsageError if 400 <= exc.code < 500 else DetectctlError
            raise kind(f"endpoint {self.name} answered {exc.code}: {reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            self.refresh()
            raise DetectctlError(f"endpoint {self.name} did not answer: "
                                 f"{getattr(exc, 'reason', exc)}",
                                 hint=f"see `detectctl endpoints describe {self.name} --local`"
                                 ) from None

    def delete(self) -> list[str]:
        """Stop the server (it finishes the requests it holds) and remove the endpoint."""
        server = self.directory.read().get("Local", {}).get("Server")
        if server and signal_group(server, signal.SIGTERM):
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while alive(server) and time.monotonic() < deadline:
                time.sleep(0.1)
            signal_group(server, signal.SIGKILL)
        shutil.rmtree(self.directory.path)
        return [f"endpoint {self.name}"]

    def class_names(self) -> Optional[list[str]]:
        return artifacts.class_names(Path(self.description["ModelDataUrl"]))

    def log_streams(self) -> LogStreams:
        return LogFiles(self.directory.logs)

    def summary(self) -> list[tuple[str, str]]:
        d = self.description
        rows = [("endpoint", self.name), ("status", self.status)]
        if d.get("Url"):
            rows.append(("url", d["Url"]))
        rows += [("model", d.get("ModelDataUrl", "-")), ("source", d.get("Source", "-"))]
        server = d.get("Local", {}).get("Server")
        if server:
            rows.append(("pid", str(server["Pid"])))
        if d.get("CreationTime"):
            from detectctl.display import timestamp

            rows.append(("created", timestamp(d["CreationTime"])))
        if d.get("FailureReason"):
            rows.append(("reason", d["FailureReason"]))
        return rows


def ping(url: str) -> bool:
    """Whether the server at ``url`` answers ``/ping`` with 200."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def error_message(error: urllib.error.HTTPError) -> str:
    """The one-line reason in an error answer of the server."""
    body = error.read()
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace").strip() or error.reason


def list_endpoints(home_dir: Optional[Path] = None) -> list[Endpoint]:
    """Local endpoints, newest first."""
    folder = (home_dir or home()) / "endpoints"
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        directory = EndpointDirectory(path)
        if directory.exists():
            found.append(LocalEndpoint(path, directory.describe()))
    found.sort(key=lambda e: e.description.get("CreationTime") or 0, reverse=True)
    return found
