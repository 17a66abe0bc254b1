"""Benchmark: images per second through decode + SSD augmentation + resize + target tensors.

One process, one thread, the same images for everyone:

- floor: Pillow decoding the JPEG files to RGB, nothing else;
- ours: ``algorithm.data.build_dataset`` reading a RecordIO file (train=True, image_shape 300);
- torchvision: the SSD reference augmentation of torchvision's detection references on
  transforms.v2 (RandomPhotometricDistort, RandomZoomOut, RandomIoUCrop, RandomHorizontalFlip)
  plus Resize, SanitizeBoundingBoxes, ToDtype and Normalize, reading the JPEG files.

The three run in alternation for several rounds (the machine may be shared) and the best round
of each is kept. Goals: ours >= 5x torchvision and >= 0.4x the floor.

    python tests/benchmarks/data_pipeline.py [--images 200] [--rounds 3] [--jpegs DIR]

``--jpegs DIR`` uses real JPEGs (e.g. VOC's JPEGImages) with made-up boxes instead of synthetic
500x375 images (quality 95, about 80 KB each, like VOC's). Prints a table, and JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

IMAGE_SHAPE = 300
# Quality 95 makes the synthetic 500x375 JPEGs about 80 KB, the size of VOC's.
JPEG_QUALITY = 95


def make_data(directory: str, count: int, jpegs: str | None) -> tuple[list[str], list, str]:
    """JPEG files, their objects, and a RecordIO file holding the same bytes."""
    from algorithm.data.sample import make_sample
    from detectctl.datasets.synth import synth_image
    from detectctl.datasets.writers import RecordIOWriter

    paths, objects = [], []
    rec = os.path.join(directory, "bench.rec")
    names = sorted(n for n in os.listdir(jpegs) if n.lower().endswith((".jpg", ".jpeg"))
                   )[:count] if jpegs else []
    with RecordIOWriter(rec) as writer:
        for i in range(count):
            if jpegs:
                path = os.path.join(jpegs, names[i % len(names)])
                with open(path, "rb") as f:
                    data = f.read()
                rng = np.random.default_rng(i)
                xy = rng.uniform(0, 0.6, (3, 2))
                rows = [[k, x, y, x + rng.uniform(0.1, 0.4), y + rng.uniform(0.1, 0.4)]
                        for k, (x, y) in enumerate(xy)]
            else:
                data, rows = synth_image(i, seed=0, classes=5, image_size=(500, 375),
                                         quality=JPEG_QUALITY)
                path = os.path.join(directory, f"{i:06d}.jpg")
                with open(path, "wb") as f:
                    f.write(data)
            size = Image.open(path).size
            paths.append(path)
            objects.append(rows)
            writer.add(make_sample(str(i), rows), data, f"{i:06d}.jpg", *size)
    return paths, objects, rec


def floor(paths: list[str], objects: list) -> Callable[[], int]:
    def run() -> int:
        for path in paths:
            Image.open(path).convert("RGB")
        return len(paths)

    return run


def ours(rec: str) -> Callable[[], int]:
    from algorithm.data import build_dataset

    dataset = build_dataset(rec, "recordio", IMAGE_SHAPE, train=True, seed=0)
    epoch = [0]

    def run() -> int:
        dataset.set_epoch(epoch[0])
        epoch[0] += 1
        return sum(1 for _ in dataset)

    return run


def torchvision_reference(paths: list[str], objects: list) -> Callable[[], int]:
    from torchvision import tv_tensors
    from torchvision.transforms import v2 as T
    from torchvision.transforms.v2 import functional as F

    fill = {tv_tensors.Image: (123, 117, 104), "others": 0}
    transform = T.Compose([
        T.RandomPhotometricDistort(),
        T.RandomZoomOut(fill=fill),
        T.RandomIoUCrop(),
        T.RandomHorizontalFlip(),
        T.Resize((IMAGE_SHAPE, IMAGE_SHAPE)),
        T.SanitizeBoundingBoxes(),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])

    def run() -> int:
        for path, rows in zip(paths, objects):
            image = F.pil_to_tensor(Image.open(path).convert("RGB"))
            h, w = image.shape[-2:]
            arr = np.array(rows, np.float32).reshape(-1, 5)
            boxes = tv_tensors.BoundingBoxes(torch.from_numpy(arr[:, 1:] * [w, h, w, h]),
                                             format="XYXY", canvas_size=(h, w))
            target = {"boxes": boxes, "labels": torch.from_numpy(arr[:, 0]).long()}
            transform(tv_tensors.Image(image), target)
        return len(paths)

    return run


def measure(run: Callable[[], int]) -> float:
    start = time.perf_counter()
    count = run()
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jpegs", help="directory of real JPEGs to use instead of synthetic")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as directory:
        paths, objects, rec = make_data(directory, args.images, args.jpegs)
        runs = {"floor": floor(paths, objects), "ours": ours(rec),
                "torchvision": torchvision_reference(paths, objects)}
        for run in runs.values():  # warm-up: imports, caches
            run()
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                rates[name].append(measure(run))
    best = {name: max(values) for name, values in rates.items()}
    result = {
        "images": args.images, "rounds": args.rounds, "image_shape": IMAGE_SHAPE,
        "source": args.jpegs or f"synthetic 500x375 JPEG (quality {JPEG_QUALITY})",
        "images_per_second": {k: round(v, 1) for k, v in best.items()},
        "all_rounds": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
        "ours_vs_torchvision": round(best["ours"] / best["torchvision"], 2),
        "ours_vs_floor": round(best["ours"] / best["floor"], 2),
        "torch": torch.__version__, "pillow": Image.__version__,
    }
    result["goals_met"] = result["ours_vs_torchvision"] >= 5 and result["ours_vs_floor"] >= 0.4
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in runs:
            print(f"{name:12s} {best[name]:8.1f} images/s   rounds: {result['all_rounds'][name]}")
        print(f"ours / torchvision = {result['ours_vs_torchvision']}x (goal >= 5x); "
              f"ours / floor = {result['ours_vs_floor']}x (goal >= 0.4x)")
    return result


if __name__ == "__main__":
    main()
