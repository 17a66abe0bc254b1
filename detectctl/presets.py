"""The job presets shipped with detectctl: the built-in algorithm's published VOC07+12
configurations and quick starts, one YAML file each in ``detectctl/data/presets/``.

A preset is a job file as ``detectctl train --config`` reads it (see
:func:`detectctl.training.load_job_file`) plus a one-line ``description``: the instance type and
count, ``max-run`` (which bounds the cost of a SageMaker job) and the hyperparameters.
``detectctl train --preset NAME`` starts from one; ``--config``, then flags and ``--hp``
override it. In a notebook::

    from detectctl import presets
    session.train(train="s3://my-bucket/voc/train/",
                  **presets.get("voc07-vgg16-512-p3.8xlarge").training_options())
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Optional

from detectctl import costs
from detectctl.durations import parse_seconds
from detectctl.errors import UsageError

LOCAL = "local"
# What a preset file holds: a subset of a job file's keys, each required but max-run, which
# only SageMaker presets have (the local backend has no run-time limit and costs nothing).
KEYS = ("description", "instance", "count", "max-run", "hyperparameters")


@dataclass(frozen=True)
class Preset:
    """One shipped job preset; ``max_run_seconds`` is None for a local one."""

    name: str
    description: str
    instance_type: str
    instance_count: int
    max_run_seconds: Optional[int]
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        return self.instance_type == LOCAL

    def cost(self) -> Optional[costs.TrainingCost]:
        """The cost bound ``train`` shows before launching (on-demand price x instances x
        max-run); None for a local preset, which costs nothing."""
        if self.local or self.max_run_seconds is None:
            return None
        return costs.training(self.instance_type, self.instance_count, self.max_run_seconds)

    def job_file(self) -> dict[str, Any]:
        """The preset as a ``--config`` job file holds it (train's option names)."""
        data: dict[str, Any] = {"instance": self.instance_type, "count": self.instance_count,
                                "hyperparameters": dict(self.hyperparameters)}
        if self.max_run_seconds is not None:
            data["max_run"] = self.max_run_seconds
        return data

    def training_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Session.plan`` and ``Session.train`` (add ``train=``, and
        ``validation=`` and any other option)."""
        options: dict[str, Any] = {"instance_type": self.instance_type,
                                   "instance_count": self.instance_count,
                                   "hyperparameters": dict(self.hyperparameters)}
        if self.max_run_seconds is not None:
            options["max_run_seconds"] = self.max_run_seconds
        return options

    def to_dict(self) -> dict[str, Any]:
        cost = self.cost()
        return {
            "name": self.name, "description": self.description,
            "instance_type": self.instance_type, "instance_count": self.instance_count,
            "max_run_seconds": self.max_run_seconds,
            "price_per_hour": cost.price_per_hour if cost else None,
            "cost_per_hour": cost.hourly if cost else None,
            "cost_bound": round(cost.bound, 2) if cost else None,
            "hyperparameters": dict(self.hyperparameters),
        }


def catalog() -> list[Preset]:
    """Every shipped preset, by name."""
    return list(_presets().values())


def names() -> list[str]:
    return list(_presets())


def get(name: str) -> Preset:
    """The preset called ``name``; a ``UsageError`` (exit 2) naming the known ones if none is."""
    found = _presets().get(name)
    if found is None:
        known = list(_presets())
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        raise UsageError(f"unknown preset {name!r}; the presets are {', '.join(known)}",
                         hint=f"did you mean {close[0]}?" if close else None)
    return found


def parse(name: str, text: str) -> Preset:
    """A preset from its YAML text (``name`` is the file's stem); a ``UsageError`` naming the
    file and the key for anything missing or malformed."""
    import yaml

    where = f"preset {name}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UsageError(f"{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a map of {', '.join(KEYS)}")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(KEYS)}")
    instance = _required(data, "instance", str, where)
    local = instance == LOCAL
    if local == ("max-run" in data):
        raise UsageError(f"{where}: max-run is required for a SageMaker instance type, and "
                         "refused for local (no run-time limit, no cost)")
    description = _required(data, "description", str, where).strip()
    if not description or "\n" in description:
        raise UsageError(f"{where}: description must be one line")
    count = _required(data, "count", int, where)
    if isinstance(count, bool) or count < 1:
        raise UsageError(f"{where}: count must be an integer >= 1")
    max_run = data.get("max-run")
    if max_run is not None:
        max_run = parse_seconds(str(max_run), f"{where}: max-run")
    hyperparameters = _required(data, "hyperparameters", dict, where)
    return Preset(name=name, description=description, instance_type=instance,
                  instance_count=count, max_run_seconds=max_run,
                  hyperparameters={str(k): v for k, v in hyperparameters.items()})


def _required(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise UsageError(f"{where}: {key} is required ({kind.__name__})")
    return value


@cache
def _presets() -> dict[str, Preset]:
    folder = resources.files("detectctl").joinpath("data", "presets")
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".yaml")),
                   key=lambda entry: entry.name)
    found = {}
    for entry in files:
        name = entry.name[:-len(".yaml")]
        found[name] = parse(name, entry.read_text(encoding="utf-8"))
    return found
