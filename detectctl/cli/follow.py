"""Following a training job until it ends: a live display, raw log lines, or JSON lines.

- On a terminal: a rich live line (epoch k of N with a bar, the losses, images/s, ETA, best
  validation mAP and its epoch) above which the log's warnings and errors are printed.
- Not on a terminal: one plain line per epoch, and the warnings and errors.
- ``--verbose``: every raw log line, ``[algo-1] message`` (the metric lines included).
- ``--json``: one JSON object per line: log lines ``{"host", "time", "message"}`` and, at the
  end of each epoch, ``{"event": "epoch", ...}`` (see :mod:`detectctl.progress`).

Ctrl-C detaches: the job keeps running, and the command says how to re-attach or stop it.
"""

import json as jsonlib
import os
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional

import typer

from detectctl.cli.session import print_fields

if TYPE_CHECKING:
    from detectctl.jobs import TrainingJob
    from detectctl.logs import LogEvent

# ANSI colours per host number (algo-1 cyan, algo-2 magenta, ...), stable across runs.
COLOURS = ("36", "35", "32", "33", "34", "31", "96", "95", "92", "93")
# Log lines worth showing beside the progress display.
NOTEWORTHY = re.compile(r"\b(ERROR|WARNING|CRITICAL)\b|Traceback|Error:|Warning:|job failed")


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


def follow(job: "TrainingJob", *, json: bool = False, verbose: bool = False,
           hosts: Optional[list[str]] = None, since: Optional[str] = None,
           summary: bool = True) -> None:
    """Follow the job until it ends, then print its summary (unless not ``summary``); Failed
    or Stopped exit 1."""
    from detectctl.durations import parse_since

    last: list[str] = []

    def waiting(status: str) -> None:
        line = f"{job.name}: {status} ({job.secondary_status}), waiting for its logs"
        if last != [line]:
            sys.stderr.write(line + "\n")
            last[:] = [line]

    stream = job.logs(follow=True, hosts=hosts, since=parse_since(since) if since else None,
                      on_wait=waiting)
    try:
        if verbose:
            print_events(stream)
        elif json:
            _json_lines(job, stream)
        elif sys.stderr.isatty():
            _live(job, stream)
        else:
            _plain(job, stream)
    except KeyboardInterrupt:
        options = job.cli_options
        sys.stderr.write(f"\ndetached from {job.name}; it keeps running. Re-attach with: "
                         f"detectctl jobs attach {job.name}{options}\n")
        raise typer.Exit(130) from None
    if json:
        sys.stdout.write(jsonlib.dumps({"event": "end", **end_summary(job)}, default=str) + "\n")
    elif summary:
        print_fields(job.summary(), err=True)
    job.raise_for_status()


def end_summary(job: "TrainingJob") -> dict[str, Any]:
    return {"job": job.name, "status": job.status, "reason": job.failure_reason,
            "metrics": job.metrics, "model": job.model_artifact}


def _json_lines(job: "TrainingJob", events: Iterable["LogEvent"]) -> None:
    progress = job.progress()
    for event in events:
        sys.stdout.write(jsonlib.dumps(event.to_dict()) + "\n")
        ended = progress.update(event)
        if ended is not None:
            sys.stdout.write(jsonlib.dumps(ended.to_dict()) + "\n")
        sys.stdout.flush()


def _plain(job: "TrainingJob", events: Iterable["LogEvent"]) -> None:
    progress = job.progress()
    for event in events:
        ended = progress.update(event)
        if ended is not None:
            sys.stderr.write(ended.describe() + "\n")
        elif NOTEWORTHY.search(event.message):
            sys.stderr.write(f"[{event.host}] {event.message}\n")


def _live(job: "TrainingJob", events: Iterable["LogEvent"]) -> None:
    from rich.progress import BarColumn, Progress, TextColumn

    from detectctl.cli.output import stderr
    from detectctl.durations import describe_seconds

    progress = job.progress()
    columns = (TextColumn("{task.description}"), BarColumn(bar_width=30),
               TextColumn("{task.fields[detail]}"))
    with Progress(*columns, console=stderr(), transient=False) as display:
        task = display.add_task(f"{job.name}: starting", total=1.0, detail="")
        for event in events:
            ended = progress.update(event)
            if ended is None and NOTEWORTHY.search(event.message):
                display.console.print(f"[{event.host}] {event.message}", markup=False,
                                      highlight=False)
            if progress.epoch is None:
                continue
            parts = []
            if progress.cross_entropy is not None and progress.smooth_l1 is not None:
                parts.append(f"loss {progress.cross_entropy:.3f} + {progress.smooth_l1:.3f}")
            if progress.throughput is not None:
                parts.append(f"{progress.throughput:.1f} img/s")
            if progress.eta_seconds is not None:
                parts.append(f"ETA {describe_seconds(progress.eta_seconds)}")
            if progress.best_map is not None:
                parts.append(f"best mAP {progress.best_map:.3f} (epoch {progress.best_epoch})")
            display.update(task, completed=progress.fraction,
                           description=f"epoch {progress.epoch}/{progress.epochs or '?'}",
                           detail=" · ".join(parts))
