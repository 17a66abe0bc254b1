"""`detectctl transform`: batch transform on SageMaker or this machine, and the jobs it starts.

`detectctl transform SOURCE --input ... --output ...` is short for `detectctl transform start`.
"""

import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from detectctl.cli import options, output
from detectctl.cli.session import Role, confirm, open_session, print_fields


class _StartByDefault(TyperGroup):
    """`transform SOURCE ...` runs `transform start SOURCE ...`."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_StartByDefault, no_args_is_help=True,
                  help="Run batch transform jobs: a model's detections for a whole dataset.")

Name = Annotated[str, typer.Argument(help="Transform job name.", show_default=False)]


@app.command("start")
def start(
    source: Annotated[str, typer.Argument(
        help="A training job's name, or a model.tar.gz (an S3 URI; a path or model directory "
             "with --instance local).", show_default=False)],
    input_: Annotated[str, typer.Option(
        "--input", help="What to transform: a prefix (or folder) of images, or a .rec.",
        show_default=False, metavar="URI_OR_PATH")],
    output_: Annotated[str, typer.Option(
        "--output", help="Where the results go: <image>.out per image, <name>.rec.out for a "
                         ".rec (JSON lines).", show_default=False, metavar="URI_OR_PATH")],
    instance: Annotated[str, typer.Option(
        "--instance", help="Instance type, e.g. ml.c5.xlarge, or `local` for this machine.",
        show_default=False, metavar="TYPE")],
    count: Annotated[int, typer.Option("--count", help="Number of instances.",
                                       metavar="N")] = 1,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Job name [default: <source>-batch-<timestamp>].", show_default=False,
        metavar="NAME")] = None,
    image: Annotated[Optional[str], typer.Option(
        "--image", help="Serving image URI [default: as for deploy].", show_default=False,
        metavar="URI")] = None,
    keep_model: Annotated[bool, typer.Option(
        "--keep-model", help="Keep the SageMaker model the job creates (deleted when the job "
                             "ends otherwise).")] = False,
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Follow the job until it ends.")] = True,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would be created; create nothing.")] = False,
    role: Role = None,
    yes: options.Yes = False,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Start a batch transform job: every image of --input through the model."""
    local = instance == "local"
    session = open_session(profile, region, role, backend="local" if local else None)
    plan = session.plan_transform(source, input=input_, output=output_, instance_type=instance,
                                  instance_count=count, name=name, image=image,
                                  keep_model=keep_model)
    if dry_run:
        output.print_json(plan.to_dict())
        return
    if plan.confirm:
        print_fields(plan.summary(), err=True)
        if not confirm(plan.question, yes):
            raise typer.Abort()
    job = session.launch_transform(plan)
    o = job.cli_options
    if not wait:
        if json:
            output.print_json({"job": job.name, "backend": job.backend, "status": job.status})
        else:
            sys.stdout.write(f"started transform job {job.name}\n"
                             f"  status:  detectctl transform describe {job.name}{o}\n"
                             f"  logs:    detectctl transform logs {job.name}{o} --follow\n")
            if job.backend != "local" and not keep_model:
                sys.stdout.write("  its model stays until you delete it (--no-wait): aws "
                                 "sagemaker delete-model --model-name "
                                 f"{job.description.get('ModelName')}\n")
        return
    _follow(job, quiet=json)
    removed = [] if keep_model else job.release()
    if json:
        output.print_json({"job": job.name, "status": job.status, "output": job.output,
                           "reason": job.failure_reason, "removed": removed})
    else:
        print_fields(job.summary(), err=True)
        for item in removed:
            sys.stderr.write(f"deleted {item}\n")
    job.raise_for_status()


def _follow(job: Any, *, quiet: bool) -> None:
    """A progress bar (where the backend counts inputs) until the job ends; Ctrl-C detaches."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=output.stderr(), disable=quiet, transient=True) as bar:
            task = bar.add_task(f"{job.name}: starting", total=None)
            while job.refresh()["TransformJobStatus"] not in ("Completed", "Failed",
                                                              "Stopped"):
                done, total = job.progress or (0, None)
                bar.update(task, completed=done, total=total,
                           description=f"{job.name}: {job.status}")
                time.sleep(job.poll_seconds)
    except KeyboardInterrupt:
        sys.stderr.write(f"\ndetached from {job.name}; it keeps running: detectctl transform "
                         f"describe {job.name}{job.cli_options}\n")
        raise typer.Exit(130) from None


@app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option("--limit", help="At most this many jobs.",
                                       metavar="N")] = 20,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Recent transform jobs, newest first."""
    jobs = open_session(profile, region, backend=backend, local=local).transform_jobs(
        limit=limit)
    if json:
        output.print_json([job.description for job in jobs])
        return
    rows = []
    for job in jobs:
        d = job.description
        rows.append((job.name, job.status,
                     *output.created_and_took(d.get("CreationTime"), d.get("TransformEndTime"))))
    output.print_table(["job", "status", "created", "took"], rows)


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
    """Status, input, output, instances, and the inputs that failed."""
    job = open_session(profile, region, backend=backend, local=local).transform_job(name)
    job.refresh()
    if json:
        output.print_json(job.description)
        return
    print_fields(job.summary())


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
    """Stop a running transform job (what it has written stays)."""
    job = open_session(profile, region, backend=backend, local=local).transform_job(name)
    job.refresh()
    if job.done:
        sys.stdout.write(f"{name} is {job.status}; nothing to stop\n")
        return
    if not confirm(f"Stop transform job {name}?", yes):
        raise typer.Abort()
    job.stop()
    sys.stdout.write(f"stopping {name}\n")


@app.command("logs")
def logs(
    name: Name,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep reading until the job ends.")] = False,
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Print a transform job's logs (the model server's lines)."""
    from detectctl.cli.follow import print_events

    job = open_session(profile, region, backend=backend, local=local).transform_job(name)
    job.refresh()
    try:
        print_events(job.logs(follow=follow), json=json)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
