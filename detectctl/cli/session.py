"""What the commands share: the role and bucket options, the session (backend, AWS profile and
region), confirmation, and label/value summaries. Imports only typer at start-up, so `--help`
stays fast.

The AWS command modules do without ``from __future__ import annotations``: typer would have to
evaluate every string annotation when it builds the command tree, on every start-up.
"""

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from detectctl.session import Session

Role = Annotated[Optional[str], typer.Option(
    "--role", help="SageMaker execution role ARN (default: DETECTCTL_ROLE, the config file, "
                   "or the notebook's role).", metavar="ARN")]
Bucket = Annotated[Optional[str], typer.Option(
    "--bucket", help="S3 bucket for code and outputs (default: DETECTCTL_BUCKET, the config "
                     "file, or sagemaker-REGION-ACCOUNT).", metavar="NAME")]


def open_session(profile: Optional[str] = None, region: Optional[str] = None,
                 role: Optional[str] = None, bucket: Optional[str] = None, *,
                 backend: Optional[str] = None, local: bool = False) -> "Session":
    """The session for a command: ``--backend`` / ``--local`` (else the default backend)."""
    from detectctl.errors import UsageError
    from detectctl.session import Session

    if local:
        if backend not in (None, "local"):
            raise UsageError(f"--local and --backend {backend} contradict each other")
        backend = "local"
    return Session(backend, profile=profile, region=region, role=role, bucket=bucket)


def confirm(question: str, yes: bool) -> bool:
    """True with ``--yes``; else the answer to ``question`` (no answer is a usage error)."""
    if yes:
        return True
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:
        from detectctl.errors import UsageError

        raise UsageError(f"{question} got no answer", hint="pass --yes to confirm") from None


def print_fields(rows: Sequence[tuple[str, str]], *, err: bool = False) -> None:
    """Aligned ``label  value`` lines."""
    width = max((len(label) for label, _ in rows), default=0)
    stream = sys.stderr if err else sys.stdout
    for label, value in rows:
        stream.write(f"{label.ljust(width)}  {value}\n")
