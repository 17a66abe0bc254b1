"""What the memory layout and malloc's handling of freed memory do to an SSD step on CPU.

    python tests/benchmarks/cpu_step.py [--network vgg-16] [--image-shape 300] [--batch 8]
        [--steps 3] [--threads 1] [--detect] [--repeat 2]

Times a training step (forward, multibox loss, backward, SGD; random weights and images, two
boxes per image) or, with ``--detect``, one inference call (``SSD.detect`` with NMS, as the
inference handlers run it), four ways, each in a fresh process (malloc's settings are
per process) and interleaved ``--repeat`` times: NCHW with malloc's defaults (how the job ran
before), channels-last, freed memory reused (``algorithm.memory.reuse_freed_memory``), and both
(how the job and the handlers run now). Prints the median wall time per step, the kernel (sys)
time and minor page faults per step, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VARIANTS = {"nchw": (False, False), "channels-last": (True, False),
            "reuse-memory": (False, True), "both (the job)": (True, True)}
WARMUP = 2


def _measure(args: argparse.Namespace, channels_last: bool, reuse: bool) -> dict:
    from algorithm import memory
    if reuse:
        assert memory.reuse_freed_memory(), "malloc's settings could not be changed here"
    import torch

    from algorithm.ssd import build_ssd, multibox_loss

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_ssd(args.network, 3, args.image_shape)
    images = torch.rand(args.batch, 3, args.image_shape, args.image_shape)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    boxes = torch.tensor([[[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]]]).repeat(args.batch, 1, 1)
    labels = torch.tensor([[0, 1]]).repeat(args.batch, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        if args.detect:
            with torch.inference_mode():
                model.eval().detect(images, nms_threshold=0.45)
            return
        cls_logits, box_regression = model.train()(images)
        losses = multibox_loss(cls_logits, box_regression, model.default_boxes, boxes, labels)
        optimizer.zero_grad()
        (losses["cross_entropy"] + losses["smooth_l1"]).backward()
        optimizer.step()

    for _ in range(WARMUP):
        step()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(args.steps):
        step()
    wall = (time.perf_counter() - started) / args.steps
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": wall, "sys_s": (after.ru_stime - before.ru_stime) / args.steps,
            "page_faults": (after.ru_minflt - before.ru_minflt) / args.steps,
            "max_rss_gb": after.ru_maxrss / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="vgg-16",
                        choices=["mobilenet-v3-large", "vgg-16", "resnet-50"])
    parser.add_argument("--image-shape", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--detect", action="store_true", help="time inference, not training")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # the child process: one measurement
        print(json.dumps(_measure(args, *VARIANTS[args.variant])))
        return 0
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    environ["OMP_NUM_THREADS"] = str(args.threads)
    results: dict = {name: [] for name in VARIANTS}
    for r in range(args.repeat):
        for name in VARIANTS:
            child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", name],
                                   env=environ, capture_output=True, text=True, check=True)
            results[name].append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1} {name}: {results[name][-1]['wall_s'] * 1e3:.0f} ms", flush=True)
    what = "detect" if args.detect else "training step"
    print(f"{args.network} at {args.image_shape}, batch {args.batch}, {args.threads} thread(s), "
          f"{what}, medians of {args.repeat}:")
    base = statistics.median(r["wall_s"] for r in results["nchw"])
    for name, runs in results.items():
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(f"  {name:15s} {median['wall_s'] * 1e3:8.0f} ms ({median['wall_s'] / base:.2f}x)  "
              f"sys {median['sys_s'] * 1e3:6.0f} ms  page faults {median['page_faults']:9.0f}  "
              f"peak {median['max_rss_gb']:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
