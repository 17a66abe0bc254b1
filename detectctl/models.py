"""What a trained model is, read without loading it: ``detectctl model info``.

A model is named by a model.tar.gz (a path here, or an S3 URI), a model directory, or a training
job (whose model artifact is read, on the session's backend). Only the small files at the top of
the artifact are read (:mod:`detectctl.artifacts`): the hyperparameters, the class names and,
for models trained since it was added, ``metrics.json`` with how the job ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl import artifacts
from detectctl.errors import DetectctlError, UsageError
from detectctl.s3uri import is_s3_uri, split_s3_uri

if TYPE_CHECKING:
    from detectctl.session import Session

WANTED = (artifacts.HYPERPARAMETERS_FILE, artifacts.CLASSES_FILE, artifacts.METRICS_FILE)


@dataclass
class ModelInfo:
    """A model's description: what it detects, at what size, how it was trained."""

    source: str
    artifact: str
    hyperparameters: dict[str, str]
    classes: Optional[list[str]]
    metrics: Optional[dict[str, Any]] = None
    job: Optional[str] = None
    job_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def base_network(self) -> str:
        return self.hyperparameters.get("base_network", "vgg-16")

    @property
    def image_shape(self) -> Optional[int]:
        value = self.hyperparameters.get("image_shape")
        return int(value) if value and value.isdigit() else None

    def summary(self) -> list[tuple[str, str]]:
        rows = [("model", self.artifact)]
        if self.job:
            rows.append(("job", self.job))
        rows += [("base network", self.base_network),
                 ("image shape", str(self.image_shape or "-")),
                 ("classes", ", ".join(self.classes) if self.classes else "(no classes.json)")]
        final = dict(self.job_metrics)
        if self.metrics:
            final.update(self.metrics.get("final") or {})
            rows.append(("epochs", str(self.metrics.get("epochs"))))
            best = self.metrics.get("best_validation_mAP")
            if best is not None:
                rows.append(("best validation:mAP", f"{best:g}"))
        rows += [(name, f"{value:g}") for name, value in sorted(final.items())]
        if not self.metrics and not self.job_metrics:
            rows.append(("metrics", "(none recorded: a model from before metrics.json)"))
        given = ", ".join(f"{k}={v}" for k, v in sorted(self.hyperparameters.items()))
        rows.append(("hyperparameters", given))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "artifact": self.artifact, "job": self.job,
                "base_network": self.base_network, "image_shape": self.image_shape,
                "classes": self.classes, "hyperparameters": self.hyperparameters,
                "metrics": self.metrics, "job_metrics": self.job_metrics}


def _parse(found: dict[str, bytes], where: str) -> tuple[dict, Optional[list], Optional[dict]]:
    if artifacts.HYPERPARAMETERS_FILE not in found:
        raise DetectctlError(f"{where}: no {artifacts.HYPERPARAMETERS_FILE}; is this a "
                             "detectctl model?")
    try:
        hyperparameters = json.loads(found[artifacts.HYPERPARAMETERS_FILE])
        metrics = json.loads(found[artifacts.METRICS_FILE]) \
            if artifacts.METRICS_FILE in found else None
    except ValueError as exc:
        raise DetectctlError(f"{where}: a JSON file of the model is not valid JSON ({exc})"
                             ) from None
    if not isinstance(hyperparameters, dict) or (metrics is not None
                                                 and not isinstance(metrics, dict)):
        raise DetectctlError(f"{where}: not a detectctl model's hyperparameters or metrics")
    classes = None
    if artifacts.CLASSES_FILE in found:
        classes = artifacts.parse_class_names(found[artifacts.CLASSES_FILE], where)
    return {str(k): str(v) for k, v in hyperparameters.items()}, classes, metrics


def _read_local(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return artifacts.read_directory(path, WANTED)
    try:
        with open(path, "rb") as stream:
            return artifacts.read_members(stream, str(path), WANTED)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


def model_info(session: Session, source: str) -> ModelInfo:
    """Describe the model ``source`` names (see the module's description)."""
    job = None
    job_metrics: dict[str, float] = {}
    artifact = source
    if not is_s3_uri(source) and not Path(source).expanduser().exists():
        handle = session.training_job(source)
        handle.refresh()
        if not handle.model_artifact or handle.status != "Completed":
            raise UsageError(f"training job {source} is {handle.status}; it has no model yet")
        job, job_metrics, artifact = source, handle.metrics, handle.model_artifact
    if is_s3_uri(artifact):
        bucket, key = split_s3_uri(artifact)
        found = session.aws.read_object(
            bucket, key, lambda body: artifacts.read_members(body, artifact, WANTED))
    else:
        found = _read_local(Path(artifact).expanduser())
    hyperparameters, classes, metrics = _parse(found, artifact)
    return ModelInfo(source=source, artifact=artifact, hyperparameters=hyperparameters,
                     classes=classes, metrics=metrics, job=job, job_metrics=job_metrics)
