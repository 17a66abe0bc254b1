"""`detectctl train`: launch an SSD training job on SageMaker (after showing what it will cost) or
on this machine (`--instance local`), then follow it."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import Bucket, Role, confirm, open_session, print_fields

LOCAL = "local"

def train(
    instance: Annotated[Optional[str], typer.Option(
        "--instance", help="GPU instance type, e.g. ml.p3.8xlarge, or `local` to train on "
                           "this machine (local paths for the data; --count local hosts).",
        show_default=False, metavar="TYPE")] = None,
    count: Annotated[Optional[int], typer.Option(
        "--count", help="Number of instances [default: 1].",
        show_default=False, metavar="N")] = None,
    train_uri: Annotated[Optional[str], typer.Option(
        "--train", help="The training data: an S3 URI (.rec, .manifest, or a prefix holding "
                        "images/ and annotations/), a local path with --instance local.",
        show_default=False, metavar="URI")] = None,
    validation: Annotated[Optional[str], typer.Option(
        "--validation", help="The validation data, same format and place.",
        show_default=False, metavar="URI")] = None,
    data_format: Annotated[Optional[str], typer.Option(
        "--format", help="recordio, sagemaker-json (alias image) or manifest "
                         "[default: from the name or what is there].",
        show_default=False, metavar="FORMAT")] = None,
    label_attribute: Annotated[Optional[str], typer.Option(
        "--label-attribute", help="Label attribute of an augmented manifest "
                                  "[default: bounding-box].",
        show_default=False, metavar="NAME")] = None,
    pretrained: Annotated[Optional[str], typer.Option(
        "--pretrained", help="Base-network weights (the `pretrained` channel) [default with "
                             "use_pretrained_model=1: torchvision's ImageNet file, cached or "
                             "downloaded].",
        show_default=False, metavar="URI")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="A model.tar.gz to continue from (incremental training).",
        show_default=False, metavar="URI")] = None,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="The classes.json the job gets as its `classes` channel [default: "
                          "the one beside --train, where `detectctl dataset upload` puts it].",
        show_default=False, metavar="URI")] = None,
    hp: Annotated[Optional[list[str]], typer.Option(
        "--hp", help="Hyperparameter KEY=VALUE (repeatable); see `detectctl hyperparameters`.",
        show_default=False, metavar="KEY=VALUE")] = None,
    preset: Annotated[Optional[str], typer.Option(
        "--preset", help="A job preset shipped with detectctl (`detectctl presets` lists "
                         "them); --config, then these options and --hp override it.",
        show_default=False, metavar="NAME")] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML or JSON job file: hyperparameters and any of these options.",
        show_default=False, metavar="FILE")] = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Job name [default: ssd-<base_network>-<timestamp>].",
        show_default=False, metavar="NAME")] = None,
    input_mode: Annotated[Optional[str], typer.Option(
        "--input-mode", help="File, Pipe or FastFile [default: File; Pipe for manifests].",
        show_default=False, metavar="MODE")] = None,
    spot: Annotated[Optional[bool], typer.Option(
        "--spot", help="Managed spot training (checkpoints on by default).",
        show_default=False)] = None,
    max_wait: Annotated[Optional[str], typer.Option(
        "--max-wait", help="Spot: longest wait plus run, e.g. 48h [default: 2 x --max-run].",
        show_default=False, metavar="DURATION")] = None,
    max_run: Annotated[Optional[str], typer.Option(
        "--max-run", help="Longest run, e.g. 6h or seconds [default: 24h]; bounds the cost.",
        show_default=False, metavar="DURATION")] = None,
    checkpoint_s3: Annotated[Optional[str], typer.Option(
        "--checkpoint-s3", help="S3 URI for checkpoints (a restarted job resumes from them).",
        show_default=False, metavar="URI")] = None,
    vpc_subnets: Annotated[Optional[list[str]], typer.Option(
        "--vpc-subnets", help="Subnet IDs (comma-separated or repeated).",
        show_default=False, metavar="ID,...")] = None,
    security_groups: Annotated[Optional[list[str]], typer.Option(
        "--security-groups", help="Security group IDs for --vpc-subnets.",
        show_default=False, metavar="ID,...")] = None,
    network_isolation: Annotated[Optional[bool], typer.Option(
        "--network-isolation", help="No network access from the training containers.",
        show_default=False)] = None,
    encrypt_inter_container: Annotated[Optional[bool], typer.Option(
        "--encrypt-inter-container", help="Encrypt traffic between the instances.",
        show_default=False)] = None,
    volume_size: Annotated[Optional[int], typer.Option(
        "--volume-size", help="EBS volume per instance in GB [default: 30].",
        show_default=False, metavar="GB")] = None,
    tags: Annotated[Optional[list[str]], typer.Option(
        "--tags", help="Tags KEY=VALUE (comma-separated or repeated).",
        show_default=False, metavar="KEY=VALUE")] = None,
    image: Annotated[Optional[str], typer.Option(
        "--image", help="Training image URI [default: the PyTorch image for the GPU].",
        show_default=False, metavar="URI")] = None,
    role: Role = None,
    bucket: Bucket = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the CreateTrainingJob request as JSON; call nothing.")] = False,
    wait: Annotated[Optional[bool], typer.Option(
        "--wait/--no-wait", help="Follow the job until it ends [default: --wait for local "
                                 "jobs, --no-wait on SageMaker].", show_default=False)] = None,
    verbose: options.Verbose = False,
    yes: options.Yes = False,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Launch an SSD training job on SageMaker, or on this machine with --instance local.

    Checks the hyperparameters first (exit 2 naming the bad one). On SageMaker, shows the
    instances, data, image and the cost bound (price x instances x --max-run) and asks before
    launching; multi-GPU and multi-instance jobs run torch.distributed. A local job runs
    --count local hosts under a supervisor of its own. Either way the job keeps running when
    this command ends; Ctrl-C while following only detaches.
    """
    from detectctl import presets, training
    from detectctl.durations import describe_seconds
    from detectctl.keyvalues import parse_key_values, split_list

    config_file = training.load_job_file(config) if config else {}
    job_file = training.merge_job_files(presets.get(preset).job_file() if preset else {},
                                        config_file)
    values = {**job_file["hyperparameters"], **parse_key_values(hp or [], "--hp")}
    source = str(config) if config and not hp else None
    given = {
        "instance": instance, "count": count, "train": train_uri, "validation": validation,
        "format": data_format, "label_attribute": label_attribute, "pretrained": pretrained,
        "model": model, "name": name, "input_mode": input_mode, "spot": spot,
        "max_run": max_run, "max_wait": max_wait, "checkpoint_s3": checkpoint_s3,
        "vpc_subnets": split_list(vpc_subnets), "security_groups": split_list(security_groups),
        "network_isolation": network_isolation,
        "encrypt_inter_container": encrypt_inter_container, "volume_size": volume_size,
        "tags": tags, "image": image, "classes": classes,
    }
    arguments, left_out = training.preset_arguments(given, job_file)
    local = arguments["instance_type"] == LOCAL
    from_config = training.merge_job_files(config_file)  # its keys as preset_arguments names them
    for key, value in left_out.items():
        origin = f"--config {config}" if key in from_config else f"preset {preset}"
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, int) and key in ("max_run", "max_wait"):
            value = describe_seconds(value)
        sys.stderr.write(f"note: left out {origin}'s {key.replace('_', '-')} ({value}): a "
                         "SageMaker-only setting, and this job runs on the local backend\n")
    session = open_session(profile, region, role, bucket, backend=LOCAL if local else None)
    if local:
        from detectctl.backend import refuse

        refuse(LOCAL, {"--yes": yes})
    session.on_download = _download_bar()
    plan = session.plan(offline=dry_run, hyperparameters=values, hyperparameter_source=source,
                        **arguments)
    if dry_run:
        output.print_json(plan.to_dict())
        for note in plan.notes:
            sys.stderr.write(f"note: {note}\n")
        return
    if plan.confirm:
        print_fields(plan.summary(), err=True)
        if not confirm("Launch this training job?", yes):
            raise typer.Abort()
    job = session.launch(plan, confirm=lambda question: confirm(question, yes))
    follow_job = local if wait is None else wait
    if json and not follow_job:
        output.print_json({"job": job.name, "backend": job.backend, "status": job.status,
                           "request": plan.to_dict()})
    elif follow_job:
        sys.stderr.write(f"started training job {job.name}"
                         f"{' on this machine' if local else ''}; Ctrl-C detaches from it\n")
    else:
        _next_steps(job)
    if follow_job:
        from detectctl.cli.follow import follow

        follow(job, json=json, verbose=verbose)
        if not json:
            _result(job)


