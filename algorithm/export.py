"""Exporting a model with its post-processing: one ONNX or TorchScript file, images in,
detections out. See docs/export.md.

The exported graph (:class:`DetectionGraph`):

- input ``images``: Tensor[N, 3, S, S] float32, RGB in ``[0, 1]``, ``S = image_shape``, already
  resized (stretched) to S x S; the graph normalises them (the model's ``image_mean`` and
  ``image_std``) but does not resize them. ``N`` is free.
- outputs ``detections`` Tensor[N, D, 6] float32, rows ``(class_id, score, xmin, ymin, xmax,
  ymax)`` as an endpoint answers them (``class_id`` from 0, coordinates normalised to [0, 1],
  best first), padded with ``(-1, 0, 0, 0, 0, 0)`` rows; ``counts`` Tensor[N] int64, the
  detections of each image. ``D = max_detections`` (200) unless the model has fewer (class,
  default box) pairs.

The post-processing is :func:`~algorithm.ssd.graph_postprocess.padded_detections` with the
endpoint's defaults: score threshold 0.01, the model's ``nms_threshold``, 400 candidates per
class, 200 detections.

ONNX files come from torch's TorchScript-based exporter (``dynamo=False``; opset
:data:`ONNX_OPSET`), which turns the NMS into ONNX's ``NonMaxSuppression``. TorchScript files
come from ``torch.jit.trace``; loading one needs torchvision imported first (its ``nms``
operator), which :func:`load_torchscript` does.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision  # noqa: F401  (registers torchvision::nms, which the graphs call)
from torch import Tensor, nn

from algorithm import artifact
from algorithm.hyperparameters import Hyperparameters
from algorithm.inference import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD
from algorithm.ssd import SSD
from algorithm.ssd.graph_postprocess import padded_detections

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 16
TOP_K = 400  # candidates per class and image before NMS, as SSD.detect and the endpoint
INPUT_NAME = "images"
OUTPUT_NAMES = ("detections", "counts")
# The TorchScript file's extra file holding :func:`describe`'s description.
METADATA_FILE = "detectctl.json"
# The batch size the graph is traced with: not 1, so that nothing specific to one image is
# recorded (the batch size stays free).
_TRACE_BATCH = 2


class ExportError(ValueError):
    """The model cannot be exported as asked."""


class DetectionGraph(nn.Module):
    """An SSD and its post-processing as one module: ``images`` -> ``(detections, counts)``.

    Args:
        model: the detector (eval mode is set here).
        nms_threshold, score_threshold, top_k, max_detections: the post-processing's settings
            (:func:`~algorithm.ssd.graph_postprocess.padded_detections`).
    """

    def __init__(self, model: SSD, nms_threshold: float,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD, top_k: int = TOP_K,
                 max_detections: int = DEFAULT_MAX_DETECTIONS):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.nms_threshold = nms_threshold
        self.score_threshold = score_threshold
        self.top_k = top_k
        self.max_detections = max_detections

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """``images`` (Tensor[N, 3, S, S], RGB in [0, 1]) -> ``detections`` (Tensor[N, D, 6])
        and ``counts`` (Tensor[N] int64); see the module's description."""
        cls_logits, box_regression = self.model(images)
        return padded_detections(cls_logits, box_regression, self.model.anchors,
                                 self.score_threshold, self.nms_threshold, self.top_k,
                                 self.max_detections)


def describe(graph: DetectionGraph, hyperparameters: Hyperparameters,
             classes: Sequence[str]) -> Dict[str, Any]:
    """What an exported file takes and returns, as the CLI prints it and the TorchScript file
    carries it (:data:`METADATA_FILE`)."""
    s = graph.model.image_shape
    d = min(graph.max_detections, graph.model.num_classes * graph.model.anchors.shape[0])
    return {
        "base_network": hyperparameters.base_network,
        "image_shape": s,
        "classes": list(classes),
        "input": {"name": INPUT_NAME, "shape": ["N", 3, s, s], "dtype": "float32",
                  "values": "RGB in [0, 1], resized to image_shape x image_shape; "
                            "normalised inside"},
        "outputs": [
            {"name": OUTPUT_NAMES[0], "shape": ["N", d, 6], "dtype": "float32",
             "rows": "class_id, score, xmin, ymin, xmax, ymax; best first; padding rows "
                     "-1, 0, 0, 0, 0, 0"},
            {"name": OUTPUT_NAMES[1], "shape": ["N"], "dtype": "int64",
             "values": "detections of each image"},
        ],
        "score_threshold": graph.score_threshold,
        "nms_threshold": graph.nms_threshold,
        "top_k": graph.top_k,
        "max_detections": graph.max_detections,
    }


