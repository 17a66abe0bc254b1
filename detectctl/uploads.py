"""Datasets to S3: checked first, then only what is missing, in parallel multipart uploads.

An object already under the destination with the same size and content (its ETag, or the
SHA-256 detectctl stores in its metadata when SSE-KMS makes ETags opaque) is skipped, so an
interrupted upload, run again, sends only what is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl.aws.transfer import etag
from detectctl.errors import DatasetRejectedError, NotFoundError, UsageError
from detectctl.training import split_s3_uri

if TYPE_CHECKING:
    from detectctl.session import Session

SSE_CHOICES = ("AES256", "aws:kms")
SHA256_METADATA = "detectctl-sha256"
CONCURRENCY = 10


@dataclass(frozen=True)
class UploadItem:
    path: Path
    key: str
    size: int


@dataclass
class UploadPlan:
    """What goes (``items``) and what is already there (``skipped``)."""

    bucket: str
    prefix: str
    items: list[UploadItem] = field(default_factory=list)
    skipped: list[UploadItem] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key or self.prefix}"


def local_files(path: Path) -> list[tuple[Path, str]]:
    """``(file, relative name)`` for a file, or every file under a directory (dotfiles left out)."""
    if path.is_file():
        return [(path, path.name)]
    if not path.is_dir():
        raise UsageError(f"{path}: no such file or directory")
    return [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


SPLITS = ("train", "validation")


def dataset_parts(path: Path) -> dict[str, Path]:
    """The datasets under ``path``: its ``train/`` and ``validation/`` parts (as `detectctl
    dataset convert` splits them), or ``path`` itself as the training set."""
    parts = {split: path / split for split in SPLITS if (path / split).exists()}
    return parts if path.is_dir() and "train" in parts else {"train": path}


def validate_dataset(path: Path) -> list[str]:
    """Every problem client-side validation finds in each part of ``path`` (empty: valid)."""
    from detectctl.datasets.validate import validate

    return [str(problem) for part in dataset_parts(path).values()
            for problem in validate(str(part)).problems]


def _same(session: Session, bucket: str, item: UploadItem, remote: dict[str, Any]) -> bool:
    if remote["Size"] != item.size:
        return False
    if remote.get("ETag", "").strip('"') == etag(item.path):
        return True
    try:
        head = session.aws.call("s3", "head_object", Bucket=bucket, Key=item.key)
    except NotFoundError:
        return False
    return head.get("Metadata", {}).get(SHA256_METADATA) == sha256(item.path)


def plan(session: Session, path: Path, uri: str) -> UploadPlan:
    """Compare ``path`` with what is under ``uri`` already (one listing, paginated)."""
    bucket, prefix = split_s3_uri(uri)
    files = local_files(path)
    if not files:
        raise UsageError(f"{path}: no files to upload")
    # A file goes to the exact key when the URI names one like it (same suffix), else into
    # the URI as a folder.
    as_folder = path.is_dir() or uri.endswith("/") or Path(prefix).suffix != path.suffix
    if as_folder:
        prefix = prefix.rstrip("/") + "/" if prefix else ""
    result = UploadPlan(bucket=bucket, prefix=prefix)
    remote = {o["Key"]: o for o in session.aws.paginate(
        "s3", "list_objects_v2", "Contents", Bucket=bucket, Prefix=prefix)}
    for local, name in files:
        key = prefix + name if as_folder else prefix
        item = UploadItem(local, key, local.stat().st_size)
        there = remote.get(key)
        (result.skipped if there and _same(session, bucket, item, there) else result.items).append(
            item)
    return result


def upload(session: Session, plan: UploadPlan, *, sse: Optional[str] = None,
           kms_key: Optional[str] = None, concurrency: int = CONCURRENCY,
           on_bytes: Callable[[int], None] = lambda n: None,
           on_file: Callable[[], None] = lambda: None) -> None:
    """Send ``plan.items``; progress through ``on_bytes(n)`` and ``on_file()``."""
    if sse is not None and sse not in SSE_CHOICES:
        raise UsageError(f"--sse {sse!r}: one of {', '.join(SSE_CHOICES)}")
    if kms_key and sse != "aws:kms":
        raise UsageError("--kms-key needs --sse aws:kms")
    extra: dict[str, Any] = {}
    if sse:
        extra["ServerSideEncryption"] = sse
    if kms_key:
        extra["SSEKMSKeyId"] = kms_key
    groups: dict[Optional[str], list[tuple[Path, str]]] = {}
    for item in plan.items:
        # Under SSE-KMS an ETag is not an MD5: keep the SHA-256 to recognise the object later.
        digest = sha256(item.path) if sse == "aws:kms" else None
        groups.setdefault(digest, []).append((item.path, item.key))
    for digest, files in groups.items():
        args = {**extra, "Metadata": {SHA256_METADATA: digest}} if digest else extra
        session.aws.upload_files(files, plan.bucket, extra_args=args, concurrency=concurrency,
                                 on_bytes=on_bytes, on_file=on_file)


def check_dataset(path: Path) -> None:
    """Raise ``DatasetRejectedError`` listing the problems validation finds."""
    problems = validate_dataset(path)
    if problems:
        count = len(problems)
        raise DatasetRejectedError(
            f"{path}: {count} problem{'s' if count != 1 else ''} found; nothing uploaded: "
            + "; ".join(problems[:3]) + ("; ..." if count > 3 else ""), problems=problems,
            hint=f"see `detectctl dataset validate {path}`, or pass --no-validate")


def _channel_uri(part: Path, uri: str) -> str:
    """A part's channel URI: the ``.rec`` or manifest object itself, or the prefix holding
    ``images/`` and ``annotations/`` (``detectctl train`` adds those)."""
    if part.is_file():
        return uri
    for pattern in ("*.rec", "*.manifest", "*.jsonl"):
        found = sorted(part.glob(pattern))
        if found:
            return uri + found[0].name
    return uri


def channels(path: Path, plan: UploadPlan) -> dict[str, str]:
    """The ``--train`` / ``--validation`` URIs to pass to ``detectctl train`` for this data."""
    if path.is_file():
        keys = [i.key for i in plan.items + plan.skipped]
        return {"train": plan.uri(keys[0])}
    result = {}
    for split, part in dataset_parts(path).items():
        relative = "" if part == path else part.relative_to(path).as_posix() + "/"
        result[split] = _channel_uri(part, plan.uri(plan.prefix + relative))
    return result
