"""`detectctl deploy SOURCE`: an endpoint for a trained model, its hourly cost confirmed first."""

import sys
from typing import Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import Role, confirm, open_session, print_fields


def deploy(
    source: Annotated[str, typer.Argument(
        help="A training job name, or a model.tar.gz (an S3 URI; a local path with --instance "
             "local).", show_default=False)],
    instance: Annotated[str, typer.Option(
        "--instance", help="CPU or GPU instance type, e.g. ml.c5.xlarge, or `local` to serve "
                           "on this machine.", show_default=False, metavar="TYPE")],
    count: Annotated[int, typer.Option("--count", help="Number of instances.", metavar="N")] = 1,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Endpoint name [default: the job name]; an existing endpoint is "
                       "updated without downtime.", show_default=False, metavar="NAME")] = None,
    image: Annotated[Optional[str], typer.Option(
        "--image", help="Serving image URI [default: inference_image in the config file, else "
                        "the PyTorch inference image for the instance].",
        show_default=False, metavar="URI")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Wait until the endpoint is InService.")] = True,
    timeout: Annotated[str, typer.Option(
        "--timeout", help="How long --wait waits, e.g. 30m.", metavar="DURATION")] = "30m",
    keep_on_failure: Annotated[bool, typer.Option(
        "--keep-on-failure", help="Keep what was created when the endpoint fails.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the requests as JSON and create nothing.")] = False,
    role: Role = None,
    yes: options.Yes = False,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Deploy a model to an endpoint on SageMaker, or on this machine with --instance local.

    On SageMaker (CreateModel, CreateEndpointConfig, CreateEndpoint), shows the cost per hour
    and asks first. If the endpoint fails, prints the reason and removes what this command
    created (unless --keep-on-failure).
    """
    from detectctl.durations import parse_seconds

    limit = parse_seconds(timeout, "--timeout")
    local = instance == "local"
    session = open_session(profile, region, role, backend="local" if local else None)
    options = {"instance_type": instance, "name": name}
    if count != 1:
        options["instance_count"] = count
    if image:
        options["image"] = image
    plan = session.plan_deployment(source, **options)
    if dry_run:
        output.print_json(plan.to_dict())
        return
    if plan.confirm:
        print_fields(plan.summary(), err=True)
        if not confirm(plan.question, yes):
            raise typer.Abort()
    if wait:
        sys.stderr.write(f"waiting for {plan.name} to be InService ({plan.wait_hint})...\n")
    endpoint = session.launch_deployment(plan, wait=wait, timeout=limit,
                                         keep_on_failure=keep_on_failure)
    status = endpoint.refresh()["EndpointStatus"]
    if json:
        output.print_json({"endpoint": endpoint.name, "status": status,
                           "cost_per_hour": endpoint.cost_per_hour})
        return
    o = endpoint.cli_options
    sys.stdout.write(f"endpoint {endpoint.name}: {status}\n"
                     f"  predict:  detectctl predict {endpoint.name}{o} IMAGE...\n"
                     f"  delete:   detectctl endpoints delete {endpoint.name}{o}\n")
