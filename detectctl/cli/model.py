"""`detectctl model info` and `detectctl model export`: what a trained model is, read without
loading it; the model with its post-processing as an ONNX or TorchScript file."""

from typing import Annotated

import typer

from detectctl.cli import options, output
from detectctl.cli.session import open_session, print_fields

app = typer.Typer(help="Describe a trained model, or export it to ONNX or TorchScript.",
                  no_args_is_help=True)

Model = Annotated[str, typer.Argument(
    help="A model.tar.gz (a path, or an S3 URI), a model directory, or a training job's name.",
    show_default=False, metavar="MODEL")]


@app.command("info")
def info(
    model: Model,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Base network, classes, image shape, hyperparameters and the job's final metrics."""
    from detectctl.models import model_info

    found = model_info(open_session(profile, region, backend=backend, local=local), model)
    if json:
        output.print_json(found.to_dict())
        return
    print_fields(found.summary())


@app.command("export")
def export(
    model: Model,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="The file's format.", show_default=False,
        metavar="onnx|torchscript")],
    output_file: Annotated[str, typer.Option(
        "--output", "-o", help="The file to write (replaced if it exists).", show_default=False,
        metavar="FILE")],
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Run the written file on test images and compare its "
                                   "detections with the model's before keeping it.")] = True,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """The model and its post-processing as one file: images [N, 3, S, S] in, detections out
    (docs/export.md). Needs `pip install 'detectctl[train]'`; ONNX also `detectctl[export]`."""
    from detectctl.exports import export_model

    result = export_model(open_session(profile, region, backend=backend, local=local), model,
                          format, output_file, check=check)
    if json:
        output.print_json(result.to_dict())
        return
    print_fields(result.summary())
