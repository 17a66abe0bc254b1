"""Hyperparameters on the client: a pydantic model derived from ``algorithm.hyperparameters``.

The fields, types, defaults, bounds and meanings come from the dataclass schema that the
training container uses; this module adds no field of its own. Values are checked by the
schema's own parser (so a value accepted here is accepted in the job, and vice versa); pydantic
contributes error objects, JSON Schema and editor support.

    >>> from detectctl.hyperparameters import Hyperparameters
    >>> hp = Hyperparameters(num_classes=20, image_shape="512", lr_scheduler_step="80,160")
    >>> hp.to_sagemaker()["image_shape"]
    '512'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import PydanticCustomError

from algorithm import hyperparameters as schema
from algorithm.data.fields import shown
from detectctl.errors import HyperparameterValidationError, UsageError

__all__ = ["Hyperparameters", "load_file", "problem_lines", "validate"]

_PYTHON_TYPES: dict[str, Any] = {
    "int": int, "float": float, "bool": bool, "regex": str, "epochs": tuple[int, ...],
}


def _annotation(rule: schema.Rule) -> Any:
    if rule.kind == "choice":
        annotation: Any = Literal[tuple(rule.choices)]  # type: ignore[valid-type]
    else:
        annotation = _PYTHON_TYPES[rule.kind]
    return Optional[annotation] if rule.optional else annotation


def _field(info: schema.FieldInfo) -> Any:
    rule = info.rule
    bounds: dict[str, float] = {}
    if rule.kind in ("int", "float") and rule.minimum is not None:
        bounds["gt" if rule.exclusive_minimum else "ge"] = rule.minimum
    if rule.kind in ("int", "float") and rule.maximum is not None:
        bounds["lt" if rule.exclusive_maximum else "le"] = rule.maximum
    extra = {"x-builtin": rule.builtin, "x-allowed": rule.allowed()}
    default = ... if info.required else info.default
    return Field(default, description=rule.help, json_schema_extra=extra, **bounds)


class _SchemaChecked(BaseModel):
    """Runs the algorithm schema's parser before pydantic sees the values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _check_with_schema(cls, data: Any, handler: Any) -> Any:
        if isinstance(data, BaseModel):
            data = data.model_dump()
        if not isinstance(data, Mapping):
            return handler(data)
        known = set(cls.model_fields)
        errors = []
        for name, value in data.items():
            if name in known:
                continue
            if name.startswith(schema.RESERVED_PREFIX):
                message = "names starting with 'sagemaker_' are reserved for SageMaker"
            else:
                message = schema.unknown_name_message(name)
            errors.append(_error(name, value, message))
        parsed, problems = schema.parse_fields({k: v for k, v in data.items() if k in known})
        for problem in problems:
            value = data if problem.value is schema.MISSING else problem.value
            errors.append(_error(problem.name, value, problem.message))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return handler(parsed)

    def to_sagemaker(self) -> dict[str, str]:
        """The string map for CreateTrainingJob (unset values left out)."""
        return {name: schema.format_value(value) for name, value in self.model_dump().items()
                if value is not None}

    def to_schema(self) -> schema.Hyperparameters:
        """The same values as the container-side dataclass."""
        return schema.Hyperparameters(**self.model_dump())


def _error(name: str, value: Any, message: str) -> Any:
    return {
        "type": PydanticCustomError("hyperparameter", "{message}", {"message": message}),
        "loc": (name,),
        "input": value,
    }


Hyperparameters: type[_SchemaChecked] = create_model(  # type: ignore[call-overload]
    "Hyperparameters",
    __base__=_SchemaChecked,
    __doc__="Hyperparameters of a detectctl SSD training job (derived from algorithm/).",
    **{info.name: (_annotation(info.rule), _field(info)) for info in schema.schema()},
)


def problem_lines(error: ValidationError) -> list[str]:
    """One line per problem: ``name='value': what is allowed``."""
    lines = []
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "hyperparameters"
        value = item.get("input")
        if item["type"] == "hyperparameter" and isinstance(value, Mapping):
            lines.append(f"{name}: {item['msg']}")
        else:
            lines.append(f"{name}={shown(value)}: {item['msg']}")
    return lines


def validate(values: Mapping[str, Any], *, source: str | None = None) -> _SchemaChecked:
    """Validate a map of hyperparameters; raise ``HyperparameterValidationError`` listing all."""
    try:
        return Hyperparameters.model_validate(dict(values))
    except ValidationError as exc:
        raise HyperparameterValidationError(problem_lines(exc), source=source) from None


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML map of hyperparameters (names to values).

    Anything that is not such a map (binary data, nesting deeper than Python recurses, numbers
    of more than 4300 digits, NaN in JSON, names that are not strings) is a ``UsageError``
    naming the file."""

    from algorithm.data.fields import FormatError, JSONError, decode_text, parse_json

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = decode_text(raw, str(path))
        data = parse_json(text, str(path)) if path.suffix == ".json" else _yaml(text, path)
    except JSONError as exc:
        where = f" (line {exc.line}, column {exc.column})" if exc.line else \
            exc.message.replace("malformed JSON", "")
        raise UsageError(f"{path}: not valid JSON{where}") from None
    except FormatError as exc:
        raise UsageError(str(exc)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: expected a map of hyperparameter names to values, got {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise UsageError(f"{path}: hyperparameter names are text, got {shown(key)}")
    return dict(data)


# A hyperparameter file is a flat map; PyYAML takes time quadratic in the depth of flow
# collections ("[[[[..."), minutes for a few kilobytes, so deeper nesting is refused unread.
MAX_YAML_DEPTH = 32
_YAML_FLOW = re.compile(r"""[\[\]{}]|"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|#[^\n]*""")


def _flow_depth(text: str) -> int:
    depth = deepest = 0
    for match in _YAML_FLOW.finditer(text):
        token = match.group(0)
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth = max(0, depth - 1)
    return deepest


def _yaml(text: str, path: Path) -> Any:
    import yaml

    from algorithm.data.fields import FormatError

    if _flow_depth(text) > MAX_YAML_DEPTH:
        raise FormatError(str(path), "", f"not valid YAML: nested more than {MAX_YAML_DEPTH} "
                                         "levels deep (a map of names to values is one level)")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise FormatError(str(path), "", f"not valid YAML{where}") from None
    except (RecursionError, ValueError) as exc:  # nesting past the stack; a 4300-digit int
        reason = "nested too deeply" if isinstance(exc, RecursionError) else \
            "a number of more than 4300 digits"
        raise FormatError(str(path), "", f"not valid YAML: {reason}") from None
