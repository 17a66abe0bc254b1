"""Exported models on CPU: images/s of SSD300 VGG-16 through PyTorch eager, TorchScript and
onnxruntime (issue 14's benchmark).

    pip install 'detectctl[export]'
    python tests/benchmarks/export.py                      # batches 1 and 8, 2 threads
    python tests/benchmarks/export.py --threads 1 --rounds 3

The model: torchvision's ``ssd300_vgg16(weights=None, weights_backbone=None)`` with seed 0
(random weights, nothing downloaded) in our VGG-16/300 SSD (``from_torchvision``), 20 classes
(VOC), with the background bias of its classification head raised so that its scores look like
a trained VOC model's (about ``--candidates`` (box, class) scores above 0.01 per image: the
post-processing works as hard as on real outputs), saved as a model artifact and exported with
``algorithm.export`` (what ``detectctl model export`` runs). The images: ``--images`` JPEGs of
the synthetic-shapes dataset at 500x375, decoded and resized by the server's own code
(``Predictor.prepare``); every lane gets the same tensors.

Lanes, each with ``--threads`` threads (torch's intra-op threads; onnxruntime's
``intra_op_num_threads``, sequential execution):

- ``eager``: what an endpoint runs, ``Predictor.detect_batch`` (the model in channels-last,
  then the server's post-processing);
- ``eager_graph``: the exported graph's module (``DetectionGraph``) in PyTorch eager: the
  model as loaded and the fixed-shape post-processing;
- ``torchscript``: the exported TorchScript file (``torch.jit.load``);
- ``onnxruntime``: the exported ONNX file (default graph optimisations).

Lanes take turns within each of ``--rounds`` rounds (after ``--warmup`` untimed rounds, which
TorchScript's profiling executor needs), so that the machine's drift hits them alike; each
figure is the median over the rounds of (images / seconds of the round). Also measured: the two
post-processings alone on the same head outputs, and whether the exported files give the
endpoint's detections (scores and boxes within 1e-4). Prints a table and writes
tests/benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from torchvision.models.detection import ssd300_vgg16

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from algorithm import artifact, export, inference  # noqa: E402
from algorithm.ssd import from_torchvision  # noqa: E402
from algorithm.ssd.graph_postprocess import padded_detections  # noqa: E402
from algorithm.ssd.postprocess import postprocess_detections  # noqa: E402
from detectctl.datasets.synth import synth_image  # noqa: E402
from tests.benchmarks import result_files  # noqa: E402

CLASSES = 20
HYPERPARAMETERS = {"base_network": "vgg-16", "image_shape": "300", "num_classes": str(CLASSES)}
TOLERANCE = 1e-4
LANES = ("eager", "eager_graph", "torchscript", "onnxruntime")
RESULT_FILES = ["export.json"]
RESULT_KEYS = {
    "threads": "int", "images": "int", "rounds": "int", "model": "str",
    "onnxruntime": "str", "opset": "int", "background_bias": "number",
    "candidates_per_image": "number", "detections_per_image": "number",
    "export_s": {"onnx": "number", "torchscript": "number"},
    "file_mb": {"onnx": "number", "torchscript": "number"},
    "same_detections": {"torchscript": "bool", "onnxruntime": "bool"},
    "largest_difference": {"torchscript": "number", "onnxruntime": "number"},
    "postprocess_ms_per_image": {"server": "number", "graph": "number"},
    "batches": {"*": {
        "eager": {"images_per_s": "number", "ms_per_image": "number"},
        "eager_graph": {"images_per_s": "number", "ms_per_image": "number"},
        "torchscript": {"images_per_s": "number", "ms_per_image": "number"},
        "onnxruntime": {"images_per_s": "number", "ms_per_image": "number"},
    }},
    "ratios": {"*": {"torchscript_over_eager": "number", "onnxruntime_over_eager": "number",
                     "onnxruntime_over_torchscript": "number",
                     "eager_graph_over_eager": "number"}},
}


def make_model():
    """The VGG-16/300 SSD described above (eval mode)."""
    torch.manual_seed(0)
    theirs = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=CLASSES + 1)
    return from_torchvision(theirs.state_dict(), num_classes=CLASSES).eval()


def raise_background(model, pixels: np.ndarray, candidates: float) -> float:
    """Add to the background logit of every default box (the bias of the head's background
    channels) the amount that leaves about ``candidates`` (box, class) scores above 0.01 per
    image on ``pixels``; returns it."""
    with torch.no_grad():
        logits = model(torch.from_numpy(pixels))[0]

    def count(bias: float) -> float:
        shifted = logits.clone()
        shifted[..., 0] += bias
        return float((torch.softmax(shifted, dim=2)[..., 1:] > 0.01).sum()) / len(pixels)

    low, high = 0.0, 40.0
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if count(middle) > candidates else (low, middle)
    bias = (low + high) / 2
    with torch.no_grad():
        for layer in model.head.classification:
            layer.bias.view(-1, CLASSES + 1)[:, 0] += bias
    return bias


def prepared_images(count: int, predictor) -> np.ndarray:
    """``count`` synthetic 500x375 JPEGs, decoded and resized as the server does."""
    pixels = []
    for index in range(count):
        data, _ = synth_image(index, 11, 6, (500, 375))
        pixels.append(predictor.prepare(inference.input_fn(data, "image/jpeg")).numpy())
    return np.stack(pixels)


def lanes(predictor, graph, module, session) -> Dict[str, Callable]:
    """One function per lane: a batch (ndarray[B, 3, 300, 300]) -> its detections."""
    options = inference.DetectionOptions()

    def eager(batch):
        return predictor.detect_batch(list(torch.from_numpy(batch)), [options] * len(batch))

    def eager_graph(batch):
        with torch.no_grad():
            return graph(torch.from_numpy(batch))

    def torchscript(batch):
        with torch.no_grad():
            return module(torch.from_numpy(batch))

    def onnxruntime(batch):
        return session.run(None, {export.INPUT_NAME: batch})

    return {"eager": eager, "eager_graph": eager_graph, "torchscript": torchscript,
            "onnxruntime": onnxruntime}


def measure(functions: Dict[str, Callable], pixels: np.ndarray, batch: int, rounds: int,
            warmup: int) -> Dict[str, Dict[str, float]]:
    """Median images/s of each lane over ``rounds`` interleaved rounds of all images."""
    batches = [pixels[i:i + batch] for i in range(0, len(pixels), batch)]
    rates: Dict[str, List[float]] = {name: [] for name in functions}
    for round_ in range(warmup + rounds):
        for name, run in functions.items():
            start = time.perf_counter()
            for b in batches:
                run(b)
            seconds = time.perf_counter() - start
            if round_ >= warmup:
                rates[name].append(len(pixels) / seconds)
        print(f"  batch {batch}, round {round_ + 1}/{warmup + rounds}: "
              + ", ".join(f"{n} {r[-1]:.2f}/s" for n, r in rates.items() if r),
              file=sys.stderr, flush=True)
    return {name: {"images_per_s": statistics.median(r),
                   "ms_per_image": 1000 / statistics.median(r)} for name, r in rates.items()}


def parity(expected: List[np.ndarray], rows: np.ndarray, counts: np.ndarray):
    """(same detections, largest difference) of exported outputs against the endpoint's."""
    same, largest = True, 0.0
    for i, want in enumerate(expected):
        got = np.asarray(rows[i][: int(counts[i])])
        if export.difference(want, got, TOLERANCE) is not None:
            same = False
        elif len(want):
            # each expected row against its closest found row of the same class (rows of
            # exactly equal scores may come in either order)
            for row in want:
                mine = got[got[:, 0] == row[0]]
                largest = max(largest, float(np.abs(mine[:, 1:] - row[1:]).max(axis=1).min()))
    return same, largest


