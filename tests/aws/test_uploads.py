"""`detectctl dataset upload`: validated first, skips what is there, multipart, encryption."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from detectctl import uploads
from detectctl.aws.transfer import PART_SIZE, etag
from detectctl.cli.upload import upload
from detectctl.datasets.synth import synth
from detectctl.errors import DatasetRejectedError
from tests.aws.support import BUCKET, REGION

DEST = f"s3://{BUCKET}/voc"


def run(*args: str):
    import typer

    cli = typer.Typer()
    cli.command()(upload)
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "data"
    synth(str(root / "train" / "data"), images=4, classes=2, format="recordio",
          image_size=(64, 48))
    synth(str(root / "validation" / "data"), images=2, classes=2, format="recordio",
          image_size=(64, 48), seed=1)
    return root


def keys() -> list[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_upload_then_rerun_sends_only_what_changed(session, dataset):
    result = run(str(dataset), DEST)
    assert result.exit_code == 0, result.output
    assert len(keys()) == 8 and "voc/train/data.rec" in keys()
    assert result.stdout.endswith(
        f"train with: --train {DEST}/train/data.rec --validation {DEST}/validation/data.rec\n")
    again = uploads.plan(session, dataset, DEST)
    assert again.items == [] and len(again.skipped) == 8
    (dataset / "train" / "data.lst").write_text("changed\n")
    changed = run(str(dataset), DEST)
    assert "uploaded 1 files (8 bytes), 7 already there" in changed.stdout


def test_dry_run_lists_and_sends_nothing(session, dataset):
    result = run(str(dataset), DEST + "/", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert len(listed["upload"]) == 8 and listed["skipped"] == []
    assert listed["channels"]["train"] == f"{DEST}/train/data.rec"
    assert keys() == []


def test_invalid_data_is_refused_unless_no_validate(session, dataset, monkeypatch):
    monkeypatch.setattr(uploads, "validate_dataset",
                        lambda path: ["data.rec: record 3: class id 7 >= num_classes"])
    with pytest.raises(DatasetRejectedError, match="1 problem found; nothing uploaded"):
        uploads.check_dataset(dataset)
    refused = run(str(dataset), DEST)
    assert refused.exit_code == 1 and keys() == []
    assert run(str(dataset), DEST, "--no-validate").exit_code == 0
    assert len(keys()) == 8


def test_multipart_objects_are_recognised_by_their_etag(session, tmp_path):
    big = tmp_path / "big.rec"
    big.write_bytes(os.urandom(PART_SIZE + 1024))
    plan = uploads.plan(session, big, DEST + "/")
    uploads.upload(session, plan)
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET, Key="voc/big.rec")
    assert head["ETag"].strip('"') == etag(big) and etag(big).endswith("-2")
    assert uploads.plan(session, big, DEST + "/").items == []


def test_kms_encryption_keeps_a_sha256_to_recognise_objects(session, tmp_path):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    small = tmp_path / "train.rec"
    small.write_bytes(b"record" * 100)
    result = run(str(small), f"s3://{BUCKET}/voc/train.rec", "--no-validate",
                 "--sse", "aws:kms", "--kms-key", key)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"train with: --train s3://{BUCKET}/voc/train.rec\n")
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET, Key="voc/train.rec")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["Metadata"]["detectctl-sha256"] == uploads.sha256(small)
    assert uploads.plan(session, small, f"s3://{BUCKET}/voc/train.rec").items == []


def test_real_validation_passes_a_synthetic_dataset(dataset):
    assert uploads.validate_dataset(dataset) == []
