"""`detectctl dataset upload`: validated first, laid out for Pipe mode, manifests pointed at S3,
skips what is there, multipart, encryption."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from detectctl.aws.transfer import PART_SIZE, etag
from detectctl.cli.upload import upload
from detectctl.datasets.synth import synth
from detectctl.errors import DatasetRejectedError, UsageError
from detectctl.sagemaker import uploads
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
    assert keys() == [
        "voc/meta/train/classes.json", "voc/meta/train/data.idx", "voc/meta/train/data.lst",
        "voc/meta/validation/classes.json", "voc/meta/validation/data.idx",
        "voc/meta/validation/data.lst", "voc/train/data.rec", "voc/validation/data.rec"]
    assert result.stdout.endswith(
        f"train with: --train {DEST}/train/data.rec --validation {DEST}/validation/data.rec "
        f"--classes {DEST}/meta/train/classes.json\n")
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
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET,
                                                              Key="voc/train/big.rec")
    assert head["ETag"].strip('"') == etag(big) and etag(big).endswith("-2")
    assert uploads.plan(session, big, DEST + "/").items == []


def test_kms_encryption_keeps_a_sha256_to_recognise_objects(session, tmp_path):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    small = tmp_path / "big.rec"
    small.write_bytes(b"record" * 100)
    result = run(str(small), DEST, "--no-validate", "--sse", "aws:kms", "--kms-key", key)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"train with: --train {DEST}/train/big.rec\n")
    head = boto3.client("s3", region_name=REGION).head_object(Bucket=BUCKET,
                                                              Key="voc/train/big.rec")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["Metadata"]["detectctl-sha256"] == uploads.sha256(small)
    assert uploads.plan(session, small, DEST).items == []


def test_the_destination_is_a_prefix_not_a_file(session, tmp_path):
    small = tmp_path / "train.rec"
    small.write_bytes(b"record")
    with pytest.raises(UsageError, match="names a file; the destination is a prefix"):
        uploads.plan(session, small, f"s3://{BUCKET}/voc/train.rec")


def test_a_rec_file_takes_its_sidecars_and_only_data_is_under_the_channel(tmp_path):
    synth(str(tmp_path / "voc07"), images=2, classes=2, format="recordio", image_size=(32, 24))
    items, channels = uploads.layout(tmp_path / "voc07.rec", BUCKET, "voc/")
    assert sorted(i.key for i in items) == [
        "voc/meta/train/classes.json", "voc/meta/train/voc07.idx", "voc/meta/train/voc07.lst",
        "voc/train/voc07.rec"]
    assert channels == {"train": f"{DEST}/train/voc07.rec",
                        "classes": f"{DEST}/meta/train/classes.json"}


def test_image_and_json_data_keeps_images_and_annotations_under_the_channel(tmp_path):
    synth(str(tmp_path / "data"), images=2, classes=2, format="sagemaker-json",
          image_size=(32, 24))
    items, channels = uploads.layout(tmp_path / "data", BUCKET, "voc/")
    data = sorted(i.key for i in items if i.key.startswith("voc/train/"))
    assert [k.split("/")[2] for k in data] == ["annotations"] * 2 + ["images"] * 2
    assert channels == {"train": f"{DEST}/train/", "classes": f"{DEST}/meta/train/classes.json"}


def test_manifest_is_uploaded_with_s3_source_refs_and_its_images(session, tmp_path):
    root = tmp_path / "gt"
    synth(str(root / "data.manifest"), images=2, classes=2, format="manifest",
          image_size=(32, 24))
    elsewhere = tmp_path / "elsewhere" / "images"
    elsewhere.mkdir(parents=True)
    (elsewhere / "far.jpg").write_bytes((root / "images" / "synth_000000.jpg").read_bytes())
    original = (root / "data.manifest").read_text()
    lines = original.splitlines()
    extra = [json.loads(lines[0]), json.loads(lines[1])]
    extra[0]["source-ref"] = str(elsewhere / "far.jpg")
    extra[1]["source-ref"] = "s3://other-bucket/images/b.jpg"
    original += "".join(json.dumps(doc) + "\n" for doc in extra)
    (root / "data.manifest").write_text(original)

    plan = uploads.plan(session, root, DEST)
    uploads.upload(session, plan)
    assert plan.channels == {"train": f"{DEST}/train/data.manifest",
                             "classes": f"{DEST}/meta/train/classes.json"}
    s3 = boto3.client("s3", region_name=REGION)
    sent = s3.get_object(Bucket=BUCKET, Key="voc/train/data.manifest")["Body"].read().decode()
    refs = [json.loads(line)["source-ref"] for line in sent.splitlines()]
    far = [k for k in keys() if k.endswith("/far.jpg")]
    assert refs == [f"{DEST}/train/images/synth_000000.jpg",
                    f"{DEST}/train/images/synth_000001.jpg",
                    f"s3://{BUCKET}/{far[0]}", "s3://other-bucket/images/b.jpg"]
    assert far[0].startswith("voc/train/external/")
    assert all(f"s3://{BUCKET}/{ref.split('/', 3)[3]}" == ref and ref.split("/", 3)[3] in keys()
               for ref in refs[:3])
    assert json.loads(sent.splitlines()[0])["bounding-box"] == json.loads(lines[0])[
        "bounding-box"]
    assert (root / "data.manifest").read_text() == original
    assert uploads.plan(session, root, DEST).items == []


def test_a_manifest_naming_a_missing_image_is_refused(tmp_path):
    manifest = tmp_path / "data.manifest"
    manifest.write_text(json.dumps({"source-ref": "images/gone.jpg", "bounding-box": {
        "annotations": []}}) + "\n")
    with pytest.raises(UsageError, match=r"data\.manifest:1: source-ref 'images/gone\.jpg': "
                                         "no such file"):
        uploads.layout(manifest, BUCKET, "voc/")


def test_real_validation_passes_a_synthetic_dataset(dataset):
    assert uploads.validate_dataset(dataset) == []


def test_synth_with_a_validation_split_uploads_as_two_channels(session, tmp_path):
    demo = tmp_path / "demo"
    synth(str(demo), images=5, classes=2, image_size=(32, 24), validation_fraction=0.2)
    result = run(str(demo), DEST)
    assert result.exit_code == 0, result.output
    assert keys() == [
        "voc/meta/train/classes.json", "voc/meta/train/demo.idx", "voc/meta/train/demo.lst",
        "voc/meta/validation/classes.json", "voc/meta/validation/demo.idx",
        "voc/meta/validation/demo.lst", "voc/train/demo.rec", "voc/validation/demo.rec"]


def test_train_and_validation_files_side_by_side_are_two_splits(tmp_path):
    """README's demo data: each split numbers its records from 0; ids repeat across splits,
    which is fine, and are checked within each."""
    demo = tmp_path / "demo"
    synth(str(demo / "train"), images=3, classes=2, image_size=(32, 24), seed=1)
    synth(str(demo / "validation"), images=2, classes=2, image_size=(32, 24), seed=2)
    assert uploads.dataset_parts(demo) == {"train": demo / "train.rec",
                                           "validation": demo / "validation.rec"}
    assert uploads.validate_dataset(demo) == []
    items, channels = uploads.layout(demo, BUCKET, "voc/")
    assert sorted(i.key for i in items) == [
        "voc/meta/train/classes.json", "voc/meta/train/train.idx", "voc/meta/train/train.lst",
        "voc/meta/validation/classes.json", "voc/meta/validation/validation.idx",
        "voc/meta/validation/validation.lst", "voc/train/train.rec",
        "voc/validation/validation.rec"]
    assert channels["validation"] == f"{DEST}/validation/validation.rec"
    # Within one split, a repeated record id is still a problem.
    (demo / "train.rec").write_bytes((demo / "train.rec").read_bytes() * 2)
    (demo / "train.idx").unlink()
    assert any("duplicate: record id 0" in p for p in uploads.validate_dataset(demo))


@pytest.mark.parametrize("names", [["train.rec", "other.rec"], ["validation.rec"],
                                   ["train/", "train.rec"], ["validation/"],
                                   ["train.rec", "train.manifest"]])
def test_an_ambiguous_layout_is_refused_with_how_to_arrange_it(tmp_path, names):
    for name in names:
        if name.endswith("/"):
            synth(str(tmp_path / name / "data"), images=1, classes=1, image_size=(32, 24))
        else:
            (tmp_path / name).write_bytes(b"")
    with pytest.raises(UsageError, match="cannot tell the training set from the validation set")\
            as caught:
        uploads.dataset_parts(tmp_path)
    assert "train.rec and validation.rec" in str(caught.value)


def test_several_shards_of_one_set_stay_one_training_set(tmp_path):
    synth(str(tmp_path / "part-0"), images=1, classes=1, image_size=(32, 24))
    synth(str(tmp_path / "part-1"), images=1, classes=1, image_size=(32, 24), seed=1)
    assert uploads.dataset_parts(tmp_path) == {"train": tmp_path}
