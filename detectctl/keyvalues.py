"""``KEY=VALUE`` and comma-separated lists as they come from the command line or a preset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from detectctl.errors import UsageError


def parse_key_values(pairs: Sequence[str], what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a usage error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {pair!r}: expected KEY=VALUE")
        result[key.strip()] = value
    return result


def split_list(values: Optional[Sequence[str]]) -> Optional[list[str]]:
    """Repeated and comma-separated values as one list (None stays None)."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
