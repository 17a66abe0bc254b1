"""Repository-level promises: the README's commands, CI calling them, the layout, docs of every
hyperparameter (the job presets are checked in test_presets.py)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Try it", 1)[1].split("## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)


def test_readme_has_the_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert all(c.startswith("python3 -m venv .venv && ") for c in commands)
    assert commands[1].endswith(".venv/bin/pytest")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = _readme_commands()[1]
    assert test_command in ci


def test_top_level_layout():
    expected = {"pyproject.toml", "detectctl", "algorithm", "templates", "tests", "docs",
                "README.md", ".ci"}
    present = {p.name for p in ROOT.iterdir()
               if not p.name.startswith(".") or p.name == ".ci"}
    present -= {".venv", "build", "dist"}
    present = {p for p in present if not p.endswith(".egg-info")}
    assert present == expected


def test_the_hyperparameter_guide_points_to_the_generated_table_and_keeps_no_copy():
    """Every hyperparameter's row lives in docs/reference/hyperparameters.md (generated from the
    schema; tests/docs/test_reference.py checks it names each one); the guide links it instead
    of keeping a hand copy that would drift."""
    text = (ROOT / "docs" / "hyperparameters.md").read_text(encoding="utf-8")
    assert "(reference/hyperparameters.md)" in text
    generated = (ROOT / "docs" / "reference" / "hyperparameters.md").read_text(encoding="utf-8")
    rows = [line for line in generated.splitlines() if line.startswith("| `")]
    assert rows
    assert [row for row in rows if row in text.splitlines()] == []
