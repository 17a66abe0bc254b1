"""The one way benchmark scripts write their files under tests/benchmarks/results/.

A script that writes results declares two plain literals at module level:

- ``RESULT_FILES``: the names (glob patterns) of the files it writes under results/;
- ``RESULT_KEYS``: the shape of its JSON report (see :func:`problems`); it may name other
  module-level literals assigned above it, such as one shape used in several places.

It writes its JSON report only through :func:`write`, which adds the exact command, the date and
the machine's facts (:data:`STAMP`), refuses a report whose keys differ from ``RESULT_KEYS``,
and replaces the file atomically. tests/foundation/test_benchmark_results.py reads both literals
from each script's source (nothing is imported or run) and checks every file under results/
against its script's keys: a file edited by hand, or left by an older version of its script,
fails, and the failure names the command that regenerates it.

Shapes: a dict maps each key to the shape of its value; a key ending in ``?`` may be absent;
the key ``*`` stands for any other key (names that depend on the run: hyperparameters, goals).
A list holding one shape is a list whose items all have it. A string names the type of a
value: ``str``, ``int``, ``number`` (int or float), ``bool``, ``null``, ``any``, or several
joined by ``|`` (``number|null``).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "benchmarks" / "results"

# What write() adds to every report.
STAMP = {
    "command": "str",
    "date": "str",
    "machine": {"cpu": "str", "cores": "int", "os": "str", "python": "str",
                "torch?": "str", "torchvision?": "str", "cuda?": "str|null", "gpu?": "str"},
}
TYPES = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "any": lambda v: True,
}


def problems(value: Any, shape: Any, where: str = "$") -> List[str]:
    """Every way ``value`` differs from ``shape`` (empty: it matches), each naming its place."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__} where an object is expected"]
        known = {key.rstrip("?"): item for key, item in shape.items() if key != "*"}
        found = [f"{where}: missing key {key!r}" for key in shape
                 if not key.endswith("?") and key != "*" and key not in value]
        for key, item in value.items():
            if key in known:
                found += problems(item, known[key], f"{where}.{key}")
            elif "*" in shape:
                found += problems(item, shape["*"], f"{where}.{key}")
            else:
                found.append(f"{where}: key {key!r}, which its script never writes")
        return found
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__} where a list is expected"]
        return [p for i, item in enumerate(value) for p in problems(item, shape[0],
                                                                     f"{where}[{i}]")]
    if any(TYPES[name](value) for name in shape.split("|")):
        return []
    return [f"{where}: {json.dumps(value)[:40]} is not {shape}"]


def check_shape(shape: Any, where: str = "$") -> None:
    """Raise ValueError where ``shape`` is not a shape (an unknown type, a list of two)."""
    if isinstance(shape, dict):
        for key, item in shape.items():
            check_shape(item, f"{where}.{key}")
    elif isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError(f"{where}: a list shape holds one item shape, not {len(shape)}")
        check_shape(shape[0], f"{where}[]")
    elif not isinstance(shape, str) or any(name not in TYPES for name in shape.split("|")):
        raise ValueError(f"{where}: {shape!r} is not a shape")


def with_stamp(keys: Dict[str, Any]) -> Dict[str, Any]:
    """A script's RESULT_KEYS with what write() adds."""
    check_shape(keys)
    clash = set(STAMP) & {key.rstrip("?") for key in keys}
    if clash or "*" in keys:
        raise ValueError(f"RESULT_KEYS may not declare {sorted(clash) or '*'}: write() adds "
                         "the stamp, and a report's own keys are named")
    return {**STAMP, **keys}


def command() -> str:
    """This process's command line as run from the repository's root."""
    script = Path(sys.argv[0]).resolve()
    try:
        name = script.relative_to(ROOT).as_posix()
    except ValueError:
        name = sys.argv[0]
    return " ".join(["python", name, *map(shlex.quote, sys.argv[1:])])


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def machine() -> Dict[str, Any]:
    """Where the figures come from: the CPU, the OS, Python, the installed torch and
    torchvision (the jobs a script starts run them too) and, when the script used CUDA, its
    version and the GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: Dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count() or 0,
                             "os": platform.platform(), "python": platform.python_version()}
    for package in ("torch", "torchvision"):
        if package in sys.modules:
            facts[package] = sys.modules[package].__version__
            continue
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            facts[package] = importlib.metadata.version(package)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        facts["cuda"] = torch.version.cuda
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def write(path: Path, report: Dict[str, Any], keys: Dict[str, Any]) -> Dict[str, Any]:
    """Stamp ``report`` (command, date, machine), check it against ``keys`` (the script's
    RESULT_KEYS) and write it to ``path`` atomically; returns what was written."""
    if STAMP.keys() & report.keys():
        raise ValueError(f"the report may not hold {sorted(STAMP.keys() & report.keys())}: "
                         "write() adds them")
    stamped = {"command": command(), "date": now(), "machine": machine(), **report}
    found = problems(stamped, with_stamp(keys))
    if found:
        raise ValueError(f"{path}: the report does not match RESULT_KEYS: " + "; ".join(found))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(stamped, indent=2) + "\n")
    temporary.replace(path)
    return stamped
