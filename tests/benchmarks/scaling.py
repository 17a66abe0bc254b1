"""Data-parallel scaling on CPU: the training job with 2 worker processes vs 1, same data.

All runs are the real job (``python -m algorithm.train``) on the same synthetic RecordIO data,
each worker with one compute thread, the same batch per worker (so 2 workers train 2x the images
per step, as 2 GPUs would) and the same number of steps:

- one worker;
- two workers of one job (DDP over gloo): the figure, as a ratio of images/s to one worker;
- two independent one-worker jobs at once: what the machine itself allows two processes (no
  communication, no waiting for each other), the ceiling for the ratio.

Images/s is the job's own ``train:throughput`` (over all workers) in its last epoch; medians over
``--repeat`` runs. Goal: >= 1.9x. Needs 2 free cores.

    python tests/benchmarks/scaling.py [--images 256] [--batch 8] [--image-shape 160] [--repeat 3]
        [--network mobilenet-v3-large] [--json results/scaling.json]

The default is the small network our own tests train; ``--network vgg-16 --image-shape 300``
is the built-in algorithm's default job, whose gradient is 6.4x larger but whose step takes 40x
longer, so communication weighs less.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from algorithm.metrics import METRIC_REGEXES
from tests.benchmarks import result_files
from tests.training.jobs import make_job, run_job

RESULT_FILES = ["scaling*.json"]
RESULT_KEYS = {
    "one_worker": ["number"], "two_workers": ["number"], "two_independent_jobs": ["number"],
    "median": {"one_worker": "number", "two_workers": "number",
               "two_independent_jobs": "number"},
    "ratio": "number", "ceiling": "number", "network": "str", "images_per_worker": "int",
    "batch_per_worker": "int", "image_shape": "int", "epochs": "int",
    "threads_per_worker": "int",
}


def _images_per_s(output: str) -> float:
    found = re.findall(METRIC_REGEXES["train:throughput"], output)
    if not found:
        sys.exit(output)
    return float(found[-1])


def throughput(procs: int, jobs: int, args: argparse.Namespace, port: int) -> float:
    """Images/s of ``jobs`` concurrent jobs of ``procs`` workers each, summed."""
    with tempfile.TemporaryDirectory() as tmp:
        # Two workers see the same images in half the steps; give them twice the data so that
        # every run takes the same number of steps. mini_batch_size is per machine.
        roots = [make_job(Path(tmp) / f"job{j}", images=args.images * procs, validation=False,
                          epochs=str(args.epochs), mini_batch_size=str(args.batch * procs),
                          image_shape=str(args.image_shape), base_network=args.network)
                 for j in range(jobs)]
        running = [run_job(root, wait=False, env={
            "DETECTCTL_PROCS_PER_HOST": str(procs), "DETECTCTL_MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port + j)}) for j, root in enumerate(roots)]
        total = 0.0
        for process in running:
            output = process.communicate(timeout=1800)[0]
            if process.returncode != 0:
                sys.exit(output)
            total += _images_per_s(output)
        return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="training images per worker")
    parser.add_argument("--batch", type=int, default=8, help="images per worker per step")
    parser.add_argument("--image-shape", type=int, default=160)
    parser.add_argument("--network", default="mobilenet-v3-large",
                        choices=["mobilenet-v3-large", "vgg-16", "resnet-50"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=result_files.RESULTS / "scaling.json")
    args = parser.parse_args()
    runs = {"one_worker": [], "two_workers": [], "two_independent_jobs": []}
    for r in range(args.repeat):
        runs["one_worker"].append(throughput(1, 1, args, 29700 + 10 * r))
        runs["two_workers"].append(throughput(2, 1, args, 29800 + 10 * r))
        runs["two_independent_jobs"].append(throughput(1, 2, args, 29900 + 10 * r))
        print(f"run {r + 1}: " + ", ".join(f"{name} {values[-1]:.2f}"
                                           for name, values in runs.items()) + " images/s",
              flush=True)
    median = {name: statistics.median(values) for name, values in runs.items()}
    ratio = median["two_workers"] / median["one_worker"]
    ceiling = median["two_independent_jobs"] / median["one_worker"]
    print(f"median images/s: one worker {median['one_worker']:.2f}, two workers "
          f"{median['two_workers']:.2f}, two independent jobs "
          f"{median['two_independent_jobs']:.2f}\n"
          f"two workers / one: {ratio:.2f}x (goal >= 1.9x); the machine's ceiling (two "
          f"independent jobs / one): {ceiling:.2f}x")
    result_files.write(args.json, {
        **runs, "median": median, "ratio": ratio, "ceiling": ceiling, "network": args.network,
        "images_per_worker": args.images, "batch_per_worker": args.batch,
        "image_shape": args.image_shape, "epochs": args.epochs, "threads_per_worker": 1},
        RESULT_KEYS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
