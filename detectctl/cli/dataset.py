"""`detectctl dataset`: convert, validate, describe, preview and synthesise detection datasets."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from detectctl import formats
from detectctl.cli import options, output
from detectctl.cli.upload import upload

app = typer.Typer(
    help="Convert, validate, describe, preview and synthesise detection datasets.",
    no_args_is_help=True,
)

READ_FORMATS = ", ".join(formats.READ_FORMATS)
WRITE_FORMATS = ", ".join(formats.TRAINING_FORMATS)

Format = Annotated[Optional[str], typer.Option(
    "--format", "-f", help=f"Dataset format: {READ_FORMATS} (default: guessed).",
    show_default=False, metavar="FORMAT")]
Attribute = Annotated[Optional[str], typer.Option(
    "--attribute", help="Augmented manifest: the label attribute (default: the one holding "
                        "'annotations').", show_default=False, metavar="NAME")]
ImageSet = Annotated[Optional[str], typer.Option(
    "--image-set", help="VOC: an ImageSets/Main list, e.g. trainval (default: every XML).",
    show_default=False, metavar="NAME")]
ImagesDir = Annotated[Optional[Path], typer.Option(
    "--images", help="COCO: the images directory (default: beside the JSON, COCO's layout).",
    show_default=False, metavar="DIR")]


@contextlib.contextmanager
def _progress(description: str, enabled: bool) -> Iterator[Optional[Callable[[int, int], None]]]:
    """A rich progress bar on a terminal; nothing otherwise (pipes, --json)."""
    if not enabled or not sys.stdout.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command("convert")
def convert(
    source: Annotated[Path, typer.Argument(help="Dataset to read (file or directory).",
                                           show_default=False)],
    output_path: Annotated[str, typer.Option(
        "--output", "-o", help="Where to write: PATH.rec for recordio (.idx, .lst and "
                               "classes.json land beside it), a directory for sagemaker-json, "
                               "PATH.manifest for manifest.", show_default=False,
        metavar="PATH")],
    to: Annotated[str, typer.Option("--to", help=f"Format to write: {WRITE_FORMATS}.",
                                    show_default=False, metavar="FORMAT")],
    source_format: Annotated[Optional[str], typer.Option(
        "--from", help=f"Format of SOURCE: {READ_FORMATS} (default: guessed).",
        show_default=False, metavar="FORMAT")] = None,
    validation_fraction: Annotated[float, typer.Option(
        "--validation-fraction", help="Fraction of images split off for validation; the parts "
                                      "go to train/ and validation/ folders.",
        metavar="FRACTION")] = 0.0,
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of the train/validation split.", metavar="N")] = 0,
    attribute: Attribute = None,
    image_set: ImageSet = None,
    images_dir: ImagesDir = None,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Convert a dataset to recordio, sagemaker-json or manifest (from those, VOC or COCO)."""
    from detectctl.datasets.convert import convert as run

    with _progress("converting", not json) as progress:
        result = run(str(source), output_path, to=to, source_format=source_format,
                     validation_fraction=validation_fraction, seed=seed, attribute=attribute,
                     image_set=image_set, images_dir=str(images_dir) if images_dir else None,
                     progress=progress)
    if json:
        output.print_json(result.to_dict())
        return
    _say_created(result.created)
    for part, paths in result.outputs.items():
        where = "" if part == "all" else f"{part}: "
        typer.echo(f"{where}{result.images[part]} images -> {', '.join(paths)}")
    classes = f", {len(result.classes)} classes" if result.classes is not None else ""
    typer.echo(f"converted {result.source} ({result.source_format}) to {result.format}: "
               f"{sum(result.images.values())} images, {result.objects} objects{classes}")


