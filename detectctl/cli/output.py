"""Rendering: rich tables for people, JSON for scripts. rich loads only when something prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                title: str | None = None, caption: str | None = None,
                justify: dict[str, str] | None = None) -> None:
    """Print a table on stdout (plain text when stdout is not a terminal)."""
    from rich.table import Table

    table = Table(title=title, caption=caption, header_style="bold", box=_box())
    for column in columns:
        table.add_column(column, justify=(justify or {}).get(column, "left"), overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout().print(table)


def created_and_took(created: Any, ended: Any) -> tuple[str, str]:
    """Table cells for when a job was created and how long it took (``-`` when unknown)."""
    took = str(ended - created).split(".")[0] if created and ended else "-"
    return (f"{created:%Y-%m-%d %H:%M}" if created else "-"), took


def _box() -> Any:
    from rich import box

    return box.SIMPLE_HEAD


def stdout() -> Any:
    """A console on stdout; when piped, wide enough that table rows stay on one line."""
    import os

    from rich.console import Console

    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 240
    return Console(soft_wrap=False, width=width)


def stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def error_line(message: str) -> None:
    """One line on stderr: ``error: message``."""
    sys.stderr.write(f"error: {message}\n")
