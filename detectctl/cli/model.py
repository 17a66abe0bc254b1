"""`detectctl model info`: what a trained model is, read without loading it."""

from typing import Annotated

import typer

from detectctl.cli import options, output
from detectctl.cli.session import open_session, print_fields

app = typer.Typer(help="Describe a trained model.", no_args_is_help=True)


@app.command("info")
def info(
    model: Annotated[str, typer.Argument(
        help="A model.tar.gz (a path, or an S3 URI), a model directory, or a training job's "
             "name.", show_default=False, metavar="MODEL")],
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
