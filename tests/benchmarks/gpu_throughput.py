"""Training throughput on one GPU (issue 5, benchmark 4): images/s per GPU with AMP.

    python tests/benchmarks/gpu_throughput.py [--batch 32] [--steps 40] [--precisions auto]
        [--job]

For each configuration (SSD300 ResNet-50 and SSD512 VGG-16 by default) and precision, one
training step is what the job does per batch: forward under autocast, the default boxes' targets
(matched beforehand on the CPU, as the job's loader does) copied over, ``multibox_loss_from``,
backward, SGD with momentum; channels_last; random weights, images already on the GPU (no
decoding: the figure is the model's, as NVIDIA quotes for its SSD300), 1 to 8 random boxes per
image. Each figure is the mean over ``--steps`` steps queued back to back after ``--warmup``, as
the job runs them (the GPU synchronised only before and after). Precision ``auto`` is the job's
choice (bf16 where the card has it, else fp16 with loss scaling); ``float16`` is the V100's path
on any card; ``off`` is float32. Three more timings: the step with the matching done on the GPU
inside it (the job's earlier way), the network alone (forward and backward with a trivial loss)
and the loss alone (no backward).

``--job`` also runs the real training job on the GPU on a little synthetic data, as a smoke test
of its CUDA paths: once as the plain job with ``amp=1``; once as a one-worker DDP job over NCCL
(tests/benchmarks/ddp_one_gpu.py) in fp16 with loss scaling, stopped after 2 epochs and resumed
from its checkpoint for a third; then the inference handlers serve the first job's model on the
GPU (median latency of 20 JPEG requests). Writes results/gpu_throughput.json (the card's name
under ``machine.gpu``), after each configuration, so a run cut short keeps what it measured.
Never part of CI.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algorithm import amp, checkpoints  # noqa: E402
from algorithm.metrics import METRIC_REGEXES  # noqa: E402
from algorithm.ssd import (  # noqa: E402
    DefaultBoxes,
    MatchedTargets,
    build_ssd,
    match_targets,
    multibox_loss,
    multibox_loss_from,
)
from tests.benchmarks import result_files  # noqa: E402

CONFIGS = {"resnet-50:300": ("resnet-50", 300), "vgg-16:512": ("vgg-16", 512),
           "vgg-16:300": ("vgg-16", 300), "mobilenet-v3-large:320": ("mobilenet-v3-large", 320)}
CLASSES = 20
RESULT_FILES = ["gpu_throughput.json"]
RESULT_KEYS = {
    "device": "str",
    "results": [{"network": "str", "image_shape": "int", "batch": "int", "precision": "str",
                 "amp": "str", "step_s": "number", "images_per_s": "number",
                 "matching_on_device_step_s": "number", "network_only_s": "number",
                 "loss_only_s": "number", "max_memory_gib?": "number"}],
    "job?": {
        "plain_amp": {"exit_code": "int", "seconds": "number",
                      "throughput_images_per_s": ["number"], "validation_mAP": ["number"],
                      "model_loadable": "bool", "tail?": "str", "precision_logged": ["str"]},
        "serving?": {"device": "str", "median_latency_ms": "number", "detections": "int",
                     "rows_of_6": "bool"},
        "ddp_nccl_fp16": {"exit_code": "int", "seconds": "number",
                          "throughput_images_per_s": ["number"], "validation_mAP": ["number"],
                          "model_loadable": "bool", "tail?": "str"},
        "ddp_nccl_fp16_resumed": {"exit_code": "int", "seconds": "number",
                                  "throughput_images_per_s": ["number"],
                                  "validation_mAP": ["number"], "model_loadable": "bool",
                                  "tail?": "str", "precision_logged": ["str"],
                                  "resumed": "bool", "replicas_checked": "bool"},
    },
}


def random_targets(batch: int, device: torch.device, generator: torch.Generator):
    counts = torch.randint(1, 9, (batch,), generator=generator)
    most = int(counts.max())
    centre = torch.rand(batch, most, 2, generator=generator) * 0.6 + 0.2
    size = torch.rand(batch, most, 2, generator=generator) * 0.4 + 0.05
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1).clamp(0, 1)
    labels = torch.randint(0, CLASSES, (batch, most), generator=generator)
    labels[torch.arange(most).view(1, -1) >= counts.view(-1, 1)] = -1
    return boxes.to(device), labels.to(device)


def precision_dtype(precision: str, device: torch.device):
    if precision == "auto":
        return amp.amp_dtype(True, device)  # as the job picks it
    return None if precision == "off" else getattr(torch, precision)


def throughput(network: str, shape: int, batch: int, steps: int, warmup: int, precision: str,
               device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_ssd(network, CLASSES, shape).to(device).train()
    use_cuda = device.type == "cuda"
    if use_cuda:
        model = model.to(memory_format=torch.channels_last)
    dtype = precision_dtype(precision, device) if use_cuda else None
    scaler = amp.grad_scaler(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, shape, shape, generator=generator).to(device)
    if use_cuda:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = [random_targets(batch, device, generator) for _ in range(8)]
    # The job's loader matches the default boxes on the CPU and hands over pinned tensors.
    anchors = model.default_boxes
    cpu_anchors = DefaultBoxes(anchors.boxes.cpu(), anchors.grid)
    matched = [match_targets(cpu_anchors, b.cpu(), lab.cpu()) for b, lab in targets]
    if use_cuda:
        matched = [MatchedTargets(*(t.pin_memory() for t in m)) for m in matched]

    def step(i: int) -> None:  # what the job does per batch
        with amp.autocast(device, dtype):
            cls_logits, box_regression = model(images)
        on_device = matched[i % len(matched)].to(device, non_blocking=True)
        losses = multibox_loss_from(cls_logits, box_regression, on_device)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_and_step(losses["cross_entropy"] + losses["smooth_l1"], optimizer, scaler)

    def step_matching_on_device(i: int) -> None:  # the job before the loader matched
        boxes, labels = targets[i % len(targets)]
        with amp.autocast(device, dtype):
            cls_logits, box_regression = model(images)
        losses = multibox_loss(cls_logits, box_regression, anchors, boxes, labels)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_and_step(losses["cross_entropy"] + losses["smooth_l1"], optimizer, scaler)

    def network_only(i: int) -> None:
        with amp.autocast(device, dtype):
            cls_logits, box_regression = model(images)
        loss = cls_logits.float().mean() + box_regression.float().mean()
        optimizer.zero_grad(set_to_none=True)
        amp.backward_and_step(loss, optimizer, scaler)

    with torch.no_grad(), amp.autocast(device, dtype):
        outputs = [t.detach() for t in model(images)]

    def loss_only(i: int) -> None:
        with torch.no_grad():
            multibox_loss_from(*outputs, matched[i % len(matched)].to(device, non_blocking=True))

    def timed(fn) -> float:
        """Seconds per call, calls queued back to back as in the job (one wait at the end)."""
        for i in range(warmup):
            fn(i)
        sync(device)
        start = time.perf_counter()
        for i in range(steps):
            fn(i)
        sync(device)
        return (time.perf_counter() - start) / steps

    seconds = timed(step)
    result = {"network": network, "image_shape": shape, "batch": batch, "precision": precision,
              "amp": str(dtype).replace("torch.", "") if dtype else "off",
              "step_s": seconds, "images_per_s": batch / seconds,
              "matching_on_device_step_s": timed(step_matching_on_device),
              "network_only_s": timed(network_only), "loss_only_s": timed(loss_only)}
    if use_cuda:
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    return result


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(root: Path, env: dict, command=None) -> dict:
    from tests.training.jobs import run_job

    started = time.monotonic()
    result = run_job(root, timeout=600, env=env, command=command)
    output = result.stdout + result.stderr
    found = re.findall(METRIC_REGEXES["train:throughput"], output)
    maps = re.findall(METRIC_REGEXES["validation:mAP"], output)
    model = root / "model" / "model.pt"
    loadable = False
    if model.is_file():
        checkpoints.load_file(model)  # weights_only, on the CPU
        loadable = True
    return {"exit_code": result.returncode, "seconds": round(time.monotonic() - started, 1),
            "throughput_images_per_s": [float(x) for x in found],
            "validation_mAP": [float(x) for x in maps],
            "model_loadable": loadable, "output": output}


def serve_smoke(model_dir: Path, requests: int = 20) -> dict:
    """The inference handlers on this machine's GPU: one 640 x 480 JPEG per request, as an
    endpoint serves it (decode, resize, detect, JSON)."""
    import io

    import numpy as np
    from PIL import Image

    from algorithm import inference

    predictor = inference.model_fn(str(model_dir))
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG")
    body = buffer.getvalue()

    def request() -> str:
        data = inference.input_fn(body, "image/jpeg")
        return inference.output_fn(inference.predict_fn(data, predictor), "application/json")

    for _ in range(3):
        request()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = json.loads(request())
        times.append(time.perf_counter() - start)
    rows = answer["prediction"]
    return {"device": str(predictor.device),
            "median_latency_ms": 1e3 * sorted(times)[len(times) // 2],
            "detections": len(rows), "rows_of_6": all(len(row) == 6 for row in rows)}


def job_smoke(config: str, images: int, batch: int) -> dict:
    """The real job on this machine's GPU, a few epochs of synthetic data."""
    from tests.training.jobs import make_job

    network, shape = CONFIGS[config]
    hyperparameters = dict(images=images, mini_batch_size=str(batch), image_shape=str(shape),
                           base_network=network, amp="1", num_workers="4")
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_job(Path(tmp) / "plain", epochs="3", **hyperparameters)
        plain = _run(root, {})
        plain["precision_logged"] = re.findall(r"precision: ([a-z0-9 ]+)", plain["output"])
        report["plain_amp"] = plain
        if plain["model_loadable"]:
            report["serving"] = serve_smoke(root / "model")

        root = make_job(Path(tmp) / "ddp", epochs="2", **hyperparameters)
        env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531",
               amp.DTYPE_VARIABLE: "float16"}
        command = [sys.executable, str(Path(__file__).with_name("ddp_one_gpu.py"))]
        first = _run(root, env, command)
        config_file = root / "input" / "config" / "hyperparameters.json"
        config_file.write_text(config_file.read_text().replace('"epochs": "2"', '"epochs": "3"'))
        second = _run(root, env, command)
        second["precision_logged"] = re.findall(r"precision: ([a-z0-9 ]+)", second["output"])
        second["resumed"] = "resumed from" in second["output"]
        second["replicas_checked"] = "model replicas are identical" in second["output"]
        report["ddp_nccl_fp16"] = first
        report["ddp_nccl_fp16_resumed"] = second
    for run in report.values():
        output = run.pop("output", "")
        if run.get("exit_code"):
            run["tail"] = output[-3000:]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["resnet-50:300", "vgg-16:512"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--precisions", nargs="+", default=["auto"],
                        choices=["auto", "float16", "bfloat16", "off"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--job", action="store_true", help="also smoke-test the real job")
    parser.add_argument("--job-config", default="resnet-50:300", choices=sorted(CONFIGS))
    parser.add_argument("--job-images", type=int, default=256)
    parser.add_argument("--json", type=Path,
                        default=result_files.RESULTS / "gpu_throughput.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    torch.backends.cudnn.benchmark = True
    report = {"device": str(device), "results": []}
    print(f"device: {card}, torch {torch.__version__}", flush=True)

    def save() -> None:
        result_files.write(args.json, report, RESULT_KEYS)

    for name in args.configs:
        network, shape = CONFIGS[name]
        for precision in args.precisions:
            result = throughput(network, shape, args.batch, args.steps, args.warmup, precision,
                                device)
            report["results"].append(result)
            print(f"{name:24s} batch {args.batch}  {result['amp']:8s} "
                  f"{result['images_per_s']:8.1f} images/s  ({result['step_s'] * 1e3:.1f} "
                  f"ms/step; matching in the step "
                  f"{result['matching_on_device_step_s'] * 1e3:.1f} ms; network alone "
                  f"{result['network_only_s'] * 1e3:.1f} ms, loss alone "
                  f"{result['loss_only_s'] * 1e3:.1f} ms)", flush=True)
            save()
    if args.job:
        report["job"] = job_smoke(args.job_config, args.job_images, args.batch)
        print("job:", json.dumps(report["job"], indent=1), flush=True)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
