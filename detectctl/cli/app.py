"""The `detectctl` command tree. Each command parses, makes one SDK call, and renders.

Commands load lazily: a run imports and builds only the command it invokes (typer spends most
of a start-up building commands from their signatures), and the root's --help lists the
commands from the one-line help recorded here, importing none of them. A test checks that each
one-line help is the one the command itself gives.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from detectctl import __version__
from detectctl.cli import options

# Name -> (module:attribute, a command function or a Typer group; its one-line help), in the
# order --help lists them.
COMMANDS = {
    "demo": ("detectctl.cli.demo:demo",
             "Train and serve a detector on this machine, end to end, in a few minutes."),
    "instances": ("detectctl.cli.instances:instances",
                  "List the instance types detectctl offers for training and hosting."),
    "doctor": ("detectctl.cli.doctor:doctor", "Check credentials, region, execution role, "
                                              "bucket and (with --instance) the quota."),
    "train": ("detectctl.cli.train:train", "Launch an SSD training job on SageMaker, or on "
                                           "this machine with --instance local."),
    "presets": ("detectctl.cli.presets:presets", "List the job presets for `train --preset "
                                                 "NAME`, with what each run may cost."),
    "logs": ("detectctl.cli.logs:logs",
             "Print a training job's logs, every host merged in time order."),
    "deploy": ("detectctl.cli.deploy:deploy", "Deploy a model to an endpoint on SageMaker, or "
                                              "on this machine with --instance local."),
    "predict": ("detectctl.cli.predict:predict", "Send images to an endpoint and show what it "
                                                 "detects (coordinates in [0, 1])."),
    "hyperparameters": ("detectctl.cli.hyperparameters:app",
                        "Show the training hyperparameters, or validate a file of them."),
    "dataset": ("detectctl.cli.dataset:app",
                "Convert, validate, describe, preview and synthesise detection datasets."),
    "jobs": ("detectctl.cli.jobs:app", "List, inspect, stop, wait for, attach to, resume or "
                                       "delete training jobs."),
    "evaluate": ("detectctl.cli.evaluate:evaluate", "Score a model, an endpoint or saved "
                                                    "predictions with the training job's own "
                                                    "mAP."),
    "model": ("detectctl.cli.model:app", "Describe a trained model, or export it to ONNX or "
                                         "TorchScript."),
    "transform": ("detectctl.cli.transform:app",
                  "Run batch transform jobs: a model's detections for a whole dataset."),
    "endpoints": ("detectctl.cli.endpoints:app",
                  "List, describe, delete endpoints or read their logs."),
}
# The root's settings, which the commands built lazily share.
RICH_MARKUP_MODE = None


class _Unloaded(TyperCommand):
    """A command not imported yet: its name and one-line help."""


def load(name: str) -> Any:
    """Import command ``name`` and build it as typer would in the whole tree."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    target = getattr(importlib.import_module(module), attribute)
    tree = typer.Typer(rich_markup_mode=RICH_MARKUP_MODE, add_completion=False)
    if isinstance(target, typer.Typer):
        tree.add_typer(target, name=name)
    else:
        tree.command(name)(target)
    return typer.main.get_group(tree).commands[name]


class LazyGroup(TyperGroup):
    """The root command: every command listed, each loaded when it is invoked."""

    def __init__(self, **attrs: Any):
        super().__init__(**attrs)
        for name, (_, help_) in COMMANDS.items():
            self.commands.setdefault(name, _Unloaded(name=name, help=help_))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if isinstance(self.commands.get(cmd_name), _Unloaded):
            self.commands[cmd_name] = load(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # As typer lists commands, but from what is at hand: listing loads nothing.
        rows = [(name, command.get_short_help_str(formatter.width - 6 - max(map(
            len, self.commands)))) for name, command in self.commands.items()
            if not command.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="detectctl",
    cls=LazyGroup,
    help="Train and serve SSD object detectors on Amazon SageMaker, or on this machine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=RICH_MARKUP_MODE,
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
