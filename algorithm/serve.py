"""The model server: ``GET /ping`` and ``POST /invocations`` on the inference handlers.

    python -m algorithm.serve --model-dir DIR [--host 127.0.0.1] [--port 8080] [--batch-size 8]
        [--batch-delay-ms 10] [--workers 1] [--queue-size 32] [--timeout 60]
        [--malloc-arenas 2] [--release-after 10]
    python -m algorithm.serve serve     # as SageMaker starts an own image: 0.0.0.0:8080,
                                        # the model in /opt/ml/model

Every option can also come from an environment variable (``DETECTCTL_SERVE_<OPTION>``, see
:data:`OPTIONS`); a flag wins over the variable. Requests go through the handlers of
``algorithm/inference.py`` (``model_fn``, ``input_fn``, ``output_fn``, and
:meth:`~algorithm.inference.Predictor.detect_batch`, the batched ``predict_fn``), so this server
and SageMaker's PyTorch toolkit answer alike.

How a request is served: the connection's thread reads the body (refused by its Content-Length
before reading when over 6 MB), checks it with ``input_fn``, decodes and resizes the image, and
queues it. A worker thread takes the oldest queued images, up to ``batch_size``, waiting up to
``batch_delay_ms`` for more while other requests are still being received or decoded, and runs
them as one forward pass. At most ``queue_size`` requests are held at once; one more is
answered 503 with ``Retry-After``. A request not answered within ``timeout`` seconds is
answered 504. ``/ping`` never waits on inference: 503 while the model loads, then 200.
SIGTERM (or SIGINT) closes the listening socket, lets held requests finish (up to ``timeout``),
then exits 0.

Memory: a forward pass of a full batch needs far more memory than the model, and glibc's malloc
keeps what the process freed. With glibc the server uses at most ``malloc_arenas`` heaps, and
once it has had no request for ``release_after`` seconds it hands the free pages back to the
kernel, so that an idle endpoint holds little more than its model (``algorithm/memory.py``).

One log line per request on stdout (time, method, path, status, latency), and one per error on
stderr with its reason; see docs/serving.md.
"""

from __future__ import annotations

import argparse
import http
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from algorithm import inference, memory
from algorithm.batching import Batcher, Job, nested_sizes, work
from algorithm.container import Paths

ENV_PREFIX = "DETECTCTL_SERVE_"
RETRY_AFTER_SECONDS = 1
JSON = "application/json"  # every answer but a JSON-lines one


@dataclass(frozen=True)
class Settings:
    """How the server runs; see :data:`OPTIONS` for each field's flag and variable."""

    model_dir: str
    host: str = "127.0.0.1"
    port: int = 8080
    batch_size: int = 8
    batch_delay_ms: float = 10.0
    workers: int = 1
    queue_size: int = 32
    timeout: float = 60.0
    malloc_arenas: int = 2
    release_after: float = 10.0


# field: (smallest value, help). Flag --field-name, variable DETECTCTL_SERVE_FIELD_NAME.
OPTIONS = {
    "model_dir": (None, "the model artifact: a directory or a model.tar.gz"),
    "host": (None, "address to listen on"),
    "port": (0, "port to listen on (0: any free port, logged at start)"),
    "batch_size": (1, "most images in one forward pass"),
    "batch_delay_ms": (0, "how long a batch waits for requests still being received"),
    "workers": (1, "inference threads, each running one batch at a time"),
    "queue_size": (1, "most requests held at once; one more is answered 503"),
    "timeout": (0.001, "seconds before a request is answered 504"),
    "malloc_arenas": (0, "most glibc malloc heaps for all threads (0: glibc's default, 8 per "
                         "core); MALLOC_ARENA_MAX wins"),
    "release_after": (0, "seconds without requests after which freed memory is handed back "
                         "to the kernel (0: never)"),
}


_LOG_LOCK = threading.Lock()


