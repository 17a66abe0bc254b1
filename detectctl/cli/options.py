"""Options shared by every command, defined once.

Users type them after the command (``detectctl instances --json``), so each command that reads
or prints declares the ones it uses with these aliases.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
Profile = Annotated[Optional[str], typer.Option(
    "--profile", envvar="AWS_PROFILE", show_envvar=False,
    help="AWS named profile (as for the AWS CLI).", metavar="NAME")]
Region = Annotated[Optional[str], typer.Option(
    "--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], show_envvar=False,
    help="AWS region, e.g. us-east-1 (default: the profile's region).", metavar="REGION")]
Debug = Annotated[bool, typer.Option(
    "--debug", envvar="DETECTCTL_DEBUG", show_envvar=False,
    help="Show the full traceback when a command fails.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
