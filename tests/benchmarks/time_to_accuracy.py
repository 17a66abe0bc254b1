"""Time to accuracy on CPU (issue 5, benchmark 3; made fair in issue 17): ours vs torchvision's
SSDLite from scratch.

    python tests/benchmarks/time_to_accuracy.py [--budget 600] [--budget-torchvision S]
        [--train-images 1000] [--validation-images 200] [--min-size F] [--target 0.8]
        [--threads 2]
        [--preset NAME] [--hp NAME=VALUE ...] [--torchvision-lr LR --torchvision-bn-momentum M]
        [--only ours|torchvision]

Same data, machine, evaluator, image size, validation cadence and tuning budget; one model at a
time:

- data: ``detectctl dataset synth`` RecordIO, 3 classes, 320x240 images; training images from
  seed 1, held-out validation images from seed 2 (a different seed: no image is in both);
- ours: the real training job (``python -m algorithm.train`` under a temporary /opt/ml tree,
  as the local backend runs it) with the hyperparameters of the
  ``synthetic-mobilenet-192-local`` preset (``mobilenet-v3-large``, ``use_pretrained_model=0``).
  Its recipe came from a sweep judged by validation mAP after 2 to 5 epochs (docs/training.md):
  BatchNorm momentum 0.03, 0.1, 0.2 and 0.4, then the learning rate at x0.5, x1 and x1.5 (adam
  0.001, 0.002, 0.003);
- theirs: torchvision's ``ssdlite320_mobilenet_v3_large`` trained from scratch by a plain loop
  (time_to_accuracy_torchvision.py) at ours' image size, with torchvision's reference SSDlite
  augmentation and optimizer. Before its run it gets the same sweep, each trial the first
  ``--sweep-epochs`` epochs of its run's schedule judged by validation mAP: BatchNorm momentum
  0.03 (its default), 0.1, 0.2 and 0.4 at the reference learning rate (0.15 at batch 192,
  scaled to the batch), then the learning rate at x0.5 and x1.5 with the best momentum; the
  best pair trains the run. ``--torchvision-lr`` and ``--torchvision-bn-momentum`` skip it;
- both validate after every epoch, with ``algorithm.evaluation.evaluate`` (VOC07 11-point mAP,
  IoU 0.5) on the same validation images, each model with its own post-processing defaults.
  The report gives the seconds of training between validations measured for each.

Time is training time: wall-clock seconds from starting the process (imports, data set-up and
model building included) minus the time spent validating, measured the same way for both (the
parent timestamps the output lines: an evaluation starts at the job's throughput line or the
worker's ``#tta evaluating`` line and ends at the mAP line). Each run gets its budget of it and
may end sooner (ours after its epochs); the report gives when and how each ended, and the mAP
at ``--report-at`` is the last one measured by then (a run that had ended keeps its final one).
Both use ``--threads`` compute threads and the same number of data loader workers. Prints a
table and writes results/time_to_accuracy.json, results/time_to_accuracy.png (mAP against
training time, drawn with Pillow) and each run's log beside them (the sweep's trials in
time_to_accuracy_torchvision_sweep.log).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import result_files  # noqa: E402
from tests.benchmarks.time_to_accuracy_torchvision import reference_lr  # noqa: E402

PRESET = "synthetic-mobilenet-192-local"
WORKER = Path(__file__).with_name("time_to_accuracy_torchvision.py")
CLASSES = 3
IMAGE_SIZE = (320, 240)
TRAIN_SEED, VALIDATION_SEED = 1, 2
# The sweep that chose ours' recipe, given to torchvision's side (see the docstring).
SWEEP_BN_MOMENTA = (0.03, 0.1, 0.2, 0.4)
SWEEP_LR_FACTORS = (0.5, 1.5)  # besides x1, tried with the momenta

# What the parent reads from each run's output.
EVAL_START = {"ours": re.compile(r"#throughput_metric: "),
              "torchvision": re.compile(r"^#tta evaluating")}
MAP_LINE = {"ours": re.compile(r"epoch=(\d+), validation mAP <score>=\(([0-9.eE+-]+)\)"),
            "torchvision": re.compile(r"^#tta epoch=(\d+) mAP=([0-9.eE+-]+)")}

RESULT_FILES = ["time_to_accuracy.json", "time_to_accuracy.png", "time_to_accuracy_*.log"]
RESULT_KEYS = {
    "runs": {"*": {"command": "str", "date": "str"}},
    "budget_s": {"ours": "number", "torchvision": "number"},
    "target_mAP": "number",
    "report_at_s": "number",
    "threads": "int",
    "data": {"train_images": "int", "validation_images": "int", "classes": "int",
             "image_size": ["int"], "train_seed": "int", "validation_seed": "int",
             "min_size?": "number"},
    "ours?": {
        "hyperparameters": {"*": "str"},
        "time_to_target_s": "number|null", "best_mAP": "number|null",
        "final_mAP": "number|null", "mAP_at_report": "number|null",
        "ended": {"train_s": "number", "wall_s": "number", "how": "str"},
        "validations": "int", "seconds_between_validations": "number|null",
        "curve": [{"train_s": "number", "wall_s": "number", "epoch": "int", "mAP": "number"}],
    },
    "torchvision?": {
        "recipe": {"model": "str", "image_size": "int", "augmentation": "str",
                   "optimizer": "str", "momentum": "number", "weight_decay": "number",
                   "batch": "int", "learning_rate": "number", "bn_momentum": "number",
                   "schedule": "str", "evaluation": "str"},
        "sweep": [{"learning_rate": "number", "bn_momentum": "number", "epochs": "int",
                   "mAP": "number|null", "train_s": "number"}],
        "time_to_target_s": "number|null", "best_mAP": "number|null",
        "final_mAP": "number|null", "mAP_at_report": "number|null",
        "ended": {"train_s": "number", "wall_s": "number", "how": "str"},
        "validations": "int", "seconds_between_validations": "number|null",
        "curve": [{"train_s": "number", "wall_s": "number", "epoch": "int", "mAP": "number"}],
    },
    "ratio": "number|null",
    "ratio_upper_bound": "number|null",
}


# --- data ---------------------------------------------------------------------------------------

def make_data(root: Path, train_images: int, validation_images: int,
              min_size: Optional[float] = None) -> Dict[str, Path]:
    """Synthetic RecordIO channels under ``root/input/data`` (the job's layout); ``min_size``:
    synth's smallest shape (None: its default)."""
    from detectctl.datasets.synth import synth

    paths = {}
    for name, images, seed in (("train", train_images, TRAIN_SEED),
                               ("validation", validation_images, VALIDATION_SEED)):
        channel = root / "input" / "data" / name
        channel.mkdir(parents=True)
        synth(str(channel / "data"), images=images, classes=CLASSES, seed=seed,
              format="recordio", image_size=IMAGE_SIZE,
              **({} if min_size is None else {"min_size": min_size}))
        paths[name] = channel / "data.rec"
    return paths


# --- the runs -----------------------------------------------------------------------------------

Curve = List[Dict[str, Any]]
Ended = Dict[str, Any]


def our_hyperparameters(preset: str, overrides: List[str], threads: int) -> Dict[str, str]:
    """The preset's hyperparameters, with ``NAME=VALUE`` overrides, as the job receives them
    (SageMaker's string map)."""
    from algorithm.hyperparameters import Hyperparameters
    from detectctl import presets

    values = dict(presets.get(preset).hyperparameters)
    for override in overrides:
        name, _, value = override.partition("=")
        values[name.strip()] = value.strip()
    values.setdefault("num_workers", threads)
    return Hyperparameters(**values).to_sagemaker()


def run_ours(root: Path, hyperparameters: Dict[str, str], budget: float, threads: int,
             log: Path) -> Tuple[Curve, Ended]:
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"TrainingInputMode": "File", "ContentType": "application/x-recordio"}
        for name in ("train", "validation")}))
    command = [sys.executable, "-m", "algorithm.train"]
    env = {"DETECTCTL_OPT_ML": str(root), "PYTHONPATH": str(ROOT)}
    return follow("ours", command, env, budget, threads, log)


