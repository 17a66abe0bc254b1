"""Which samples each training process reads in an epoch.

Every process draws the same permutation from (seed, epoch) and takes every ``world_size``-th
entry from its rank on, so the shards of an epoch partition the dataset: each sample is read
exactly once, shard lengths differ by at most one, and the split changes every epoch. No torch.
"""

from __future__ import annotations

import numpy as np


def shard_indices(length: int, rank: int, world_size: int, epoch: int, seed: int,
                  shuffle: bool = True) -> np.ndarray:
    """The dataset indices rank ``rank`` of ``world_size`` reads in ``epoch``, in order.

    ``seed`` must be the same on every rank (the job's seed, without a rank offset).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    if shuffle:
        order = np.random.default_rng((seed, epoch)).permutation(length)
    else:
        order = np.arange(length)
    return order[rank::world_size]


def shard_length(length: int, rank: int, world_size: int) -> int:
    """How many samples rank ``rank`` reads per epoch: ceil or floor of length / world_size."""
    return len(range(rank, length, world_size))
