"""`detectctl instances`: the instance catalog."""

from __future__ import annotations

import typer

from detectctl.cli import options, output


def instances(
    gpu: bool = typer.Option(False, "--gpu", help="Only GPU instance types (those that train)."),
    region: options.Region = None,
    json: options.Json = False,
    debug: options.Debug = False,
) -> None:
    """List the instance types detectctl offers for training and hosting.

    Training needs a GPU (P2, P3, G4dn, G5, G6, P4d, P5); endpoints run on CPU or GPU types.
    Prices are on-demand list prices, an estimate for cost bounds. With --region, the framework
    images each type gets in that region are shown too.
    """
    from detectctl import instances as catalog

    rows = [i for i in catalog.catalog() if i.has_gpu or not gpu]
    images = {i.name: catalog.images_for(i, region) for i in rows} if region else {}
    if json:
        output.print_json([{**i.to_dict(), **images.get(i.name, {})} for i in rows])
        return
    table = []
    for i in rows:
        gpu_text = f"{i.gpus} x {i.gpu_model} {i.gpu_memory_gib:g} GiB" if i.has_gpu else "-"
        uses = "train, host" if i.can_train else "host"
        row = [i.name, i.vcpus, f"{i.memory_gib:g}", gpu_text, i.compute_capability or "-",
               f"${i.price_per_hour:,.3f}", uses]
        if region:
            tags = images[i.name]
            row += [_tag(tags.get("training_image")), _tag(tags["inference_image"])]
        table.append(row)
    columns = ["instance", "vCPUs", "memory GiB", "GPUs", "CUDA cc", "$/hour", "use"]
    if region:
        columns += [f"training image ({region})", "inference image"]
    output.print_table(
        columns, table,
        justify={"vCPUs": "right", "memory GiB": "right", "$/hour": "right"},
        caption=f"On-demand list prices, {catalog.PRICE_REGION}, {catalog.PRICE_AS_OF}; "
                "an estimate, not a bill.",
    )


def _tag(uri: str | None) -> str:
    return "-" if uri is None else uri.rsplit("/", 1)[1]
