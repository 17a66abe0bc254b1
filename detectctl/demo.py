"""``detectctl demo``: the whole product on this machine in a few minutes, no account needed.

The steps, each a method of :class:`Demo` so that a caller can show them as they go:

1. :meth:`Demo.make_data`: a synthetic training set and a held-out set (shapes on textured
   backgrounds, ``train/`` and ``validation/``, the layout `dataset upload` takes);
2. :meth:`Demo.check_data`: both validated as before any upload;
3. :meth:`Demo.train`: a local training job (the CPU recipe), validated on the held-out set;
4. :meth:`Demo.deploy`: a local endpoint serving the job's model;
5. :meth:`Demo.score`: every held-out image sent through the endpoint, the answers scored
   with the training job's evaluator (VOC07 mAP);
6. :meth:`Demo.picture`: a PNG grid of held-out images with what the endpoint found drawn;
7. :meth:`Demo.finish`: the endpoint removed (unless kept).

Nothing is downloaded: the network starts from random weights. :meth:`Demo.abort` (Ctrl-C, any
failure) stops the job and removes the endpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import DatasetRejectedError, UsageError

if TYPE_CHECKING:
    from detectctl.endpoints import Endpoint
    from detectctl.evaluation import EvaluationReport
    from detectctl.jobs import TrainingJob
    from detectctl.session import Session

PRESET = "synthetic-mobilenet-192-local"  # the CPU recipe, as shipped
GPU_PRESET = "voc07-resnet50-300-g4dn.xlarge"  # the cheap-GPU quick start, for the summary
CLASSES = 3
MARKER = ".detectctl-demo"
SEED = 1
GRID = (4, 2)  # columns, rows of the picture
TILE = (320, 240)
DRAW_THRESHOLD = 0.5


@dataclass(frozen=True)
class Recipe:
    """How much data and training a demo run takes."""

    images: int
    validation_fraction: float
    image_size: tuple[int, int]
    hyperparameters: dict[str, Any]
    min_size: float = 0.15  # the smallest shape, as a fraction of the image's shorter side


def default_recipe(quick: bool) -> Recipe:
    """The demo's data and the CPU preset's hyperparameters (fewer epochs with ``quick``)."""
    from detectctl import presets

    hyperparameters = dict(presets.get(PRESET).hyperparameters)
    hyperparameters["num_classes"] = CLASSES
    if quick:
        return Recipe(200, 0.2, (320, 240), {**hyperparameters, "epochs": 6,
                                             "lr_scheduler_step": "5", "max_zoom_out": 2})
    # 1,000 training images x 7 epochs (7,000 images seen), the learning rate's step down (x0.1)
    # before the last, zoom-outs of at most 2x (shapes shrunk 4x, the SSD paper's most, are too
    # small for this network at 192 to find, and teach it little). Validation mAP after epochs
    # 5, 6 and 7 on 1,000 training and 200 validation images of this data (docs/local.md):
    # 0.51, 0.62, 0.69 with max_zoom_out 4; 0.62, 0.69, 0.74 with 2.
    return Recipe(1150, 0.13, (320, 240), {**hyperparameters, "epochs": 7,
                                            "lr_scheduler_step": "6", "max_zoom_out": 2})


@dataclass
class DemoResult:
    """What a demo run measured and wrote."""

    output: Path
    job: str
    quick: bool
    validation_map: Optional[float] = None  # as the training job reported it
    held_out_map: Optional[float] = None  # through the endpoint, with the job's evaluator
    ap: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    endpoint: Optional[str] = None  # when kept
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "job": self.job, "quick": self.quick,
                "validation_map": self.validation_map, "held_out_map": self.held_out_map,
                "ap": self.ap, "files": self.files, "endpoint": self.endpoint,
                "seconds": round(self.seconds, 1)}


class Demo:
    """One run of the demo in ``output``; see the module's description."""

    def __init__(self, output: Path, *, quick: bool = False, keep: bool = False,
                 session: Optional[Session] = None, recipe: Optional[Recipe] = None):
        from detectctl import names
        from detectctl.session import Session

        self.output = Path(output)
        self.quick = quick
        self.keep = keep
        self.recipe = recipe or default_recipe(quick)
        self.session = session or Session(backend="local")
        self.started = time.monotonic()
        self.job: Optional[TrainingJob] = None
        self.endpoint: Optional[Endpoint] = None
        self.result = DemoResult(self.output, names.unique_name("demo"), quick)

    @property
    def train_dir(self) -> Path:
        return self.output / "train"

    @property
    def held_out_dir(self) -> Path:
        return self.output / "validation"

    def make_data(self, progress: Any = None) -> None:
        """Synthesise the data into a fresh output folder (a previous demo's is replaced;
        anything else there is refused)."""
        from detectctl.datasets.synth import synth

        self._claim_output()
        r = self.recipe
        made = synth(str(self.output / "shapes.rec"), images=r.images, classes=CLASSES,
                     seed=SEED, image_size=r.image_size,
                     validation_fraction=r.validation_fraction, min_size=r.min_size,
                     progress=progress)
        self.result.files["training set"] = made.parts["train"][0]
        self.result.files["held-out set"] = made.parts["validation"][0]

    def _claim_output(self) -> None:
        import shutil

        marker = self.output / MARKER
        if self.output.exists() and any(self.output.iterdir()):
            if not marker.is_file():
                raise UsageError(f"--output {self.output}: exists and is not a demo's output",
                                 hint="choose another folder with --output")
            shutil.rmtree(self.output)
        self.output.mkdir(parents=True, exist_ok=True)
        marker.write_text("written by `detectctl demo`; a new run replaces this folder\n")

    def check_data(self) -> None:
        from detectctl.datasets.validate import validate

        for name in ("training set", "held-out set"):
            path = self.result.files[name]
            report = validate(path)
            if report.problems:
                raise DatasetRejectedError(f"{path}: {len(report.problems)} problems",
                                           problems=[str(p) for p in report.problems])

    def train(self) -> TrainingJob:
        """Start the training job (it runs on; follow it with its logs or ``wait``)."""
        self.job = self.session.train(
            train=self.result.files["training set"],
            validation=self.result.files["held-out set"], name=self.result.job,
            hyperparameters=self.recipe.hyperparameters)
        return self.job

    def deploy(self) -> Endpoint:
        assert self.job is not None
        self.job.raise_for_status()
        self.result.validation_map = self.job.metrics.get("validation:mAP")
        self.endpoint = self.session.deploy(self.job, name=self.result.job)
        return self.endpoint

    def score(self, on_image: Any = lambda: None) -> EvaluationReport:
        from detectctl.evaluation import evaluate_predictions
        from detectctl.scoring import predict_dataset

        assert self.endpoint is not None
        predictions = self.output / "predictions.jsonl"
        predict_dataset(self.endpoint, self.result.files["held-out set"], predictions,
                        on_image=on_image)
        report = evaluate_predictions(predictions, self.result.files["held-out set"])
        self.result.files["predictions"] = str(predictions)
        self.result.held_out_map = report.mAP
        self.result.ap = report.ap
        return report

    def picture(self) -> Path:
        """A grid of held-out images with the endpoint's detections (score >= 0.5) drawn."""
        path = self.output / "detections.png"
        _grid(Path(self.result.files["predictions"]), self.result.files["held-out set"], path)
        self.result.files["picture"] = str(path)
        return path

    def finish(self) -> DemoResult:
        if self.endpoint is not None:
            if self.keep:
                self.result.endpoint = self.endpoint.name
            else:
                self.endpoint.delete()
                self.endpoint = None
        if self.job is not None:
            self.result.files["model"] = str(self.job.model_artifact)
        self.result.seconds = time.monotonic() - self.started
        return self.result

    def abort(self) -> list[str]:
        """Stop the job if it runs and remove the endpoint; what was done."""
        done = []
        if self.job is not None:
            self.job.refresh()
            if not self.job.done:
                self.job.stop()
                done.append(f"stopped training job {self.job.name}")
        if self.endpoint is not None:
            self.endpoint.delete()
            done.append(f"removed endpoint {self.endpoint.name}")
            self.endpoint = None
        return done


