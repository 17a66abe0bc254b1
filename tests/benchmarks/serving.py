"""Serving: our HTTP server (algorithm/serve.py) against torchvision's bare model call and against
TorchServe with SageMaker's PyTorch inference toolkit (issue 13's benchmarks).

    python tests/benchmarks/serving.py                          # the three, 2,000 requests each
    python tests/benchmarks/serving.py --requests 200           # a quick run (serving_quick.json)
    python tests/benchmarks/serving.py --only single load       # without TorchServe
    python tests/benchmarks/serving.py --toolkit-batching       # and TorchServe's batching on

The model: torchvision's ``ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91)``
with seed 0 (random weights: nothing is downloaded), and the same weights in our VGG-16/300 SSD
(``algorithm.ssd.from_torchvision``) saved as a model artifact (``algorithm.artifact.save``:
base_network vgg-16, image_shape 300, num_classes 90) and tarred as ``model.tar.gz``. Both
models post-process the same boxes (score threshold 0.01, NMS 0.45, 200 detections). The
request: one 500x375 JPEG (a synthetic picture of 57 kB, as a VOC photo). Every process gets the
same torch thread count (``--threads``, default: the CPU count; ``OMP_NUM_THREADS`` for the
servers) and one inference worker, and glibc's malloc with 2 arenas (our server's default;
``MALLOC_ARENA_MAX=2`` for TorchServe's).

1. ``single``: one request at a time through our server end to end (HTTP, decode, resize,
   model, NMS, JSON; the client's wall time) vs torchvision's bare model call (eval mode,
   forward and its post-processing) on the already decoded tensor, in this process; the two
   interleaved. Figure: p50 ratio ours / torchvision, goal <= 1.0.
2. ``load``: 8 concurrent clients (one keep-alive connection each), ``--requests`` requests,
   against our server with dynamic batching (its defaults: batch 8, 10 ms; on a CPU
   batches of 1, 2, 4 or 8) and without (batch size 1). Errors (any answer but 200), p50/p99
   latency, requests/s, and the server's resident memory (VmRSS of its processes,
   /proc/PID/status) after request 100 and after the last.
   Goals: 0 errors, memory growth < 10%, batching / batch 1 >= 1.2x on a 2-core CPU.
3. ``toolkit``: the same load against TorchServe + sagemaker-pytorch-inference serving the same
   model.tar.gz (extracted under SAGEMAKER_BASE_DIR, started with the toolkit's ``serve`` as
   tests/serving/test_toolkit.py does; the venv of tests/serving/toolkit_venv.sh), one worker,
   as the default inference image runs it (batch size 1). Goal: our throughput (with
   batching) >= 1.0x. ``--toolkit-batching`` adds a lane with TorchServe's batching set as ours
   (SAGEMAKER_TS_BATCH_SIZE 8, SAGEMAKER_TS_MAX_BATCH_DELAY 10 ms); the toolkit still runs the
   handlers one request at a time (sagemaker_inference's Transformer loops over the batch).

The machine may be shared, so the load lanes do not run one after the other: every server is
started first, then each gets its requests in ``--rounds`` rounds, the lanes taking turns, so
that the machine's drift hits them all alike. A lane's throughput is its requests over the time
of its own rounds. Prints a table and writes tests/benchmarks/results/serving.json (a run with
fewer requests or fewer benchmarks: serving_quick.json).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torchvision.models.detection import ssd300_vgg16
from torchvision.transforms.functional import pil_to_tensor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algorithm import artifact  # noqa: E402
from algorithm.serve import Settings  # noqa: E402
from algorithm.ssd import from_torchvision  # noqa: E402
from tests.benchmarks import result_files  # noqa: E402

RESULTS = result_files.RESULTS
TOOLKIT_VENV = Path(os.environ.get("DETECTCTL_TOOLKIT_VENV", "/tmp/detectctl-toolkit-venv"))
HYPERPARAMETERS = {"base_network": "vgg-16", "image_shape": "300", "num_classes": "90"}
WIDTH, HEIGHT = 500, 375
FULL_REQUESTS = 2000
RSS_FROM = 100  # memory growth is measured from this request on
CLIENT_TIMEOUT = 600
BENCHMARKS = ("single", "load", "toolkit")

RESULT_FILES = ["serving.json", "serving_quick.json"]
# Our server's defaults; TorchServe's worker gets the same arena limit.
MALLOC_ARENAS = Settings.malloc_arenas
ALLOCATOR = {
    "ours": f"glibc malloc, {MALLOC_ARENAS} arenas, freed memory released after "
            f"{Settings.release_after:g} s without requests, batch sizes in powers of two on a "
            f"CPU (algorithm/serve.py's defaults)",
    "torchserve": f"glibc malloc, {MALLOC_ARENAS} arenas (MALLOC_ARENA_MAX)",
}

# One server's figures under load (a lane), as RESULT_KEYS names them below.
LANE_KEYS = {"requests": "int",
             "errors": "int",
             "error_kinds": {"*": "int"},
             "throughput_rps": "number",
             "p50_ms": "number",
             "p99_ms": "number",
             "server_cpu_s_per_request": "number",
             "rss_mb_at_request": {"*": "number"},
             "rss_growth": "number",
             "omp_num_threads": {"*": "str"}}
RESULT_KEYS = {
    "load_average_before": ["number"],
    "load_average_after": ["number"],
    "device": "str",
    "threads": "int",
    "workers": "int",
    "allocator?": {"*": "str"},
    "model": {"torchvision": "str", "ours": {"*": "str"}},
    "image": {"width": "int", "height": "int", "jpeg_bytes": "int"},
    "wall_s": "number",
    "results": {"single?": {"runs": "int",
                            "ours_p50_ms": "number",
                            "torchvision_p50_ms": "number",
                            "ratio": "number",
                            "goal": "str",
                            "met": "bool",
                            "torchvision_forward_only_p50_ms": "number",
                            "ratio_to_torchvision_forward_only": "number",
                            "ours_detections": "int",
                            "torchvision_detections": "int",
                            "ours_best_score": "number|null",
                            "torchvision_best_score": "number|null",
                            "ours_runs_ms": ["number"],
                            "torchvision_runs_ms": ["number"],
                            "torchvision_forward_only_runs_ms": ["number"]},
                "load?": {"clients": "int",
                          "requests": "int",
                          "rounds": "int",
                          "ours": LANE_KEYS,
                          "ours_batch_1": LANE_KEYS,
                          "batching_speedup": "number",
                          "goals": {"*": "bool"}},
                "toolkit?": {"clients": "int",
                             "requests": "int",
                             "rounds": "int",
                             "versions": {"*": "str|null"},
                             "torchserve_default": LANE_KEYS,
                             "ours": LANE_KEYS,
                             "ours_over_torchserve_default": "number",
                             "ours_batch_1_over_torchserve_default": "number",
                             "torchserve_batching?": LANE_KEYS,
                             "ours_over_torchserve_batching?": "number",
                             "goals": {"*": "bool"}}}}


def photo_jpeg() -> bytes:
    """A 500x375 picture with smooth colour fields, shapes and sensor-like noise, as a JPEG of
    quality 90 (57 kB, as a VOC photo): its decoding costs what a real photo's does."""
    rng = np.random.default_rng(0)
    coarse = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    image = Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.integers(0, 420), rng.integers(0, 300)
        w, h = rng.integers(40, 160), rng.integers(40, 160)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x, y, x + w, y + h], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noisy = np.asarray(image).astype(np.float32) + rng.normal(0, 8, (HEIGHT, WIDTH, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_models(work: Path):
    """torchvision's ssd300_vgg16 (eval mode) and the path of our model.tar.gz with its weights."""
    torch.manual_seed(0)
    theirs = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91).eval()
    ours = from_torchvision(theirs.state_dict(), num_classes=90)
    model_dir = work / "model"
    artifact.save(model_dir, ours, dict(HYPERPARAMETERS), None)
    archive = work / artifact.ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return theirs, archive


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(connection: http.client.HTTPConnection, body: bytes):
    connection.request("POST", "/invocations", body=body,
                       headers={"Content-Type": "image/jpeg", "Accept": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


class Server:
    """A model server in its own process group: started, waited for, measured, stopped."""

    def __init__(self, name: str, command: List[str], env: Dict[str, str], cwd: Path, port: int,
                 log: Path):
        self.name, self.port, self.log_path = name, port, log
        self.log = log.open("w")
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)

    def wait_ready(self, body: bytes, timeout: float = 900) -> None:
        """Until an image is answered 200 (TorchServe answers /ping before its worker loads)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited: " + self.log_path.read_text()[-5000:])
            connection = self.connect()
            try:
                if _post(connection, body)[0] == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(1)
        sys.exit(f"{self.name} never answered an image: " + self.log_path.read_text()[-5000:])

    def _group(self):
        """(pid, /proc/PID/stat fields after the name) of every process of the server's group."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 12 and fields[2] == str(self.process.pid):  # pgrp
                yield entry, fields

    def rss_mb(self) -> float:
        """Resident memory of every process of the server's group (VmRSS), in MB."""
        total = 0
        for entry, _ in self._group():
            try:
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return total / 1024

    def cpu_s(self) -> float:
        """CPU time (user + system) used so far by every process of the server's group."""
        ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in self._group())
        return ticks / os.sysconf("SC_CLK_TCK")

    def thread_settings(self) -> Dict[str, str]:
        """OMP_NUM_THREADS as each Python process of the group sees it (TorchServe's worker
        gets its environment from the Java frontend)."""
        found = {}
        for entry, _ in self._group():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"python" in part for part in command[:1]):
                name = " ".join(part.decode() for part in command[:3])[:80]
                values = [e.split(b"=", 1)[1].decode() for e in environ
                          if e.startswith(b"OMP_NUM_THREADS=")]
                found[name] = values[0] if values else "unset"
        return found

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                time.sleep(1)  # TorchServe's Java and Python processes share the group
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


