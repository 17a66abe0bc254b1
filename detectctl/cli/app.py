"""The `detectctl` command tree. Each command parses, makes one SDK call, and renders."""

from __future__ import annotations

from typing import Annotated

import typer

from detectctl import __version__
from detectctl.cli import (
    dataset,
    deploy,
    doctor,
    endpoints,
    hyperparameters,
    instances,
    jobs,
    logs,
    options,
    predict,
    train,
    upload,
)

app = typer.Typer(
    name="detectctl",
    help="Train and serve SSD object detectors on Amazon SageMaker, or on this machine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    # Typer's pretty tracebacks print local variables, which may hold credentials.
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"detectctl {__version__}")
        raise typer.Exit()


def _help(ctx: typer.Context, value: bool) -> None:
    # The root's own --help: typer's built-in one has no value when absent, and typer then loads
    # pydantic (~45 ms) to coerce it on every subcommand, `detectctl train --help` included.
    if value:
        typer.echo(ctx.get_help())
        raise typer.Exit()


@app.callback()
def root(
    help_: Annotated[bool, typer.Option(
        "--help", "-h", callback=_help, is_eager=True, expose_value=False,
        help="Show this message and exit.")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: options.Debug = False,
) -> None:
    """Train and serve SSD object detectors on Amazon SageMaker, or on this machine."""


app.add_typer(hyperparameters.app, name="hyperparameters")
app.add_typer(dataset.app, name="dataset")
dataset.app.command("upload")(upload.upload)
app.command("instances")(instances.instances)
app.command("doctor")(doctor.doctor)
app.command("train")(train.train)
app.add_typer(jobs.app, name="jobs")
app.command("logs")(logs.logs)
app.command("deploy")(deploy.deploy)
app.add_typer(endpoints.app, name="endpoints")
app.command("predict")(predict.predict)
