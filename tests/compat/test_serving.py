"""The inference handlers and the model server under Python 3.8 / torch 1.12.1 / torchvision
0.13.1, on the model the compat training job wrote; no warnings."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest

from tests.compat.support import ROOT, assert_no_warnings, environment
from tests.serving.support import encode, invoke, photo, request

pytestmark = pytest.mark.compat

# Run in the compat venv: each handler as SageMaker's PyTorch toolkit calls it, on a JPEG and a
# PNG, one JSON answer per line.
HANDLERS = """
import io, sys
import numpy as np
from PIL import Image
from algorithm import inference

model = inference.model_fn(sys.argv[1])
pixels = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
for fmt, content_type in (("JPEG", "image/jpeg"), ("PNG", "image/png")):
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, fmt)
    data = inference.input_fn(buffer.getvalue(), content_type)
    print(inference.output_fn(inference.predict_fn(data, model), "application/json"))
"""


def _model_dir(one_host_job):
    root, result = one_host_job
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "model"


def _check_prediction(answer: dict) -> None:
    assert set(answer) == {"prediction"}
    assert answer["prediction"], "no detections at all"
    for class_id, score, *box in answer["prediction"]:
        assert class_id in (0.0, 1.0, 2.0) and 0.0 <= score <= 1.0
        assert all(0.0 <= value <= 1.0 for value in box)


def test_inference_handlers(compat_python, one_host_job):
    model_dir = _model_dir(one_host_job)
    result = subprocess.run([str(compat_python), "-c", HANDLERS, str(model_dir)], cwd=ROOT,
                            env=environment(), capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert_no_warnings(output)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2, output
    for answer in answers:
        _check_prediction(answer)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_model_server(compat_python, one_host_job):
    model_dir = _model_dir(one_host_job)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(compat_python), "-m", "algorithm.serve", "--model-dir", str(model_dir), "--port",
         str(port)], cwd=ROOT, env=environment(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        status = None
        while status != 200 and time.monotonic() < deadline:
            assert server.poll() is None, server.communicate()[0]
            try:
                status = request(url, timeout=2)[0]
            except OSError:
                time.sleep(0.2)
        assert status == 200, "the server never answered /ping with 200"
        status, headers, answer = invoke(url, encode(photo(), "JPEG"), "image/jpeg")
        assert status == 200, answer
        assert headers["Content-Type"].startswith("application/json")
        _check_prediction(answer)
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, output
    assert_no_warnings(output)
    assert "POST /invocations 200" in output and "stopped" in output, output
