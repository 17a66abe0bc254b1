"""`detectctl train`: launch an SSD training job on SageMaker, after showing what it will cost."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import Bucket, Role, confirm, open_session, print_fields

# Option name -> training.plan() argument; a --config preset uses the option names.
PLAN_ARGUMENTS = {
    "instance": "instance_type", "count": "instance_count", "train": "train",
    "validation": "validation", "format": "data_format", "label_attribute": "label_attribute",
    "pretrained": "pretrained", "model": "model", "name": "name", "input_mode": "input_mode",
    "spot": "spot", "max_run": "max_run_seconds", "max_wait": "max_wait_seconds",
    "checkpoint_s3": "checkpoint_s3", "vpc_subnets": "subnets",
    "security_groups": "security_groups", "network_isolation": "network_isolation",
    "encrypt_inter_container": "encrypt_inter_container", "volume_size": "volume_size_gb",
    "tags": "tags", "image": "image", "classes": "classes",
}


LOCAL = "local"


def _train_locally(values: dict[str, Any], *, source: Optional[str], unsupported: list[str],
                   train: Optional[str], validation: Optional[str], data_format: Optional[str],
                   pretrained: Optional[str], model: Optional[str], name: Optional[str],
                   count: int, json: bool) -> None:
    """`--instance local`: the same job in processes on this machine (the local backend)."""
    import time

    from detectctl.errors import DetectctlError, UsageError
    from detectctl.hyperparameters import validate
    from detectctl.local import training as local

    if unsupported:
        raise UsageError(f"{unsupported[0]} does not apply to --instance local")
    if train is None:
        raise UsageError("missing --train", hint="the local path of the training data")
    hp = validate(values, source=source)
    name = name or f"ssd-{hp.base_network}-{time.strftime('%Y%m%d-%H%M%S')}"
    width = len(f"algo-{count}")

    def show(host: str, line: str) -> None:
        if not json:
            prefix = f"{host:<{width}} | " if count > 1 else ""
            sys.stdout.write(f"{prefix}{line}\n")
            sys.stdout.flush()

    sys.stderr.write(f"training {name} locally on {count} host(s); Ctrl-C stops it "
                     "after a checkpoint\n")
    result = local.train(name=name, train=train, validation=validation,
                         hyperparameters=hp.to_sagemaker(), data_format=data_format,
                         pretrained=pretrained, model=model, hosts=count, on_line=show)
    if json:
        output.print_json({"job": result.name, "status": result.status,
                           "seconds": round(result.seconds, 1),
                           "failure_reason": result.failure_reason,
                           "model": str(result.model_archive) if result.status == "Completed"
                           else None, "directory": str(result.directory)})
    elif result.status == "Completed":
        sys.stdout.write(
            f"training job {result.name} completed in {result.seconds:.0f} s\n"
            f"  model:  {result.model_archive}\n"
            f"  logs:   {result.directory / 'logs'}\n")
    if result.status == "Failed":
        raise DetectctlError(f"training job {result.name} failed: {result.failure_reason}")
    if result.status == "Stopped":
        raise DetectctlError(f"training job {result.name} was stopped; its checkpoint is in "
                             f"{result.directory / 'hosts' / 'algo-1' / 'checkpoints'}")


def _split(values: Optional[list[str]]) -> Optional[list[str]]:
    """Repeated and comma-separated values as one list."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def plan_arguments(given: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """training.plan() arguments: the preset's values, overridden by the options given."""
    from detectctl.errors import UsageError
    from detectctl.training import parse_key_values, parse_seconds

    values = {key.replace("-", "_"): value for key, value in preset.items()
              if key != "hyperparameters"}
    unknown = sorted(set(values) - set(PLAN_ARGUMENTS))
    if unknown:
        raise UsageError(f"--config: unknown key {unknown[0]!r}",
                         hint="keys: hyperparameters, " + ", ".join(sorted(PLAN_ARGUMENTS)))
    values.update({key: value for key, value in given.items() if value is not None})
    for key in ("max_run", "max_wait"):
        if isinstance(values.get(key), str):
            values[key] = parse_seconds(values[key], "--" + key.replace("_", "-"))
    if isinstance(values.get("tags"), list):
        values["tags"] = parse_key_values(_split(values["tags"]) or [], "--tags")
    for key in ("vpc_subnets", "security_groups"):
        if isinstance(values.get(key), str):
            values[key] = _split([values[key]])
    for required in ("instance", "train"):
        if values.get(required) is None:
            raise UsageError(f"missing --{required}",
                             hint="pass it, or set it in the --config file")
    return {PLAN_ARGUMENTS[key]: value for key, value in values.items()}


