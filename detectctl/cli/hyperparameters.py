"""`detectctl hyperparameters`: the schema as a table or JSON Schema, and file validation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detectctl.cli import options, output

app = typer.Typer(
    help="Show the training hyperparameters, or validate a file of them.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def show(ctx: typer.Context, json: options.Json = False, debug: options.Debug = False) -> None:
    """List every hyperparameter: name, default, allowed values, meaning.

    Names and meanings are those of SageMaker's built-in Object Detection algorithm; rows marked
    "ours" are detectctl additions. --json prints the JSON Schema.
    """
    if ctx.invoked_subcommand is not None:
        return
    from algorithm.hyperparameters import format_value, schema

    if json:
        from detectctl.hyperparameters import Hyperparameters

        output.print_json(Hyperparameters.model_json_schema())
        return
    rows = []
    for info in schema():
        default = "(required)" if info.required else (
            "" if info.default in (None, ()) else format_value(info.default))
        origin = "" if info.rule.builtin else "ours"
        rows.append((info.name, default, info.rule.allowed(), origin, info.rule.help))
    output.print_table(["name", "default", "allowed", "", "meaning"], rows,
                       title="SSD training hyperparameters")


@app.command("validate")
def validate_file(
    file: Annotated[Path, typer.Argument(
        help="JSON or YAML map of hyperparameter names to values.", metavar="FILE",
        show_default=False)],
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """Check a hyperparameter file: exit 0 when valid, 2 with one line per problem when not."""
    from detectctl.errors import HyperparameterValidationError
    from detectctl.hyperparameters import load_file, validate

    values = load_file(file)
    try:
        hp = validate(values, source=str(file))
    except HyperparameterValidationError as exc:
        if json:
            output.print_json({"valid": False, "file": str(file), "problems": exc.problems})
        else:
            for line in exc.lines():
                output.error_line(line)
        raise typer.Exit(2) from None
    if json:
        output.print_json({"valid": True, "file": str(file), "hyperparameters": hp.to_sagemaker()})
    else:
        given = ", ".join(f"{k}={hp.to_sagemaker()[k]}" for k in values)
        typer.echo(f"{file}: valid ({given})")
