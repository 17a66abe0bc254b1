"""Build a training container's /opt/ml tree under a temporary directory and run the job in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from detectctl.datasets.synth import synth

ROOT = Path(__file__).resolve().parents[2]

TINY = {"num_classes": "3", "base_network": "mobilenet-v3-large", "use_pretrained_model": "0",
        "image_shape": "128", "epochs": "2", "mini_batch_size": "8", "optimizer": "adam",
        "num_workers": "0", "seed": "1"}


def make_job(root: Path, fmt: str = "recordio", images: int = 16, validation: bool = True,
             **hyperparameters: str) -> Path:
    """A container tree with synthetic data in ``fmt`` and the TINY hyperparameters."""
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({**TINY, **hyperparameters}))
    channels = {"train": (images, 1)}
    if validation:
        channels["validation"] = (max(4, images // 2), 2)
    content_types = {}
    for name, (count, seed) in channels.items():
        _write_channel(root / "input" / "data", name, fmt, count, seed)
        content_types[name] = {"recordio": "application/x-recordio",
                               "sagemaker-json": "application/x-image",
                               "manifest": None}[fmt]
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"TrainingInputMode": "File", **({"ContentType": ct} if ct else {})}
        for name, ct in content_types.items()}))
    return root


def _write_channel(data: Path, name: str, fmt: str, count: int, seed: int) -> None:
    channel = data / name
    work = data / f".{name}-work"
    if fmt == "recordio":
        channel.mkdir(parents=True)
        synth(str(channel / "data"), images=count, classes=3, seed=seed, format="recordio",
              image_size=(96, 72))
    elif fmt == "sagemaker-json":
        synth(str(work), images=count, classes=3, seed=seed, format="sagemaker-json",
              image_size=(96, 72))
        shutil.move(str(work / "images"), str(channel))
        shutil.move(str(work / "annotations"), str(data / f"{name}_annotation"))
        shutil.move(str(work / "classes.json"), str(channel / "classes.json"))
        shutil.rmtree(work)
    else:
        channel.mkdir(parents=True)
        synth(str(channel / name), images=count, classes=3, seed=seed, format="manifest",
              image_size=(96, 72))


def run_job(root: Path, timeout: float = 300, env: dict | None = None,
            wait: bool = True, command: list | None = None
            ) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run ``python -m algorithm.train`` (or ``command``) with its /opt/ml at ``root``."""
    environ = {**os.environ, "DETECTCTL_OPT_ML": str(root), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(ROOT), **(env or {})}
    command = command or [sys.executable, "-m", "algorithm.train"]
    if not wait:
        return subprocess.Popen(command, env=environ, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=environ, capture_output=True, text=True,
                          timeout=timeout)


def add_channel(root: Path, name: str, files: dict, **config: str) -> Path:
    """Add a channel holding ``files`` (name -> bytes) and list it in inputdataconfig.json."""
    channel = root / "input" / "data" / name
    channel.mkdir(parents=True)
    for filename, data in files.items():
        (channel / filename).write_bytes(data)
    path = root / "input" / "config" / "inputdataconfig.json"
    listed = json.loads(path.read_text())
    listed[name] = {"TrainingInputMode": "File", **config}
    path.write_text(json.dumps(listed))
    return channel