def _child_env(threads: int, device: str) -> Dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "VIRTUAL_ENV", "DETECTCTL_", "SAGEMAKER_"))}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def start_ours(name: str, archive: Path, work: Path, threads: int, device: str,
               batch_size: int) -> Server:
    port = _free_port()
    command = [sys.executable, "-m", "algorithm.serve", "--model-dir", str(archive),
               "--port", str(port), "--batch-size", str(batch_size)]
    return Server(name, command, _child_env(threads, device), ROOT, port, work / f"{name}.log")


def start_toolkit(name: str, archive: Path, work: Path, threads: int, device: str,
                  batch_size: Optional[int], venv: Path) -> Server:
    """The toolkit's ``serve`` as SageMaker's PyTorch inference image starts it, on the
    extracted model.tar.gz (SageMaker extracts it into /opt/ml/model)."""
    base = work / f"{name}-opt-ml"
    with tarfile.open(archive) as tar:
        tar.extractall(base / "model")
    cwd = work / name  # the toolkit's model store goes under its cwd
    temporary = cwd / "tmp"
    temporary.mkdir(parents=True)
    port = _free_port()
    env = _child_env(threads, device)
    # The heap limit our server sets itself (algorithm/serve.py, --malloc-arenas 2), given to
    # TorchServe's worker as glibc reads it.
    env["MALLOC_ARENA_MAX"] = str(MALLOC_ARENAS)
    # TorchServe keeps its pid file (TMPDIR) and its worker's socket (TEMP, Java's tmpdir) in
    # the temporary directory, and listens for metrics on 8082 and gRPC on 7070-7071: a
    # directory and ports of its own (TS_* variables, which the toolkit's configuration
    # enables), so that two TorchServes (or another one on the machine) do not collide.
    env.update({"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(port),
                "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "TMPDIR": str(temporary),
                "TEMP": str(temporary), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
                "TS_METRICS_ADDRESS": f"http://127.0.0.1:{_free_port()}",
                "TS_GRPC_INFERENCE_PORT": str(_free_port()),
                "TS_GRPC_MANAGEMENT_PORT": str(_free_port())})
    if batch_size is not None:
        env.update(SAGEMAKER_TS_BATCH_SIZE=str(batch_size), SAGEMAKER_TS_MAX_BATCH_DELAY="10")
    return Server(name, [str(venv / "bin" / "serve")], env, cwd, port, work / f"{name}.log")


