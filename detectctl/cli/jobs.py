"""`detectctl jobs list|describe|stop|wait|attach|resume|delete`: training jobs after launch."""

import sys
from typing import Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import confirm, open_session, print_fields

app = typer.Typer(help="List, inspect, stop, wait for, attach to, resume or delete training "
                       "jobs.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Training job name.", show_default=False)]


@app.command("list")
def list_jobs(
    status: Annotated[Optional[str], typer.Option(
        "--status", help="InProgress, Completed, Failed, Stopping or Stopped.",
        show_default=False, metavar="STATUS")] = None,
    name_contains: Annotated[Optional[str], typer.Option(
        "--name-contains", help="Only jobs whose name contains this.",
        show_default=False, metavar="TEXT")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", help="At most this many jobs.", metavar="N")] = 20,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Recent training jobs, newest first."""
    session = open_session(profile, region, backend=backend, local=local)
    jobs = session.training_jobs(status=status, name_contains=name_contains, limit=limit)
    if json:
        output.print_json([job.description for job in jobs])
        return
    rows = []
    for job in jobs:
        d = job.description
        rows.append((job.name, d["TrainingJobStatus"], d.get("SecondaryStatus", ""),
                     *output.created_and_took(d.get("CreationTime"), d.get("TrainingEndTime"))))
    output.print_table(["job", "status", "detail", "created", "took"], rows)


@app.command("describe")
def describe(
    name: Name,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Status, secondary-status history, metrics, cost and the model artifact of a job."""
    job = open_session(profile, region, backend=backend, local=local).training_job(name)
    job.refresh()
    if json:
        output.print_json(job.description)
        return
    print_fields(job.summary())
    history = [(t["Status"], f"{t['StartTime']:%Y-%m-%d %H:%M:%S}", t.get("StatusMessage", ""))
               for t in job.history]
    if history:
        output.print_table(["step", "since", "message"], history, title="history")


@app.command("stop")
def stop(
    name: Name,
    yes: options.Yes = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Stop a running job: it saves a checkpoint, then ends Stopped (`jobs resume` continues
    it)."""
    job = open_session(profile, region, backend=backend, local=local).training_job(name)
    if job.refresh()["TrainingJobStatus"] != "InProgress":
        sys.stdout.write(f"{name} is {job.status}; nothing to stop\n")
        return
    if not confirm(f"Stop training job {name}?", yes):
        raise typer.Abort()
    job.stop()
    sys.stdout.write(f"stopping {name}; `detectctl jobs wait {name}{job.cli_options}` waits "
                     "until it has stopped\n")


@app.command("wait")
def wait(
    name: Name,
    timeout: Annotated[Optional[str], typer.Option(
        "--timeout", help="Give up after this long, e.g. 90m or 6h (the job keeps running).",
        show_default=False, metavar="DURATION")] = None,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Wait until a job ends; exit 0 if it Completed, 1 if it Failed or was Stopped."""
    from detectctl.durations import parse_seconds
    from detectctl.jobs import LONGEST_WAIT_SECONDS

    job = open_session(profile, region, backend=backend, local=local).training_job(name)
    limit = parse_seconds(timeout, "--timeout") if timeout else LONGEST_WAIT_SECONDS
    job.wait(timeout=limit)
    if json:
        output.print_json({"job": name, "status": job.status, "reason": job.failure_reason,
                           "billable_seconds": job.billable_seconds, "cost": job.cost,
                           "model": job.model_artifact, "metrics": job.metrics})
    else:
        print_fields(job.summary())
    job.raise_for_status()


@app.command("attach")
def attach(
    name: Name,
    verbose: options.Verbose = False,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Follow a job until it ends (Ctrl-C detaches), then print its status and cost."""
    from detectctl.cli.follow import follow

    job = open_session(profile, region, backend=backend, local=local).training_job(name)
    job.refresh()
    follow(job, json=json, verbose=verbose)


@app.command("resume")
def resume(
    name: Name,
    wait_: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Follow the resumed job until it ends.")] = False,
    verbose: options.Verbose = False,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Continue a Stopped or Failed job from its last checkpoint.

    A local job restarts under its own name. On SageMaker a new job starts with the same
    settings and checkpoint location (the job must have one: --checkpoint-s3, or --spot).
    """
    job = open_session(profile, region, backend=backend, local=local).training_job(name)
    resumed = job.resume()
    if json and not wait_:
        output.print_json({"job": resumed.name, "resumed": name, "status": resumed.status})
    elif not json:
        which = "" if resumed.name == name else f" as {resumed.name}"
        sys.stderr.write(f"resumed {name}{which}\n")
    if wait_:
        from detectctl.cli.follow import follow

        follow(resumed, json=json, verbose=verbose)
    elif not json:
        sys.stdout.write(f"follow it: detectctl jobs attach {resumed.name}"
                         f"{resumed.cli_options}\n")


@app.command("delete")
def delete(
    name: Name,
    yes: options.Yes = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Delete a finished local job's directory (its logs, checkpoints and model)."""
    job = open_session(profile, region, backend=backend, local=local).training_job(name)
    job.check_delete()
    if not confirm(f"Delete training job {name} and everything it wrote?", yes):
        raise typer.Abort()
    job.delete()
    sys.stdout.write(f"deleted {name}\n")
