"""`detectctl logs JOB`: every host's log lines merged in time order, `--follow` until the end."""

import sys
from typing import Annotated, Optional

import typer

from detectctl.cli import options
from detectctl.cli.follow import follow, print_events
from detectctl.cli.session import open_session


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
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Print a training job's logs, every host merged in time order.

    SageMaker jobs' logs are their CloudWatch streams; local jobs' are their log files. Each
    line starts with its host ([algo-1], [algo-2], ...). With --follow, waits for the streams
    to appear, follows them until the job ends, and exits 0 if it Completed, 1 if it Failed or
    was Stopped. --json prints one JSON object per line: {"host", "time", "message"}.
    """
    from detectctl.durations import parse_since

    session = open_session(profile, region, backend=backend, local=local)
    training_job = session.training_job(job)
    training_job.refresh()
    if follow_:
        follow(training_job, json=json, verbose=not json, hosts=host, since=since)
        return
    stream = training_job.logs(hosts=host, since=parse_since(since) if since else None)
    print_events(stream, json=json)
    if not stream.stream_count:
        sys.stderr.write(f"{job}: no log streams yet ({training_job.status})\n")
