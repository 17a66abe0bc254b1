"""The shape of detectctl/: no import cycles (counting imports inside functions), leaf helpers
that import nothing of ours, backend-neutral modules that name no backend, and a CLI that holds
no backend logic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "detectctl"

# General helpers: each imports nothing of detectctl's but its errors.
LEAVES = ("errors", "s3uri", "formats", "durations", "keyvalues", "names", "detections",
          "artifacts", "display", "pretrained")
# Modules every backend shares: they must not import a backend's modules.
NEUTRAL = ("backend", "training", "jobs", "endpoints", "logs", "progress", "drawing", "models",
           "scoring", "transforms", "resources", "presets",
           "hyperparameters", "formats", "detections", "names", "durations", "keyvalues",
           "s3uri", "costs", "instances", "evaluation")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for child in ast.walk(inner):
                    skipped.add(id(child))
    return skipped


def imports(module: str) -> set[str]:
    """The detectctl modules ``module`` names in its imports, at its top or inside its
    functions (not under TYPE_CHECKING): ``from a import b`` names ``a.b`` when that is a
    module, else ``a``. The root package (which imports nothing) is left out."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = _type_checking_blocks(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES
                     else node.module for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES and name != "detectctl")
    found.discard(module)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count():
    # detectctl.session imports the backends inside a function.
    assert "detectctl.local.backend" in GRAPH["detectctl.session"]


def test_no_import_cycles_in_detectctl():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("leaf", LEAVES)
def test_general_helpers_are_leaves(leaf):
    assert GRAPH[f"detectctl.{leaf}"] <= {"detectctl.errors"}, GRAPH[f"detectctl.{leaf}"]


@pytest.mark.parametrize("module", NEUTRAL)
def test_backend_neutral_modules_name_no_backend(module):
    backends = {m for m in GRAPH[f"detectctl.{module}"]
                if m.startswith(("detectctl.sagemaker", "detectctl.local", "detectctl.aws"))}
    assert backends == set()


def test_only_the_sagemaker_backend_and_the_session_reach_aws():
    reach = {m for m, targets in GRAPH.items()
             if any(t.startswith("detectctl.aws") for t in targets)}
    assert {m for m in reach if not m.startswith(("detectctl.aws", "detectctl.sagemaker"))} == {
        "detectctl.session"}


def test_cli_commands_hold_no_backend_logic():
    """Commands go through the session; none imports a backend's modules but the two AWS-only
    commands (doctor and dataset upload), which are SageMaker features by nature."""
    aws_only = {"detectctl.cli.doctor", "detectctl.cli.upload"}
    for module, targets in GRAPH.items():
        if module.startswith("detectctl.cli") and module not in aws_only:
            assert not {t for t in targets if t.startswith(("detectctl.sagemaker",
                                                            "detectctl.local",
                                                            "detectctl.aws"))}, module


def test_one_definition_of_the_data_formats():
    """The format names are spelled in detectctl.formats only (and equal the data plane's)."""
    from algorithm.data.sources import FORMATS
    from detectctl import formats

    assert formats.TRAINING_FORMATS == FORMATS
    for module, path in MODULES.items():
        if module == "detectctl.formats":
            continue
        text = path.read_text(encoding="utf-8")
        assert '"sagemaker-json"' not in text and "'sagemaker-json'" not in text, module
