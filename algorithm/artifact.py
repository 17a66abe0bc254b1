"""The model artifact: what a training job leaves in ``/opt/ml/model`` and an endpoint loads.

Layout (SageMaker tars the directory into ``model.tar.gz``)::

    model.pt                 the SSD's state dict (tensors only: torch.load(weights_only=True))
    hyperparameters.json     the job's hyperparameters, SageMaker's string map
    classes.json             {"classes": ["name of class 0", ...]}
    metrics.json             how the job ended: {"epochs": N, "final": {metric: last value},
                             "best_validation_mAP": x or null} (metric names as the job's
                             metric lines; artifacts from before it have none)
    code/inference.py        the SageMaker PyTorch serving handlers (model_fn, input_fn, ...)
    code/algorithm/          the package those handlers import

so the archive deploys as it is on SageMaker's PyTorch inference images, and on images built
on ``algorithm/serve.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from algorithm import checkpoints
from algorithm.hyperparameters import Hyperparameters
from algorithm.package import package_files
from algorithm.ssd import SSD, build_ssd

WEIGHTS = "model.pt"
HYPERPARAMETERS = "hyperparameters.json"
CLASSES = "classes.json"
METRICS = "metrics.json"
CODE = "code"
ARCHIVE = "model.tar.gz"

# The serving toolkit imports code/inference.py; it forwards to the packaged handlers.
_HANDLERS = '''"""SageMaker PyTorch serving handlers of a detectctl SSD (algorithm/inference.py)."""

from algorithm.inference import (  # noqa: F401
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)
'''


class ArtifactError(ValueError):
    """A model artifact is missing a file or does not fit what it is used for."""


def save(model_dir: Path, model: SSD, hyperparameters: Dict[str, str],
         classes: Optional[List[str]], metrics: Optional[Dict[str, Any]] = None) -> None:
    """Write the artifact into ``model_dir`` (weights, hyperparameters, classes, the job's
    metrics, code)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    partial = model_dir / (WEIGHTS + ".partial")
    torch.save(state, partial)
    os.replace(partial, model_dir / WEIGHTS)
    (model_dir / HYPERPARAMETERS).write_text(json.dumps(hyperparameters, indent=2) + "\n")
    names = list(classes) if classes else [str(i) for i in range(model.num_classes)]
    (model_dir / CLASSES).write_text(json.dumps({"classes": names}, indent=2) + "\n")
    if metrics is not None:
        (model_dir / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    code = model_dir / CODE
    if code.exists():
        shutil.rmtree(code)
    copy_package(Path(__file__).resolve().parent, code / "algorithm")
    (code / "inference.py").write_text(_HANDLERS)


def copy_package(package: Path, destination: Path) -> None:
    """The package's sources as an artifact carries them (``algorithm/package.py``: no caches,
    compiled files, hidden files or folders, or lint settings)."""
    for path in package_files(package):
        target = destination / path.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def load(location: Path, device: Optional[torch.device] = None
         ) -> Tuple[SSD, Hyperparameters, List[str]]:
    """The model, its hyperparameters and class names from an artifact directory or a
    ``model.tar.gz`` (or a directory holding one, as a training job's ``model`` channel does)."""
    location = Path(location)
    if location.is_dir() and not (location / WEIGHTS).exists() and (location / ARCHIVE).exists():
        location = location / ARCHIVE
    if location.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            _extract(location, Path(tmp))
            return load(Path(tmp), device)
    for name in (WEIGHTS, HYPERPARAMETERS):
        if not (location / name).is_file():
            raise ArtifactError(f"{location}: no {name}; is this a detectctl model artifact?")
    hp = Hyperparameters.from_sagemaker(json.loads((location / HYPERPARAMETERS).read_text()))
    model = build_ssd(hp.base_network, hp.num_classes, hp.image_shape)
    model.load_state_dict(checkpoints.load_file(location / WEIGHTS))
    if device is not None:
        model.to(device)
    classes = [str(i) for i in range(hp.num_classes)]
    if (location / CLASSES).is_file():
        classes = list(json.loads((location / CLASSES).read_text())["classes"])
    return model, hp, classes


def _extract(archive: Path, target: Path) -> None:
    """Extract the files the model needs, refusing members that would land outside ``target``."""
    with tarfile.open(archive, "r:*") as tar:
        wanted = [m for m in tar.getmembers()
                  if m.isfile() and m.name.lstrip("./") in (WEIGHTS, HYPERPARAMETERS, CLASSES)]
        for member in wanted:
            source = tar.extractfile(member)
            if source is None:
                continue
            with source, open(target / Path(member.name).name, "wb") as out:
                shutil.copyfileobj(source, out)
