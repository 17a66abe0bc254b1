"""Exporting a trained model to ONNX or TorchScript: ``detectctl model export``.

A model is named as for ``model info``: a model.tar.gz (a path, or an S3 URI, downloaded first),
a model directory, or a training job. The export itself runs in the data plane
(:mod:`algorithm.export`, which needs torch: the ``train`` extra); ONNX files also need the
``onnx`` package and are checked with ``onnxruntime`` (the ``export`` extra).

The file is written under a temporary name beside ``output``, given its description (ONNX:
metadata properties; TorchScript: an extra file), checked, and only then renamed to
``output``: a failed or interrupted export leaves nothing at ``output``. The check runs the file
in its own runtime (onnxruntime, or TorchScript in torch) on two test images and compares its
detections with the same graph run in PyTorch (tests/export/ compare that graph with what an
endpoint answers).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import DetectctlError, MissingDependencyError, UsageError
from detectctl.s3uri import is_s3_uri, split_s3_uri

if TYPE_CHECKING:
    from detectctl.session import Session

FORMATS = ("onnx", "torchscript")
# Detections must agree to this (scores and normalised coordinates) for the check to pass.
CHECK_TOLERANCE = 1e-4
CHECK_IMAGES = 2
# The ONNX metadata property holding the file's description (JSON).
METADATA_KEY = "detectctl"


@dataclass
class ExportResult:
    """An exported model: where it went, what it takes and returns, how it was checked."""

    source: str
    artifact: str
    path: str
    description: dict[str, Any]
    checked: Optional[str] = None

    def summary(self) -> list[tuple[str, str]]:
        d = self.description
        inputs = d["input"]
        rows = [("file", self.path), ("format", d["format"] + (
            f" (opset {d['opset']})" if "opset" in d else "")), ("model", self.artifact),
            ("base network", d["base_network"]), ("classes", ", ".join(d["classes"])),
            ("input", f"{inputs['name']}: {_shape(inputs['shape'])} {inputs['dtype']}, "
                      f"{inputs['values']}")]
        rows += [("output", f"{o['name']}: {_shape(o['shape'])} {o['dtype']}")
                 for o in d["outputs"]]
        rows.append(("post-processing", f"score > {d['score_threshold']:g}, NMS "
                                        f"{d['nms_threshold']:g}, at most "
                                        f"{d['max_detections']} detections"))
        rows.append(("check", self.checked or "skipped (--no-check)"))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "artifact": self.artifact, "path": self.path,
                **self.description,
                "checked": self.checked}


def _shape(dims: list[Any]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _require(module: str, purpose: str, extra: str) -> None:
    if find_spec(module) is None:
        raise MissingDependencyError(f"{purpose} needs {module}, which is not installed",
                                     hint=f"pip install 'detectctl[{extra}]'")


def export_model(session: Session, source: str, fmt: str, output: str, *,
                 check: bool = True) -> ExportResult:
    """Export the model ``source`` names to ``output`` as ``fmt`` (see the module's
    description); ``check=False`` skips running the written file."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    target = Path(output).expanduser()
    if target.is_dir():
        raise UsageError(f"--output {output} is a directory; name the file to write")
    if not target.parent.is_dir():
        raise UsageError(f"--output {output}: no directory {target.parent}")
    for module in ("torch", "torchvision"):
        _require(module, "exporting a model", "train")
    if fmt == "onnx":
        _require("onnx", "an ONNX export", "export")
        if check:
            _require("onnxruntime", "checking an ONNX export", "export")
    from algorithm import export as exporter
    from algorithm.artifact import ArtifactError

    with ExitStack() as stack:
        artifact = _local_artifact(session, source, stack)
        partial = target.with_name(f".{target.name}.{os.getpid()}.export")
        stack.callback(lambda: partial.unlink() if partial.exists() else None)
        try:
            description = exporter.export_artifact(Path(artifact.local), fmt, partial)
        except ArtifactError as exc:
            raise DetectctlError(str(exc)) from None
        if fmt == "onnx":
            _describe_onnx(partial, description)
        checked = (_check(exporter, Path(artifact.local), description["image_shape"], fmt,
                          partial) if check else None)
        os.replace(partial, target)
    return ExportResult(source=source, artifact=artifact.shown, path=str(target),
                        description=description, checked=checked)


@dataclass
class _Artifact:
    shown: str  # as the user knows it: a path, an S3 URI
    local: str  # where it is on this machine


def _local_artifact(session: Session, source: str, stack: ExitStack) -> _Artifact:
    """The model artifact ``source`` names, on this machine (an S3 object downloaded into a
    temporary directory that ``stack`` removes)."""
    artifact = source
    if not is_s3_uri(source) and not Path(source).expanduser().exists():
        handle = session.training_job(source)
        handle.refresh()
        if not handle.model_artifact or handle.status != "Completed":
            raise UsageError(f"training job {source} is {handle.status}; it has no model yet")
        artifact = handle.model_artifact
    if not is_s3_uri(artifact):
        return _Artifact(artifact, str(Path(artifact).expanduser()))
    bucket, key = split_s3_uri(artifact)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="detectctl-export-"))
    local = Path(folder) / "model.tar.gz"
    with open(local, "wb") as out:
        session.aws.read_object(bucket, key, lambda body: shutil.copyfileobj(body, out))
    return _Artifact(artifact, str(local))


def _describe_onnx(path: Path, description: dict[str, Any]) -> None:
    """Put the description into the ONNX file's metadata and check the file's structure."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(description)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _check(exporter: Any, artifact: Path, image_shape: int, fmt: str, path: Path) -> str:
    """Run the written file in its runtime on test images; a line saying how close it came to
    the same graph run in PyTorch, or a ``DetectctlError`` naming the first difference."""
    images = exporter.example_images(image_shape, CHECK_IMAGES)
    want_rows, want_counts = exporter.graph_detections(artifact, images)
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        rows, counts = session.run(None, {exporter.INPUT_NAME: images})
    else:
        rows, counts = exporter.run_torchscript(path, images)
    largest = 0.0
    expected = [want_rows[i][: int(want_counts[i])] for i in range(len(images))]
    for i, want in enumerate(expected):
        got = rows[i][: int(counts[i])]
        problem = exporter.difference(want, got, CHECK_TOLERANCE)
        if problem:
            raise DetectctlError(
                f"the exported {fmt} file's detections differ from the model's in PyTorch on "
                f"test image {i}: {problem}; nothing was written",
                hint="--no-check writes the file anyway; see docs/export.md, Checking")
        if len(want):
            largest = max(largest, float(abs(want - got).max()))
    total = sum(len(d) for d in expected)
    return (f"same {total} detections as in PyTorch on {len(expected)} test images "
            f"(largest difference {largest:.1e})")
