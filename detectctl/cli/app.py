"""The `detectctl` command tree. Each command parses, makes one SDK call, and renders."""

from __future__ import annotations

from typing import Annotated

import typer

from detectctl import __version__
from detectctl.cli import hyperparameters, instances, options

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


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: options.Debug = False,
) -> None:
    """Train and serve SSD object detectors on Amazon SageMaker, or on this machine."""


app.add_typer(hyperparameters.app, name="hyperparameters")
app.command("instances")(instances.instances)
