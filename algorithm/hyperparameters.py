"""The hyperparameter schema: the one source of truth for every training job.

``Hyperparameters`` is a standard-library dataclass because it runs inside training containers
that may lack pydantic. Each field carries a :class:`Rule` in its metadata (type, bounds, allowed
values, meaning); ``detectctl.hyperparameters`` derives its pydantic model from these fields, so
there is no second field list.

Names, types, defaults, allowed values and meanings follow SageMaker's built-in Object Detection
algorithm. Fields marked ``builtin=False`` are detectctl's own additions; their defaults keep the
built-in behaviour. Differences are listed in ``docs/hyperparameters.md``.

SageMaker hands hyperparameters to the container as a map of strings, some of them JSON-encoded
(``'"vgg-16"'``). :meth:`Hyperparameters.from_sagemaker` accepts that map (and native Python
values), ignores the ``sagemaker_*`` names the framework adds, and reports every problem at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from algorithm.data.fields import shown

BASE_NETWORKS = ("vgg-16", "resnet-50", "mobilenet-v3-large")
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adadelta")
KV_STORES = ("dist_sync", "dist_async")

# The smallest input each base network accepts. The built-in algorithm's floor is 300;
# mobilenet-v3-large (ours) is built for small, cheap CPU inputs and goes lower.
MIN_IMAGE_SHAPE = {"vgg-16": 300, "resnet-50": 300, "mobilenet-v3-large": 128}

# Names the SageMaker frameworks add to every job's hyperparameters (sagemaker_program, ...).
RESERVED_PREFIX = "sagemaker_"

# Integers beyond a signed 32-bit int are no sensible setting of anything here (and a 400-digit
# number must not reach torch as a tensor size).
MAX_INT = 2**31 - 1

# One detection label is [class, xmin, ymin, xmax, ymax]; the label header is 2 wide.
LABEL_HEADER_WIDTH = 2
LABEL_OBJECT_WIDTH = 5


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

_TRUE = ("true", "1")
_FALSE = ("false", "0")


@dataclass(frozen=True)
class Rule:
    """How one hyperparameter is parsed and checked.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``choice``, ``regex``, ``epochs`` (a
    comma-separated, strictly increasing list of positive epoch numbers).
    """

    kind: str
    help: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: Tuple[Any, ...] = ()
    optional: bool = False
    builtin: bool = True
    unset: str = ""

    def allowed(self) -> str:
        """What the rule allows, in words: ``number in (0, 1]``, ``one of: sgd, adam``."""
        if self.kind == "choice":
            text = "one of: " + ", ".join(str(c) for c in self.choices)
        elif self.kind == "bool":
            text = "True or False (also true/false, 1/0)"
        elif self.kind == "regex":
            text = "a regular expression"
        elif self.kind == "epochs":
            text = 'comma-separated increasing epochs, e.g. "80,160" (empty: no steps)'
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            text = noun + _bounds_text(self)
        if self.optional:
            text += " (or empty: " + (self.unset or "not set") + ")"
        return text

    def parse(self, value: Any) -> Any:
        """Return the typed value, or raise ``ValueError`` saying what is allowed."""
        if value is MISSING:
            raise ValueError("is required: " + self.allowed())
        value = _unwrap(value)
        if self.optional and (value is None or (isinstance(value, str) and not value.strip())):
            return None
        if value is None:
            raise ValueError("must be set: " + self.allowed())
        parser = _PARSERS[self.kind]
        try:
            return parser(self, value)
        except ValueError as exc:
            detail = str(exc)
            raise ValueError(detail or ("must be " + self.allowed())) from None


def _bounds_text(rule: Rule) -> str:
    lo, hi = rule.minimum, rule.maximum
    if lo is not None and hi is not None:
        return " in {}{}, {}{}".format(
            "(" if rule.exclusive_minimum else "[", _num(lo), _num(hi),
            ")" if rule.exclusive_maximum else "]",
        )
    if lo is not None:
        return (" > " if rule.exclusive_minimum else " >= ") + _num(lo)
    if hi is not None:
        return (" < " if rule.exclusive_maximum else " <= ") + _num(hi)
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _unwrap(value: Any) -> Any:
    """Decode the JSON-encoded strings SageMaker's SDKs produce (``'"vgg-16"'`` -> ``vgg-16``)."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                decoded = json.loads(text)
            except ValueError:
                return value
            return decoded
    return value


