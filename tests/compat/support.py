"""The compat lane's interpreter and its warning check.

The lane runs ``algorithm/`` under the oldest training image's stack (Python 3.8, torch 1.12.1,
torchvision 0.13.1; tests/compat/build_venv.sh builds it): pytest itself runs in the project's
environment (detectctl, which makes the test data, needs Python 3.9), and every process of the
job, the handlers and the server runs in that venv, with the repository on its PYTHONPATH.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_VARIABLE = "DETECTCTL_COMPAT_VENV"
DEFAULT_VENV = Path("/tmp/detectctl-compat-venv")

# Python's warning format ("file:line: Category: message"), and torch's C++ one for warnings
# raised where no Python frame takes them ("[W reducer.cpp:1234] Warning: message").
WARNING = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+): (?P<category>\w*Warning): (?P<message>.*)$"
                     r"|\[W [^\]]*\] Warning: (?P<native>.*)$", re.MULTILINE)
# Printed on every step before they were fixed: the lane fails on them wherever they come from.
NAMED = ("__floordiv__", "grad strides do not match bucket view strides")


def venv() -> Path:
    return Path(os.environ.get(VENV_VARIABLE) or DEFAULT_VENV)


def environment(**extra: str) -> dict:
    """The environment of a process in the compat venv: every warning printed, each time."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "always",
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def warnings_in(output: str) -> list[str]:
    """Every warning in a process's output: any Python warning (from algorithm/ or raised by a
    library on its behalf: nothing else runs there) and the two named ones however printed."""
    found = [match.group(0).strip() for match in WARNING.finditer(output)]
    lowered = output.lower()
    found += [f"{name!r} printed" for name in NAMED
              if name.lower() in lowered and not any(name.lower() in w.lower() for w in found)]
    return found


def assert_no_warnings(output: str, who: str = "the process") -> None:
    found = warnings_in(output)
    assert not found, (f"{who} printed {len(found)} warning(s):\n" + "\n".join(found)
                       + f"\n\n--- its output ---\n{output[-6000:]}")
