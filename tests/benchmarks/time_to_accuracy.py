"""Time to accuracy on CPU (issue 5, benchmark 3): ours vs torchvision's SSDLite from scratch.

    python tests/benchmarks/time_to_accuracy.py [--budget 600] [--train-images 1000]
        [--validation-images 200] [--target 0.8] [--threads 2]

Same data, same machine, same run, one model at a time:

- data: ``detectctl dataset synth`` RecordIO, 3 classes, 320x240 images; training images from
  seed 1, held-out validation images from seed 2 (a different seed: no image is in both);
- ours: the real training job (``python -m algorithm.train`` under a temporary /opt/ml tree,
  as the local backend runs it) with templates/hyperparameters/synthetic-mobilenet-cpu.yaml
  (``mobilenet-v3-large``, ``use_pretrained_model=0``); the job validates after every epoch;
- theirs: torchvision's ``ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
  num_classes=4)`` (background included) trained by a plain PyTorch loop in a worker process
  started by this script, with torchvision's reference SSDlite augmentation
  (references/detection/presets.py, ``--data-augmentation ssdlite``: RandomIoUCrop,
  RandomHorizontalFlip, then ToDtype and SanitizeBoundingBoxes) and the reference recipe's
  optimizer (SGD, momentum 0.9, weight decay 4e-5, lr 0.15 at batch 192 scaled linearly to the
  batch, linear warm-up, cosine annealing, here over the budget); validated every
  ``--eval-every`` seconds of training (more often than ours: it only helps it);
- evaluation: both with ``algorithm.evaluation.evaluate`` (VOC07 11-point mAP, IoU 0.5) on the
  same validation images, each model with its own post-processing defaults.

Time is training time: wall-clock seconds from starting the process (imports, data set-up and
model building included) minus the time spent validating, measured the same way for both
(the parent timestamps the worker's output lines: an evaluation starts at the job's throughput
line or the worker's ``#tta evaluating`` line and ends at the mAP line). Each run gets
``--budget`` seconds of it; both use ``--threads`` compute threads and the same number of data
loader workers. Prints a table and writes results/time_to_accuracy.json and
results/time_to_accuracy.png (mAP against training time, drawn with Pillow).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "tests" / "benchmarks" / "results"
TEMPLATE = ROOT / "templates" / "hyperparameters" / "synthetic-mobilenet-cpu.yaml"
CLASSES = 3
IMAGE_SIZE = (320, 240)
TRAIN_SEED, VALIDATION_SEED = 1, 2

# What the parent reads from each run's output.
EVAL_START = {"ours": re.compile(r"#throughput_metric: "),
              "torchvision": re.compile(r"^#tta evaluating")}
MAP_LINE = {"ours": re.compile(r"epoch=(\d+), validation mAP <score>=\(([0-9.eE+-]+)\)"),
            "torchvision": re.compile(r"^#tta iteration=(\d+) mAP=([0-9.eE+-]+)")}

# torchvision's reference recipe for ssdlite320_mobilenet_v3_large (references/detection):
# 8 GPUs x 24 images, lr 0.15, momentum 0.9, weight decay 4e-5, cosine annealing, warm-up over
# the first min(1000, iterations per epoch) iterations from 0.001 x lr.
REFERENCE_BATCH, REFERENCE_LR, REFERENCE_WD = 192, 0.15, 4e-5


# --- data ---------------------------------------------------------------------------------------

def make_data(root: Path, train_images: int, validation_images: int) -> Dict[str, Path]:
    """Synthetic RecordIO channels under ``root/input/data`` (the job's layout)."""
    from detectctl.datasets.synth import synth

    paths = {}
    for name, images, seed in (("train", train_images, TRAIN_SEED),
                               ("validation", validation_images, VALIDATION_SEED)):
        channel = root / "input" / "data" / name
        channel.mkdir(parents=True)
        synth(str(channel / "data"), images=images, classes=CLASSES, seed=seed,
              format="recordio", image_size=IMAGE_SIZE)
        paths[name] = channel / "data.rec"
    return paths


# --- the two runs -------------------------------------------------------------------------------

def our_hyperparameters(template: Path, overrides: List[str], threads: int) -> Dict[str, str]:
    """The template's hyperparameters, with ``NAME=VALUE`` overrides, as the job receives them
    (SageMaker's string map)."""
    import yaml

    from algorithm.hyperparameters import Hyperparameters

    values = yaml.safe_load(template.read_text())
    for override in overrides:
        name, _, value = override.partition("=")
        values[name.strip()] = value.strip()
    values.setdefault("num_workers", threads)
    return Hyperparameters(**values).to_sagemaker()


def run_ours(root: Path, hyperparameters: Dict[str, str], budget: float, threads: int,
             log: Path) -> List[Dict[str, float]]:
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"TrainingInputMode": "File", "ContentType": "application/x-recordio"}
        for name in ("train", "validation")}))
    command = [sys.executable, "-m", "algorithm.train"]
    env = {"DETECTCTL_OPT_ML": str(root), "PYTHONPATH": str(ROOT)}
    return follow("ours", command, env, budget, threads, log)