def log(message: str, error: bool = False) -> None:
    """One line, with a UTC timestamp, on stdout (or stderr for errors), flushed."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    stream = sys.stderr if error else sys.stdout
    with _LOG_LOCK:
        stream.write(f"{stamp} {message}\n")
        stream.flush()


class RequestContext:
    """A request's headers behind TorchServe's context interface
    (``context.request_processor[0].get_request_properties()``), so that ``input_fn`` reads
    them the same way under both servers."""

    def __init__(self, headers: Mapping[str, str]):
        self._headers = dict(headers.items())
        self.request_processor = [self]

    def get_request_properties(self) -> Mapping[str, str]:
        return self._headers


class Refusal(Exception):
    """A request answered before it was read through (the connection is then closed)."""

    def __init__(self, status: int, message: str, retry_after: Optional[int] = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class ModelServer:
    """The HTTP server, its batcher and workers, and the model once loaded."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # Before any thread of the server's starts: each would get a heap of its own.
        if memory.limit_arenas(settings.malloc_arenas):
            self.arenas = f"{settings.malloc_arenas} malloc arena(s)"
        else:
            self.arenas = "malloc arenas as the environment or the allocator sets"
        self.predictor: Optional[inference.Predictor] = None
        self.stopping = False
        self.batcher = Batcher(settings.batch_size, settings.batch_delay_ms / 1000,
                               settings.queue_size)
        self.httpd = ThreadingHTTPServer((settings.host, settings.port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.model_server = self  # type: ignore[attr-defined]
        self._threads: List[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Listen (``/ping`` answers 503 until :meth:`load`) and start the workers."""
        self._threads.append(threading.Thread(target=self.httpd.serve_forever,
                                              name="http", daemon=True))
        for i in range(self.settings.workers):
            self._threads.append(threading.Thread(target=self._work, name=f"worker-{i}",
                                                  daemon=True))
        for thread in self._threads:
            thread.start()
        s = self.settings
        log(f"listening on {self.url}: batch size {s.batch_size}, batch delay "
            f"{s.batch_delay_ms:g} ms, {s.workers} worker(s), queue {s.queue_size}, "
            f"timeout {s.timeout:g} s, {self.arenas}, freed memory released "
            + (f"after {s.release_after:g} s without requests" if s.release_after > 0
               else "never"))

    def load(self) -> None:
        """Load the model with ``model_fn``, run one warm-up pass, then answer ``/ping`` 200."""
        started = time.monotonic()
        predictor = inference.model_fn(self.settings.model_dir)
        size = predictor.hyperparameters.image_shape
        warm_up = torch.zeros(3, size, size)
        predictor.detect_batch([warm_up], [predictor.options])
        if predictor.device.type == "cpu":
            # Batch sizes whose activations fit in the host memory a larger one freed.
            self.batcher.sizes = nested_sizes(self.settings.batch_size)
        self.predictor = predictor
        hp = predictor.hyperparameters
        sizes = self.batcher.sizes
        log(f"ready: {self.settings.model_dir} ({hp.base_network}, image_shape {size}, "
            f"{hp.num_classes} classes, {predictor.device.type}) loaded in "
            f"{time.monotonic() - started:.1f} s; batch sizes "
            + (", ".join(map(str, sizes)) if sizes else f"1 to {self.settings.batch_size}"))

    def stop(self) -> bool:
        """Stop accepting, let held requests finish (up to the timeout), stop the workers.
        True when every held request was answered."""
        self.stopping = True
        self.httpd.shutdown()
        self.httpd.server_close()
        finished = self.batcher.wait_idle(self.settings.timeout)
        self.batcher.close()
        for thread in self._threads[1:]:
            thread.join(timeout=self.settings.timeout)
        return finished

    def _work(self) -> None:
        if self.settings.workers > 1 and "OMP_NUM_THREADS" not in os.environ:
            # Each worker's forward pass gets its share of the cores.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.settings.workers))
        work(self.batcher, self._detect, idle=memory.release_freed_memory,
             idle_after=self.settings.release_after)

    def _detect(self, pixels: List[Any], options: List[inference.DetectionOptions]
                ) -> List[Any]:
        assert self.predictor is not None  # jobs are queued only once the model is loaded
        return self.predictor.detect_batch(pixels, options)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "detectctl-serve"

    @property
    def model_server(self) -> ModelServer:
        return self.server.model_server  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/ping":
            if self.model_server.stopping:
                self._answer(503, {"error": "the server is shutting down"})
            elif self.model_server.predictor is None:
                self._answer(503, {"error": "the model is loading"}, retry_after=5)
            else:
                self._answer(200, {"status": "ready"})
        elif path == "/invocations":
            self._answer(405, {"error": "use POST /invocations"}, allow="POST")
        else:
            self._answer(404, {"error": f"no such path {path}; use GET /ping, POST /invocations"})

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        if path == "/ping":
            self._answer(405, {"error": "use GET /ping"}, allow="GET")
        elif path != "/invocations":
            self._answer(404, {"error": f"no such path {path}; use GET /ping, POST /invocations"})
        else:
            self._invoke()

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        # http.server's own refusals (bad request line, unknown method): JSON, not HTML.
        self.close_connection = True
        reason = message or http.HTTPStatus(code).phrase
        self._answer(code, {"error": reason})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # _answer logs each request once

    def _invoke(self) -> None:
        server = self.model_server
        try:
            length = self._admit()
        except Refusal as refusal:
            self.close_connection = True
            self._answer(refusal.status, {"error": refusal.message},
                         retry_after=refusal.retry_after)
            return
        try:
            self._answer(*self._serve(length))
        finally:
            server.batcher.release()  # after the answer is sent: stop() waits for it

    def _admit(self) -> int:
        """The body's length, once the request may be read; Refusal otherwise."""
        server = self.model_server
        if server.stopping:
            raise Refusal(503, "the server is shutting down", RETRY_AFTER_SECONDS)
        if server.predictor is None:
            raise Refusal(503, "the model is loading", 5)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise Refusal(411, "send the body with a Content-Length, not chunked")
        text = self.headers.get("Content-Length", "0").strip()
        if not text.isdigit():
            raise Refusal(400, f"bad Content-Length {text!r}")
        length = int(text)
        if length > inference.MAX_BODY_BYTES:
            raise Refusal(413, f"the body is {length} bytes; the limit is "
                               f"{inference.MAX_BODY_BYTES}")
        if not server.batcher.admit():
            raise Refusal(503, f"the server holds {server.settings.queue_size} requests "
                               "already; retry later", RETRY_AFTER_SECONDS)
        return length

    def _serve(self, length: int) -> Tuple[int, Any, str]:
        """(status, answer, media type) of an admitted request: read, checked, decoded,
        batched. An answer is JSON, or one JSON line for ``Accept: application/jsonlines``."""
        server = self.model_server
        predictor = server.predictor
        assert predictor is not None
        deadline = self._started + server.settings.timeout
        queued = False
        try:
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                self.close_connection = True
                return 400, {"error": f"the body ended after {len(body)} of {length} bytes"}, JSON
            context = RequestContext(self.headers)
            request = inference.input_fn(body, self.headers.get("Content-Type"), context)
            accept = self.headers.get("Accept")
            media = inference.accept_type_of(accept)
            job = Job(predictor.prepare(request), predictor.options_for(request))
            server.batcher.put(job)
            queued = True
            if not job.done.wait(max(0.0, deadline - time.monotonic())):
                job.cancelled = True
                return 504, {"error": f"no answer within the timeout of "
                                      f"{server.settings.timeout:g} s; the server is busy"}, JSON
            if job.error is not None:
                raise job.error
            return 200, inference.output_fn(job.result, accept, context), media
        except inference.RequestError as exc:
            return exc.status, {"error": exc.message}, JSON
        except socket.timeout:
            self.close_connection = True
            return 408, {"error": "the body was not received in time"}, JSON
        except ConnectionError:
            self.close_connection = True
            return 400, {"error": "the connection broke while the body was sent"}, JSON
        except Exception as exc:
            return 500, {"error": f"internal error: {type(exc).__name__}: {_one_line(exc)}"}, JSON
        finally:
            if not queued:
                server.batcher.unprepared()

    def _answer(self, status: int, answer: Any, content_type: str = JSON,
                retry_after: Optional[int] = None, allow: Optional[str] = None) -> None:
        """Send the response and log it (and its error, if any) in one line each."""
        data = (answer if isinstance(answer, str) else json.dumps(answer)).encode()
        started = getattr(self, "_started", None)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            if allow is not None:
                self.send_header("Allow", allow)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client left; nothing to answer
        method = getattr(self, "command", None) or "-"
        path = (getattr(self, "path", None) or "-").split("?")[0]
        latency = (time.monotonic() - started) * 1000 if started else 0.0
        log(f"{method} {path} {status} {latency:.1f} ms")
        if status >= 400 and (path, status) != ("/ping", 503):  # loading is no error
            reason = answer.get("error", "") if isinstance(answer, dict) else ""
            log(f"error {method} {path} {status}: {_one_line(reason)}", error=True)

    def setup(self) -> None:
        # A connection that sends nothing (or stalls in a body) for this long is closed.
        self.timeout = self.model_server.settings.timeout
        super().setup()

    def parse_request(self) -> bool:
        self._started = time.monotonic()
        return super().parse_request()


def _one_line(text: Any, limit: int = 300) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= limit else words[: limit - 3] + "..."


def settings_from(argv: Sequence[str], environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Settings from the command line and ``DETECTCTL_SERVE_*`` (a flag wins over its
    variable). With the single argument ``serve``, the defaults are SageMaker's: 0.0.0.0, port
    8080 (or ``SAGEMAKER_BIND_TO_PORT``), the model in ``/opt/ml/model`` (``DETECTCTL_OPT_ML``
    moves ``/opt/ml``). Exits 2 with one line on a bad value."""
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m algorithm.serve",
                                     description="Serve a detectctl SSD over HTTP.")
    parser.add_argument("mode", nargs="?", choices=["serve"],
                        help="start as SageMaker starts an own serving image")
    for name, (_, text) in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                            help=f"{text} (environment: {ENV_PREFIX + name.upper()})")
    args = parser.parse_args(list(argv))
    defaults = {}
    if args.mode == "serve":
        defaults = {"host": "0.0.0.0",
                    "port": environ.get("SAGEMAKER_BIND_TO_PORT") or "8080",
                    "model_dir": str(Paths.from_environ(environ).model_dir)}
    types = {f.name: f.type for f in fields(Settings)}
    values: Dict[str, Any] = {}
    for name, (minimum, _) in OPTIONS.items():
        variable = ENV_PREFIX + name.upper()
        candidates = [("--" + name.replace("_", "-"), getattr(args, name)),
                      (variable, environ.get(variable)),
                      ("SAGEMAKER_BIND_TO_PORT" if name == "port" else name, defaults.get(name))]
        found = [(source, str(raw).strip()) for source, raw in candidates
                 if raw is not None and str(raw).strip()]
        if not found:
            continue
        source, raw = found[0]
        kind = str(types[name])
        try:
            value: Any = {"int": int, "float": float}.get(kind, str)(raw)
        except ValueError:
            expected = "an integer" if kind == "int" else "a number"
            parser.error(f"{source}={raw!r} must be {expected}")
        if minimum is not None and value < minimum:
            parser.error(f"{source}={raw!r} must be at least {minimum}")
        values[name] = value
    if "model_dir" not in values:
        parser.error("--model-dir is required (or DETECTCTL_SERVE_MODEL_DIR, or the argument "
                     "serve for /opt/ml/model)")
    return Settings(**values)


def main(argv: Optional[Sequence[str]] = None) -> int:
    settings = settings_from(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    received: List[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server = ModelServer(settings)
    except OSError as exc:
        log(f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
            error=True)
        return 1
    server.start()
    try:
        server.load()
    except Exception as exc:
        log(f"error: cannot load the model from {settings.model_dir}: {exc}", error=True)
        server.stop()
        return 1
    while not stop.wait(1.0):
        pass
    log(f"stopping ({received[0]}): finishing {server.batcher.held} held request(s)")
    finished = server.stop()
    log("stopped" if finished else "stopped with requests still held after the timeout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
