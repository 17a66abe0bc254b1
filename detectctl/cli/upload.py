"""`detectctl dataset upload PATH s3://bucket/prefix`: validated, parallel, resumable."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from detectctl.cli import options, output
from detectctl.cli.session import open_session

if TYPE_CHECKING:
    from detectctl.sagemaker.uploads import UploadPlan
    from detectctl.session import Session


def upload(
    path: Annotated[Path, typer.Argument(help="A dataset file or directory.",
                                         show_default=False, metavar="PATH")],
    uri: Annotated[str, typer.Argument(help="Destination, s3://bucket/prefix.",
                                       show_default=False, metavar="S3_URI")],
    no_validate: Annotated[bool, typer.Option(
        "--no-validate", help="Upload without checking the dataset first.")] = False,
    sse: Annotated[Optional[str], typer.Option(
        "--sse", help="Server-side encryption: AES256 or aws:kms.",
        show_default=False, metavar="AES256|aws:kms")] = None,
    kms_key: Annotated[Optional[str], typer.Option(
        "--kms-key", help="KMS key ID or ARN for --sse aws:kms.",
        show_default=False, metavar="KEY")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", help="Parallel part uploads.", metavar="N")] = 10,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be uploaded; upload nothing.")] = False,
    json: options.Json = False,
    profile: options.Profile = None,
    region: options.Region = None,
    debug: options.Debug = False,
) -> None:
    """Upload a dataset to S3 and print the channel URIs for `detectctl train`.

    The dataset is validated first (refused when it has problems, unless --no-validate).
    Each part's data goes to S3_URI/train/ (and validation/), safe for File and Pipe mode;
    .idx, .lst and classes.json go to S3_URI/meta/. A manifest's source-refs become the S3 URIs
    of its images, uploaded with it. Objects already there with the same content are skipped,
    so an interrupted upload, run again, sends only what is missing.
    """
    from detectctl.sagemaker import uploads

    if not no_validate:
        uploads.check_dataset(path)
    session = open_session(profile, region)
    plan = uploads.plan(session, path, uri)
    channels = plan.channels
    if dry_run:
        if json:
            output.print_json({"upload": [{"file": str(i.path), "key": i.key, "bytes": i.size}
                                          for i in plan.items],
                               "skipped": [i.key for i in plan.skipped], "channels": channels})
            return
        for item in plan.items:
            rewritten = " with S3 source-refs" if item.data is not None else ""
            sys.stdout.write(f"would upload {item.path}{rewritten} -> {plan.uri(item.key)} "
                             f"({item.size} bytes)\n")
        sys.stdout.write(f"{len(plan.items)} files ({plan.bytes} bytes) to upload, "
                         f"{len(plan.skipped)} already there\n")
        return
    _upload_with_progress(session, plan, sse=sse, kms_key=kms_key, concurrency=concurrency,
                          quiet=json)
    if json:
        output.print_json({"uploaded": len(plan.items), "skipped": len(plan.skipped),
                           "bytes": plan.bytes, "channels": channels})
        return
    sys.stdout.write(f"uploaded {len(plan.items)} files ({plan.bytes} bytes), "
                     f"{len(plan.skipped)} already there\n")
    sys.stdout.write("train with: " + " ".join(f"--{k} {v}" for k, v in channels.items()) + "\n")


def _upload_with_progress(session: "Session", plan: "UploadPlan", *, sse: Optional[str],
                          kms_key: Optional[str], concurrency: int, quiet: bool) -> None:
    """Upload with one progress line: bytes, files done, rate and time left."""
    import threading

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from detectctl.sagemaker import uploads

    total = len(plan.items)
    columns = (BarColumn(), DownloadColumn(), TextColumn("{task.fields[files]} files"),
               TransferSpeedColumn(), TimeRemainingColumn())
    done = [0]
    lock = threading.Lock()
    with Progress(*columns, console=output.stderr(), disable=quiet) as progress:
        task = progress.add_task("upload", total=plan.bytes, files=f"0/{total}")

        def file_done() -> None:
            with lock:
                done[0] += 1
                progress.update(task, files=f"{done[0]}/{total}")

        uploads.upload(session, plan, sse=sse, kms_key=kms_key, concurrency=concurrency,
                       on_bytes=lambda n: progress.advance(task, n), on_file=file_done)
