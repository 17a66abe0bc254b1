"""Datasets to S3: checked first, laid out for SageMaker, then only what is missing, in parallel
multipart uploads.

The parts of a local dataset (:func:`dataset_parts`): ``train/`` and ``validation/`` folders (as
`detectctl dataset convert` and `synth` split them), or ``train.*`` and ``validation.*`` data
files side by side (``train.rec`` + ``validation.rec``); a dataset without parts is ``train``.
Anything that mixes these is refused with how to arrange it. Each part is validated on its own,
so record ids may repeat across parts, not within one.

Layout under ``s3://bucket/prefix``::

    prefix/train/                 the data only: *.rec, images/ + annotations/, or the manifest
                                  and its images; safe as a channel in File and in Pipe mode
    prefix/meta/train/            the rest: .idx, .lst, classes.json (the ``classes`` channel)

In Pipe mode SageMaker streams every object under a channel's prefix into the FIFO, which is
why nothing but data may sit under ``prefix/train/``. An augmented manifest is uploaded with its
``source-ref`` entries rewritten to the S3 URIs of its images, which are uploaded beside it; the
local manifest is left as it is.

An object already under the destination with the same size and content (its ETag, or the
SHA-256 detectctl stores in its metadata when SSE-KMS makes ETags opaque) is skipped, so an
interrupted upload, run again, sends only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from detectctl import formats
from detectctl.aws.transfer import etag
from detectctl.errors import DatasetRejectedError, NotFoundError, UsageError
from detectctl.s3uri import split_s3_uri

if TYPE_CHECKING:
    from detectctl.session import Session

SSE_CHOICES = ("AES256", "aws:kms")
SHA256_METADATA = "detectctl-sha256"
CONCURRENCY = 10
SPLITS = ("train", "validation")
META = "meta"
CLASSES_FILE = "classes.json"


@dataclass(frozen=True)
class UploadItem:
    """A file and its key; ``data`` is sent instead of the file's content when set (a manifest
    rewritten with S3 ``source-ref`` URIs)."""

    path: Path
    key: str
    size: int
    data: Optional[bytes] = None

    @property
    def source(self) -> Union[Path, bytes]:
        return self.path if self.data is None else self.data


@dataclass
class UploadPlan:
    """What goes (``items``), what is already there (``skipped``), and the ``channels``: the
    ``--train`` / ``--validation`` / ``--classes`` URIs for ``detectctl train``."""

    bucket: str
    prefix: str
    items: list[UploadItem] = field(default_factory=list)
    skipped: list[UploadItem] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key or self.prefix}"


def local_files(path: Path) -> list[Path]:
    """Every file under a directory (dotfiles left out), sorted."""
    return [p for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]


def sha256(source: Union[Path, bytes]) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(source, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


DATA_SUFFIXES = formats.RECORDIO_SUFFIXES + formats.MANIFEST_SUFFIXES


def dataset_parts(path: Path) -> dict[str, Path]:
    """The datasets under ``path``, by part: ``train/`` and ``validation/`` folders, or
    ``train.*`` and ``validation.*`` data files side by side, or ``path`` itself as the training
    set (a file, or a folder holding one dataset, several ``.rec`` shards included).

    Raises ``UsageError`` for a layout that mixes these (which files would be which part?),
    saying how to arrange it."""
    if not path.is_dir():
        return {"train": path}
    folders = {split: path / split for split in SPLITS if (path / split).is_dir()}
    data = sorted(p for p in path.iterdir()
                  if p.is_file() and p.name.endswith(DATA_SUFFIXES) and not p.name.startswith("."))
    named: dict[str, Path] = {}
    for file in data:
        split = file.name.split(".")[0]
        if split in SPLITS:
            named[split] = file if split not in named else path  # twice: ambiguous below
    if folders:
        if data or "train" not in folders:
            _ambiguous(path, [f"{split}/" for split in folders] + [p.name for p in data])
        return folders
    if named:
        if len(named) != len(data) or "train" not in named or path in named.values():
            _ambiguous(path, [p.name for p in data])
        return named
    return {"train": path}


def _ambiguous(path: Path, found: list[str]) -> None:
    shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
    raise UsageError(f"{path}: cannot tell the training set from the validation set ({shown})",
                     hint=f"put them in {path / 'train'}/ and {path / 'validation'}/, or name "
                          "the data files train.rec and validation.rec (.manifest) side by side")


def validate_dataset(path: Path) -> list[str]:
    """Every problem client-side validation finds in each part of ``path`` (empty: valid)."""
    from detectctl.datasets.validate import validate

    return [str(problem) for part in dataset_parts(path).values()
            for problem in validate(str(part)).problems]


def _part_format(part: Path) -> str:
    from detectctl.datasets.readers import guess_format

    found = guess_format(str(part))
    if found not in formats.TRAINING_FORMATS:
        raise UsageError(f"{part}: {found} is not a training format",
                         hint="convert it first: detectctl dataset convert")
    return found


def _part_files(part: Path) -> tuple[Path, list[Path]]:
    """The directory a part's names are relative to, and its files (absolute): every file of a
    directory; for a ``.rec`` or manifest file, it and what belongs to it beside it."""
    part = Path(os.path.abspath(part))
    if part.is_dir():
        return part, local_files(part)
    base = part.parent
    beside = [base / (part.stem + ".idx"), base / (part.stem + ".lst"), base / CLASSES_FILE]
    return base, [part] + [p for p in beside if p.is_file()]


def _external_key(path: Path) -> str:
    """Where an image outside the manifest's directory goes, under ``external/``: its name in a
    folder named by a hash of its directory, so that equal names from two folders differ."""
    folder = hashlib.sha1(str(path.parent).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"external/{folder}/{path.name}"


def rewrite_manifest(manifest: Path, base: Path, bucket: str,
                     data_prefix: str) -> tuple[bytes, dict[Path, str]]:
    """The manifest with every local ``source-ref`` (relative to the manifest, or absolute)
    replaced by the S3 URI its image is uploaded to, and ``{image: key}``. ``s3://`` references
    and lines that are not JSON objects are kept as they are."""
    from algorithm.data.manifest import resolve_source_ref

    lines, images = [], {}
    root = Path(os.path.abspath(base))
    text = manifest.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        ref = doc.get("source-ref") if isinstance(doc, dict) else None
        if not isinstance(ref, str) or not ref or ref.startswith("s3://"):
            lines.append(line)
            continue
        image = Path(os.path.normpath(os.path.abspath(
            resolve_source_ref(ref, str(manifest.parent)))))
        if not image.is_file():
            raise UsageError(f"{manifest}:{number}: source-ref {ref!r}: no such file",
                             hint="fix the manifest; nothing was uploaded")
        try:
            name = image.relative_to(root).as_posix()
        except ValueError:
            name = _external_key(image)
        images[image] = data_prefix + name
        doc["source-ref"] = f"s3://{bucket}/{images[image]}"
        lines.append(json.dumps(doc))
    return ("\n".join(lines) + "\n").encode("utf-8"), images


def _is_data(data_format: str, name: str) -> bool:
    """Whether a file goes under the channel's prefix (a manifest's data is the manifest and the
    images it names, placed by :func:`rewrite_manifest`)."""
    if data_format == formats.RECORDIO:
        return name.endswith(".rec")
    return data_format == formats.SAGEMAKER_JSON and name.startswith(("images/", "annotations/"))


def part_layout(split: str, part: Path, bucket: str,
                prefix: str) -> tuple[list[UploadItem], str, Optional[str]]:
    """One part's files with their keys, its channel URI, and its ``classes.json`` URI."""
    data_format = _part_format(part)
    data, meta = f"{prefix}{split}/", f"{prefix}{META}/{split}/"
    base, files = _part_files(part)
    items: dict[str, UploadItem] = {}
    placed: set[Path] = set()
    manifests = [f for f in files if f.name.endswith(formats.MANIFEST_SUFFIXES)]
    if data_format == formats.MANIFEST:
        for manifest in manifests:
            body, images = rewrite_manifest(manifest, base, bucket, data)
            key = data + manifest.relative_to(base).as_posix()
            items[key] = UploadItem(manifest, key, len(body), body)
            for image, image_key in images.items():
                items[image_key] = UploadItem(image, image_key, image.stat().st_size)
            placed |= {manifest, *images}
    for local in files:
        if local not in placed:
            name = local.relative_to(base).as_posix()
            key = (data if _is_data(data_format, name) else meta) + name
            items[key] = UploadItem(local, key, local.stat().st_size)
    suffixes = {formats.RECORDIO: (".rec",),
                formats.MANIFEST: formats.MANIFEST_SUFFIXES}.get(data_format)
    found = sorted(k for k in items if suffixes and k.startswith(data) and k.endswith(suffixes))
    # One data file is named (its format shows in its name); several are their prefix.
    channel = found[0] if len(found) == 1 or (found and data_format == formats.MANIFEST) else data
    classes = meta + CLASSES_FILE
    return (list(items.values()), f"s3://{bucket}/{channel}",
            f"s3://{bucket}/{classes}" if classes in items else None)


