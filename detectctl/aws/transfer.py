"""Parallel multipart S3 uploads (s3transfer, as boto3 and the AWS CLI use it) and S3 ETags.

Uploads use a fixed part size so that the ETag S3 gives a multipart object can be computed
locally: an object already in the bucket with the same size and ETag is the same content.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

from detectctl.aws.errors import translated

PART_SIZE = 8 * 1024 * 1024


def upload_files(client: Any, files: Sequence[tuple[Union[Path, bytes], str]], bucket: str, *,
                 extra_args: dict[str, Any], concurrency: int,
                 on_bytes: Callable[[int], None], on_file: Callable[[], None]) -> None:
    """Upload ``(path or content, key)`` pairs in parallel, multipart above :data:`PART_SIZE`.

    One s3transfer manager serves every file, so parts of several files travel at once; a
    failed multipart upload is aborted by s3transfer. Progress arrives through the callbacks
    (from worker threads).
    """
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from s3transfer.subscribers import BaseSubscriber

    class Progress(BaseSubscriber):
        def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
            on_bytes(bytes_transferred)

        def on_done(self, future: Any, **kwargs: Any) -> None:
            on_file()

    config = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
                            max_concurrency=concurrency, use_threads=True)
    with translated("s3", "PutObject"), create_transfer_manager(client, config) as manager:
        futures = [manager.upload(io.BytesIO(source) if isinstance(source, bytes) else str(source),
                                  bucket, key, extra_args=dict(extra_args),
                                  subscribers=[Progress()]) for source, key in files]
        for future in futures:
            future.result()


def _parts(source: Union[Path, bytes]) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield from (source[i:i + PART_SIZE] for i in range(0, len(source), PART_SIZE))
        return
    with open(source, "rb") as stream:
        while chunk := stream.read(PART_SIZE):
            yield chunk


def etag(source: Union[Path, bytes]) -> str:
    """The ETag S3 gives a file (or content) uploaded by :func:`upload_files` (no SSE-KMS).

    Below the multipart threshold: the MD5 of the content. At or above it: the MD5 of the
    parts' MD5s, then ``-`` and the number of parts.
    """
    digests = [hashlib.md5(part, usedforsecurity=False).digest() for part in _parts(source)]
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if size < PART_SIZE:
        return (digests[0] if digests else hashlib.md5(b"", usedforsecurity=False).digest()).hex()
    combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
    return f"{combined}-{len(digests)}"
