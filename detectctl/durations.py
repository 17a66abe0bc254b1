"""Durations and points in time as users type them: ``90m``, ``6h``, ``2d``, ISO 8601."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Optional

from detectctl.errors import UsageError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_seconds(text: str, what: str) -> int:
    """``"86400"``, ``"90m"``, ``"6h"``, ``"2d"`` -> seconds; ``what`` names the option."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd]?)\s*", text)
    if not match:
        raise UsageError(f"{what} {text!r}: expected seconds or a duration like 90m, 6h, 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_since(text: str, now: Optional[datetime] = None) -> datetime:
    """``10m``, ``2h``, ``1d``, ``90s`` ago, or an ISO 8601 time (UTC when it has no zone)."""
    now = now or datetime.now(timezone.utc)
    match = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,6})?)\s*([smhd])\s*", text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r}: expected a duration like 10m, 2h, 1d or an ISO "
                         "time like 2026-11-27T10:00") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def describe_seconds(seconds: float) -> str:
    """``95`` -> ``1m 35s``; ``7300`` -> ``2h 1m``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
