"""The `detectctl` command line: a thin layer over the SDK.

``main`` is the error boundary: a ``DetectctlError`` becomes one line on stderr and its exit code
(1 for failures, 2 for input the user can fix); ``--debug`` or ``DETECTCTL_DEBUG=1`` shows the
traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _debug(argv: Sequence[str]) -> bool:
    return "--debug" in argv or os.environ.get("DETECTCTL_DEBUG", "") not in ("", "0", "false")


def _usage_errors() -> type[Exception]:
    """The exception class of command-line usage errors (typer vendors click since 0.2x)."""
    import typer

    if hasattr(typer, "TyperException"):
        return typer.TyperException
    import click

    return click.ClickException


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    import typer

    from detectctl.cli.app import app
    from detectctl.cli.output import error_line
    from detectctl.errors import DetectctlError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="detectctl", standalone_mode=False)
    except typer.Abort:
        error_line("aborted")
        code = 1
    except _usage_errors() as exc:
        exc.show()
        code = exc.exit_code
    except DetectctlError as exc:
        if _debug(args):
            raise
        error_line(str(exc))
        code = exc.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        code = 130
    except BrokenPipeError:
        code = 0
    sys.exit(code if isinstance(code, int) else 0)