class Lane:
    """One server under load: its requests, answers, latencies and memory over all its rounds."""

    def __init__(self, server: Server, clients: int, body: bytes):
        self.server, self.clients, self.body = server, clients, body
        self.threads = server.thread_settings()
        self.latencies: List[float] = []
        self.errors: Dict[str, int] = {}
        self.answered = 0
        self.busy_s = 0.0
        self.cpu_s = 0.0
        self.rss: Dict[int, float] = {}  # requests answered -> MB
        self._lock = threading.Lock()

    def round(self, requests: int) -> None:
        """``requests`` requests from ``clients`` concurrent clients, each on its own
        keep-alive connection (new ones each round: an idle server closes them)."""
        remaining = [requests]

        def client() -> None:
            connection = self.server.connect()
            while True:
                with self._lock:
                    if remaining[0] == 0:
                        break
                    remaining[0] -= 1
                started = time.perf_counter()
                try:
                    status, _ = _post(connection, self.body)
                    error = None if status == 200 else f"HTTP {status}"
                except (OSError, http.client.HTTPException) as exc:
                    error = type(exc).__name__
                    connection.close()
                    connection = self.server.connect()
                latency = time.perf_counter() - started
                with self._lock:
                    self.answered += 1
                    self.latencies.append(latency)
                    if error:
                        self.errors[error] = self.errors.get(error, 0) + 1
                    if self.answered % RSS_FROM == 0:
                        self.rss[self.answered] = self.server.rss_mb()
            connection.close()

        started, cpu = time.perf_counter(), self.server.cpu_s()
        threads = [threading.Thread(target=client) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.busy_s += time.perf_counter() - started
        self.cpu_s += self.server.cpu_s() - cpu
        self.rss[self.answered] = self.server.rss_mb()

    def summary(self) -> dict:
        first = self.rss.get(RSS_FROM, min(self.rss.items())[1])
        last = self.rss[max(self.rss)]
        return {
            "requests": self.answered, "errors": sum(self.errors.values()),
            "error_kinds": self.errors, "throughput_rps": self.answered / self.busy_s,
            "p50_ms": _percentile(self.latencies, 50) * 1e3,
            "p99_ms": _percentile(self.latencies, 99) * 1e3,
            "server_cpu_s_per_request": self.cpu_s / self.answered,
            "rss_mb_at_request": {str(k): round(v, 1) for k, v in sorted(self.rss.items())},
            "rss_growth": last / first - 1,
            "omp_num_threads": self.threads,
        }


def _percentile(values: List[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_single(args, theirs, archive: Path, body: bytes, work: Path) -> dict:
    """Benchmark 1: one request at a time, ours end to end vs torchvision's bare model call."""
    device = torch.device(args.device)
    server = start_ours("ours-single", archive, work, args.threads, args.device, 8)
    try:
        server.wait_ready(body)
        decoded = pil_to_tensor(Image.open(io.BytesIO(body)).convert("RGB"))
        image = (decoded.float() / 255).to(device)  # [3, 375, 500] in [0, 1]
        model = theirs.to(device)

        def torchvision_call():
            with torch.no_grad():
                detections = model([image])[0]
            if device.type == "cuda":
                torch.cuda.synchronize()
            return detections

        def torchvision_forward():
            """Its resize, normalisation, backbone and head: the call without post-processing."""
            with torch.no_grad():
                images, _ = model.transform([image])
                features = list(model.backbone(images.tensors).values())
                model.head(features)
            if device.type == "cuda":
                torch.cuda.synchronize()

        connection = server.connect()
        times: Dict[str, List[float]] = {"ours": [], "torchvision": [], "torchvision_forward": []}
        for i in range(args.single + args.warmup):
            started = time.perf_counter()
            status, answer = _post(connection, body)
            ours_s = time.perf_counter() - started
            assert status == 200, answer[:500]
            started = time.perf_counter()
            detections = torchvision_call()
            theirs_s = time.perf_counter() - started
            started = time.perf_counter()
            torchvision_forward()
            forward_s = time.perf_counter() - started
            if i >= args.warmup:
                times["ours"].append(ours_s)
                times["torchvision"].append(theirs_s)
                times["torchvision_forward"].append(forward_s)
        connection.close()
    finally:
        server.stop()
    rows = json.loads(answer)["prediction"]
    ours_ms = statistics.median(times["ours"]) * 1e3
    theirs_ms = statistics.median(times["torchvision"]) * 1e3
    forward_ms = statistics.median(times["torchvision_forward"]) * 1e3
    return {
        "runs": args.single, "ours_p50_ms": ours_ms, "torchvision_p50_ms": theirs_ms,
        "ratio": ours_ms / theirs_ms, "goal": "ratio <= 1.0", "met": ours_ms <= theirs_ms,
        "torchvision_forward_only_p50_ms": forward_ms,
        "ratio_to_torchvision_forward_only": ours_ms / forward_ms,
        "ours_detections": len(rows), "torchvision_detections": len(detections["boxes"]),
        "ours_best_score": rows[0][1] if rows else None,
        "torchvision_best_score": (float(detections["scores"][0]) if len(detections["scores"])
                                   else None),
        "ours_runs_ms": [t * 1e3 for t in times["ours"]],
        "torchvision_runs_ms": [t * 1e3 for t in times["torchvision"]],
        "torchvision_forward_only_runs_ms": [t * 1e3 for t in times["torchvision_forward"]],
    }


def bench_load(args, archive: Path, body: bytes, work: Path, toolkit: bool) -> dict:
    """Benchmarks 2 and 3: the same load on every lane, in interleaved rounds."""
    lanes: Dict[str, Lane] = {}
    starts = [lambda: start_ours("ours-batching", archive, work, args.threads, args.device, 8),
              lambda: start_ours("ours-batch-1", archive, work, args.threads, args.device, 1)]
    if toolkit:
        starts += [
            lambda: start_toolkit("torchserve-default", archive, work, args.threads,
                                  args.device, None, args.toolkit_venv)]
        if args.toolkit_batching:
            starts.append(lambda: start_toolkit("torchserve-batching", archive, work,
                                                args.threads, args.device, 8,
                                                args.toolkit_venv))
    servers: List[Server] = []
    try:
        # One at a time: each toolkit writes /etc/sagemaker-ts.properties, which its
        # TorchServe reads as it starts.
        for start in starts:
            server = start()
            servers.append(server)
            print(f"starting {server.name} ...", file=sys.stderr, flush=True)
            server.wait_ready(body)
            lanes[server.name] = Lane(server, args.clients, body)
        per_round = [args.requests // args.rounds + (r < args.requests % args.rounds)
                     for r in range(args.rounds)]
        for r, count in enumerate(per_round):
            # Each round starts with another lane, so that none is always first.
            names = list(lanes)[r % len(lanes):] + list(lanes)[:r % len(lanes)]
            for name in names:
                lanes[name].round(count)
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{name} {lane.answered / lane.busy_s:.2f}/s" for name, lane in lanes.items()),
                file=sys.stderr, flush=True)
    finally:
        for server in servers:
            server.stop()
    results = {name: lane.summary() for name, lane in lanes.items()}
    batching, single = results["ours-batching"], results["ours-batch-1"]
    load = {
        "clients": args.clients, "requests": args.requests, "rounds": args.rounds,
        "ours": batching, "ours_batch_1": single,
        "batching_speedup": batching["throughput_rps"] / single["throughput_rps"],
        "goals": {"0 errors": batching["errors"] == 0 and single["errors"] == 0,
                  "rss growth < 10% from request 100": batching["rss_growth"] < 0.10,
                  "batching / batch 1 >= 1.2x":
                      batching["throughput_rps"] / single["throughput_rps"] >= 1.2},
    }
    out = {"load": load}
    if toolkit:
        default = results["torchserve-default"]
        out["toolkit"] = {
            "clients": args.clients, "requests": args.requests, "rounds": args.rounds,
            "versions": _toolkit_versions(args.toolkit_venv),
            "torchserve_default": default, "ours": batching,
            "ours_over_torchserve_default": batching["throughput_rps"] / default["throughput_rps"],
            "ours_batch_1_over_torchserve_default":
                single["throughput_rps"] / default["throughput_rps"],
            "goals": {"ours / torchserve (default image) >= 1.0":
                      batching["throughput_rps"] >= default["throughput_rps"]},
        }
        if "torchserve-batching" in results:
            tuned = results["torchserve-batching"]
            out["toolkit"]["torchserve_batching"] = tuned
            out["toolkit"]["ours_over_torchserve_batching"] = (
                batching["throughput_rps"] / tuned["throughput_rps"])
    return out


def _toolkit_versions(venv: Path) -> dict:
    # A package the venv lacks is reported as null, not a failed run.
    probe = ("import importlib.metadata as m, json\n"
             "def v(n):\n"
             "    try:\n"
             "        return m.version(n)\n"
             "    except m.PackageNotFoundError:\n"
             "        return None\n"
             "print(json.dumps({n: v(n) for n in ('torchserve', 'sagemaker-pytorch-inference', "
             "'sagemaker-inference', 'torch', 'torchvision')}))")
    found = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True,
                           text=True, check=True)
    versions = json.loads(found.stdout)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    versions["java"] = (java.stderr.splitlines() or ["?"])[0]
    return versions


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _table(results: dict, threads: int) -> None:
    if "single" in results:
        r = results["single"]
        print(f"1 one request, {threads} thread(s): ours end to end p50 {r['ours_p50_ms']:.0f} ms, "
              f"torchvision bare call p50 {r['torchvision_p50_ms']:.0f} ms: ratio "
              f"{r['ratio']:.2f} (goal <= 1.0); its forward alone (no post-processing) p50 "
              f"{r['torchvision_forward_only_p50_ms']:.0f} ms: ratio "
              f"{r['ratio_to_torchvision_forward_only']:.2f}")
    lanes = []
    if "load" in results:
        lanes += [("ours, batching", results["load"]["ours"]),
                  ("ours, batch size 1", results["load"]["ours_batch_1"])]
    if "toolkit" in results:
        lanes.append(("TorchServe + toolkit, default", results["toolkit"]["torchserve_default"]))
        if "torchserve_batching" in results["toolkit"]:
            lanes.append(("TorchServe + toolkit, batching",
                          results["toolkit"]["torchserve_batching"]))
    if lanes:
        print(f"{'lane':32} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
              f"{'CPU s/req':>9} {'RSS MB @100':>11} {'@last':>7} {'growth':>7}")
        for name, r in lanes:
            rss = r["rss_mb_at_request"]
            print(f"{name:32} {r['throughput_rps']:7.2f} {r['p50_ms']:8.0f} {r['p99_ms']:8.0f} "
                  f"{r['errors']:6d} {r['server_cpu_s_per_request']:9.2f} "
                  f"{rss.get(str(RSS_FROM), float('nan')):11.0f} "
                  f"{list(rss.values())[-1]:7.0f} {r['rss_growth']:7.1%}")
    if "load" in results:
        print(f"2 batching / batch size 1: {results['load']['batching_speedup']:.2f}x "
              "(goal >= 1.2x)")
    if "toolkit" in results:
        t = results["toolkit"]
        print(f"3 ours / TorchServe as the default image runs it: "
              f"{t['ours_over_torchserve_default']:.2f}x (goal >= 1.0x); ours with batch size 1: "
              f"{t['ours_batch_1_over_torchserve_default']:.2f}x")
        if "ours_over_torchserve_batching" in t:
            print(f"  ours / TorchServe with its batching: "
                  f"{t['ours_over_torchserve_batching']:.2f}x")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--requests", type=int, default=FULL_REQUESTS,
                        help="requests per load lane (fewer for a quick run)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10,
                        help="the load lanes take turns this many times")
    parser.add_argument("--single", type=int, default=30, help="timed runs of benchmark 1")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads of every process (default: the CPU count)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto: cuda when a GPU is visible")
    parser.add_argument("--toolkit-venv", type=Path, default=TOOLKIT_VENV)
    parser.add_argument("--toolkit-batching", action="store_true",
                        help="also a TorchServe lane with its batching set as ours")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.requests < RSS_FROM or args.requests < args.rounds:
        parser.error(f"--requests must be at least {RSS_FROM} and --rounds")
    full = args.requests >= FULL_REQUESTS and set(args.only) == set(BENCHMARKS)
    output = args.output or RESULTS / ("serving.json" if full else "serving_quick.json")
    if "toolkit" in args.only:
        subprocess.run(["bash", str(ROOT / "tests/serving/toolkit_venv.sh"),
                        str(args.toolkit_venv)], check=True, timeout=1800)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    started = time.monotonic()
    body = photo_jpeg()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        work = Path(tmp)
        theirs, archive = make_models(work)
        if "single" in args.only:
            print("running single ...", file=sys.stderr, flush=True)
            results["single"] = bench_single(args, theirs, archive, body, work)
        if "load" in args.only or "toolkit" in args.only:
            print("running load ...", file=sys.stderr, flush=True)
            loaded = bench_load(args, archive, body, work, "toolkit" in args.only)
            if "load" in args.only:
                results["load"] = loaded["load"]
            if "toolkit" in loaded:
                results["toolkit"] = loaded["toolkit"]
        shutil.rmtree(work / "model", ignore_errors=True)
    _table(results, args.threads)

    report = {
        "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
        "device": args.device, "threads": args.threads, "workers": 1,
        "allocator": ALLOCATOR,
        "model": {"torchvision": "ssd300_vgg16(weights=None, weights_backbone=None, "
                                 "num_classes=91), seed 0", "ours": dict(HYPERPARAMETERS)},
        "image": {"width": WIDTH, "height": HEIGHT, "jpeg_bytes": len(body)},
        "wall_s": time.monotonic() - started,
        "results": results,
    }
    result_files.write(output, report, RESULT_KEYS)
    print(f"wrote {os.path.relpath(output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
