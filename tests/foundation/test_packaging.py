"""Import discipline: the control plane works without torch, `--help` loads neither boto3 nor
torch, and algorithm/ stays within what SageMaker's oldest framework image (Python 3.8) runs."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs the CLI in a fresh interpreter in which torch cannot be imported, then reports which
# heavy modules were loaded.
PROBE = r"""
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError("torch is not installed (blocked by the test)")
        return None
sys.meta_path.insert(0, _NoTorch())
from detectctl.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in ("boto3", "botocore", "torch", "pydantic", "numpy", "PIL", "rich")
                if m in sys.modules)
sys.stderr.write("LOADED=" + ",".join(loaded) + "\n")
sys.exit(code)
"""


def _probe(*args):
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    loaded = result.stderr.strip().splitlines()[-1]
    assert loaded.startswith("LOADED="), result.stderr
    return result, set(filter(None, loaded[len("LOADED="):].split(",")))


def test_help_imports_neither_boto3_nor_torch_nor_pydantic():
    result, loaded = _probe("--help")
    assert result.returncode == 0
    assert loaded.isdisjoint({"boto3", "botocore", "torch", "pydantic", "rich", "numpy"}), loaded


@pytest.mark.parametrize("args", [["hyperparameters"], ["hyperparameters", "--json"],
                                  ["instances"], ["instances", "--json"]])
def test_control_plane_commands_work_without_torch(args):
    result, loaded = _probe(*args)
    assert result.returncode == 0, result.stderr
    assert "torch" not in loaded and "boto3" not in loaded
    assert result.stdout.strip()


def _algorithm_files():
    return sorted((ROOT / "algorithm").rglob("*.py"))


@pytest.mark.parametrize("path", _algorithm_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_algorithm_is_python38_syntax(path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 8))


def _python38():
    pyenv = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.8.*/bin/python3.8")) if pyenv.is_dir() else []
    if candidates:
        return str(candidates[-1])
    found = shutil.which("python3.8")
    return found if found and "shims" not in found else None


def test_algorithm_schema_runs_on_python38():
    python38 = _python38()
    if python38 is None:
        pytest.skip("no Python 3.8 interpreter on this machine")
    code = ("import sys; sys.path.insert(0, '.');"
            "from algorithm.hyperparameters import Hyperparameters as H;"
            "h = H.from_sagemaker({'num_classes': '3', 'lr_scheduler_step': '2,4'});"
            "print(h.to_sagemaker()['lr_scheduler_step'])")
    result = subprocess.run([python38, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "2,4\n"


def test_algorithm_imports_only_what_the_containers_have():
    allowed = {"numpy", "PIL", "torch", "torchvision", "algorithm"} | set(sys.stdlib_module_names)
    for path in _algorithm_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path}: imports {name}"


def test_detectctl_never_imports_torch():
    for path in sorted((ROOT / "detectctl").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("torch", "torchvision"), f"{path}: {name}"


@pytest.mark.slow
def test_plain_install_gives_a_working_cli_without_torch(tmp_path):
    """`pip install .` (no extras) in a fresh virtual environment: the CLI runs, torch absent."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = venv / "bin" / "pip"
    subprocess.run([str(pip), "install", "-q", str(ROOT)], check=True, timeout=900)
    cli = venv / "bin" / "detectctl"
    for args in (["--help"], ["hyperparameters"], ["instances"]):
        result = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"],
                           capture_output=True)
    assert check.returncode != 0