@app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="Dataset to check (file or directory).",
                                         show_default=False)],
    format: Format = None,
    num_classes: Annotated[Optional[int], typer.Option(
        "--num-classes", help="Expected number of classes: ids must be 0..N-1.",
        show_default=False, metavar="N")] = None,
    label_width: Annotated[int, typer.Option(
        "--label-width", help="The label_width hyperparameter: bounds the objects per "
                              "image.", metavar="N")] = 350,
    attribute: Attribute = None,
    image_set: ImageSet = None,
    images_dir: ImagesDir = None,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Check every image and annotation: exit 0 when valid, 1 with every problem found, 2 for
    usage errors. Images that are not RGB are warnings (they are converted when read)."""
    from detectctl.datasets.validate import validate as run

    with _progress("validating", not json) as progress:
        report = run(str(path), format, num_classes=num_classes, label_width=label_width,
                     attribute=attribute, image_set=image_set,
                     images_dir=str(images_dir) if images_dir else None, progress=progress)
    if json:
        output.print_json(report.to_dict())
    else:
        for problem in report.problems:
            typer.echo(str(problem))
        for warning in report.warnings[:10]:
            typer.echo(f"warning: {warning}")
        if len(report.warnings) > 10:
            typer.echo(f"warning: ... and {len(report.warnings) - 10} more images not RGB")
        counts = f"{report.images} images, {report.objects} objects"
        if report.valid:
            typer.echo(f"{path}: valid ({report.format}, {counts})")
        else:
            typer.echo(f"{path}: {len(report.problems)} problem(s) ({report.format}, {counts} "
                       "readable)")
    if not report.valid:
        raise typer.Exit(1)


@app.command("stats")
def stats(
    path: Annotated[Path, typer.Argument(help="Dataset to describe.", show_default=False)],
    format: Format = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Also draw the statistics into this PNG file.",
        show_default=False, metavar="FILE")] = None,
    attribute: Attribute = None,
    image_set: ImageSet = None,
    images_dir: ImagesDir = None,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Images, objects, objects per class, boxes per image, box sizes and aspect ratios."""
    from detectctl.datasets.stats import ASPECT_BINS, SIZE_BINS, DatasetStats
    from detectctl.datasets.stats import plot as draw
    from detectctl.datasets.stats import stats as run

    with _progress("reading", not json) as progress:
        result = run(str(path), format, attribute=attribute, image_set=image_set,
                     images_dir=str(images_dir) if images_dir else None, progress=progress)
    drawn = draw(result, str(plot)) if plot is not None else None
    if json:
        output.print_json({**result.to_dict(), "plot": str(plot) if plot else None,
                           "created": drawn.created if drawn else []})
        return
    _say_created(drawn.created if drawn else [])
    typer.echo(f"{path} ({result.format}): {result.images} images, {result.objects} objects, "
               f"{result.empty_images} images without objects"
               + (f", {result.skipped} unreadable (see validate)" if result.skipped else ""))
    output.print_table(["class_id", "name", "objects"],
                       list(zip(result.class_ids, result.classes, result.per_class)),
                       justify={"class_id": "right", "objects": "right"})
    output.print_table(["objects in image", "images"],
                       sorted(result.boxes_per_image.items()),
                       justify={"objects in image": "right", "images": "right"})
    size = result.percentiles(result.sizes)
    aspect = result.percentiles(result.aspects)
    output.print_table(
        ["box", *DatasetStats.bin_labels(SIZE_BINS), "median"],
        [("size", *result.size_histogram(), size.get("median", ""))],
        caption="size: sqrt(box area / image area)")
    output.print_table(
        ["box", *DatasetStats.bin_labels(ASPECT_BINS), "median"],
        [("aspect", *result.aspect_histogram(), aspect.get("median", ""))],
        caption="aspect: box width / height in pixels")
    if plot is not None:
        typer.echo(f"plot: {plot}")


@app.command("preview")
def preview(
    path: Annotated[Path, typer.Argument(help="Dataset to draw.", show_default=False)],
    output_path: Annotated[Path, typer.Option(
        "--output", "-o", help="PNG file to write.", show_default=False, metavar="FILE")],
    count: Annotated[int, typer.Option(
        "-n", help="Number of images in the grid.", metavar="N")] = 16,
    format: Format = None,
    attribute: Attribute = None,
    image_set: ImageSet = None,
    images_dir: ImagesDir = None,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Draw a grid of images, spread over the dataset, with their boxes and class names.
    Images that cannot be read are left out and named."""
    from detectctl.datasets.preview import preview as run

    result = run(str(path), str(output_path), count=count, format=format, attribute=attribute,
                 image_set=image_set, images_dir=str(images_dir) if images_dir else None)
    if json:
        output.print_json(result.to_dict())
        return
    _say_created(result.created)
    for problem in result.unreadable:
        typer.echo(f"left out: {problem}")
    typer.echo(f"{len(result.images)} images -> {result.output}")


@app.command("synth")
def synth(
    output_path: Annotated[str, typer.Argument(
        help="Where to write (as for convert --output).", metavar="OUT", show_default=False)],
    images: Annotated[int, typer.Option(
        "--images", help="Number of images.", metavar="N")] = 100,
    classes: Annotated[int, typer.Option(
        "--classes", help="Number of shape classes (1-10).", metavar="N")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same dataset.", metavar="N")] = 0,
    format: Annotated[str, typer.Option(
        "--format", "-f", help=f"Format: {WRITE_FORMATS}.", metavar="FORMAT")] = "recordio",
    image_size: Annotated[str, typer.Option(
        "--image-size", help="WIDTHxHEIGHT of every image.", metavar="WxH")] = "500x375",
    validation_fraction: Annotated[float, typer.Option(
        "--validation-fraction", help="Fraction of images split off for validation: OUT/train/ "
                                      "and OUT/validation/ (beside OUT when it names a .rec or "
                                      ".manifest file), the layout `dataset upload` takes.",
        metavar="FRACTION")] = 0.0,
    min_size: Annotated[float, typer.Option(
        "--min-size", help="Smallest side of a shape, as a fraction of the image's shorter "
                           "side (sides are drawn evenly up to 0.6).",
        metavar="FRACTION")] = 0.08,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Write a deterministic synthetic dataset: shapes on textured backgrounds, some images
    without objects. For demos, tests and benchmarks."""
    from detectctl.datasets.synth import parse_image_size
    from detectctl.datasets.synth import synth as run

    size = parse_image_size(image_size)
    with _progress("synthesising", not json) as progress:
        result = run(output_path, images=images, classes=classes, seed=seed, format=format,
                     image_size=size, validation_fraction=validation_fraction,
                     min_size=min_size, progress=progress)
    if json:
        output.print_json(result.to_dict())
        return
    _say_created(result.created)
    for part, paths in result.parts.items():
        if part != "all":
            typer.echo(f"{part}: {', '.join(paths)}")
    typer.echo(f"{result.images} images, {result.objects} objects, classes "
               f"{', '.join(result.classes)}"
               + (f" -> {', '.join(result.paths)}" if "all" in result.parts else ""))


def _say_created(folders: list[str]) -> None:
    for folder in folders:
        typer.echo(f"created folder {folder}")


app.command("upload")(upload)