def run_torchvision(data: Dict[str, Path], args: argparse.Namespace,
                    log: Path) -> List[Dict[str, float]]:
    command = [sys.executable, __file__, "--worker", "--train", str(data["train"]),
               "--validation", str(data["validation"]), "--batch", str(args.batch),
               "--eval-every", str(args.eval_every), "--budget", str(args.budget),
               "--threads", str(args.threads), "--workers", str(args.workers)]
    return follow("torchvision", command, {}, args.budget, args.threads, log)


def follow(name: str, command: List[str], env: Dict[str, str], budget: float, threads: int,
           log: Path) -> List[Dict[str, float]]:
    """Run ``command`` until ``budget`` seconds of training time, timestamping its output.

    Returns the validation curve: ``{"train_s", "wall_s", "step", "mAP"}`` per validation.
    """
    environ = {**os.environ, "OMP_NUM_THREADS": str(threads), **env}
    curve: List[Dict[str, float]] = []
    evaluating_since: Optional[float] = None
    evaluation = 0.0  # seconds spent validating so far
    start = time.monotonic()
    process = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert process.stdout is not None
    stopping = False
    try:
        with log.open("w") as out:
            for line in process.stdout:
                now = time.monotonic()
                out.write(f"{now - start:9.2f} {line}")
                if EVAL_START[name].search(line):
                    evaluating_since = now
                found = MAP_LINE[name].search(line)
                if found and evaluating_since is not None:
                    evaluation += now - evaluating_since
                    evaluating_since = None
                    train_s = now - start - evaluation
                    if train_s <= budget:
                        curve.append({"train_s": round(train_s, 2), "wall_s": round(now - start, 2),
                                      "step": int(found.group(1)), "mAP": float(found.group(2))})
                        print(f"  {name}: {train_s:6.1f} s of training, mAP {curve[-1]['mAP']:.4f}",
                              flush=True)
                # The output arrives at least once per epoch (loss lines every 20 batches).
                if not stopping and evaluating_since is None and now - start - evaluation > budget:
                    stopping = True
                    process.send_signal(signal.SIGTERM)  # the job saves a checkpoint and exits
    finally:
        if process.poll() is None and not stopping:  # interrupted: leave no job behind
            process.terminate()
    process.wait()
    if process.returncode not in (0, -signal.SIGTERM) and not curve:
        sys.exit(f"{name} failed (exit {process.returncode}); see {log}")
    return curve


# --- results ------------------------------------------------------------------------------------

def summarise(curve: List[Dict[str, float]], target: float, at: float) -> Dict[str, Any]:
    reached = next((point for point in curve if point["mAP"] >= target), None)
    before = [point for point in curve if point["train_s"] <= at]
    return {
        "time_to_target_s": reached["train_s"] if reached else None,
        "mAP_at_budget": curve[-1]["mAP"] if curve else None,
        f"mAP_at_{at:.0f}s": before[-1]["mAP"] if before else None,
        "best_mAP": max((point["mAP"] for point in curve), default=None),
        "validations": len(curve),
        "curve": curve,
    }


