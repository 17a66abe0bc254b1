"""Local jobs under a temporary DETECTCTL_HOME, on tiny synthetic data."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from detectctl.datasets.synth import synth

# A 2-step epoch of a small SSDLite: a local job of a few epochs takes seconds.
TINY = {"num_classes": 3, "base_network": "mobilenet-v3-large", "use_pretrained_model": 0,
        "image_shape": 128, "mini_batch_size": 8, "num_workers": 0, "seed": 0}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("DETECTCTL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DETECTCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "detectctl.toml"))
    monkeypatch.setenv("DETECTCTL_STOP_GRACE", "30")
    return tmp_path / "home"


@pytest.fixture
def data(tmp_path: Path, home: Path) -> Path:
    synth(str(tmp_path / "train"), images=16, classes=3, seed=1, format="recordio",
          image_size=(96, 72))
    synth(str(tmp_path / "val.rec"), images=8, classes=3, seed=2, format="recordio",
          image_size=(96, 72))
    return tmp_path


@pytest.fixture
def jobs_to_clean(home: Path):
    """Every local job a test started is stopped at its end, whatever happened."""
    yield
    from detectctl.local.jobs import list_jobs
    from detectctl.local.state import alive

    for job in list_jobs(home / "jobs", limit=1000):
        local = job.description.get("Local", {})
        for process in [local.get("Supervisor"), *local.get("Hosts", [])]:
            if process and alive(process):
                os.killpg(process["Pid"], signal.SIGKILL)


def wait_for(condition: Callable[[], object], timeout: float = 120, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")
