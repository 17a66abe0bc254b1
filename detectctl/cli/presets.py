"""`detectctl presets`: the job presets that `detectctl train --preset NAME` starts from."""

from __future__ import annotations

from detectctl.cli import options, output


def presets(json: options.Json = False, debug: options.Debug = False) -> None:
    """List the job presets for `train --preset NAME`, with what each run may cost.

    Each preset is a whole job: instance type and count, --max-run and hyperparameters. The
    built-in algorithm's published VOC07+12 configurations, a quick start on one T4 and the
    local demo's CPU recipe. The cost bound is the one `train` shows before launching (on-demand
    price x instances x --max-run); a local job costs nothing. --config, then train's options
    and --hp override a preset, in that order.
    """
    from detectctl import instances
    from detectctl import presets as shipped

    found = shipped.catalog()
    if json:
        output.print_json([preset.to_dict() for preset in found])
        return
    rows = []
    for preset in found:
        cost = preset.cost()
        if cost is None:
            money = ("-", "-", "no cost")
        else:
            money = (f"${cost.hourly:,.3f}", f"{cost.max_run_seconds / 3600:g} h",
                     f"${cost.bound:,.2f}")
        rows.append((preset.name, preset.instance_type, preset.instance_count, *money))
    output.print_table(
        ["preset", "instance", "count", "$/hour", "max run", "cost bound"], rows,
        justify={"count": "right", "$/hour": "right", "max run": "right",
                 "cost bound": "right"},
        caption=f"Cost bound: $/hour x max run, as `train` shows before launching; on-demand "
                f"list prices, {instances.PRICE_REGION}, {instances.PRICE_AS_OF}; an estimate, "
                "not a bill.")
    # The descriptions apart: in the same table they would squeeze the names into folds.
    output.print_table(["preset", "what it trains"],
                       [(preset.name, preset.description) for preset in found])
