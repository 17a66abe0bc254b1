"""`detectctl logs JOB`: every host's log lines merged in time order, `--follow` until the end."""

import json as jsonlib
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from detectctl.cli import options
from detectctl.cli.session import open_session, print_fields

if TYPE_CHECKING:
    from detectctl.jobs import TrainingJob
    from detectctl.logs import LogEvent

# ANSI colours per host number (algo-1 cyan, algo-2 magenta, ...), stable across runs.
COLOURS = ("36", "35", "32", "33", "34", "31", "96", "95", "92", "93")


def _colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def print_events(events: Iterable["LogEvent"], *, json: bool = False) -> None:
    """One line per event: ``[algo-1] message`` (coloured on a terminal), or JSON lines."""
    from detectctl.logs import host_number

    colour = _colour() and not json
    out = sys.stdout
    for event in events:
        if json:
            out.write(jsonlib.dumps(event.to_dict()) + "\n")
        elif colour:
            code = COLOURS[(host_number(event.host) - 1) % len(COLOURS)]
            out.write(f"\x1b[{code}m[{event.host}]\x1b[0m {event.message}\n")
        else:
            out.write(f"[{event.host}] {event.message}\n")
        out.flush()


def follow(job: "TrainingJob", *, json: bool = False, hosts: Optional[list[str]] = None,
           since: Optional[str] = None) -> None:
    """Stream the job's logs until it ends, then its summary; Failed or Stopped exit 1.

    Ctrl-C detaches: the job keeps running.
    """
    from detectctl.logs import parse_since

    last: list[str] = []

    def waiting(status: str) -> None:
        line = f"{job.name}: {status} ({job.secondary_status}), waiting for its logs"
        if last != [line]:
            sys.stderr.write(line + "\n")
            last[:] = [line]

    stream = job.logs(follow=True, hosts=hosts, since=parse_since(since) if since else None,
                      on_wait=waiting)
    try:
        print_events(stream, json=json)
    except KeyboardInterrupt:
        sys.stderr.write(f"\ndetached from {job.name}; it keeps running. Re-attach with: "
                         f"detectctl jobs attach {job.name}\n")
        raise typer.Exit(130) from None
    print_fields(job.summary(), err=True)
    job.raise_for_status()


def logs(
    job: Annotated[str, typer.Argument(help="Training job name.", show_default=False)],
    follow_: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep reading until the job ends; exit with its status.")] = False,
    host: Annotated[Optional[list[str]], typer.Option(
        "--host", help="Only this host's lines, e.g. algo-2 (repeatable).", metavar="HOST")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only lines after this: 10m, 2h, 1d, or an ISO time.",
        metavar="WHEN")] = None,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Print a training job's CloudWatch logs, every host merged in time order.

    Each line starts with its host ([algo-1], [algo-2], ...). With --follow, waits for the
    streams to appear, follows them until the job ends, and exits 0 if it Completed, 1 if it
    Failed or was Stopped. --json prints one JSON object per line.
    """
    from detectctl.logs import parse_since

    session = open_session(profile, region)
    training_job = session.training_job(job)
    training_job.refresh()
    if follow_:
        follow(training_job, json=json, hosts=host, since=since)
        return
    stream = training_job.logs(hosts=host, since=parse_since(since) if since else None)
    print_events(stream, json=json)
    if not stream.stream_count:
        sys.stderr.write(f"{job}: no log streams yet ({training_job.status})\n")
