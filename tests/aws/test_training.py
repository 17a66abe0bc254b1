"""Planning and launching training jobs (moto in-process), and `detectctl train`."""

from __future__ import annotations

import json

import boto3
import pytest
from typer.testing import CliRunner

from detectctl.aws import Aws
from detectctl.cli import main
from detectctl.cli.app import app
from detectctl.errors import (
    HyperparameterValidationError,
    InstanceTypeError,
    NotFoundError,
    UsageError,
)
from detectctl.session import Session
from tests.aws.support import BUCKET, REGION, ROLE

runner = CliRunner()
PLAN_DEFAULTS = dict(instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/voc/train.rec")


def plan(session, **options):
    values = dict(instance_type="ml.p3.8xlarge", train=f"s3://{BUCKET}/voc/train.rec",
                  validation=f"s3://{BUCKET}/voc/val.rec",
                  hyperparameters={"num_classes": 20, "use_pretrained_model": 0})
    values.update(options)
    return session.plan(**values)


def test_plan_recordio_two_instances_is_distributed(session):
    p = plan(session, instance_count=2, hyperparameters={"num_classes": 20, "image_shape": "512"})
    request = p.request
    assert request["RoleArn"] == ROLE
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-gpu-py312")
    assert request["ResourceConfig"]["InstanceCount"] == 2
    hp = request["HyperParameters"]
    assert hp["num_classes"] == "20" and hp["image_shape"] == "512"
    assert hp["sagemaker_torch_distributed_enabled"] == "true"
    assert hp["sagemaker_submit_directory"] == json.dumps(
        f"s3://{BUCKET}/{p.archive.key()}")
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == [
        "train", "validation", "pretrained"]
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/detectctl/jobs"}
    assert p.gpus == 8
    assert p.cost.bound == pytest.approx(14.688 * 2 * 24)


def test_p2_gets_the_torch_1_12_image_and_launches_its_own_workers(session):
    p = plan(session, instance_type="ml.p2.8xlarge")
    assert p.spec.image.endswith("pytorch-training:1.12.1-gpu-py38")
    assert "sagemaker_torch_distributed_enabled" not in p.request["HyperParameters"]


def test_single_gpu_is_not_distributed(session):
    assert not plan(session, instance_type="ml.g4dn.xlarge").spec.torch_distributed


def test_bad_hyperparameters_and_cpu_instances_are_refused(session):
    with pytest.raises(HyperparameterValidationError) as info:
        plan(session, hyperparameters={"num_classes": 0, "base_network": "vgg"})
    assert [p.split("=")[0] for p in info.value.problems] == ["num_classes", "base_network"]
    with pytest.raises(InstanceTypeError, match="no GPU"):
        plan(session, instance_type="ml.c5.xlarge")
    with pytest.raises(UsageError, match="--max-wait applies to spot"):
        plan(session, max_wait_seconds=10)


def test_image_format_found_by_listing_and_laid_out_in_four_channels(session):
    s3 = boto3.client("s3", region_name=REGION)
    for key in ("train/images/a.jpg", "train/annotations/a.json"):
        s3.put_object(Bucket=BUCKET, Key=f"data/{key}", Body=b"x")
    p = plan(session, train=f"s3://{BUCKET}/data/train", validation=f"s3://{BUCKET}/data/val/")
    channels = [(c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"], c["ContentType"])
                for c in p.request["InputDataConfig"]]
    assert channels == [
        ("train", f"s3://{BUCKET}/data/train/images/", "application/x-image"),
        ("train_annotation", f"s3://{BUCKET}/data/train/annotations/", "application/x-image"),
        ("validation", f"s3://{BUCKET}/data/val/images/", "application/x-image"),
        ("validation_annotation", f"s3://{BUCKET}/data/val/annotations/", "application/x-image"),
    ]


def test_manifest_defaults_to_pipe_mode_and_spot_to_checkpoints(session):
    p = plan(session, train=f"s3://{BUCKET}/gt/train.manifest", validation=None, spot=True,
             name="job-1")
    assert p.spec.input_mode == "Pipe"
    assert p.request["CheckpointConfig"]["S3Uri"] == (
        f"s3://{BUCKET}/detectctl/jobs/job-1/checkpoints")
    assert p.cost.spot_estimate == pytest.approx(p.cost.bound * 0.3)


def test_launch_creates_the_bucket_uploads_code_once_and_starts_the_job(moto):
    from tests.aws.support import make_role

    make_role()
    session = Session(region=REGION, role=ROLE)
    asked = []
    job = session.launch(plan(session, name="job-a"),
                          confirm=lambda q: asked.append(q) or True)
    assert asked == [f"Create bucket s3://{BUCKET} in {REGION}?"]
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    described = sagemaker.describe_training_job(TrainingJobName="job-a")
    assert described["ResourceConfig"]["InstanceType"] == "ml.p3.8xlarge"
    assert job.status == "Completed"
    s3 = boto3.client("s3", region_name=REGION)
    source = s3.list_objects_v2(Bucket=BUCKET, Prefix="detectctl/source/")["Contents"]
    assert len(source) == 1
    first_upload = source[0]["LastModified"]
    session.launch(plan(session, name="job-b"))
    source = s3.list_objects_v2(Bucket=BUCKET, Prefix="detectctl/source/")["Contents"]
    assert len(source) == 1 and source[0]["LastModified"] == first_upload


def test_dry_run_prints_the_request_and_calls_nothing(monkeypatch, tmp_path):
    def no_calls(*args, **kwargs):
        raise AssertionError("--dry-run called AWS")

    monkeypatch.setattr(Aws, "call", no_calls)
    monkeypatch.setattr(Aws, "paginate", no_calls)
    args = ["train", "--instance", "ml.p3.8xlarge", "--count", "2", "--train",
            "s3://data/voc/train.rec", "--hp", "num_classes=20", "--name", "job-x",
            "--role", ROLE, "--bucket", "my-bucket", "--tags", "team=vision,stage=dev",
            "--max-run", "6h", "--dry-run", "--region", "eu-west-1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    request = json.loads(result.stdout)
    session = Session(region="eu-west-1", role=ROLE, bucket="my-bucket")
    expected = session.plan(instance_type="ml.p3.8xlarge", instance_count=2,
                             train="s3://data/voc/train.rec", hyperparameters={"num_classes": "20"},
                             name="job-x", tags={"team": "vision", "stage": "dev"},
                             max_run_seconds=6 * 3600, offline=True).request
    assert request == expected
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 21600}


def test_dry_run_without_role_or_bucket_marks_placeholders(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--instance", "ml.g5.xlarge", "--train", "s3://d/t.rec",
              "--hp", "num_classes=2", "--dry-run"])
    assert info.value.code == 0
    out, err = capsys.readouterr()
    request = json.loads(out)
    assert request["RoleArn"] == "<execution-role-arn>"
    assert request["OutputDataConfig"]["S3OutputPath"] == (
        "s3://sagemaker-us-east-1-<account-id>/detectctl/jobs")
    assert err.startswith("note: <execution-role-arn>, <account-id> stand for values")


def test_bad_hyperparameter_exits_2_naming_the_field(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--instance", "ml.g5.xlarge", "--train", "s3://d/t.rec",
              "--hp", "num_classes=3", "--hp", "mini_batch_size=0", "--dry-run"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 1 invalid hyperparameter: mini_batch_size=")


def test_config_preset_with_command_line_overrides(tmp_path, capsys):
    preset = tmp_path / "job.yaml"
    preset.write_text("instance: ml.g5.xlarge\ncount: 2\ntrain: s3://d/t.rec\nmax-run: 2h\n"
                      "tags: [a=1]\nhyperparameters:\n  num_classes: 5\n  epochs: 10\n")
    with pytest.raises(SystemExit) as info:
        main(["train", "--config", str(preset), "--hp", "epochs=20", "--count", "1",
              "--role", ROLE, "--bucket", "b", "--dry-run"])
    assert info.value.code == 0
    request = json.loads(capsys.readouterr().out)
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["HyperParameters"]["epochs"] == "20"
    assert request["HyperParameters"]["num_classes"] == "5"
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert {"Key": "a", "Value": "1"} in request["Tags"]


def test_train_summary_confirmation_and_next_commands(session):
    result = runner.invoke(app, [
        "train", "--instance", "ml.g4dn.xlarge", "--train", f"s3://{BUCKET}/t.rec",
        "--hp", "num_classes=3", "--name", "job-c", "--role", ROLE], input="y\n")
    assert result.exit_code == 0, result.output
    assert "cost             $0.74/hour (1 x $0.736); at most $17.66 for the 24 h limit" in (
        result.stderr)
    assert ("started training job job-c\n  follow it:        detectctl jobs attach job-c\n"
            "  its logs:         detectctl logs job-c --follow\n") in result.stdout


CLASSES = {"ChannelName": "classes", "ContentType": "application/json", "InputMode": "File",
           "DataSource": {"S3DataSource": {
               "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/gt/meta/train/classes.json",
               "S3DataDistributionType": "FullyReplicated"}}}


def test_classes_channel_from_the_upload_layout_in_file_mode_even_for_pipe(session):
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key="gt/meta/train/classes.json", Body=b'{"classes": ["a", "b"]}')
    p = plan(session, train=f"s3://{BUCKET}/gt/train/data.manifest", validation=None)
    assert p.spec.input_mode == "Pipe"
    assert p.request["InputDataConfig"][-1] == CLASSES
    assert ("  classes", f"s3://{BUCKET}/gt/meta/train/classes.json") in p.summary()
    recordio = plan(session, train=f"s3://{BUCKET}/gt/train/", data_format="recordio")
    assert [c["ChannelName"] for c in recordio.request["InputDataConfig"]] == [
        "train", "validation", "classes"]
    assert recordio.notes == ()


def test_without_classes_json_there_is_no_channel_and_a_note(session):
    p = plan(session, train=f"s3://{BUCKET}/gt/train/data.rec", validation=None)
    assert [c["ChannelName"] for c in p.request["InputDataConfig"]] == ["train"]
    assert p.notes == (f"no s3://{BUCKET}/gt/meta/train/classes.json: the job gets no class "
                       "names (pass --classes)",)
    assert ("note", p.notes[0]) in p.summary()


def test_classes_given_must_exist(session):
    given = f"s3://{BUCKET}/names/classes.json"
    with pytest.raises(NotFoundError, match=r"--classes .*: no such object"):
        plan(session, classes=given)
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="names/classes.json",
                                                      Body=b'{"classes": ["a"]}')
    channel = plan(session, classes=given).request["InputDataConfig"][-1]
    assert channel["ChannelName"] == "classes"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == given


