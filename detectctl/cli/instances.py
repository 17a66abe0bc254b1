"""`detectctl instances`: the instance catalog."""

from __future__ import annotations

import typer

from detectctl.cli import options, output


def instances(
    gpu: bool = typer.Option(False, "--gpu", help="Only GPU instance types (those that train)."),
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """List the instance types detectctl offers for training and hosting.

    Training needs a GPU (P2, P3, G4dn, G5, G6, P4d, P5); endpoints run on CPU or GPU types.
    Prices are on-demand list prices, an estimate for cost bounds.
    """
    from detectctl import instances as catalog

    rows = [i for i in catalog.catalog() if i.has_gpu or not gpu]
    if json:
        output.print_json([i.to_dict() for i in rows])
        return
    table = []
    for i in rows:
        gpu_text = f"{i.gpus} x {i.gpu_model} {i.gpu_memory_gib:g} GiB" if i.has_gpu else "-"
        uses = "train, host" if i.can_train else "host"
        table.append((i.name, i.vcpus, f"{i.memory_gib:g}", gpu_text,
                      i.compute_capability or "-", f"${i.price_per_hour:,.3f}", uses))
    output.print_table(
        ["instance", "vCPUs", "memory GiB", "GPUs", "CUDA cc", "$/hour", "use"], table,
        justify={"vCPUs": "right", "memory GiB": "right", "$/hour": "right"},
        caption=f"On-demand list prices, {catalog.PRICE_REGION}, {catalog.PRICE_AS_OF}; "
                "an estimate, not a bill.",
    )
