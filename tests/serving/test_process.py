"""python -m algorithm.serve as a process: options and variables, the SageMaker `serve` start,
SIGTERM with a request in flight, one-line failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from algorithm.serve import Settings, main, settings_from
from tests.serving.support import encode, invoke, photo, raw_connection, read_response, request

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args, env=None) -> subprocess.Popen:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "algorithm.serve", *args], cwd=ROOT,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_ready(process: subprocess.Popen, url: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert process.poll() is None, process.communicate()
        try:
            if request(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server never answered /ping with 200")


def test_flags_win_over_variables_which_win_over_defaults(tmp_path):
    environ = {"DETECTCTL_SERVE_BATCH_SIZE": "4", "DETECTCTL_SERVE_WORKERS": "2",
               "DETECTCTL_SERVE_MODEL_DIR": "/env/model", "DETECTCTL_SERVE_TIMEOUT": "2.5"}
    assert settings_from(["--batch-size", "16"], environ) == Settings(
        model_dir="/env/model", batch_size=16, workers=2, timeout=2.5)
    assert settings_from(["--model-dir", "m", "--port", "0", "--batch-delay-ms", "0",
                          "--queue-size", "3", "--host", "0.0.0.0"], {}) == Settings(
        model_dir="m", host="0.0.0.0", port=0, batch_delay_ms=0, queue_size=3)
    assert settings_from(["--model-dir", "m", "--malloc-arenas", "0"],
                         {"DETECTCTL_SERVE_RELEASE_AFTER": "0"}) == Settings(
        model_dir="m", malloc_arenas=0, release_after=0)


def test_serve_takes_sagemakers_defaults():
    assert settings_from(["serve"], {}) == Settings(model_dir="/opt/ml/model", host="0.0.0.0",
                                                    port=8080)
    environ = {"DETECTCTL_OPT_ML": "/tmp/ml", "SAGEMAKER_BIND_TO_PORT": "9000",
               "DETECTCTL_SERVE_BATCH_SIZE": "2"}
    assert settings_from(["serve"], environ) == Settings(
        model_dir="/tmp/ml/model", host="0.0.0.0", port=9000, batch_size=2)


@pytest.mark.parametrize("args, environ, message", [
    ([], {}, "--model-dir is required"),
    (["--model-dir", "m", "--batch-size", "0"], {}, "--batch-size='0' must be at least 1"),
    (["--model-dir", "m"], {"DETECTCTL_SERVE_WORKERS": "two"},
     "DETECTCTL_SERVE_WORKERS='two' must be an integer"),
    (["--model-dir", "m"], {"DETECTCTL_SERVE_TIMEOUT": "soon"},
     "DETECTCTL_SERVE_TIMEOUT='soon' must be a number"),
    (["serve"], {"SAGEMAKER_BIND_TO_PORT": "x"}, "SAGEMAKER_BIND_TO_PORT='x' must be an integer"),
    (["train"], {}, "invalid choice: 'train'"),
])
def test_bad_settings_exit_2_with_one_line(args, environ, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        settings_from(args, environ)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_serve_argument_runs_the_container_contract_and_sigterm_finishes_in_flight(
        model_dir, tmp_path):
    """`docker run image serve`: the model from $DETECTCTL_OPT_ML/model, 0.0.0.0, SageMaker's
    port (moved with SAGEMAKER_BIND_TO_PORT so that the test finds a free one). SIGTERM while a
    request's body is half received: no new connections, that request answered, exit 0."""
    shutil.copytree(model_dir, tmp_path / "model")
    port = _free_port()
    process = _start(["serve"], {"DETECTCTL_OPT_ML": str(tmp_path),
                                 "SAGEMAKER_BIND_TO_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url)
        status, _, answer = invoke(url, encode(photo(), "PNG"), "image/png")
        assert status == 200 and len(answer["prediction"]) == 200
        assert invoke(url, b"", "image/png")[0] == 400
        body = encode(photo(), "JPEG")
        with raw_connection(url) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg"
                         b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:100])
            time.sleep(0.5)  # the request is admitted and its body half received
            process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            with pytest.raises(OSError):
                request(url, timeout=2)  # no new connections
            assert process.poll() is None
            sock.sendall(body[100:])
            status, answer = read_response(sock)
        assert status == 200 and len(json.loads(answer)["prediction"]) == 200
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(f"listening on http://0.0.0.0:{port}: batch size 8, batch delay "
                             "10 ms, 1 worker(s), queue 32, timeout 60 s, 2 malloc arena(s), "
                             "freed memory released after 10 s without requests")
    ready = [line for line in lines if " ready: " in line]
    assert len(ready) == 1 and ready[0].split(" ", 1)[1].startswith(
        f"ready: {tmp_path / 'model'} (mobilenet-v3-large, image_shape 128, 3 classes, cpu)")
    assert ready[0].endswith("; batch sizes 1, 2, 4, 8")  # on a CPU, powers of two
    requests = [line.split(" ", 1)[1].rsplit(" ", 2)[0] for line in lines
                if " /invocations " in line]
    assert requests == ["POST /invocations 200", "POST /invocations 400",
                        "POST /invocations 200"]
    # The request in flight is answered after SIGTERM, before the server stops.
    assert lines[-3].endswith("stopping (SIGTERM): finishing 1 held request(s)")
    assert " POST /invocations 200 " in lines[-2]
    assert lines[-1].endswith(" stopped")
    assert err.splitlines() == [err.splitlines()[0]]
    assert err.splitlines()[0].endswith(
        "error POST /invocations 400: the body is empty; send an image")


def test_a_model_that_cannot_load_exits_1_with_one_line(tmp_path, capsys):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = main(["--model-dir", str(tmp_path), "--port", "0"])
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(f"error: cannot load the model from {tmp_path}: {tmp_path}: no model.pt; "
                         "is this a detectctl model artifact?")
