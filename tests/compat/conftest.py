from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.compat.support import venv


@pytest.fixture(scope="session")
def compat_python() -> Path:
    """The compat venv's interpreter, checked to be the oldest training image's stack."""
    python = venv() / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"no compat venv at {venv()}: build it with `bash tests/compat/build_venv.sh`"
                    " (or point DETECTCTL_COMPAT_VENV at one)", pytrace=False)
    found = subprocess.run(
        [str(python), "-c", "import sys, torch, torchvision; print(sys.version.split()[0], "
                            "torch.__version__, torchvision.__version__)"],
        capture_output=True, text=True, check=True).stdout.split()
    assert found[0].startswith("3.8."), found
    assert found[1].split("+")[0] == "1.12.1" and found[2].split("+")[0] == "0.13.1", found
    return python


@pytest.fixture(scope="session")
def one_host_job(compat_python, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The tiny training job on one host, in the compat venv: its /opt/ml tree and its run.
    Its loader has a worker process, where the default boxes are matched."""
    from tests.compat.support import environment
    from tests.training.jobs import make_job, run_job

    root = make_job(tmp_path_factory.mktemp("compat-one-host"), num_workers="1")
    result = run_job(root, env=environment(), command=[str(compat_python), "-m",
                                                       "algorithm.train"])
    return root, result
