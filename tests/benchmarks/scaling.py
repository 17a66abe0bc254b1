"""Data-parallel scaling on CPU: the training job with 2 worker processes vs 1, same data.

Both runs are the real job (``python -m algorithm.train``) on the same synthetic RecordIO data,
each worker with one thread (gloo between them), the same batch per worker (so 2 workers train
2x the images per step, as 2 GPUs would) and the same number of steps. The figure is the ratio
of the job's own ``train:throughput`` (images/s over all workers) in its last epoch, medians over
``--repeat`` runs. Goal: >= 1.9x. Needs 2 free cores.

    python tests/benchmarks/scaling.py [--images 256] [--batch 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.training.jobs import make_job, run_job

THROUGHPUT = re.compile(r"train throughput=([0-9.]+) records/second")


def throughput(procs: int, images: int, batch: int, epochs: int, port: int,
               image_shape: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        # mini_batch_size is per machine: each of the procs workers gets batch images.
        root = make_job(Path(tmp), images=images, validation=False, epochs=str(epochs),
                        mini_batch_size=str(batch * procs),
                        image_shape=str(image_shape))
        result = run_job(root, timeout=1800, env={
            "DETECTCTL_PROCS_PER_HOST": str(procs), "DETECTCTL_MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port)})
        if result.returncode != 0:
            sys.exit(result.stdout + result.stderr)
        return float(THROUGHPUT.findall(result.stdout)[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="training images")
    parser.add_argument("--batch", type=int, default=8, help="images per worker per step")
    parser.add_argument("--image-shape", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "scaling.json")
    args = parser.parse_args()
    one, two = [], []
    for r in range(args.repeat):
        one.append(throughput(1, args.images, args.batch, args.epochs, 29700 + r,
                              args.image_shape))
        # Two workers see the same images in half the steps; give them twice the data so both
        # runs take the same number of steps.
        two.append(throughput(2, args.images * 2, args.batch, args.epochs, 29800 + r,
                              args.image_shape))
        print(f"run {r + 1}: 1 process {one[-1]:.1f} images/s, 2 processes {two[-1]:.1f} "
              f"images/s", flush=True)
    ratio = statistics.median(two) / statistics.median(one)
    print(f"median: 1 process {statistics.median(one):.1f}, 2 processes "
          f"{statistics.median(two):.1f} images/s -> {ratio:.2f}x (goal >= 1.9x)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"one_process": one, "two_processes": two, "ratio": ratio,
                                     "images": args.images, "batch_per_worker": args.batch,
                                     "image_shape": args.image_shape,
                                     "epochs": args.epochs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
