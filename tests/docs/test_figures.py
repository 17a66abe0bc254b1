"""Figures the hand-written docs quote from the instance catalog: every table row that names an
instance type states its catalog price (and, where given, its GPUs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detectctl import instances

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/costs.md", "docs/distributed.md"]


def _rows(page: str) -> list[list[str]]:
    rows = []
    for line in (ROOT / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("| ml."):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.parametrize("page", PAGES)
def test_instance_rows_quote_the_catalog(page):
    rows = _rows(page)
    assert rows, f"{page} has no instance table"
    for cells in rows:
        instance = instances.get(re.sub(r"\s*\(.*\)$", "", cells[0]))
        values = {cell.lstrip("$").replace(",", "") for cell in cells[1:]}
        assert f"{instance.price_per_hour:g}" in values, (page, cells)
        if instance.gpus:
            gpus = f"{instance.gpus} {instance.gpu_model}"
            assert gpus in cells, (page, cells, gpus)
