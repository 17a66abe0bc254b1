"""`detectctl deploy SOURCE`: an endpoint for a trained model, its hourly cost confirmed first."""

import sys
from typing import Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import Role, confirm, open_session, print_fields


def deploy(
    source: Annotated[str, typer.Argument(
        help="A training job name, or the S3 URI of a model.tar.gz.", show_default=False)],
    instance: Annotated[str, typer.Option(
        "--instance", help="CPU or GPU instance type, e.g. ml.c5.xlarge.",
        show_default=False, metavar="TYPE")],
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
    """Deploy a model to a SageMaker endpoint (CreateModel, CreateEndpointConfig, CreateEndpoint).

    Shows the cost per hour and asks first. If the endpoint fails, prints SageMaker's reason and
    removes what this command created (unless --keep-on-failure).
    """
    from detectctl import endpoints
    from detectctl.training import parse_seconds

    limit = parse_seconds(timeout, "--timeout")
    session = open_session(profile, region, role)
    plan = endpoints.plan(session, source, instance_type=instance, instance_count=count,
                          name=name, image=image)
    if dry_run:
        output.print_json(plan.requests)
        return
    print_fields(plan.summary(), err=True)
    verb = "Update" if plan.update else "Create"
    if not confirm(f"{verb} endpoint {plan.spec.endpoint_name}?", yes):
        raise typer.Abort()
    if wait:
        sys.stderr.write(f"waiting for {plan.spec.endpoint_name} to be InService "
                         "(usually 5-10 minutes)...\n")
    endpoint = endpoints.deploy(session, plan, wait=wait, timeout=limit,
                                keep_on_failure=keep_on_failure)
    status = endpoint.refresh()["EndpointStatus"]
    if json:
        output.print_json({"endpoint": endpoint.name, "status": status,
                           "cost_per_hour": plan.cost_per_hour})
        return
    sys.stdout.write(f"endpoint {endpoint.name}: {status}\n"
                     f"  predict:  detectctl predict {endpoint.name} IMAGE...\n"
                     f"  delete:   detectctl endpoints delete {endpoint.name}\n")