def export(graph: DetectionGraph, fmt: str, output: Path,
           metadata: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``graph`` as ``fmt`` ("onnx" or "torchscript") to ``output``, atomically (a
    temporary file beside it, then a rename): an interrupted export leaves no partial file.
    ``metadata`` goes into a TorchScript file as :data:`METADATA_FILE`."""
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    output = Path(output)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    example = torch.from_numpy(example_images(graph.model.image_shape, _TRACE_BATCH))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns that the model's shape checks and the post-processing's sizes
            # become constants: they depend on image_shape and the classes only, which a
            # graph has fixed anyway. The batch size stays free (tested).
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            if fmt == "onnx":
                export_onnx_module(graph, (example,), (INPUT_NAME,), partial)
            else:
                _export_torchscript(graph, example, partial, metadata or {})
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()
    return output


def export_onnx_module(module: nn.Module, inputs: Tuple[Tensor, ...], names: Sequence[str],
                       path: Path) -> None:
    """Write ``module`` (returning ``(detections, counts)``) as ONNX to ``path``: inputs named
    ``names``, every input's and output's first dimension free. Used for the graph, and by the
    tests for the post-processing alone."""
    options: Dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The TorchScript-based exporter: it turns multiclass_nms into NonMaxSuppression
        # (a symbolic function); the torch.export-based one (the default since torch 2.9)
        # would need an ONNX translation written with onnxscript.
        options["dynamo"] = False
    free = {name: {0: "N"} for name in (*names, *OUTPUT_NAMES)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=".*TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=".*feature will be removed.*")
        warnings.filterwarnings("ignore", category=UserWarning,
                                message=".*aten::index operator of advanced indexing.*")
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, inputs, str(path), opset_version=ONNX_OPSET,
                          input_names=list(names), output_names=list(OUTPUT_NAMES),
                          dynamic_axes=free, **options)


def _export_torchscript(graph: DetectionGraph, example: Tensor, path: Path,
                        metadata: Dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated.*")
        traced = torch.jit.trace(graph, (example,), check_trace=False)
        torch.jit.save(traced, str(path),
                       _extra_files={METADATA_FILE: json.dumps(metadata, indent=2)})


def load_torchscript(path: Path) -> Tuple[Any, Dict[str, Any]]:
    """An exported TorchScript file's module (eval mode) and its description."""
    extra = {METADATA_FILE: ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated.*")
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module.eval(), json.loads(extra[METADATA_FILE] or "{}")


def run_torchscript(path: Path, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(detections, counts)`` of an exported TorchScript file for ``images``
    (ndarray[N, 3, S, S] float32)."""
    module, _ = load_torchscript(path)
    with torch.no_grad():
        detections, counts = module(torch.from_numpy(images))
    return detections.numpy(), counts.numpy()


def example_images(image_shape: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` images as the graph takes them (ndarray[count, 3, S, S] float32 in [0, 1]):
    smooth colour fields with noise, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((count, 3, 4, 4), dtype=np.float32))
    smooth = nn.functional.interpolate(coarse, size=(image_shape, image_shape),
                                       mode="bilinear", align_corners=False)
    noise = torch.from_numpy(rng.normal(0.0, 0.05, smooth.shape).astype(np.float32))
    return (smooth + noise).clamp_(0.0, 1.0).numpy()


def export_artifact(source: Path, fmt: str, output: Path) -> Dict[str, Any]:
    """Export the model artifact ``source`` (a directory or a model.tar.gz) to ``output`` as
    ``fmt``; returns the file's description (:func:`describe`) with ``format`` and, for ONNX,
    ``opset``: what the file carries."""
    model, hp, classes = artifact.load(Path(source), torch.device("cpu"))
    graph = DetectionGraph(model, hp.nms_threshold)
    described = {"format": fmt, **describe(graph, hp, classes)}
    if fmt == "onnx":
        described["opset"] = ONNX_OPSET
    export(graph, fmt, output, described)
    return described


def graph_detections(source: Path, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(detections, counts)`` of the artifact ``source``'s :class:`DetectionGraph` in
    PyTorch for ``images`` (ndarray[N, 3, S, S] float32): what its exported file must give."""
    model, hp, _ = artifact.load(Path(source), torch.device("cpu"))
    with torch.no_grad():
        detections, counts = DetectionGraph(model, hp.nms_threshold)(torch.from_numpy(images))
    return detections.numpy(), counts.numpy()


def difference(expected: np.ndarray, found: np.ndarray, tolerance: float) -> Optional[str]:
    """How detections ``found`` (ndarray[K', 6]) differ from ``expected`` (ndarray[K, 6]), or
    None when they are the same: as many rows, the scores best first within ``tolerance``, and
    each expected row found with the same class and its score and box within ``tolerance``
    (rows of exactly equal scores may come in either order)."""
    if len(found) != len(expected):
        return f"{len(found)} detections instead of {len(expected)}" + _ties(expected)
    if not len(expected):
        return None
    gap = np.abs(found[:, 1] - expected[:, 1])
    if gap.max() > tolerance:
        i = int(gap.argmax())
        return (f"detection {i} scores {found[i, 1]:.6f} instead of {expected[i, 1]:.6f}"
                + _ties(expected))
    unused = np.ones(len(found), dtype=bool)
    for i, row in enumerate(expected):
        near = unused & (found[:, 0] == row[0]) & (
            np.abs(found[:, 1:] - row[1:]).max(axis=1) <= tolerance)
        if not near.any():
            return (f"no detection like {i}: class {int(row[0])}, score {row[1]:.6f}, box "
                    f"({', '.join(f'{v:.4f}' for v in row[2:])})" + _ties(expected))
        unused[np.flatnonzero(near)[0]] = False
    return None


def _ties(detections: np.ndarray) -> str:
    """A note when some of ``detections`` have exactly equal scores: which of several equal
    boxes NMS keeps, or which the detection limit cuts, is then arbitrary, and runtimes may
    choose differently (an untrained model's scores tie; a trained model's hardly ever do)."""
    tied = len(detections) - len(np.unique(detections[:, 1]))
    return f" ({tied} detections tie exactly in score with another)" if tied else ""
