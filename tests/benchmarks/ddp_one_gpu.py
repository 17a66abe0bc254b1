"""The training job as a one-worker DDP job: every collective the job makes (seed broadcast,
BatchNorm averaging, throughput sum, validation gather, replica check) runs through the process
group, so on a machine with a single GPU the NCCL path runs for real.

    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29531 \\
        python tests/benchmarks/ddp_one_gpu.py

Used by gpu_throughput.py --job; NCCL refuses two workers on one GPU, so one worker is the most a
one-GPU machine can check. Never part of CI.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from algorithm import distributed

# A world of one is normally trained without a process group; count it as distributed here.
distributed.Context.distributed = property(lambda self: True)  # type: ignore[assignment]

if __name__ == "__main__":
    runpy.run_module("algorithm.train", run_name="__main__", alter_sys=True)