def _check_bounds(rule: Rule, x: float) -> None:
    lo, hi = rule.minimum, rule.maximum
    bad = (
        (lo is not None and (x <= lo if rule.exclusive_minimum else x < lo))
        or (hi is not None and (x >= hi if rule.exclusive_maximum else x > hi))
    )
    if bad:
        raise ValueError("must be " + rule.allowed())


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and len(value) <= 100:
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if re.fullmatch(r"[+-]?\d+\.0*", text):
            return int(float(text))
    raise ValueError("")


def _parse_int(rule: Rule, value: Any) -> int:
    try:
        number = _to_int(value)
    except ValueError:
        raise ValueError("must be " + rule.allowed()) from None
    _check_bounds(rule, number)
    if abs(number) > MAX_INT:
        raise ValueError(f"is too large: {rule.allowed()}, at most {MAX_INT}")
    return number


def _parse_float(rule: Rule, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be " + rule.allowed())
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past a float's range
        raise ValueError("must be " + rule.allowed()) from None
    if not math.isfinite(number):
        raise ValueError("must be " + rule.allowed())
    _check_bounds(rule, number)
    return number


def _parse_bool(rule: Rule, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("must be " + rule.allowed())


def _parse_choice(rule: Rule, value: Any) -> Any:
    if all(isinstance(c, int) for c in rule.choices):
        try:
            number = _to_int(value)
        except ValueError:
            raise ValueError("must be " + rule.allowed()) from None
        if number in rule.choices:
            return number
        raise ValueError("must be " + rule.allowed())
    if isinstance(value, str):
        text = value.strip().lower()
        for choice in rule.choices:
            if text == str(choice).lower():
                return choice
    raise ValueError("must be " + rule.allowed())


def _parse_regex(rule: Rule, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be " + rule.allowed())
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    except (RecursionError, OverflowError, MemoryError) as exc:
        # Deeply nested groups exhaust the parser's stack; huge repeat counts overflow it.
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc) or \
            "too large"
        raise ValueError(f"is not a valid regular expression: {reason}") from None
    return value


def _parse_epochs(rule: Rule, value: Any) -> Tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, str):
        items = [part for part in (p.strip() for p in value.split(",")) if part]
    else:
        raise ValueError("must be " + rule.allowed())
    epochs = []
    for item in items:
        try:
            epoch = _to_int(item)
        except ValueError:
            raise ValueError(f"has {item!r}, not an epoch number: {rule.allowed()}") from None
        if epoch <= 0:
            raise ValueError(f"has {epoch}, but epochs start at 1")
        if epoch > MAX_INT:
            raise ValueError(f"has {shown(epoch)}, more than {MAX_INT}")
        if epochs and epoch <= epochs[-1]:
            raise ValueError(f"must be strictly increasing, got {epoch} after {epochs[-1]}")
        epochs.append(epoch)
    return tuple(epochs)


_PARSERS = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "choice": _parse_choice,
    "regex": _parse_regex,
    "epochs": _parse_epochs,
}


