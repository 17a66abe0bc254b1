"""Distributed training set-up: torch.distributed, launched the way SageMaker launches it.

SageMaker's PyTorch toolkit starts ``torchrun --nnodes N --node_rank i --nproc_per_node G
--master_addr algo-1 train.py`` when torch distributed is enabled; each worker then finds its
rank in the environment (RANK, WORLD_SIZE, LOCAL_RANK). When ``train.py`` is started plainly
(older images, the local backend), it launches the same workers itself through
``torch.distributed.run``, with one process per GPU, and one process per host on CPU unless
``DETECTCTL_PROCS_PER_HOST`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import partial
from typing import List, Mapping, Optional, Tuple

import torch
import torch.distributed as dist

from algorithm.container import ResourceConfig

MASTER_PORT = 29500
PROCS_VARIABLE = "DETECTCTL_PROCS_PER_HOST"
MASTER_ADDR_VARIABLE = "DETECTCTL_MASTER_ADDR"


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job. Rank 0 logs, evaluates and writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def from_environ(environ: Optional[Mapping[str, str]] = None) -> Context:
    """The context torchrun left in the environment; a single process when there is none."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return Context()
    world = int(environ["WORLD_SIZE"])
    return Context(
        rank=int(environ["RANK"]),
        world_size=world,
        local_rank=int(environ.get("LOCAL_RANK", "0")),
        local_world_size=int(environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def procs_per_host(environ: Optional[Mapping[str, str]] = None) -> int:
    """One worker per GPU; on CPU one per host, or ``DETECTCTL_PROCS_PER_HOST``."""
    environ = os.environ if environ is None else environ
    if environ.get(PROCS_VARIABLE):
        return max(1, int(environ[PROCS_VARIABLE]))
    return max(1, torch.cuda.device_count())


def needs_launch(resource: ResourceConfig, procs: int,
                 environ: Optional[Mapping[str, str]] = None) -> bool:
    """True when this is a plain start that should become several workers."""
    environ = os.environ if environ is None else environ
    launched = "RANK" in environ and "WORLD_SIZE" in environ
    return not launched and (len(resource.hosts) > 1 or procs > 1)


def cpu_threads(procs: int, environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """Compute threads for each of ``procs`` CPU workers on one host: the host's cores shared
    out evenly (torchrun would give each one thread). ``None`` on GPUs or where the user set
    ``OMP_NUM_THREADS``."""
    environ = os.environ if environ is None else environ
    if torch.cuda.is_available() or environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, (os.cpu_count() or 1) // procs)


def launch_command(module: str, resource: ResourceConfig, procs: int,
                   environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The torchrun command SageMaker's toolkit would run for this host, for ``python -m
    module`` workers."""
    environ = os.environ if environ is None else environ
    master = environ.get(MASTER_ADDR_VARIABLE) or resource.master_host
    port = environ.get("MASTER_PORT") or str(MASTER_PORT)
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={len(resource.hosts)}",
        f"--node_rank={resource.host_rank}",
        f"--nproc_per_node={procs}",
        f"--master_addr={master}",
        f"--master_port={port}",
        "-m", module,
    ]


def init(context: Context) -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPU) and return this worker's device."""
    if torch.cuda.is_available():
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"  # collectives then take CUDA tensors only: see train.py
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if context.distributed and not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://",
                                rank=context.rank, world_size=context.world_size)
    return device


def match_bucket_strides(model: torch.nn.Module) -> None:
    """Hand DDP every gradient with its parameter's exact strides, so that it matches the
    parameter's view in DDP's gradient bucket.

    In the channels-last format a weight with a size-1 dimension (a 1x1 convolution's
    ``[C_out, C_in, 1, 1]``) has strides of its own in those dimensions; the contiguous format
    gives them other strides for the same memory. torch 1.12's CPU convolutions return such a
    weight's gradient in the contiguous format when their input is 1x1 pixels (MobileNetV3's
    squeeze-and-excitation layers, the last feature maps of a small image). Autograd keeps
    it (its layout contract ignores size-1 dimensions), but DDP compares every stride with the
    bucket's view and warns "Grad strides do not match bucket view strides". Giving the
    gradient the parameter's strides is a view of the same memory, not a copy. A gradient whose
    layout really differs is cloned to the parameter's strides by autograd itself, so only
    parameters with a size-1 dimension need this. Call it after the model's last change of
    memory format and before wrapping it in DDP.
    """
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dim() > 1 and 1 in parameter.shape:
            parameter.register_hook(partial(_restride, parameter.stride()))


def _restride(strides: Tuple[int, ...], grad: torch.Tensor) -> Optional[torch.Tensor]:
    """``grad`` with ``strides`` if they differ from its own in size-1 dimensions only."""
    if grad.stride() == strides:
        return None  # keep it as it is
    if any(size != 1 and have != want
           for size, have, want in zip(grad.shape, grad.stride(), strides)):
        return None
    return grad.as_strided(grad.shape, strides, grad.storage_offset())


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
