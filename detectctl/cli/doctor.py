"""`detectctl doctor`: is this AWS account ready for detectctl? OK, or what to fix."""

import sys
from typing import Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import Bucket, Role, open_session

MARKS = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}


def doctor(
    instance: Annotated[Optional[str], typer.Option(
        "--instance", help="Also check the service quota for this instance type.",
        show_default=False, metavar="TYPE")] = None,
    count: Annotated[int, typer.Option(
        "--count", help="Instances the quota must allow.", metavar="N")] = 1,
    spot: Annotated[bool, typer.Option("--spot", help="Check the spot training quota.")] = False,
    role: Role = None,
    bucket: Bucket = None,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Check credentials, region, execution role, bucket and (with --instance) the quota.

    Exits 1 when a check fails.
    """
    from detectctl.sagemaker import doctor as checks

    results = checks.run(open_session(profile, region, role, bucket), instance_type=instance,
                         count=count, spot=spot)
    if json:
        output.print_json([c.to_dict() for c in results])
    else:
        for c in results:
            sys.stdout.write(f"{MARKS[c.status]}  {c.name}: {c.detail}\n")
            if c.fix:
                sys.stdout.write(f"      fix: {c.fix}\n")
    if any(c.status == checks.FAIL for c in results):
        raise typer.Exit(1)
