"""Every file under tests/benchmarks/results/ is what its script writes (issue 17).

Benchmark scripts declare the files they write (``RESULT_FILES``) and the keys of their JSON
report (``RESULT_KEYS``) as literals (which may name other module-level literals), and write
through tests/benchmarks/result_files.py, which stamps the command, date and machine and refuses
a report that differs from RESULT_KEYS. These tests read the declarations from the scripts'
source (nothing is imported or run but cli_startup.py against a stand-in CLI) and check every
result file against its script's.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks import result_files
from tests.benchmarks.result_files import problems, with_stamp

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "tests" / "benchmarks"
RESULTS = BENCHMARKS / "results"
DECLARED = ("RESULT_FILES", "RESULT_KEYS")


def _tree(script: Path) -> ast.Module:
    return ast.parse(script.read_text(), str(script))


def _literal(node: ast.expr, names: dict):
    """A literal, where a name stands for a module-level literal assigned before it."""
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(f"line {node.lineno}: {node.id} is not a literal assigned above")
        return names[node.id]
    if isinstance(node, ast.Dict):
        return {_literal(key, names): _literal(value, names)  # type: ignore[arg-type]
                for key, value in zip(node.keys, node.values)}
    if isinstance(node, ast.List):
        return [_literal(item, names) for item in node.elts]
    return ast.literal_eval(node)


def _declarations(script: Path) -> dict:
    """The script's module-level RESULT_FILES and RESULT_KEYS literals (RESULT_KEYS may name
    other module-level literals, such as one shape used in several places)."""
    names: dict = {}
    for node in _tree(script).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                names[node.targets[0].id] = _literal(node.value, names)
            except (ValueError, TypeError):
                if node.targets[0].id in DECLARED:
                    raise
    return {name: names[name] for name in DECLARED if name in names}


SCRIPTS = {path.name: _declarations(path) for path in sorted(BENCHMARKS.glob("*.py"))}
WRITERS = {name: found for name, found in SCRIPTS.items() if "RESULT_FILES" in found}
RESULT_PATHS = sorted(p for p in RESULTS.iterdir() if p.is_file() and not p.name.endswith(".tmp"))


def _claims(path: Path) -> list[str]:
    return [name for name, found in WRITERS.items()
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in found["RESULT_FILES"])]


def _script_of(path: Path) -> str:
    claims = _claims(path)
    if len(claims) != 1:
        pytest.fail(f"results/{path.name} is claimed by {claims or 'no script'}")
    return claims[0]


def _calls(tree: ast.Module):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _is(function: ast.expr, owner: str, name: str) -> bool:
    return isinstance(function, ast.Attribute) and function.attr == name and \
        isinstance(function.value, ast.Name) and function.value.id == owner


# --- the scripts --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_writer_declares_valid_keys_and_writes_through_result_files(name):
    keys = WRITERS[name].get("RESULT_KEYS")
    assert isinstance(keys, dict), f"{name} declares RESULT_FILES but no RESULT_KEYS dict"
    with_stamp(keys)  # a valid shape that leaves the stamp to write()
    writes = [call for call in _calls(_tree(BENCHMARKS / name))
              if _is(call.func, "result_files", "write")]
    assert writes, f"{name} never calls result_files.write"
    for call in writes:
        assert any(isinstance(arg, ast.Name) and arg.id == "RESULT_KEYS" for arg in call.args), \
            f"{name}:{call.lineno}: result_files.write without RESULT_KEYS"


# --- the result files ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", RESULT_PATHS, ids=lambda p: p.name)
def test_every_result_file_has_exactly_one_script(path):
    assert len(_claims(path)) == 1, (
        f"results/{path.name} is claimed by {_claims(path) or 'no script'}: a result file is "
        "written by one script, which names it in RESULT_FILES")


JSON_PATHS = [p for p in RESULT_PATHS if p.suffix == ".json"]


@pytest.mark.parametrize("path", JSON_PATHS, ids=lambda p: p.name)
def test_a_result_file_holds_what_its_script_writes(path):
    name = _script_of(path)
    report = json.loads(path.read_text())
    found = problems(report, with_stamp(WRITERS[name]["RESULT_KEYS"]))
    command = report.get("command")
    if isinstance(command, str) and not command.startswith(f"python tests/benchmarks/{name}"):
        found.append(f"$.command: {command!r} is not a run of tests/benchmarks/{name}")
    rerun = command if isinstance(command, str) else (
        f"python tests/benchmarks/{name} (its options: the script's docstring and docs/)")
    assert not found, (
        f"results/{path.name} is not what tests/benchmarks/{name} writes (edited by hand, or "
        f"left by an older version of the script); regenerate it with: {rerun}\n"
        + "\n".join(found[:12]) + (f"\n... and {len(found) - 12} more" if len(found) > 12
                                    else ""))


@pytest.mark.parametrize("path", JSON_PATHS, ids=lambda p: p.name)
def test_the_check_catches_a_hand_edit(path):
    """Not vacuous: an added key, or any top-level key taken away, is reported."""
    name = _script_of(path)
    keys = with_stamp(WRITERS[name]["RESULT_KEYS"])
    report = json.loads(path.read_text())
    assert problems({**report, "added_by_hand": 1}, keys)
    assert problems({**report, "machine": {**report.get("machine", {}), "added": 1}}, keys)
    for key in [k for k in keys if not k.endswith("?")]:
        edited = copy.deepcopy(report)
        edited.pop(key, None)
        assert problems(edited, keys), key


def test_keys_may_name_a_literal_assigned_above_and_nothing_else(tmp_path):
    script = tmp_path / "figures.py"
    script.write_text("ROOT = object()\nROW = {'x': 'number'}\n"
                      "RESULT_KEYS = {'first': ROW, 'rest': [ROW]}\n")
    assert _declarations(script) == {"RESULT_KEYS": {"first": {"x": "number"},
                                                     "rest": [{"x": "number"}]}}
    script.write_text("RESULT_KEYS = {'first': ROW}\nROW = {'x': 'number'}\n")
    with pytest.raises(ValueError, match="ROW is not a literal assigned above"):
        _declarations(script)
    script.write_text("ROOT = object()\nRESULT_KEYS = {'root': ROOT}\n")
    with pytest.raises(ValueError, match="ROOT is not a literal assigned above"):
        _declarations(script)


# --- result_files itself ------------------------------------------------------------------------

SHAPE = {"name": "str", "size?": "int", "score": "number|null", "tags": {"*": "bool"},
         "rows": [{"x": "number"}]}
GOOD = {"name": "a", "score": None, "tags": {"fast": True}, "rows": [{"x": 1}, {"x": 2.5}]}


def test_problems_finds_every_difference():
    assert problems(GOOD, SHAPE) == []
    assert problems({**GOOD, "size": 3}, SHAPE) == []
    assert problems({**GOOD, "extra": 1}, SHAPE) == [
        "$: key 'extra', which its script never writes"]
    assert problems({k: v for k, v in GOOD.items() if k != "name"}, SHAPE) == [
        "$: missing key 'name'"]
    assert problems({**GOOD, "score": "high", "size": 2.5}, SHAPE) == [
        '$.score: "high" is not number|null', "$.size: 2.5 is not int"]
    assert problems({**GOOD, "tags": {"fast": 1}, "rows": [{"x": 1}, {"y": 2}]}, SHAPE) == [
        "$.tags.fast: 1 is not bool", "$.rows[1]: missing key 'x'",
        "$.rows[1]: key 'y', which its script never writes"]
    assert problems({**GOOD, "size": True}, SHAPE) == ["$.size: true is not int"]
    assert problems([], SHAPE) == ["$: list where an object is expected"]


@pytest.mark.parametrize("shape", [{"a": "string"}, {"a": ["int", "str"]}, {"a": 3},
                                   {"command": "str"}, {"*": "any"}])
def test_a_bad_declaration_is_refused(shape):
    with pytest.raises(ValueError):
        with_stamp(shape)


def test_write_stamps_checks_and_replaces(tmp_path):
    path = tmp_path / "figures.json"
    written = result_files.write(path, dict(GOOD), SHAPE)
    assert json.loads(path.read_text()) == written
    assert list(written)[:3] == ["command", "date", "machine"]
    assert problems(written, with_stamp(SHAPE)) == []
    with pytest.raises(ValueError, match="key 'extra'"):
        result_files.write(path, {**GOOD, "extra": 1}, SHAPE)
    with pytest.raises(ValueError, match="write\\(\\) adds them"):
        result_files.write(path, {**GOOD, "command": "python elsewhere"}, SHAPE)
    assert json.loads(path.read_text()) == written  # a refused report leaves the file alone
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]


# --- cli_startup.py: a failing command fails the benchmark ---------------------------------------

def _stand_in_cli(tmp_path: Path, failing: str = "") -> Path:
    """A detectctl stand-in that answers at once, and fails when its first word is
    ``failing``."""
    cli = tmp_path / "detectctl"
    cli.write_text("\n".join([
        f"#!{sys.executable}",
        "import sys",
        f"if sys.argv[1:2] == [{failing!r}]:",
        f"    sys.exit({f'Error: No such command {failing!r}.'!r})",
        ""]))
    cli.chmod(0o755)
    return cli


def _cli_startup(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "cli_startup.py"), "--runs", "1",
                           *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_startup_fails_when_a_measured_command_fails(tmp_path):
    output = tmp_path / "cli_startup.json"
    done = _cli_startup("--cli", str(_stand_in_cli(tmp_path, failing="logs")), "--json",
                        str(output))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"`{tmp_path / 'detectctl'} logs --help` failed (exit 1)" in done.stderr
    assert "Error: No such command 'logs'." in done.stderr
    assert not output.exists()


def test_cli_startup_writes_what_it_declares(tmp_path):
    output = tmp_path / "cli_startup.json"
    done = _cli_startup("--cli", str(_stand_in_cli(tmp_path)), "--json", str(output))
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 1: the goal missed
    report = json.loads(output.read_text())
    assert problems(report, with_stamp(WRITERS["cli_startup.py"]["RESULT_KEYS"])) == []
    assert report["command"].startswith("python tests/benchmarks/cli_startup.py --runs 1 --cli")
    assert [row["command"] for row in report["results"]] == [
        "import boto3", "detectctl --help", "detectctl train --help", "detectctl logs --help"]
