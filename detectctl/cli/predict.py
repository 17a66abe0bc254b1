"""`detectctl predict ENDPOINT IMAGE...`: detections as a table, JSON, or drawn on the images."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import open_session

if TYPE_CHECKING:
    from detectctl.endpoints import Endpoint


def _class_names(value: Optional[str]) -> Optional[list[str]]:
    if not value:
        return None
    path = Path(value)
    if path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    return [name.strip() for name in value.split(",")]


def _model_class_names(target: "Endpoint") -> Optional[list[str]]:
    """The names in the endpoint's model; without them (no classes.json, no access to the
    model's bucket) detections are labelled by class id."""
    from detectctl.errors import DetectctlError

    try:
        return target.class_names()
    except DetectctlError as exc:
        sys.stderr.write(f"warning: no class names from the endpoint's model: {exc}; "
                         "pass --classes\n")
        return None


def predict(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name.", show_default=False)],
    images: Annotated[list[Path], typer.Argument(
        help="JPEG or PNG files.", show_default=False, metavar="IMAGE...")],
    threshold: Annotated[float, typer.Option(
        "--threshold", help="Leave out detections scoring below this.", metavar="SCORE")] = 0.5,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="Class names: comma-separated, or a file with one per line "
                          "[default: classes.json in the endpoint's model].",
        show_default=False, metavar="NAMES|FILE")] = None,
    draw: Annotated[Optional[Path], typer.Option(
        "--draw", help="Write each image with its boxes and labels into this directory.",
        show_default=False, metavar="DIR")] = None,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Send images to an endpoint and show what it detects (coordinates in [0, 1])."""
    target = open_session(profile, region, backend=backend, local=local).endpoint(endpoint)
    names = _class_names(classes)
    if names is None:
        names = _model_class_names(target)
    results = []
    for image in images:
        found = target.predict(image, threshold=threshold, class_names=names)
        results.append((image, found))
        if draw:
            from detectctl.drawing import draw_detections

            draw_detections(image, found, draw / image.name)
    if json:
        output.print_json([{"image": str(image), "detections": [d.to_dict() for d in found]}
                           for image, found in results])
        return
    rows = [(str(image), d.label, f"{d.score:.3f}",
             f"{d.xmin:.3f}, {d.ymin:.3f}, {d.xmax:.3f}, {d.ymax:.3f}")
            for image, found in results for d in found]
    output.print_table(["image", "class", "score", "box (xmin, ymin, xmax, ymax)"], rows,
                       caption=f"{len(rows)} detections at score >= {threshold:g}")
