"""Resource names: one rule for training jobs and endpoints on every backend.

A generated name is ``<base>-YYYY-MM-DD-HH-MM-SS-mmm`` (UTC), as the sagemaker SDK names jobs.
Two names generated in the same millisecond would be equal, so a backend never takes a generated
name blindly: it reserves the first free one of :func:`candidates` (the local backend by
creating the job's directory, SageMaker by creating the job and moving on when the name is in
use). A name the user gives must follow SageMaker's rule, which also keeps it a safe directory
name on this machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Optional

from detectctl.errors import UsageError

MAX_LENGTH = 63
_TIMESTAMP_LENGTH = len("2026-01-01-00-00-00-000")
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9-]+")
# SageMaker's pattern for TrainingJobName and EndpointName.
_VALID = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# How many milliseconds on a generated name may move before giving up.
ATTEMPTS = 100


def unique_name(base: str, when: Optional[datetime] = None, max_length: int = MAX_LENGTH) -> str:
    """``base-YYYY-MM-DD-HH-MM-SS-mmm`` (UTC) within ``max_length``."""
    when = when or datetime.now(timezone.utc)
    stamp = when.strftime("%Y-%m-%d-%H-%M-%S-") + f"{when.microsecond // 1000:03d}"
    base = _NOT_ALLOWED.sub("-", base).strip("-") or "detectctl"
    return f"{base[:max_length - _TIMESTAMP_LENGTH - 1].rstrip('-')}-{stamp}"


def candidates(base: str, when: Optional[datetime] = None) -> Iterator[str]:
    """Generated names for ``base``, one millisecond apart: take the first one not in use."""
    when = when or datetime.now(timezone.utc)
    for step in range(ATTEMPTS):
        yield unique_name(base, when + timedelta(milliseconds=step))


def job_base(base_network: str) -> str:
    """The base of a generated training job name: ``ssd-<base network>``."""
    return f"ssd-{base_network}"


def check_name(name: str, what: str = "--name") -> str:
    """``name`` if SageMaker would take it, else a usage error saying the rule."""
    if not _VALID.fullmatch(name):
        raise UsageError(f"{what} {name!r}: use 1-63 letters, digits and hyphens, starting "
                         "and ending with a letter or digit")
    return name
