"""`detectctl evaluate`: mAP and per-class AP of a model over a dataset, as the training job
computes validation:mAP: from saved predictions, through an endpoint, or in this process."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from detectctl.cli import options, output


def evaluate(
    dataset: Annotated[Path, typer.Option(
        "--dataset", metavar="PATH", show_default=False,
        help="The annotated dataset (RecordIO .rec, SageMaker image+JSON directory, manifest).")],
    predictions: Annotated[Optional[Path], typer.Option(
        "--predictions", metavar="FILE.jsonl", show_default=False,
        help='Saved predictions, JSON lines: {"file": IMAGE, "prediction": [[class, score, '
             'xmin, ymin, xmax, ymax], ...]}.')] = None,
    endpoint: Annotated[Optional[str], typer.Option(
        "--endpoint", metavar="NAME", show_default=False,
        help="Send every image of the dataset to this endpoint (--local for a local one).")
    ] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", metavar="MODEL", show_default=False,
        help="Run this model.tar.gz (or model directory) here (the `train` extra).")] = None,
    save_predictions: Annotated[Optional[Path], typer.Option(
        "--save-predictions", metavar="FILE.jsonl", show_default=False,
        help="Also write the predictions there (the format --predictions reads).")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", metavar="N", help="Requests in flight at once (--endpoint).")] = 4,
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="FORMAT", help="recordio, sagemaker-json or manifest "
        "[default: from the path].")] = None,
    iou: Annotated[float, typer.Option(
        "--iou", metavar="X", help="IoU at which a detection matches a box.")] = 0.5,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Score a model, an endpoint or saved predictions with the training job's own mAP.

    Give exactly one of --predictions (saved JSON lines), --endpoint (every image of the
    dataset is sent to it, a few at a time; an interrupted run, started again, sends only what
    is missing) or --model (run here). Prints VOC07 (11-point, the job's validation:mAP) and
    VOC12 (all points) mAP and per-class AP. For a job's model and its validation set, the
    number is the job's own (docs/evaluation.md).
    """
    from detectctl import scoring
    from detectctl.errors import UsageError
    from detectctl.evaluation import evaluate_predictions

    given = [name for name, value in (("--predictions", predictions), ("--endpoint", endpoint),
                                      ("--model", model)) if value is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --predictions, --endpoint and --model"
                         + (f" (got {', '.join(given)})" if given else ""))
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    target = predictions or save_predictions or _scratch(dataset)
    if endpoint is not None:
        from detectctl.cli.session import open_session

        handle = open_session(profile, region, backend=backend, local=local).endpoint(endpoint)
        handle.refresh()
        count = len(scoring.open_dataset_source(dataset, format))
        cache = scoring.cache_path(f"{handle.backend}:{endpoint}", dataset)
        kept = len(scoring.cached_answers(cache))
        if kept:
            _say(f"resuming: {kept} of {count} answers kept from an interrupted run ({cache})")
        _say(f"sending up to {count - kept} requests to endpoint {endpoint}, {concurrency} at "
             "a time"
             + (" (SageMaker bills the endpoint's instance hours and the data sent; "
                "throttled requests are retried)" if handle.backend == "sagemaker" else ""))
        with _progress("scoring", count, quiet=json) as advance:
            scoring.predict_dataset(handle, dataset, target, format=format,
                                    concurrency=concurrency, on_image=advance, cache=cache)
    elif model is not None:
        count = len(scoring.open_dataset_source(dataset, format))
        with _progress("scoring", count, quiet=json) as advance:
            scoring.predict_dataset_with_model(model, dataset, target, format=format,
                                               on_image=advance)
    try:
        reports = {metric: evaluate_predictions(target, dataset, format=format, iou=iou,
                                                metric=metric) for metric in ("voc07", "voc12")}
    finally:
        if target not in (predictions, save_predictions):
            target.unlink(missing_ok=True)
    _render(reports, json=json, saved=save_predictions)


def _scratch(dataset: Path) -> Path:
    """A temporary file for predictions that are not to be kept."""
    import os
    import tempfile

    handle, name = tempfile.mkstemp(prefix="detectctl-predictions-", suffix=".jsonl")
    os.close(handle)
    return Path(name)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def _progress(what: str, total: int, *, quiet: bool) -> Any:
    """A context manager giving an ``advance()`` callable; a bar on stderr unless ``quiet``."""
    import contextlib
    import threading

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from detectctl.cli.output import stderr

    @contextlib.contextmanager
    def bar() -> Any:
        lock = threading.Lock()
        with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), console=stderr(),
                      disable=quiet, transient=True) as shown:
            task = shown.add_task(what, total=total)

            def advance() -> None:
                with lock:
                    shown.advance(task)

            yield advance

    return bar()


def _render(reports: dict[str, Any], *, json: bool, saved: Optional[Path]) -> None:
    voc07, voc12 = reports["voc07"], reports["voc12"]
    if json:
        output.print_json({"mAP": voc07.mAP, "ap": voc07.ap, "voc07": voc07.to_dict(),
                           "voc12": voc12.to_dict(),
                           "predictions": str(saved) if saved else None})
        return
    rows = [(name, voc07.ground_truth.get(name, 0), f"{ap:.4f}", f"{voc12.ap.get(name, 0):.4f}")
            for name, ap in voc07.ap.items()]
    output.print_table(["class", "objects", "AP (VOC07)", "AP (VOC12)"], rows,
                       justify={"objects": "right", "AP (VOC07)": "right",
                                "AP (VOC12)": "right"})
    typer.echo(f"mAP (voc07, IoU {voc07.iou:g}): {voc07.mAP:.4f}; (voc12): {voc12.mAP:.4f} "
               f"over {voc07.images} images, {voc07.detections} detections")
    if voc07.images_without_predictions:
        typer.echo(f"{voc07.images_without_predictions} image(s) had no prediction line "
                   "(counted as no detections)")
    if saved:
        typer.echo(f"predictions saved to {saved}")
