"""Checkpoints: one plain dict, written atomically so a kill never leaves a torn file.

A checkpoint holds ``model``, ``optimizer``, ``scheduler`` and ``scaler`` state dicts, the
``epoch`` completed, ``early_stopping`` state, the ``best_map`` and the ``hyperparameters``
string map. SageMaker syncs ``/opt/ml/checkpoints`` to S3 and restores it when a managed spot job
restarts, so a job that finds a checkpoint there resumes from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional

import torch

FILENAME = "checkpoint.pt"


def save(directory: Path, state: Dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt`` atomically (write, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / FILENAME
    partial = directory / (FILENAME + ".partial")
    with open(partial, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)
    return final


def load(directory: Path) -> Optional[Dict[str, Any]]:
    """The checkpoint in ``directory``, or None when there is none."""
    path = directory / FILENAME
    if not path.is_file():
        return None
    return load_file(path)


def load_file(path: Path) -> Dict[str, Any]:
    """Load tensors and plain values only (no pickled code) where torch supports that."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")
