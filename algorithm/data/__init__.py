"""Training data: format readers, SSD augmentation, sharding, and the torch Dataset.

The readers (:mod:`~algorithm.data.recordio`, :mod:`~algorithm.data.sagemaker_json`,
:mod:`~algorithm.data.manifest`, :mod:`~algorithm.data.sources`, :mod:`~algorithm.data.pipe`),
:mod:`~algorithm.data.augment` and :mod:`~algorithm.data.sharding` import no torch: the
detectctl client reuses them. Only :mod:`~algorithm.data.dataset` does; its public names are
re-exported here on first use, so ``import algorithm.data`` stays torch-free.
"""

from __future__ import annotations

from typing import Any

_DATASET_NAMES = ("BadSample", "batches", "build_dataset", "collate", "DetectionDataset",
                  "PipeModeDataset")

__all__ = list(_DATASET_NAMES)


def __getattr__(name: str) -> Any:
    if name in _DATASET_NAMES:
        from algorithm.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'algorithm.data' has no attribute {name!r}")
