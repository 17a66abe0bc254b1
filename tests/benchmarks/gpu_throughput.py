"""Training throughput on one GPU (issue 5, benchmark 4): images/s per GPU with AMP.

    python tests/benchmarks/gpu_throughput.py [--batch 32] [--steps 40] [--job]

For each configuration (SSD300 ResNet-50 and SSD512 VGG-16 by default) one training step is what
the job does per batch: forward under autocast (bf16 where the card supports it, else fp16 with
loss scaling), ``multibox_loss`` on the whole padded batch, backward, SGD with momentum;
channels_last; random weights, images already on the GPU (no decoding: the figure is the model's,
as NVIDIA quotes for its SSD300), 1 to 8 random boxes per image. Medians of ``--steps`` timed
steps after ``--warmup``, the GPU synchronised around each step.

``--job`` also runs the real training job (``python -m algorithm.train``) on the GPU with
``amp=1`` on a little synthetic data, as a smoke test of the job's AMP and CUDA path, and reports
its throughput line. Writes results/gpu_throughput.json with the card's name. Never part of CI.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algorithm import amp  # noqa: E402
from algorithm.ssd import build_ssd, multibox_loss  # noqa: E402

CONFIGS = {"resnet-50:300": ("resnet-50", 300), "vgg-16:512": ("vgg-16", 512),
           "vgg-16:300": ("vgg-16", 300), "mobilenet-v3-large:320": ("mobilenet-v3-large", 320)}
CLASSES = 20


def random_targets(batch: int, device: torch.device, generator: torch.Generator):
    counts = torch.randint(1, 9, (batch,), generator=generator)
    most = int(counts.max())
    centre = torch.rand(batch, most, 2, generator=generator) * 0.6 + 0.2
    size = torch.rand(batch, most, 2, generator=generator) * 0.4 + 0.05
    boxes = torch.cat((centre - size / 2, centre + size / 2), -1).clamp(0, 1)
    labels = torch.randint(0, CLASSES, (batch, most), generator=generator)
    labels[torch.arange(most).view(1, -1) >= counts.view(-1, 1)] = -1
    return boxes.to(device), labels.to(device)


def throughput(network: str, shape: int, batch: int, steps: int, warmup: int, use_amp: bool,
               device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_ssd(network, CLASSES, shape).to(device).train()
    use_cuda = device.type == "cuda"
    if use_cuda:
        model = model.to(memory_format=torch.channels_last)
    dtype = amp.amp_dtype(use_amp, device)  # as the job picks it
    scaler = amp.grad_scaler(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, shape, shape, generator=generator).to(device)
    if use_cuda:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = [random_targets(batch, device, generator) for _ in range(8)]

    def step(i: int) -> None:
        boxes, labels = targets[i % len(targets)]
        with amp.autocast(device, dtype):
            cls_logits, box_regression = model(images)
        losses = multibox_loss(cls_logits, box_regression, model.default_boxes, boxes, labels)
        loss = losses["cross_entropy"] + losses["smooth_l1"]
        optimizer.zero_grad(set_to_none=True)
        amp.backward_and_step(loss, optimizer, scaler)

    def sync() -> None:
        if use_cuda:
            torch.cuda.synchronize(device)

    for i in range(warmup):
        step(i)
    sync()
    times = []
    for i in range(steps):
        start = time.perf_counter()
        step(i)
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    result = {"network": network, "image_shape": shape, "batch": batch,
              "amp": str(dtype).replace("torch.", "") if dtype else "off",
              "step_s": median, "images_per_s": batch / median}
    if use_cuda:
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    return result


def job_smoke(use_amp: bool, config: str, images: int, batch: int) -> dict:
    """The real job on this machine's GPU, a few epochs of synthetic data."""
    from tests.training.jobs import make_job, run_job

    network, shape = CONFIGS[config]
    with tempfile.TemporaryDirectory() as tmp:
        root = make_job(Path(tmp), images=images, epochs="3", mini_batch_size=str(batch),
                        image_shape=str(shape), base_network=network, amp=str(int(use_amp)),
                        num_workers="4")
        started = time.monotonic()
        result = run_job(root, timeout=900)
        seconds = time.monotonic() - started
        output = result.stdout + result.stderr
        found = re.findall(r"train throughput=([0-9.]+) records/second", output)
        maps = re.findall(r"validation mAP <score>=\(([0-9.eE+-]+)\)", output)
        return {"exit_code": result.returncode, "seconds": round(seconds, 1),
                "throughput_images_per_s": float(found[-1]) if found else None,
                "last_validation_mAP": float(maps[-1]) if maps else None,
                "model_written": (root / "model" / "model.pt").is_file(),
                "tail": output[-3000:] if result.returncode else ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["resnet-50:300", "vgg-16:512"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-amp", dest="amp", action="store_false")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--job", action="store_true", help="also smoke-test the real job")
    parser.add_argument("--job-config", default="resnet-50:300", choices=sorted(CONFIGS))
    parser.add_argument("--job-images", type=int, default=256)
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "gpu_throughput.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    torch.backends.cudnn.benchmark = True
    report = {"card": card, "torch": torch.__version__,
              "cuda": torch.version.cuda, "results": []}
    print(f"device: {card}", flush=True)
    for name in args.configs:
        network, shape = CONFIGS[name]
        result = throughput(network, shape, args.batch, args.steps, args.warmup, args.amp,
                            device)
        report["results"].append(result)
        print(f"{name:24s} batch {args.batch}  amp {result['amp']:8s} "
              f"{result['images_per_s']:8.1f} images/s  ({result['step_s'] * 1e3:.1f} ms/step)",
              flush=True)
    if args.job:
        report["job"] = job_smoke(args.amp, args.job_config, args.job_images, args.batch)
        print("job:", json.dumps(report["job"]), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
