"""Where data-parallel training on CPU loses time: the training step alone, without the job.

    python tests/benchmarks/ddp_overhead.py [--network mobilenet-v3-large] [--image-shape 160]
        [--steps 40] [--repeat 3] [--modes one ddp ddp-noop independent]

Each worker has one compute thread and trains the same fixed batch (8 random images, 2 boxes
each) with SGD, so data loading and its variation are left out; like the job, in channels-last
and with freed memory reused (algorithm/memory.py). Modes: ``one`` (one worker),
``ddp`` (two workers, DDP over gloo, as the job), ``ddp-noop`` (the same with a communication
hook that returns the gradients unreduced: DDP's cost without the all-reduce), ``independent``
(two unconnected workers at once: the machine's own ceiling). Also times a gloo all-reduce of the
model's gradient size between two otherwise idle workers. Prints the median over ``--repeat``
runs of each mode's mean step time (the slower worker's) and the ratios to one worker; the
job-level figure is tests/benchmarks/scaling.py's. Needs 2 free cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from algorithm import memory
from algorithm.ssd import build_ssd, multibox_loss
from algorithm.train import _data_parallel

WARMUP = 2


def _worker(rank: int, mode: str, args: argparse.Namespace, port: int, queue) -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    memory.reuse_freed_memory()  # as the job does
    torch.manual_seed(0)
    model = build_ssd(args.network, 3, args.image_shape).train()
    model = model.to(memory_format=torch.channels_last)
    step_model = model
    if mode.startswith("ddp"):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=2)
        step_model = _data_parallel(model, torch.device("cpu"))  # the job's DDP options
        if mode == "ddp-noop":
            def unreduced(state, bucket):
                future = torch.futures.Future()
                future.set_result(bucket.buffer())
                return future
            step_model.register_comm_hook(None, unreduced)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    generator = torch.Generator().manual_seed(rank)
    images = torch.rand(8, 3, args.image_shape, args.image_shape, generator=generator).contiguous(
        memory_format=torch.channels_last)
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]]]).repeat(8, 1, 1)
    labels = torch.tensor([[0, 1]]).repeat(8, 1)
    times = []
    for _ in range(WARMUP + args.steps):
        start = time.perf_counter()
        cls_logits, box_regression = step_model(images)
        losses = multibox_loss(cls_logits, box_regression, model.default_boxes, boxes, labels)
        optimizer.zero_grad()
        (losses["cross_entropy"] + losses["smooth_l1"]).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    queue.put(statistics.mean(times[WARMUP:]))
    if dist.is_initialized():
        dist.destroy_process_group()


def _all_reduce(rank: int, size: int, port: int, queue) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    tensor = torch.randn(size)
    for _ in range(3):
        dist.all_reduce(tensor)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(20):
        dist.all_reduce(tensor)
    queue.put((time.perf_counter() - start) / 20)
    dist.destroy_process_group()


def _spawn(target, count: int, *args) -> list:
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=target, args=(rank, *args, queue))
                 for rank in range(count)]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="mobilenet-v3-large",
                        choices=["mobilenet-v3-large", "vgg-16", "resnet-50"])
    parser.add_argument("--image-shape", type=int, default=160)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["one", "ddp", "ddp-noop", "independent"],
                        choices=["one", "ddp", "ddp-noop", "independent"])
    args = parser.parse_args()
    parameters = sum(p.numel() for p in build_ssd(args.network, 3, args.image_shape).parameters())
    (seconds, _) = _spawn(_all_reduce, 2, parameters, 29641)
    print(f"gloo all-reduce of {parameters * 4 / 1e6:.0f} MB between two idle workers: "
          f"{seconds * 1e3:.1f} ms", flush=True)
    steps: dict = {mode: [] for mode in args.modes}
    for r in range(args.repeat):  # interleaved, so that the machine's drift hits every mode
        for i, mode in enumerate(args.modes):
            results = _spawn(_worker, 1 if mode == "one" else 2, mode, args, 29651 + 10 * r + i)
            steps[mode].append(max(results))  # two workers: the slower sets the pace
        print(f"run {r + 1}: " + ", ".join(f"{mode} {values[-1] * 1e3:.1f} ms"
                                            for mode, values in steps.items()), flush=True)
    median = {mode: statistics.median(values) for mode, values in steps.items()}
    for mode, seconds in median.items():
        line = f"{mode:12s} step {seconds * 1e3:8.1f} ms (median)"
        if "one" in median and mode != "one":
            line += f"   {2 * median['one'] / seconds:.2f}x one worker's images/s"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
