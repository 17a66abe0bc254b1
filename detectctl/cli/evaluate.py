"""`detectctl evaluate`: mAP of endpoint-format predictions against a dataset."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from detectctl.cli import options, output


def evaluate(
    predictions: Annotated[Path, typer.Option(
        "--predictions", metavar="FILE.jsonl", show_default=False,
        help='JSON lines: {"file": IMAGE, "prediction": [[class, score, xmin, ymin, xmax, '
             'ymax], ...]}.')],
    dataset: Annotated[Path, typer.Option(
        "--dataset", metavar="PATH", show_default=False,
        help="The annotated dataset (RecordIO .rec, SageMaker image+JSON directory, manifest).")],
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="FORMAT", help="recordio, sagemaker-json or manifest "
        "[default: from the path].")] = None,
    iou: Annotated[float, typer.Option(
        "--iou", metavar="X", help="IoU at which a detection matches a box.")] = 0.5,
    metric: Annotated[str, typer.Option(
        "--metric", metavar="METRIC",
        help="voc07 (11-point, the training job's validation:mAP) or voc12 (all points).")
    ] = "voc07",
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Compute mAP and per-class AP of predictions, as the training job computes validation:mAP.

    Reproduces a job's metric offline: run the model over the validation images, write one JSON
    line per image, and evaluate them against the validation dataset.
    """
    from detectctl.evaluation import evaluate_predictions

    report = evaluate_predictions(predictions, dataset, format=format, iou=iou, metric=metric)
    if json:
        output.print_json({"mAP": report.mAP, "ap": report.ap})
        return
    rows = [(name, report.ground_truth.get(name, 0), f"{ap:.4f}")
            for name, ap in report.ap.items()]
    output.print_table(["class", "objects", "AP"], rows,
                       justify={"objects": "right", "AP": "right"})
    typer.echo(f"mAP ({report.metric}, IoU {report.iou:g}): {report.mAP:.4f} over "
               f"{report.images} images, {report.detections} detections")
    if report.images_without_predictions:
        typer.echo(f"{report.images_without_predictions} image(s) had no prediction line "
                   "(counted as no detections)")
