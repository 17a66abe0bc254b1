"""The toolkit lane (pytest -m toolkit): a trained tiny model's artifact served by the real
SageMaker PyTorch inference toolkit (sagemaker-pytorch-inference + TorchServe), as SageMaker's
PyTorch inference image serves it, gives our statuses: 200 for images, 4xx for client mistakes,
never a 500, and the worker survives them.

The lane builds its virtual environment with tests/serving/toolkit_venv.sh (a few minutes the
first time; $DETECTCTL_TOOLKIT_VENV, default /tmp/detectctl-toolkit-venv), relocates /opt/ml
with SAGEMAKER_BASE_DIR and starts the toolkit's `serve` entry point. The toolkit itself writes
/etc/sagemaker-ts.properties, as it does in the image.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.serving.support import encode, photo, png_header_only, request
from tests.training.jobs import make_job, run_job

pytestmark = pytest.mark.toolkit

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("DETECTCTL_TOOLKIT_VENV", "/tmp/detectctl-toolkit-venv"))
MAX_BODY_BYTES = 6 * 1024 * 1024
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    """The model directory of a one-epoch mobilenet-v3-large job at image_shape 128."""
    root = make_job(tmp_path_factory.mktemp("job"), images=16, epochs="1")
    result = run_job(root, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "model"


@pytest.fixture(scope="module")
def toolkit(trained_model, tmp_path_factory):
    """The URL of the toolkit serving the trained model; stopped at the end."""
    subprocess.run(["bash", str(ROOT / "tests/serving/toolkit_venv.sh"), str(VENV)], check=True,
                   timeout=1800)
    base = tmp_path_factory.mktemp("opt_ml")
    shutil.copytree(trained_model, base / "model")
    work = tmp_path_factory.mktemp("work")  # the toolkit's model store goes under its cwd
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "VIRTUAL_ENV", "DETECTCTL_"))}
    env.update({"SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_BIND_TO_PORT": str(port),
                "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "OMP_NUM_THREADS": "1",
                "PATH": f"{VENV / 'bin'}:{env.get('PATH', '')}"})
    log = (work / "toolkit.log").open("w")
    process = subprocess.Popen([str(VENV / "bin" / "serve")], cwd=work, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_a_worker(url, process, work / "toolkit.log")
        yield url
    finally:
        _stop(process)
        log.close()


def _wait_for_a_worker(url: str, process: subprocess.Popen, log: Path) -> None:
    # TorchServe answers /ping before its Python worker has loaded the model: wait for a 200
    # from /invocations.
    end = time.monotonic() + 300
    while time.monotonic() < end:
        assert process.poll() is None, log.read_text()[-5000:]
        try:
            if _invoke(url, JPEG)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError("the toolkit never answered an image: " + log.read_text()[-5000:])


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the toolkit's process group (it forwards it to TorchServe), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            time.sleep(2)  # TorchServe's Java and Python processes are in the same group
        except subprocess.TimeoutExpired:
            continue


def _invoke(url: str, body: bytes, content_type: str | None = "image/jpeg", **headers: str):
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type is not None:
        sent["Content-Type"] = content_type
    return request(url, "POST", "/invocations", body, sent, timeout=60)


def test_images_get_normalised_rows_best_first(toolkit):
    for body, content_type in ((JPEG, "image/jpeg"), (encode(photo(), "PNG"), "image/png"),
                               (encode(photo().convert("L"), "PNG"), "application/x-image")):
        status, _, data = _invoke(toolkit, body, content_type)
        assert status == 200, data
        rows = json.loads(data)["prediction"]
        assert rows and all(len(row) == 6 for row in rows)
        scores = [row[1] for row in rows]
        assert scores == sorted(scores, reverse=True)
        assert all(0 <= value <= 1 for row in rows for value in row[2:])


def test_custom_attributes_reach_the_handlers(toolkit):
    status, _, data = _invoke(toolkit, JPEG, X_Amzn_SageMaker_Custom_Attributes=(
        "trace=1,threshold=0.05,max_detections=3"))
    assert status == 200, data
    rows = json.loads(data)["prediction"]
    assert len(rows) <= 3 and all(row[1] > 0.05 for row in rows)
    everything = json.loads(_invoke(toolkit, JPEG)[2])["prediction"]
    assert len(everything) > 3


CLIENT_MISTAKES = [
    ("empty body", b"", "image/jpeg", {}, 400, "the body is empty; send an image"),
    ("text as an image", b"hello", "image/jpeg", {}, 400, "not a readable image"),
    ("truncated JPEG", JPEG[: len(JPEG) // 2], "image/jpeg", {}, 400, "truncated or corrupt"),
    ("decompression bomb", png_header_only(100_000, 100_000), "image/png", {}, 400,
     "decompression bomb"),
    ("float image", encode(Image.new("F", (4, 4)), "TIFF"), "application/x-image", {}, 400,
     "unsupported image mode F"),
    ("text content type", b"hello", "text/plain", {}, 415, "content type 'text/plain'"),
    ("JSON content type", b"{}", "application/json", {}, 415, "content type 'application/json'"),
    ("accept CSV", JPEG, "image/jpeg", {"Accept": "text/csv"}, 406, "accept type 'text/csv'"),
    ("bad attribute", JPEG, "image/jpeg", {"X-Amzn-SageMaker-Custom-Attributes": "threshold=x"},
     400, "custom attribute threshold='x' must be a number in [0, 1)"),
    ("body over 6 MB", JPEG + bytes(MAX_BODY_BYTES + 1 - len(JPEG)), "image/jpeg", {}, 413,
     "the body is 6291457 bytes; the limit is 6291456"),
]


@pytest.mark.parametrize("case", CLIENT_MISTAKES, ids=[c[0] for c in CLIENT_MISTAKES])
def test_client_mistakes_get_our_status_not_500(toolkit, case):
    _, body, content_type, headers, expected, reason = case
    status, _, data = request(toolkit, "POST", "/invocations", body,
                              {"Content-Type": content_type, **headers}, timeout=60)
    assert status == expected, data[:2000]
    # The toolkit answers our message on the first line (and appends its traceback after it).
    assert reason in data.decode().splitlines()[0]
    # The worker survives: the next image is answered.
    assert _invoke(toolkit, JPEG)[0] == 200
