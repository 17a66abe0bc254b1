"""S3 URIs: ``s3://bucket/key`` split and joined. Imports nothing of detectctl's but its errors."""

from __future__ import annotations

import re

from detectctl.errors import UsageError

_S3_URI = re.compile(r"s3://([^/]+)/?(.*)")


def is_s3_uri(text: str) -> bool:
    return text.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``("bucket", "key/prefix")`` from ``s3://bucket/key/prefix``."""
    match = _S3_URI.fullmatch(uri)
    if not match:
        raise UsageError(f"{uri!r} is not an S3 URI", hint="expected s3://bucket/prefix")
    return match.group(1), match.group(2)


def s3_uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"
