"""`detectctl endpoints list|describe|delete`: what is serving, what it costs, and cleanup."""

import sys
from typing import Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import confirm, open_session, print_fields

app = typer.Typer(help="List, describe, delete endpoints or read their logs.",
                  no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Endpoint name.", show_default=False)]


def _age(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"


@app.command("list")
def list_endpoints(
    json: options.Json = False,
    backend: options.Backend = None,
    local: options.Local = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Endpoints with status, instances, age and cost per hour; flags those idle for a day."""
    from detectctl import costs

    found = open_session(profile, region, backend=backend, local=local).endpoints()
    rows = []
    for e in found:
        rows.append({"endpoint": e.name, "status": e.status, "instance": e.instance_type,
                     "count": e.instance_count, "age": _age(e.age.total_seconds()),
                     "cost_per_hour": e.cost_per_hour, "invocations_24h": e.invocations_24h,
                     "flag": "idle 24h+" if e.idle else ""})
    if json:
        output.print_json(rows)
        return
    output.print_table(
        ["endpoint", "status", "instance", "count", "age", "$/hour", "flag"],
        [(r["endpoint"], r["status"], r["instance"], r["count"], r["age"],
          costs.money(r["cost_per_hour"]), r["flag"]) for r in rows],
        justify={"count": "right", "$/hour": "right"})


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
    """Status, instances, model, cost per hour and any failure reason."""
    endpoint = open_session(profile, region, backend=backend, local=local).endpoint(name)
    endpoint.refresh()
    if json:
        output.print_json(endpoint.details())
        return
    print_fields(endpoint.summary())


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
    """Delete an endpoint and what serves it (on SageMaker: its endpoint config and model)."""
    endpoint = open_session(profile, region, backend=backend, local=local).endpoint(name)
    endpoint.refresh()
    if not confirm(f"Delete endpoint {name}, its config and its model?", yes):
        raise typer.Abort()
    for line in endpoint.delete():
        sys.stdout.write(f"deleted {line}\n")


@app.command("logs")
def logs(
    name: Name,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep reading until the endpoint fails or is deleted "
                               "(Ctrl-C stops reading).")] = False,
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
    """Print an endpoint's serving logs (CloudWatch /aws/sagemaker/Endpoints/NAME on SageMaker,
    the server's log file for a local endpoint)."""
    from detectctl.cli.follow import print_events
    from detectctl.durations import parse_since

    endpoint = open_session(profile, region, backend=backend, local=local).endpoint(name)
    endpoint.refresh()
    try:
        print_events(endpoint.logs(follow=follow, since=parse_since(since) if since else None),
                     json=json)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