def layout(path: Path, bucket: str, prefix: str) -> tuple[list[UploadItem], dict[str, str]]:
    """Every file of the dataset at ``path`` with its key under ``prefix``, and the channels."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    items, channels = [], {}
    classes = None
    for split, part in dataset_parts(path).items():
        part_items, channels[split], part_classes = part_layout(split, part, bucket, prefix)
        items += part_items
        classes = classes or part_classes
    if not items:
        raise UsageError(f"{path}: no files to upload")
    if classes:
        channels["classes"] = classes
    return items, channels


def _same(session: Session, bucket: str, item: UploadItem, remote: dict[str, Any]) -> bool:
    if remote["Size"] != item.size:
        return False
    if remote.get("ETag", "").strip('"') == etag(item.source):
        return True
    try:
        head = session.aws.call("s3", "head_object", Bucket=bucket, Key=item.key)
    except NotFoundError:
        return False
    return head.get("Metadata", {}).get(SHA256_METADATA) == sha256(item.source)


def plan(session: Session, path: Path, uri: str) -> UploadPlan:
    """Lay ``path`` out under the prefix ``uri`` and compare it with what is there already
    (one listing, paginated)."""
    bucket, prefix = split_s3_uri(uri)
    if formats.from_name(prefix):
        raise UsageError(f"{uri} names a file; the destination is a prefix",
                         hint=f"e.g. s3://{bucket}/{prefix.rpartition('/')[0]}")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    files, channels = layout(path, bucket, prefix)
    result = UploadPlan(bucket=bucket, prefix=prefix, channels=channels)
    remote = {o["Key"]: o for o in session.aws.paginate(
        "s3", "list_objects_v2", "Contents", Bucket=bucket, Prefix=prefix)}
    for item in files:
        there = remote.get(item.key)
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
    groups: dict[Optional[str], list[tuple[Union[Path, bytes], str]]] = {}
    for item in plan.items:
        # Under SSE-KMS an ETag is not an MD5: keep the SHA-256 to recognise the object later.
        digest = sha256(item.source) if sse == "aws:kms" else None
        groups.setdefault(digest, []).append((item.source, item.key))
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


def classes_uri(data_uri: str) -> Optional[str]:
    """Where :func:`layout` puts the ``classes.json`` of the data at ``data_uri``:
    ``s3://b/voc/train/data.rec`` or ``s3://b/voc/train/`` -> ``s3://b/voc/meta/train/classes.json``
    (None for a bucket's root)."""
    bucket, key = split_s3_uri(data_uri)
    folder = key.rstrip("/")
    if formats.from_name(folder):
        folder = folder.rpartition("/")[0]
    parent, _, split = folder.rpartition("/")
    if not split:
        return None
    return f"s3://{bucket}/{parent + '/' if parent else ''}{META}/{split}/{CLASSES_FILE}"