def test_dry_run_names_the_classes_channel_it_did_not_check(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--instance", "ml.g5.xlarge", "--train", f"s3://{BUCKET}/gt/train/",
              "--format", "manifest", "--hp", "num_classes=2", "--role", ROLE, "--bucket", "b",
              "--dry-run"])
    assert info.value.code == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["InputDataConfig"][-1] == CLASSES
    assert err == (f"note: classes channel s3://{BUCKET}/gt/meta/train/classes.json: where "
                   "`detectctl dataset upload` puts classes.json, not checked offline\n")


def test_pretrained_weights_are_uploaded_once_per_content_hash(session, weights):
    """use_pretrained_model=1 (the default) without --pretrained: torchvision's file from the
    torch hub cache becomes the `pretrained` channel, under the bucket by content hash."""
    import hashlib
    import os

    name = weights["vgg-16"]
    cached = os.path.join(os.environ["TORCH_HOME"], "hub", "checkpoints", name)
    with open(cached, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    key = f"detectctl/weights/{digest}/{name}"
    first = plan(session, hyperparameters={"num_classes": 3}, name="job-w1")
    channel = first.request["InputDataConfig"][-1]
    assert channel["ChannelName"] == "pretrained"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/{key}"
    session.launch(first)
    s3 = boto3.client("s3", region_name=REGION)
    uploaded = s3.head_object(Bucket=BUCKET, Key=key)
    session.launch(plan(session, hyperparameters={"num_classes": 3}, name="job-w2"))
    assert s3.head_object(Bucket=BUCKET, Key=key)["LastModified"] == uploaded["LastModified"]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="detectctl/weights/")["Contents"]
    assert [o["Key"] for o in listed] == [key]