def run_torchvision(data: Dict[str, Path], args: argparse.Namespace, lr: float,
                    bn_momentum: float, log: Path, stop_epochs: int = 0
                    ) -> Tuple[Curve, Ended]:
    command = [sys.executable, str(WORKER), "--train", str(data["train"]),
               "--validation", str(data["validation"]), "--image-size", str(args.image_size),
               "--batch", str(args.batch), "--lr", repr(lr), "--bn-momentum", repr(bn_momentum),
               "--budget", str(args.budget_torchvision), "--stop-epochs", str(stop_epochs),
               "--threads", str(args.threads), "--workers", str(args.workers)]
    return follow("torchvision", command, {}, args.budget_torchvision, args.threads, log,
                  append=stop_epochs > 0)


def sweep_torchvision(data: Dict[str, Path], args: argparse.Namespace, log: Path
                      ) -> Tuple[List[Dict[str, Any]], float, float]:
    """The sweep ours' recipe came from, for torchvision's side: BatchNorm momentum at the
    reference learning rate, then the learning rate at the best momentum, every trial's output
    in ``log``. Returns the trials and the best (learning rate, momentum)."""
    base = reference_lr(args.batch)
    trials: List[Dict[str, Any]] = []

    log.write_text("")

    def trial(lr: float, bn_momentum: float) -> Optional[float]:
        with log.open("a") as out:
            out.write(f"--- trial: lr {lr!r}, BatchNorm momentum {bn_momentum!r}\n")
        curve, ended = run_torchvision(data, args, lr, bn_momentum, log, args.sweep_epochs)
        score = curve[-1]["mAP"] if curve else None
        trials.append({"learning_rate": lr, "bn_momentum": bn_momentum,
                       "epochs": curve[-1]["epoch"] if curve else 0, "mAP": score,
                       "train_s": ended["train_s"]})
        print(f"  sweep: lr {lr:g}, BatchNorm momentum {bn_momentum:g}: mAP {score} after "
              f"{trials[-1]['epochs']} epochs", flush=True)
        return score

    def best(scores: Dict[Tuple[float, float], Optional[float]]) -> Tuple[float, float]:
        return max(scores, key=lambda pair: -1.0 if scores[pair] is None else scores[pair])

    scores = {(base, m): trial(base, m) for m in SWEEP_BN_MOMENTA}
    _, momentum = best(scores)
    scores.update({(base * f, momentum): trial(base * f, momentum) for f in SWEEP_LR_FACTORS})
    lr, momentum = best(scores)
    return trials, lr, momentum