def _hp(rule: Rule, default: Any = MISSING) -> Any:
    if default is MISSING:
        return field(metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


@dataclass(frozen=True)
class Problem:
    """One invalid hyperparameter: its name, the value given, and what is allowed."""

    name: str
    value: Any
    message: str

    def __str__(self) -> str:
        if self.value is MISSING:
            return f"{self.name}: {self.message}"
        return f"{self.name}={shown(self.value)}: {self.message}"


class HyperparameterError(ValueError):
    """Raised with every problem found in a set of hyperparameters."""

    def __init__(self, problems: List[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = "{} invalid hyperparameter{}".format(count, "" if count == 1 else "s")
        super().__init__(head + ": " + "; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Hyperparameters:
    """Every hyperparameter of a detectctl SSD training job, typed and checked.

    Construct it from SageMaker's string map with :meth:`from_sagemaker`, or directly with
    keyword arguments (values are parsed the same way). Invalid values raise
    :class:`HyperparameterError` listing every problem.
    """

    num_classes: int = _hp(Rule(
        "int", "Number of object classes in the data (background not counted).", minimum=1))
    num_training_samples: Optional[int] = _hp(Rule(
        "int", "Number of training images. Optional here; when given, the job checks it against "
               "the data.", minimum=1, optional=True), None)
    base_network: str = _hp(Rule(
        "choice", "Base network: vgg-16 or resnet-50 (the built-in's), or mobilenet-v3-large "
                  "(ours: SSDLite, for cheap CPU endpoints and fast local training).",
        choices=BASE_NETWORKS), "vgg-16")
    use_pretrained_model: int = _hp(Rule(
        "choice", "1: start the base network from ImageNet weights delivered in the `pretrained` "
                  "channel; 0: train from scratch.", choices=(0, 1)), 1)
    epochs: int = _hp(Rule("int", "Number of training epochs.", minimum=1), 30)
    learning_rate: float = _hp(Rule(
        "float", "Initial learning rate.", minimum=0, maximum=1, exclusive_minimum=True), 0.001)
    lr_scheduler_step: Tuple[int, ...] = _hp(Rule(
        "epochs", "Epochs at which the learning rate is multiplied by lr_scheduler_factor, "
                  'e.g. "80,160".'), ())
    lr_scheduler_factor: float = _hp(Rule(
        "float", "Factor applied to the learning rate at each lr_scheduler_step.",
        minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True), 0.1)
    mini_batch_size: int = _hp(Rule(
        "int", "Images per step on one machine, split across its GPUs; with N machines the "
               "global batch is N x mini_batch_size.", minimum=1), 32)
    optimizer: str = _hp(Rule(
        "choice", "Optimizer.", choices=OPTIMIZERS), "sgd")
    momentum: float = _hp(Rule(
        "float", "Momentum for sgd (ignored by the other optimizers).",
        minimum=0, maximum=1, exclusive_minimum=True), 0.9)
    weight_decay: float = _hp(Rule(
        "float", "Weight decay for sgd and rmsprop (ignored by adam and adadelta).",
        minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True), 0.0005)
    image_shape: int = _hp(Rule(
        "int", "Side of the square network input in pixels; images are resized to it. "
               "300 and 512 use the SSD paper's layouts. mobilenet-v3-large accepts >= 128.",
        minimum=min(MIN_IMAGE_SHAPE.values())), 300)
    label_width: int = _hp(Rule(
        "int", "Padded width of one image's label array (RecordIO): 2 header values plus 5 or "
               "6 per object; bounds the objects per image.",
        minimum=LABEL_HEADER_WIDTH + LABEL_OBJECT_WIDTH), 350)
    nms_threshold: float = _hp(Rule(
        "float", "IoU above which non-maximum suppression removes the weaker of two detections "
                 "of one class.", minimum=0, maximum=1, exclusive_minimum=True), 0.45)
    overlap_threshold: float = _hp(Rule(
        "float", "IoU at which a detection counts as a match in validation mAP.",
        minimum=0, maximum=1, exclusive_minimum=True), 0.5)
    freeze_layer_pattern: Optional[str] = _hp(Rule(
        "regex", "Regular expression; base-network parameters whose names match are frozen.",
        optional=True, unset="nothing frozen"), None)
    kv_store: Optional[str] = _hp(Rule(
        "choice", "Multi-machine weight synchronisation: dist_sync (synchronous data parallel); "
                  "dist_async is not offered by torch.distributed and is refused with advice.",
        choices=KV_STORES, optional=True, unset="dist_sync on many machines"), None)
    early_stopping: bool = _hp(Rule(
        "bool", "Stop when validation:mAP stops improving."), False)
    early_stopping_min_epochs: int = _hp(Rule(
        "int", "Epochs always run before early stopping may end the job.", minimum=1), 10)
    early_stopping_patience: int = _hp(Rule(
        "int", "Epochs without enough improvement before the job stops.", minimum=1), 5)
    early_stopping_tolerance: float = _hp(Rule(
        "float", "Relative improvement of validation:mAP over the best so far that counts as "
                 "improvement: (mAP - best) / best > tolerance.", minimum=0, maximum=1), 0.0)
    seed: Optional[int] = _hp(Rule(
        "int", "Random seed for weights, shuffling and augmentation; each process adds its rank.",
        minimum=0, optional=True, builtin=False, unset="a fresh seed, logged"), None)
    amp: bool = _hp(Rule(
        "bool", "Mixed precision on GPUs (bf16 where supported, else fp16 with loss scaling). "
                "Ignored on CPU.", builtin=False), False)
    checkpoint_frequency: int = _hp(Rule(
        "int", "Write a checkpoint every this many epochs (a stopped or interrupted job resumes "
               "from the last one).", minimum=1, builtin=False), 1)
    num_workers: Optional[int] = _hp(Rule(
        "int", "Data loader worker processes per training process.",
        minimum=0, optional=True, builtin=False, unset="chosen from the CPU count"), None)
    max_zoom_out: float = _hp(Rule(
        "float", "Largest zoom-out of the training augmentation (the canvas side over the "
                 "image's), drawn for half the images: objects shrink by up to this factor. 4 as "
                 "in the SSD paper; 1 never zooms out.", minimum=1, maximum=16, builtin=False),
        4.0)

    def __post_init__(self) -> None:
        raw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        parsed, problems = parse_fields(raw)
        if problems:
            raise HyperparameterError(problems)
        for name, value in parsed.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_sagemaker(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """Parse SageMaker's hyperparameter map (string or native values).

        Unknown names are problems (with a did-you-mean); ``sagemaker_*`` names are ignored.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        problems = [
            Problem(name, values[name], unknown_name_message(name))
            for name in values
            if name not in known and not name.startswith(RESERVED_PREFIX)
        ]
        given = {name: values[name] for name in values if name in known}
        given.setdefault("num_classes", MISSING)
        try:
            parsed = cls(**given)
        except HyperparameterError as exc:
            raise HyperparameterError(problems + exc.problems) from None
        if problems:
            raise HyperparameterError(problems)
        return parsed

    def to_sagemaker(self) -> Dict[str, str]:
        """The string map a CreateTrainingJob request carries (unset values left out)."""
        return {name: format_value(value) for name, value in self.to_dict().items()
                if value is not None}

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def format_value(value: Any) -> str:
    """The string SageMaker carries for a typed value (the inverse of parsing)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def parse_fields(raw: Mapping[str, Any]) -> Tuple[Dict[str, Any], List[Problem]]:
    """Parse every field of ``raw`` (all names known) and check the cross-field rules.

    Returns the typed values and the problems, in field order. A value that is out of a
    field's own bounds but breaks a cross-field rule is reported once, with the stricter rule.
    """
    parsed: Dict[str, Any] = {}
    problems: Dict[str, Problem] = {}
    for f in dataclasses.fields(Hyperparameters):
        value = raw.get(f.name, MISSING if f.default is dataclasses.MISSING else f.default)
        try:
            parsed[f.name] = f.metadata["rule"].parse(value)
        except ValueError as exc:
            problems[f.name] = Problem(f.name, value, str(exc))
    network = parsed.get("base_network")
    shape = parsed.get("image_shape")
    if shape is None and "image_shape" in raw:
        try:
            shape = _to_int(_unwrap(raw["image_shape"]))
        except ValueError:
            shape = None
    if network is not None and shape is not None and shape < MIN_IMAGE_SHAPE[network]:
        problems["image_shape"] = Problem(
            "image_shape", raw.get("image_shape"),
            f"must be an integer >= {MIN_IMAGE_SHAPE[network]} for base_network={network}")
    order = [f.name for f in dataclasses.fields(Hyperparameters)]
    return parsed, sorted(problems.values(), key=lambda p: order.index(p.name))


def unknown_name_message(name: str) -> str:
    names = [f.name for f in dataclasses.fields(Hyperparameters)]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"unknown hyperparameter; did you mean {close[0]!r}?"
    return "unknown hyperparameter (see `detectctl hyperparameters` for the list)"


@dataclass(frozen=True)
class FieldInfo:
    """One row of the schema, for tables, docs and the pydantic model."""

    name: str
    rule: Rule
    default: Any
    required: bool


def schema() -> List[FieldInfo]:
    """Every hyperparameter in declaration order."""
    rows = []
    for f in dataclasses.fields(Hyperparameters):
        required = f.default is dataclasses.MISSING
        rows.append(FieldInfo(f.name, f.metadata["rule"], None if required else f.default,
                              required))
    return rows
