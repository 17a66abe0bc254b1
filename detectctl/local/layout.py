"""Each local host's ``/opt/ml`` tree, laid out as SageMaker lays out a training container.

::

    hosts/algo-N/input/config/hyperparameters.json    the hyperparameters given
    hosts/algo-N/input/config/resourceconfig.json     {"current_host", "hosts", ...}
    hosts/algo-N/input/config/inputdataconfig.json    the channels
    hosts/algo-N/input/data/<channel>/                links to the user's files
    hosts/algo-N/checkpoints -> ../../checkpoints      one location for every host, as a job's
                                                      checkpoint S3 URI is

Nothing is copied but an augmented manifest, whose relative ``source-ref`` paths are made
absolute in the copy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from detectctl import formats
from detectctl.errors import UsageError


@dataclass(frozen=True)
class LocalChannel:
    """A dataset given to a local job: its format and where it is."""

    data_format: str
    path: Path


def lay_out(root: Path, host: str, hosts: list[str], hyperparameters: Mapping[str, str],
            channels: Mapping[str, LocalChannel], files: Mapping[str, Path],
            checkpoints: Path) -> None:
    """Create ``root``, one host's tree. ``files`` are single-file channels (``pretrained``,
    ``model``, ``classes``) by channel name."""
    config = root / "input" / "config"
    data = root / "input" / "data"
    config.mkdir(parents=True)
    data.mkdir(parents=True)
    (root / "checkpoints").symlink_to(os.path.relpath(checkpoints, root))
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": host, "hosts": hosts, "network_interface_name": "lo"}))
    listed: dict[str, dict[str, str]] = {}
    for channel, dataset in channels.items():
        listed.update(_link_dataset(data, channel, dataset, files))
    for channel, location in files.items():
        target = data / channel
        if not target.exists():
            target.mkdir()
            name = "classes.json" if channel == "classes" else location.name
            (target / name).symlink_to(location)
        listed[channel] = {"TrainingInputMode": "File"}
    (config / "inputdataconfig.json").write_text(json.dumps(listed, indent=2))


def _link_dataset(data: Path, channel: str, dataset: LocalChannel,
                  files: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    location = dataset.path
    target = data / channel
    if dataset.data_format == formats.SAGEMAKER_JSON:
        images, annotations = (location / "images", location / "annotations") \
            if (location / "annotations").is_dir() else (location, Path(f"{location}_annotation"))
        target.symlink_to(images)
        (data / f"{channel}_annotation").symlink_to(annotations)
        if "classes" not in files and (location / "classes.json").is_file():
            (data / "classes").mkdir(exist_ok=True)
            if not (data / "classes" / "classes.json").exists():
                (data / "classes" / "classes.json").symlink_to(location / "classes.json")
        return {channel: {"ContentType": formats.IMAGE_CONTENT_TYPE, "TrainingInputMode": "File"},
                f"{channel}_annotation": {"ContentType": formats.JSON_CONTENT_TYPE,
                                          "TrainingInputMode": "File"}}
    target.mkdir()
    if location.is_dir():
        for item in location.iterdir():
            (target / item.name).symlink_to(item)
    elif dataset.data_format == formats.RECORDIO:
        for sibling in location.parent.glob(location.stem + ".*"):
            (target / sibling.name).symlink_to(sibling)
    else:
        _absolute_manifest(location, target / location.name)
    beside = location.parent / "classes.json"
    if not location.is_dir() and beside.is_file() and not (target / "classes.json").exists():
        (target / "classes.json").symlink_to(beside)
    if dataset.data_format == formats.RECORDIO:
        return {channel: {"ContentType": formats.RECORDIO_CONTENT_TYPE,
                          "TrainingInputMode": "File"}}
    return {channel: {"TrainingInputMode": "File"}}


def _absolute_manifest(source: Path, target: Path) -> None:
    """A copy of a manifest whose relative ``source-ref`` paths are made absolute."""
    lines = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise UsageError(f"{source}: line {number} is not JSON: {exc}") from None
            if not isinstance(doc, dict):
                raise UsageError(f"{source}: line {number} is not a JSON object")
            ref = str(doc.get("source-ref", ""))
            if ref and "://" not in ref and not os.path.isabs(ref):
                doc["source-ref"] = str(source.parent / ref)
            line = json.dumps(doc)
        lines.append(line)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