def postprocess_times(model, pixels: np.ndarray, nms_threshold: float, repeats: int = 5):
    """Median ms per image of the server's and the graph's post-processing on the same head
    outputs (batch of all images), interleaved."""
    with torch.no_grad():
        logits, regression = model(torch.from_numpy(pixels))
    runs = {"server": lambda: postprocess_detections(logits, regression, model.anchors,
                                                     nms_threshold=nms_threshold),
            "graph": lambda: padded_detections(logits, regression, model.anchors,
                                               nms_threshold=nms_threshold)}
    times: Dict[str, List[float]] = {name: [] for name in runs}
    for _ in range(repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t[1:]) / len(pixels) for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--candidates", type=float, default=1800.0,
                        help="(box, class) scores above 0.01 per image, as a trained VOC model")
    parser.add_argument("--output", type=Path, default=result_files.RESULTS / "export.json")
    args = parser.parse_args(argv)
    import onnxruntime

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="detectctl-export-bench-"))
    model = make_model()
    artifact.save(work / "model", model, dict(HYPERPARAMETERS), None)
    pixels = prepared_images(args.images, inference.model_fn(str(work / "model")))
    bias = raise_background(model, pixels, args.candidates)
    artifact.save(work / "model", model, dict(HYPERPARAMETERS), None)

    files, export_s = {}, {}
    for fmt, name in (("onnx", "model.onnx"), ("torchscript", "model.pt")):
        start = time.perf_counter()
        files[fmt] = work / name
        export.export_artifact(work / "model", fmt, files[fmt])
        export_s[fmt] = time.perf_counter() - start
    predictor = inference.model_fn(str(work / "model"))
    loaded, hp, _ = artifact.load(work / "model")
    graph = export.DetectionGraph(loaded, hp.nms_threshold)
    module, _ = export.load_torchscript(files["torchscript"])
    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = args.threads
    settings.inter_op_num_threads = 1
    settings.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(str(files["onnx"]), settings,
                                           providers=["CPUExecutionProvider"])
    functions = lanes(predictor, graph, module, session)

    expected = functions["eager"](pixels)
    checks = {}
    for lane in ("torchscript", "onnxruntime"):
        rows, counts = functions[lane](pixels)
        checks[lane] = parity(expected, np.asarray(rows), np.asarray(counts))
    with torch.no_grad():
        logits = loaded(torch.from_numpy(pixels))[0]
    candidates = float((torch.softmax(logits, dim=2)[..., 1:] > 0.01).sum()) / len(pixels)

    batches, ratios = {}, {}
    for size in args.batch_sizes:
        figures = measure(functions, pixels, size, args.rounds, args.warmup)
        rate = {name: figures[name]["images_per_s"] for name in LANES}
        batches[str(size)] = figures
        ratios[str(size)] = {
            "torchscript_over_eager": rate["torchscript"] / rate["eager"],
            "onnxruntime_over_eager": rate["onnxruntime"] / rate["eager"],
            "onnxruntime_over_torchscript": rate["onnxruntime"] / rate["torchscript"],
            "eager_graph_over_eager": rate["eager_graph"] / rate["eager"]}
    report = {
        "threads": args.threads, "images": args.images, "rounds": args.rounds,
        "model": "SSD300 VGG-16, 20 classes, random weights (seed 0), background bias raised",
        "onnxruntime": onnxruntime.__version__, "opset": export.ONNX_OPSET,
        "background_bias": bias, "candidates_per_image": candidates,
        "detections_per_image": sum(len(e) for e in expected) / len(expected),
        "export_s": export_s,
        "file_mb": {fmt: files[fmt].stat().st_size / 2**20 for fmt in files},
        "same_detections": {lane: checks[lane][0] for lane in checks},
        "largest_difference": {lane: checks[lane][1] for lane in checks},
        "postprocess_ms_per_image": postprocess_times(loaded, pixels, hp.nms_threshold),
        "batches": batches, "ratios": ratios,
    }
    _table(report)
    result_files.write(args.output, report, RESULT_KEYS)
    print(f"wrote {args.output}")
    return 0


def _table(report) -> None:
    print(f"SSD300 VGG-16, {report['threads']} threads, {report['images']} images, "
          f"{report['candidates_per_image']:.0f} candidates and "
          f"{report['detections_per_image']:.0f} detections per image")
    print(f"{'batch':>5}  " + "  ".join(f"{lane:>12}" for lane in LANES)
          + "  (images/s)  ts/eager  ort/eager  ort/ts")
    for size, figures in report["batches"].items():
        r = report["ratios"][size]
        print(f"{size:>5}  " + "  ".join(f"{figures[lane]['images_per_s']:>12.2f}"
                                        for lane in LANES)
              + f"  {'':>10}  {r['torchscript_over_eager']:>8.3f}  "
                f"{r['onnxruntime_over_eager']:>9.3f}  {r['onnxruntime_over_torchscript']:>6.3f}")
    pp = report["postprocess_ms_per_image"]
    print(f"post-processing per image: server {pp['server']:.2f} ms, graph {pp['graph']:.2f} ms")
    for lane in ("torchscript", "onnxruntime"):
        print(f"{lane}: same detections as the endpoint: {report['same_detections'][lane]} "
              f"(largest difference {report['largest_difference'][lane]:.1e})")


if __name__ == "__main__":
    sys.exit(main())