def _grid(predictions: Path, dataset: str, output: Path) -> None:
    """Draw the first images of ``dataset`` with their predicted boxes, in a grid."""
    import io

    from PIL import Image, ImageDraw

    from algorithm.data.sources import open_source
    from detectctl.drawing import color, font, labelled_box

    source = open_source(dataset)
    names = source.classes or [str(i) for i in range(CLASSES)]
    rows = {}
    with open(predictions, encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            rows[doc["file"]] = doc["prediction"]
    columns, lines_ = GRID
    width, height = TILE
    canvas = Image.new("RGB", (columns * width, lines_ * height), "white")
    face = font(14)
    for slot in range(min(columns * lines_, len(source))):
        sample = source[slot]
        with Image.open(io.BytesIO(sample.read_image_bytes())) as opened:
            tile = opened.convert("RGB").resize(TILE)
        draw = ImageDraw.Draw(tile)
        for class_id, score, x0, y0, x1, y1 in rows.get(str(sample.key), []):
            if score >= DRAW_THRESHOLD:
                labelled_box(draw, (x0 * width, y0 * height, x1 * width, y1 * height),
                             f"{names[int(class_id)]} {score:.2f}", color(int(class_id)), face)
        canvas.paste(tile, ((slot % columns) * width, (slot // columns) * height))
    partial = output.with_name(f".{output.name}.partial.png")
    canvas.save(partial)
    partial.replace(output)