def _next_steps(job: Any) -> None:
    o = job.cli_options
    deploy = "--instance local" if job.backend == LOCAL else "--instance ml.c5.xlarge"
    sys.stdout.write(
        f"started training job {job.name}\n"
        f"  follow it:        detectctl jobs attach {job.name}{o}\n"
        f"  its logs:         detectctl logs {job.name}{o} --follow\n"
        f"  status:           detectctl jobs describe {job.name}{o}\n"
        f"  stop it:          detectctl jobs stop {job.name}{o}\n"
        f"  when it is done:  detectctl deploy {job.name} {deploy}\n")


def _result(job: Any) -> None:
    """What a finished job left: its validation mAP and model."""
    score = job.metrics.get("validation:mAP")
    line = f"training job {job.name} completed"
    if score is not None:
        line += f": validation mAP {score:.4f}"
    sys.stdout.write(f"{line}\n  model:  {job.model_artifact}\n")


def _download_bar() -> Any:
    """A progress bar on stderr for a download of pretrained weights."""
    state: dict[str, Any] = {}

    def update(done: int, total: Optional[int]) -> None:
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        from detectctl.cli.output import stderr

        if "progress" not in state:
            progress = Progress(*Progress.get_default_columns(), DownloadColumn(),
                                TransferSpeedColumn(), console=stderr(), transient=True)
            progress.start()
            state["progress"] = progress
            state["task"] = progress.add_task("pretrained weights", total=total)
        progress = state["progress"]
        progress.update(state["task"], completed=done, total=total)
        if total is not None and done >= total:
            progress.stop()

    return update
