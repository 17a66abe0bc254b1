"""The error messages detectctl (and the training job) raise, read from the source.

Every call of an error class is found with :mod:`ast` and its message and hint turned into a
pattern: the literal text, and ``<name>`` for what is filled in at run time. String constants
and names assigned once in the enclosing function or module are read through, so
``f"{where}access denied"`` with ``where = f"{operation}: "`` reads
``<operation>: access denied``. :mod:`detectctl.cli.reference` makes docs/reference/errors.md
from it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def error_classes() -> list[type]:
    """detectctl's exception classes, depth first from ``DetectctlError``, in the order
    ``detectctl/errors.py`` defines them."""
    from detectctl import errors

    defined = [value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, errors.DetectctlError)]
    order = {cls: i for i, cls in enumerate(defined)}

    def walk(cls: type) -> Iterator[type]:
        yield cls
        for sub in sorted((c for c in cls.__subclasses__() if c in order), key=order.get):
            yield from walk(sub)

    return list(walk(errors.DetectctlError))


Names = dict[str, ast.expr]


def _pattern(node: ast.expr | None, names: Names | None = None, depth: int = 0) -> str | None:
    """A message expression as a pattern: literal text, ``<name>`` for what is filled in.
    ``names`` are the string constants and one-time assignments in scope, read through."""
    names = names or {}

    def inner(child: ast.expr | None) -> str | None:
        return _pattern(child, names, depth + 1)

    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in names and depth < 8:
        found = inner(names[node.id])
        if found is not None and not re.fullmatch(r"<[^<>]*>", found):
            return found
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else inner(part) or ""
                       for part in node.values)
    if isinstance(node, ast.FormattedValue):
        return inner(node.value) if isinstance(node.value, (ast.JoinedStr, ast.Name)) else (
            f"<{_placeholder(node.value)}>")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = inner(node.left), inner(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.IfExp):
        return inner(node.body) or inner(node.orelse)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "format":
        template = inner(node.func.value)
        if template is not None and not re.fullmatch(r"<[^<>]*>", template):
            return re.sub(r"\{(\w*)[^{}]*\}", lambda m: f"<{m.group(1) or '...'}>", template)
    return f"<{_placeholder(node)}>"


def _placeholder(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _placeholder(node.func)
    if isinstance(node, ast.Subscript):
        return _placeholder(node.value)
    return "..."


def _assigned_once(body: list[ast.stmt]) -> Names:
    """Names assigned exactly once in ``body`` (nested functions and classes left out), with
    what they are assigned."""
    seen: dict[str, list[ast.expr]] = {}
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    seen.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            for target in ast.walk(getattr(node, "target", node)):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    seen.setdefault(target.id, []).extend([node, node])  # not a constant
        stack.extend(ast.iter_child_nodes(node))
    return {name: values[0] for name, values in seen.items() if len(values) == 1}


def _calls(tree: ast.Module) -> Iterator[tuple[ast.Call, Names]]:
    """Every call in a module, with the names in scope where it is made (the module's, then
    those of each enclosing function)."""
    module_names = _assigned_once(tree.body)

    def visit(node: ast.AST, names: Names) -> Iterator[tuple[ast.Call, Names]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = child.args
                parameters = {a.arg for a in (*arguments.posonlyargs, *arguments.args,
                                              *arguments.kwonlyargs, arguments.vararg,
                                              arguments.kwarg) if a is not None}
                inside = {**names, **_assigned_once(child.body)}
                yield from visit(child, {k: v for k, v in inside.items()
                                         if k not in parameters})
            else:
                if isinstance(child, ast.Call):
                    yield child, names
                yield from visit(child, names)

    yield from visit(tree, module_names)


def raised_messages(package: Path | None = None, classes: set[str] | None = None
                    ) -> dict[str, dict[tuple[str, str], list[str]]]:
    """Class name -> {(message pattern, hint pattern): modules that raise it}, read from every
    call of an error class (default: detectctl's) in the package's source; the pattern is empty
    for a message made at run time (passed on from elsewhere, or built by the class from its
    arguments)."""
    package = package or ROOT / "detectctl"
    classes = classes or {cls.__name__ for cls in error_classes()}
    found: dict[str, dict[tuple[str, str], list[str]]] = {}
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package.parent).as_posix()
        for node, names in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if name not in classes:
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            message = _pattern(node.args[0] if node.args else keywords.get("message"),
                               names) or ""
            if re.fullmatch(r"<[^<>]*>", message):
                message = ""  # made elsewhere and passed on, or built by the class
            hint = _pattern(keywords.get("hint"), names) or ""
            modules = found.setdefault(name, {}).setdefault((message, hint), [])
            if module not in modules:
                modules.append(module)
    return found