def train(
    instance: Annotated[Optional[str], typer.Option(
        "--instance", help="GPU instance type, e.g. ml.p3.8xlarge, or `local` to train on "
                           "this machine (local paths for the data; --count local hosts).",
        show_default=False, metavar="TYPE")] = None,
    count: Annotated[Optional[int], typer.Option(
        "--count", help="Number of instances [default: 1].",
        show_default=False, metavar="N")] = None,
    train_uri: Annotated[Optional[str], typer.Option(
        "--train", help="S3 URI of the training data (.rec, .manifest, or a prefix holding "
                        "images/ and annotations/).", show_default=False, metavar="URI")] = None,
    validation: Annotated[Optional[str], typer.Option(
        "--validation", help="S3 URI of the validation data, same format.",
        show_default=False, metavar="URI")] = None,
    data_format: Annotated[Optional[str], typer.Option(
        "--format", help="recordio, image or manifest [default: from the URI].",
        show_default=False, metavar="FORMAT")] = None,
    label_attribute: Annotated[Optional[str], typer.Option(
        "--label-attribute", help="Label attribute of an augmented manifest "
                                  "[default: bounding-box].",
        show_default=False, metavar="NAME")] = None,
    pretrained: Annotated[Optional[str], typer.Option(
        "--pretrained", help="S3 URI of base-network weights (the `pretrained` channel).",
        show_default=False, metavar="URI")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="S3 URI of a model.tar.gz to continue from (incremental training).",
        show_default=False, metavar="URI")] = None,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="S3 URI of the classes.json the job gets as its `classes` channel "
                          "[default: the one `detectctl dataset upload` put beside --train].",
        show_default=False, metavar="URI")] = None,
    hp: Annotated[Optional[list[str]], typer.Option(
        "--hp", help="Hyperparameter KEY=VALUE (repeatable); see `detectctl hyperparameters`.",
        show_default=False, metavar="KEY=VALUE")] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML or JSON job preset: hyperparameters and any of these options.",
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
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Follow the job's logs until it ends.")] = False,
    yes: options.Yes = False,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Launch an SSD training job on SageMaker.

    Checks the hyperparameters first (exit 2 naming the bad one), shows the instances, data,
    image and the cost bound (price x instances x --max-run) and asks before launching.
    Multi-GPU and multi-instance jobs run torch.distributed. The job keeps running when this
    command ends; Ctrl-C during --wait only detaches.
    """
    from detectctl import training

    preset = training.load_job_file(config) if config else {}
    values = {**preset.get("hyperparameters", {}),
              **training.parse_key_values(hp or [], "--hp")}
    source = str(config) if config and not hp else None
    if (instance or preset.get("instance")) == LOCAL:
        aws_only = {"--spot": spot, "--max-wait": max_wait, "--max-run": max_run,
                    "--checkpoint-s3": checkpoint_s3, "--vpc-subnets": vpc_subnets,
                    "--security-groups": security_groups,
                    "--network-isolation": network_isolation,
                    "--encrypt-inter-container": encrypt_inter_container,
                    "--volume-size": volume_size, "--tags": tags, "--image": image,
                    "--input-mode": input_mode, "--classes": classes, "--dry-run": dry_run}
        _train_locally(
            values, source=source,
            unsupported=[k for k, v in aws_only.items() if v not in (None, False)],
            train=train_uri or preset.get("train"),
            validation=validation or preset.get("validation"),
            data_format=data_format or preset.get("format"),
            pretrained=pretrained or preset.get("pretrained"),
            model=model or preset.get("model"), name=name or preset.get("name"),
            count=count or preset.get("count") or 1, json=json)
        return
    given = {
        "instance": instance, "count": count, "train": train_uri, "validation": validation,
        "format": data_format, "label_attribute": label_attribute, "pretrained": pretrained,
        "model": model, "name": name, "input_mode": input_mode, "spot": spot,
        "max_run": max_run, "max_wait": max_wait, "checkpoint_s3": checkpoint_s3,
        "vpc_subnets": _split(vpc_subnets), "security_groups": _split(security_groups),
        "network_isolation": network_isolation,
        "encrypt_inter_container": encrypt_inter_container, "volume_size": volume_size,
        "tags": tags, "image": image, "classes": classes,
    }
    session = open_session(profile, region, role, bucket)
    plan = training.plan(session, hyperparameters=values, hyperparameter_source=source,
                         offline=dry_run, **plan_arguments(given, preset))
    if dry_run:
        output.print_json(plan.request)
        if plan.placeholders:
            sys.stderr.write("note: " + ", ".join(plan.placeholders) + " stand for values "
                             "resolved at launch (pass --role and --bucket to fix them)\n")
        for note in plan.notes:
            sys.stderr.write(f"note: {note}\n")
        return
    print_fields(plan.summary(), err=True)
    if not confirm("Launch this training job?", yes):
        raise typer.Abort()
    job = training.launch(session, plan, confirm=lambda question: confirm(question, yes))
    if json:
        output.print_json({"job": job.name, "request": plan.request})
    else:
        sys.stdout.write(
            f"started training job {job.name}\n"
            f"  follow its logs:  detectctl logs {job.name} --follow\n"
            f"  status:           detectctl jobs describe {job.name}\n"
            f"  stop it:          detectctl jobs stop {job.name}\n"
            f"  when it is done:  detectctl deploy {job.name} --instance ml.c5.xlarge\n")
    if wait:
        from detectctl.cli.logs import follow

        follow(job, json=json)