def follow(name: str, command: List[str], env: Dict[str, str], budget: float, threads: int,
           log: Path, append: bool = False) -> Tuple[Curve, Ended]:
    """Run ``command`` until it ends or reaches ``budget`` seconds of training time,
    timestamping its output. Returns the validation curve (``train_s``, ``wall_s``, ``epoch``,
    ``mAP`` per validation) and when and how the run ended."""
    environ = {**os.environ, "OMP_NUM_THREADS": str(threads), **env}
    curve: Curve = []
    evaluating_since: Optional[float] = None
    evaluation = 0.0  # seconds spent validating so far
    start = time.monotonic()
    process = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert process.stdout is not None
    stopped_at: Optional[float] = None  # training time when it was told to stop
    try:
        with log.open("a" if append else "w") as out:
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
                                      "epoch": int(found.group(1)), "mAP": float(found.group(2))})
                        print(f"  {name}: {train_s:6.1f} s of training, epoch "
                              f"{curve[-1]['epoch']}, mAP {curve[-1]['mAP']:.4f}", flush=True)
                # The output arrives at least once per epoch (loss lines every 20 batches).
                trained = now - start - evaluation
                if stopped_at is None and evaluating_since is None and trained > budget:
                    stopped_at = trained
                    process.send_signal(signal.SIGTERM)  # the job saves a checkpoint and exits
    finally:
        if process.poll() is None and stopped_at is None:  # interrupted: leave no job behind
            process.terminate()
    process.wait()
    end = time.monotonic()
    if evaluating_since is not None:  # ended while validating: that time is not training
        evaluation += end - evaluating_since
    if process.returncode not in (0, -signal.SIGTERM) and not curve:
        sys.exit(f"{name} failed (exit {process.returncode}); see {log}")
    if stopped_at is not None:
        how, trained = "stopped for its budget", stopped_at
    else:
        how = "finished" if process.returncode == 0 else f"failed (exit {process.returncode})"
        trained = end - start - evaluation
    return curve, {"train_s": round(trained, 2), "wall_s": round(end - start, 2), "how": how}


# --- results ------------------------------------------------------------------------------------