def draw(results: Dict[str, Dict[str, Any]], target: float, budget: float, path: Path) -> None:
    """mAP against training time for both runs, with the target line."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 900, 560, 70, 30, 40, 60
    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(seconds: float, value: float) -> tuple:
        return (left + plot_w * seconds / budget, top + plot_h * (1 - value))

    for i in range(11):  # mAP grid every 0.1
        y = top + plot_h * i / 10
        pen.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        pen.text((left - 30, y - 6), f"{1 - i / 10:.1f}", fill="black", font=font)
    step = 60 if budget <= 900 else 120
    for seconds in range(0, int(budget) + 1, step):
        x = left + plot_w * seconds / budget
        pen.line([(x, top), (x, top + plot_h)], fill=(225, 225, 225))
        pen.text((x - 10, top + plot_h + 6), f"{seconds // 60} min", fill="black", font=font)
    pen.rectangle([left, top, width - right, top + plot_h], outline="black")
    pen.line([xy(0, target), xy(budget, target)], fill=(120, 120, 120), width=1)
    pen.text((width - right - 120, xy(0, target)[1] - 14), f"target mAP {target}",
             fill=(90, 90, 90), font=font)
    colours = {"ours": (31, 119, 180), "torchvision": (214, 39, 40)}
    labels = {"ours": "ours: mobilenet-v3-large (the training job)",
              "torchvision": "torchvision ssdlite320_mobilenet_v3_large (plain loop)"}
    for n, (name, result) in enumerate(results.items()):
        points = [xy(p["train_s"], p["mAP"]) for p in result["curve"]]
        if len(points) > 1:
            pen.line(points, fill=colours[name], width=2)
        for x, y in points:
            pen.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colours[name])
        reached = result["time_to_target_s"]
        text = labels[name] + (f": mAP {target} at {reached:.0f} s" if reached is not None
                               else f": mAP {target} not reached")
        pen.line([(left + 12, top + 14 + 16 * n), (left + 36, top + 14 + 16 * n)],
                 fill=colours[name], width=2)
        pen.text((left + 42, top + 8 + 16 * n), text, fill="black", font=font)
    pen.text((left, 12), "VOC07 mAP (held-out images) against training time, 2-core CPU",
             fill="black", font=font)
    pen.text((left + plot_w // 2 - 80, height - 28), "training time (validation excluded)",
             fill="black", font=font)
    image.save(path)


def machine() -> Dict[str, Any]:
    import torch
    import torchvision

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600,
                        help="seconds of training time per model (default 600)")
    parser.add_argument("--budget-torchvision", type=float, default=None,
                        help="torchvision's budget, if not --budget (its cosine schedule spans "
                             "its budget)")
    parser.add_argument("--report-at", type=float, default=600,
                        help="also report each mAP after this much training time")
    parser.add_argument("--train-images", type=int, default=1000)
    parser.add_argument("--validation-images", type=int, default=200)
    parser.add_argument("--target", type=float, default=0.8, help="VOC07 mAP to reach")
    parser.add_argument("--threads", type=int, default=2, help="compute threads of each run")
    parser.add_argument("--template", type=Path, default=TEMPLATE,
                        help="our hyperparameters (YAML)")
    parser.add_argument("--hp", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of the template's hyperparameters (repeatable)")
    parser.add_argument("--batch", type=int, default=None,
                        help="torchvision's batch (default: ours, mini_batch_size)")
    parser.add_argument("--eval-every", type=float, default=30,
                        help="torchvision: seconds of training between validations")
    parser.add_argument("--only", choices=("ours", "torchvision"), default=None,
                        help="run one side; the other is kept from the last report if that "
                             "used the same data and threads")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--validation", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return torchvision_worker(args)
    budgets = {"ours": args.budget, "torchvision": args.budget_torchvision or args.budget}
    args.budget = budgets["torchvision"]  # what the torchvision worker gets

    hyperparameters = our_hyperparameters(args.template, args.hp, args.threads)
    if args.batch is None:
        args.batch = int(hyperparameters["mini_batch_size"])
    args.workers = int(hyperparameters["num_workers"])  # data loader workers, the same for both
    args.results.mkdir(parents=True, exist_ok=True)
    results: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "opt-ml"
        data = make_data(root, args.train_images, args.validation_images)
        for name in ("ours", "torchvision"):
            if args.only not in (None, name):
                continue
            print(f"{name}: training for {budgets[name]:.0f} s", flush=True)
            log = args.results / f"time_to_accuracy_{name}.log"
            curve = (run_ours(root, hyperparameters, budgets[name], args.threads, log)
                     if name == "ours" else run_torchvision(data, args, log))
            results[name] = summarise(curve, args.target, args.report_at)
    command = ("python tests/benchmarks/time_to_accuracy.py " + " ".join(sys.argv[1:])).strip()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    runs = {name: {"command": command, "date": date} for name in results}
    data_settings = {"train_images": args.train_images, "validation_images": args.validation_images,
                     "classes": CLASSES, "image_size": list(IMAGE_SIZE),
                     "train_seed": TRAIN_SEED, "validation_seed": VALIDATION_SEED}
    recipe = torchvision_recipe(args.batch, args.eval_every)
    previous_path = args.results / "time_to_accuracy.json"
    if args.only and previous_path.is_file():
        # Keep the other side's run from the last report if it used the same data and machine
        # set-up, so that one side can be rerun alone (say, another recipe of ours).
        previous = json.loads(previous_path.read_text())
        other = "torchvision" if args.only == "ours" else "ours"
        if previous.get("data") == data_settings and previous.get("threads") == args.threads \
                and previous.get(other, {}).get("curve"):
            results[other] = summarise(previous[other]["curve"], args.target, args.report_at)
            budgets[other] = previous["budget_s"][other]
            runs[other] = previous.get("runs", {}).get(other) or {
                "command": previous.get("command"), "date": previous.get("date")}
            if other == "ours":
                hyperparameters = previous["ours"]["hyperparameters"]
            else:
                recipe = previous["torchvision"].get("recipe", recipe)
            print(f"{other}: kept from the run of {runs[other]['date']}", flush=True)

    print(f"\ntime to VOC07 mAP >= {args.target} (training time):")
    for name, result in results.items():
        reached = result["time_to_target_s"]
        print(f"  {name:12s} {f'{reached:.0f} s' if reached is not None else 'not reached':>12s}"
              f"   budget {budgets[name]:.0f} s   mAP after {args.report_at:.0f} s "
              f"{result[f'mAP_at_{args.report_at:.0f}s']}   at the budget "
              f"{result['mAP_at_budget']}   best {result['best_mAP']}")
    ratio = ratio_bound = None
    if len(results) == 2 and results["ours"]["time_to_target_s"]:
        ours_s = results["ours"]["time_to_target_s"]
        theirs_s = results["torchvision"]["time_to_target_s"]
        if theirs_s:
            ratio = ours_s / theirs_s
            print(f"  ratio ours / torchvision: {ratio:.2f} (goal <= 0.5)")
        else:  # theirs did not get there within its budget: their time is longer than that
            ratio_bound = ours_s / budgets["torchvision"]
            print(f"  ratio ours / torchvision: below {ratio_bound:.2f} (torchvision did not "
                  f"reach {args.target} in {budgets['torchvision']:.0f} s; goal <= 0.5)")
    report = {
        "command": command,
        "date": date,
        "runs": runs,
        "machine": machine(),
        "budget_s": budgets, "target_mAP": args.target, "threads": args.threads,
        "data": data_settings,
        "ours": {"hyperparameters": hyperparameters, **results.get("ours", {})},
        "torchvision": {"recipe": recipe, **results.get("torchvision", {})},
        "ratio": ratio,
        "ratio_upper_bound": ratio_bound,
    }
    name = "time_to_accuracy"
    (args.results / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    if results:
        draw(results, args.target, max(budgets.values()), args.results / f"{name}.png")
    return 0


# --- torchvision's side: a plain loop, run in its own process by run_torchvision --------------

def torchvision_worker(args: argparse.Namespace) -> int:
    """Train ssdlite320_mobilenet_v3_large for ``args.budget`` seconds of training, printing
    ``#tta evaluating`` and ``#tta iteration=I mAP=X`` around each validation."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision import tv_tensors
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    from algorithm.data.sources import open_source
    from algorithm.evaluation import GroundTruth, evaluate

    start = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    class Synth(torch.utils.data.Dataset):
        """The RecordIO file, read by our reader, as torchvision's (image, target) pairs."""

        def __init__(self, path: Path, transform: Any):
            self.source = open_source(str(path), "recordio")
            self.transform = transform

        def __len__(self) -> int:
            return len(self.source)

        def __getitem__(self, index: int) -> Any:
            sample = self.source[index]
            image = F.pil_to_tensor(Image.open(io.BytesIO(sample.read_image_bytes()))
                                    .convert("RGB"))
            h, w = image.shape[-2:]
            boxes = torch.as_tensor(np.asarray(sample.boxes, np.float32).reshape(-1, 4)
                                    * np.array([w, h, w, h], np.float32))
            target = {"boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)),
                      "labels": torch.as_tensor(np.asarray(sample.labels, np.int64) + 1)}
            return self.transform(tv_tensors.Image(image), target)

    # references/detection/presets.py, data_augmentation="ssdlite" (v2 transforms).
    train_transform = v2.Compose([v2.RandomIoUCrop(), v2.RandomHorizontalFlip(p=0.5),
                                  v2.ToDtype(torch.float, scale=True),
                                  v2.SanitizeBoundingBoxes(), v2.ToPureTensor()])
    eval_transform = v2.Compose([v2.ToDtype(torch.float, scale=True), v2.ToPureTensor()])
    train_set = Synth(args.train, train_transform)
    validation = Synth(args.validation, eval_transform)
    truths = []
    for index in range(len(validation.source)):
        sample = validation.source[index]
        truths.append(GroundTruth(np.asarray(sample.boxes, np.float32).reshape(-1, 4),
                                  np.asarray(sample.labels, np.int64),
                                  np.asarray(sample.difficult, bool)))
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch, shuffle=True, num_workers=args.workers,
        collate_fn=lambda batch: tuple(zip(*batch)), drop_last=True,
        persistent_workers=args.workers > 0)

    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                          num_classes=CLASSES + 1)
    parameters = [p for p in model.parameters() if p.requires_grad]
    base_lr = REFERENCE_LR * args.batch / REFERENCE_BATCH
    optimizer = torch.optim.SGD(parameters, lr=base_lr, momentum=0.9, weight_decay=REFERENCE_WD)
    warmup = min(1000, len(loader) - 1)

    @torch.no_grad()
    def validate() -> float:
        model.eval()
        detections = []
        for first in range(0, len(validation), 16):
            images = [validation[i][0] for i in range(first, min(first + 16, len(validation)))]
            for image, found in zip(images, model(images)):
                h, w = image.shape[-2:]
                boxes = found["boxes"] / torch.tensor([w, h, w, h])
                detections.append(torch.cat([(found["labels"] - 1)[:, None].float(),
                                             found["scores"][:, None], boxes], 1).numpy())
        model.train()
        return evaluate(detections, truths, CLASSES, 0.5, "voc07").mAP

    evaluation, last_eval, iteration = 0.0, 0.0, 0
    model.train()
    while True:
        for images, targets in loader:
            trained = time.monotonic() - start - evaluation
            if trained >= args.budget:
                return 0
            if iteration < warmup:
                factor = 0.001 + (1 - 0.001) * iteration / warmup
            else:
                factor = 0.5 * (1 + math.cos(math.pi * min(1.0, trained / args.budget)))
            for group in optimizer.param_groups:
                group["lr"] = base_lr * factor
            losses = model(list(images), list(targets))
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iteration += 1
            if time.monotonic() - start - evaluation - last_eval >= args.eval_every:
                print(f"#tta evaluating after {iteration} iterations, loss {loss.item():.3f}",
                      flush=True)
                began = time.monotonic()
                score = validate()
                print(f"#tta iteration={iteration} mAP={score:.6f}", flush=True)
                evaluation += time.monotonic() - began
                last_eval = time.monotonic() - start - evaluation


def torchvision_recipe(batch: int, eval_every: float) -> Dict[str, Any]:
    return {"model": "ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, "
                     "num_classes=4)",
            "augmentation": "RandomIoUCrop, RandomHorizontalFlip(0.5), ToDtype(float32, "
                            "scale=True), SanitizeBoundingBoxes",
            "optimizer": "sgd", "momentum": 0.9, "weight_decay": REFERENCE_WD,
            "batch": batch, "learning_rate": REFERENCE_LR * batch / REFERENCE_BATCH,
            "schedule": "linear warm-up from 0.001x over min(1000, one epoch) iterations, "
                        "cosine annealing to 0 over the budget's training time",
            "eval_every_s": eval_every, "evaluation": "model defaults: score 0.001, NMS 0.55, "
                                                      "300 detections"}


if __name__ == "__main__":
    sys.exit(main())
