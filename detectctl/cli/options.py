"""Options shared by every command, defined once.

Users type them after the command (``detectctl instances --json``), so each command that reads
or prints declares the ones it uses with these aliases.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
# AWS_PROFILE, AWS_REGION and AWS_DEFAULT_REGION are read where the session is opened
# (cli/session.py), not here: an option's value is then only what was typed, which the local
# backend refuses by name.
Profile = Annotated[Optional[str], typer.Option(
    "--profile", help="AWS named profile (as for the AWS CLI; default: AWS_PROFILE).",
    metavar="NAME")]
Region = Annotated[Optional[str], typer.Option(
    "--region", help="AWS region, e.g. us-east-1 (default: AWS_REGION, the profile's region).",
    metavar="REGION")]
Backend = Annotated[Optional[str], typer.Option(
    "--backend", help="sagemaker or local (default: DETECTCTL_BACKEND, backend under "
                      "[defaults] in the config file, else sagemaker).", metavar="NAME")]
Local = Annotated[bool, typer.Option("--local", help="Short for --backend local.")]
Verbose = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Print the job's raw log lines instead of the progress display.")]
Debug = Annotated[bool, typer.Option(
    "--debug", envvar="DETECTCTL_DEBUG", show_envvar=False,
    help="Show the full traceback when a command fails.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