def summarise(curve: Curve, ended: Ended, target: float, at: float) -> Dict[str, Any]:
    reached = next((point for point in curve if point["mAP"] >= target), None)
    before = [point for point in curve if point["train_s"] <= at]
    gaps = [b["train_s"] - a["train_s"] for a, b in zip(curve, curve[1:])]
    return {
        "time_to_target_s": reached["train_s"] if reached else None,
        "best_mAP": max((point["mAP"] for point in curve), default=None),
        "final_mAP": curve[-1]["mAP"] if curve else None,
        "mAP_at_report": before[-1]["mAP"] if before else None,
        "ended": ended,
        "validations": len(curve),
        "seconds_between_validations": round(sum(gaps) / len(gaps), 2) if gaps else None,
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
        text += f"; {result['ended']['how']} at {result['ended']['train_s']:.0f} s"
        pen.line([(left + 12, top + 14 + 16 * n), (left + 36, top + 14 + 16 * n)],
                 fill=colours[name], width=2)
        pen.text((left + 42, top + 8 + 16 * n), text, fill="black", font=font)
    pen.text((left, 12), "VOC07 mAP (held-out images) against training time, 2-core CPU",
             fill="black", font=font)
    pen.text((left + plot_w // 2 - 80, height - 28), "training time (validation excluded)",
             fill="black", font=font)
    image.save(path)


def torchvision_recipe(args: argparse.Namespace, lr: float, bn_momentum: float
                       ) -> Dict[str, Any]:
    return {"model": "ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, "
                     f"num_classes={CLASSES + 1}), transform resized to {args.image_size}",
            "image_size": args.image_size,
            "augmentation": "RandomIoUCrop, RandomHorizontalFlip(0.5), ToDtype(float32, "
                            "scale=True), SanitizeBoundingBoxes",
            "optimizer": "sgd", "momentum": 0.9, "weight_decay": 4e-5,
            "batch": args.batch, "learning_rate": lr, "bn_momentum": bn_momentum,
            "schedule": "linear warm-up from 0.001x over min(1000, one epoch) iterations, "
                        "cosine annealing to 0 over the budget's training time",
            "evaluation": "after every epoch; model defaults: score 0.001, NMS 0.55, "
                          "300 detections"}


def kept_side(path: Path, side: str, settings: Dict[str, Any], image_size: int
              ) -> Optional[Dict[str, Any]]:
    """The last report at ``path``, to keep ``side`` from, when that report used the same
    data, threads and machine (``settings``) and ``side`` trained at ``image_size`` (else
    None)."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    part = previous.get(side, {})
    size = (part.get("hyperparameters", {}).get("image_shape") if side == "ours"
            else part.get("recipe", {}).get("image_size"))
    if any(previous.get(key) != value for key, value in settings.items()) or \
            not part.get("curve") or side not in previous.get("runs", {}) or \
            str(size) != str(image_size):
        return None
    return previous


def report_line(name: str, result: Dict[str, Any], budget: float, at: float) -> str:
    reached = result["time_to_target_s"]
    ended = result["ended"]
    after = f"{result['mAP_at_report']}"
    if ended["train_s"] <= at:
        after += f" (its final mAP: it {ended['how']} at {ended['train_s']:.0f} s)"
    return (f"  {name:12s} {f'{reached:.0f} s' if reached is not None else 'not reached':>12s}"
            f"   budget {budget:.0f} s, {ended['how']} at {ended['train_s']:.0f} s;"
            f" mAP after {at:.0f} s {after}; best {result['best_mAP']}; validated every "
            f"{result['seconds_between_validations']} s")


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
    parser.add_argument("--min-size", type=float, default=None,
                        help="smallest shape, as a fraction of the shorter side (synth's "
                             "--min-size; default: synth's)")
    parser.add_argument("--target", type=float, default=0.8, help="VOC07 mAP to reach")
    parser.add_argument("--threads", type=int, default=2, help="compute threads of each run")
    parser.add_argument("--preset", default=PRESET,
                        help="our hyperparameters: a job preset's (default %(default)s)")
    parser.add_argument("--hp", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of the preset's hyperparameters (repeatable)")
    parser.add_argument("--batch", type=int, default=None,
                        help="torchvision's batch (default: ours, mini_batch_size)")
    parser.add_argument("--torchvision-lr", type=float, default=None,
                        help="torchvision's learning rate, without the sweep")
    parser.add_argument("--torchvision-bn-momentum", type=float, default=None,
                        help="torchvision's BatchNorm momentum, without the sweep")
    parser.add_argument("--sweep-epochs", type=int, default=5,
                        help="epochs of each tuning trial (default 5, as ours' were judged)")
    parser.add_argument("--only", choices=("ours", "torchvision"), default=None,
                        help="run one side; the other is kept from the last report if that "
                             "used the same data, threads, image size and machine")
    parser.add_argument("--results", type=Path, default=result_files.RESULTS)
    args = parser.parse_args()
    if (args.torchvision_lr is None) != (args.torchvision_bn_momentum is None):
        parser.error("give both --torchvision-lr and --torchvision-bn-momentum, or neither "
                     "(the sweep)")
    args.budget_torchvision = args.budget_torchvision or args.budget
    budgets = {"ours": args.budget, "torchvision": args.budget_torchvision}

    hyperparameters = our_hyperparameters(args.preset, args.hp, args.threads)
    args.image_size = int(hyperparameters["image_shape"])
    if args.batch is None:
        args.batch = int(hyperparameters["mini_batch_size"])
    args.workers = int(hyperparameters["num_workers"])  # data loader workers, the same for both
    args.results.mkdir(parents=True, exist_ok=True)
    data_settings = {"train_images": args.train_images, "validation_images": args.validation_images,
                     "classes": CLASSES, "image_size": list(IMAGE_SIZE),
                     "train_seed": TRAIN_SEED, "validation_seed": VALIDATION_SEED,
                     **({} if args.min_size is None else {"min_size": args.min_size})}
    results: Dict[str, Dict[str, Any]] = {}
    runs: Dict[str, Dict[str, str]] = {}
    recipe: Dict[str, Any] = {}
    sweep: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "opt-ml"
        data = make_data(root, args.train_images, args.validation_images, args.min_size)
        for name in ("ours", "torchvision"):
            if args.only not in (None, name):
                continue
            log = args.results / f"time_to_accuracy_{name}.log"
            runs[name] = {"command": result_files.command(), "date": result_files.now()}
            if name == "ours":
                print(f"ours: training for {budgets[name]:.0f} s", flush=True)
                curve, ended = run_ours(root, hyperparameters, budgets[name], args.threads, log)
            else:
                lr, momentum = args.torchvision_lr, args.torchvision_bn_momentum
                if lr is None:
                    print(f"torchvision: tuning, {args.sweep_epochs} epochs a trial", flush=True)
                    sweep, lr, momentum = sweep_torchvision(
                        data, args, args.results / "time_to_accuracy_torchvision_sweep.log")
                recipe = torchvision_recipe(args, lr, momentum)
                print(f"torchvision: training for {budgets[name]:.0f} s with lr {lr:g}, "
                      f"BatchNorm momentum {momentum:g}", flush=True)
                curve, ended = run_torchvision(data, args, lr, momentum, log)
            results[name] = summarise(curve, ended, args.target, args.report_at)

    if args.only:
        other = "torchvision" if args.only == "ours" else "ours"
        # The other side's run is kept from the last report if it ran in the same set-up.
        previous = kept_side(args.results / "time_to_accuracy.json", other, {
            "data": data_settings, "threads": args.threads, "machine": result_files.machine()},
            args.image_size)
        if previous is None:
            print(f"{other}: not kept (no report of the same set-up)", flush=True)
        else:
            part = previous[other]
            results[other] = summarise(part["curve"], part["ended"], args.target,
                                       args.report_at)
            budgets[other] = previous["budget_s"][other]
            runs[other] = previous["runs"][other]
            if other == "ours":
                hyperparameters = part["hyperparameters"]
            else:
                recipe, sweep = part["recipe"], part["sweep"]
            print(f"{other}: kept from the run of {runs[other]['date']}", flush=True)

    print(f"\ntime to VOC07 mAP >= {args.target} (training time):")
    for name, result in results.items():
        print(report_line(name, result, budgets[name], args.report_at))
    ratio = ratio_bound = None
    if len(results) == 2 and results["ours"]["time_to_target_s"]:
        ours_s = results["ours"]["time_to_target_s"]
        theirs_s = results["torchvision"]["time_to_target_s"]
        if theirs_s:
            ratio = ours_s / theirs_s
            print(f"  ratio ours / torchvision: {ratio:.2f} (goal <= 0.5)")
        else:  # theirs did not get there while it trained: their time is longer than that
            ratio_bound = ours_s / results["torchvision"]["ended"]["train_s"]
            print(f"  ratio ours / torchvision: below {ratio_bound:.2f} (torchvision did not "
                  f"reach {args.target} in its {results['torchvision']['ended']['train_s']:.0f}"
                  f" s of training; goal <= 0.5)")
    report = {
        "runs": runs,
        "budget_s": budgets, "target_mAP": args.target, "report_at_s": args.report_at,
        "threads": args.threads,
        "data": data_settings,
        **({"ours": {"hyperparameters": hyperparameters, **results["ours"]}}
           if "ours" in results else {}),
        **({"torchvision": {"recipe": recipe, "sweep": sweep, **results["torchvision"]}}
           if "torchvision" in results else {}),
        "ratio": ratio,
        "ratio_upper_bound": ratio_bound,
    }
    result_files.write(args.results / "time_to_accuracy.json", report, RESULT_KEYS)
    if results:
        draw(results, args.target, max(budgets.values()), args.results / "time_to_accuracy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