def test_missing_weights_fail_before_anything_is_created(moto, tmp_path, monkeypatch):
    """Offline with nothing cached: one error naming the file and the folder, and no bucket,
    no code and no job."""
    from detectctl.errors import PretrainedWeightsError
    from tests.aws.support import make_role

    make_role()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    session = Session(region=REGION, role=ROLE)
    with pytest.raises(PretrainedWeightsError) as info:
        session.train(**{**PLAN_DEFAULTS, "hyperparameters": {"num_classes": 3}})
    assert "use_pretrained_model=0" in str(info.value)
    assert str(tmp_path / "empty") in str(info.value)
    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []
    assert boto3.client("sagemaker", region_name=REGION).list_training_jobs()[
        "TrainingJobSummaries"] == []


def test_dry_run_without_cached_weights_marks_them_and_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(SystemExit) as info:
        main(["train", "--instance", "ml.g5.xlarge", "--train", "s3://d/t.rec", "--role", ROLE,
              "--bucket", "b", "--hp", "num_classes=2", "--dry-run"])
    assert info.value.code == 0
    out, err = capsys.readouterr()
    channel = json.loads(out)["InputDataConfig"][-1]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"].startswith(
        "s3://b/detectctl/weights/<weights-sha256>/")
    assert "note: torchvision's vgg-16 weights are not cached here" in err
