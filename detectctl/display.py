"""How SDK objects show themselves: label/value rows as an HTML table (notebooks), times in UTC."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any


def html_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column HTML table of ``(label, value)`` rows, for ``_repr_html_``."""
    cells = "".join(f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
                    f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
                    for label, value in rows)
    return f"<table>{cells}</table>"


def timestamp(value: Any) -> str:
    """``2026-11-27 10:00:00 UTC`` for a datetime; anything else as text."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)
