"""Batch transform on SageMaker (moto): the requests for images and for a .rec, the cost shown
and confirmed, the model deleted when the job ends unless kept, and none left when the job is
refused."""

from __future__ import annotations

import json

import boto3
import pytest
from typer.testing import CliRunner

from detectctl.aws import Aws
from detectctl.aws import requests as r
from detectctl.cli.app import app
from tests.aws.support import BUCKET, REGION, ROLE

runner = CliRunner()


@pytest.fixture
def job(session):
    return session.launch(session.plan(
        instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/t.rec",
        hyperparameters={"num_classes": 3, "use_pretrained_model": 0}, name="job-1"))


def test_images_and_records_requests(session, job):
    images = session.plan_transform("job-1", input=f"s3://{BUCKET}/images/",
                                    output=f"s3://{BUCKET}/out/", instance_type="ml.c5.xlarge")
    request = images.to_dict()["CreateTransformJob"]
    assert request["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                        "S3Uri": f"s3://{BUCKET}/images/"}},
        "ContentType": "application/x-image", "SplitType": "None", "CompressionType": "None"}
    assert request["TransformOutput"] == {"S3OutputPath": f"s3://{BUCKET}/out/",
                                          "Accept": "application/json", "AssembleWith": "None"}
    assert request["BatchStrategy"] == "SingleRecord" and request["MaxPayloadInMB"] == 6
    assert request["ModelName"] == images.to_dict()["CreateModel"]["ModelName"]
    model = images.to_dict()["CreateModel"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == job.model_artifact
    assert model["ExecutionRoleArn"] == ROLE
    records = session.plan_transform("job-1", input=f"s3://{BUCKET}/data/val.rec",
                                     output=f"s3://{BUCKET}/out/", instance_type="ml.c5.xlarge",
                                     instance_count=2)
    request = records.to_dict()["CreateTransformJob"]
    assert (request["TransformInput"]["ContentType"], request["TransformInput"]["SplitType"],
            request["TransformOutput"]["Accept"], request["TransformOutput"]["AssembleWith"],
            request["TransformResources"]) == (
        "application/x-recordio", "RecordIO", "application/jsonlines", "Line",
        {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2})
    assert request == r.transform_job_request(records.spec)


def test_the_command_confirms_the_cost_follows_and_deletes_the_model(session, job):
    result = runner.invoke(app, ["transform", "job-1", "--input", f"s3://{BUCKET}/images/",
                                 "--output", f"s3://{BUCKET}/out/", "--instance", "ml.c5.xlarge",
                                 "--name", "batch-1"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "cost           $0.204/hour while it runs" in result.stderr
    assert "Start transform job batch-1?" in result.stderr
    assert "status         Completed" in result.stderr
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    assert sagemaker.describe_transform_job(TransformJobName="batch-1")[
        "TransformJobStatus"] == "Completed"
    assert sagemaker.list_models()["Models"] == []
    assert "deleted model batch-1-" in result.stderr

    kept = runner.invoke(app, ["transform", "start", "job-1", "--input",
                               f"s3://{BUCKET}/images/", "--output", f"s3://{BUCKET}/out2/",
                               "--instance", "ml.c5.xlarge", "--name", "batch-2",
                               "--keep-model", "--yes", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["removed"] == []
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] != []
    listed = runner.invoke(app, ["transform", "list", "--json"])
    assert {j["TransformJobName"] for j in json.loads(listed.stdout)} == {"batch-1", "batch-2"}


def test_a_refused_job_leaves_no_model(session, job, monkeypatch):
    from detectctl.errors import AwsValidationError

    real = Aws.call

    def refuse(self, service, operation, **request):
        if operation == "create_transform_job":
            raise AwsValidationError("CreateTransformJob: invalid")
        return real(self, service, operation, **request)

    monkeypatch.setattr(Aws, "call", refuse)
    with pytest.raises(AwsValidationError):
        session.transform("job-1", input=f"s3://{BUCKET}/images/", output=f"s3://{BUCKET}/o/",
                          instance_type="ml.c5.xlarge")
    assert boto3.client("sagemaker", region_name=REGION).list_models()["Models"] == []


def test_dry_run_prints_both_requests(session, job):
    result = runner.invoke(app, ["transform", "job-1", "--input", f"s3://{BUCKET}/a.rec",
                                 "--output", f"s3://{BUCKET}/out/", "--instance", "ml.c5.xlarge",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"CreateModel", "CreateTransformJob"}
    assert boto3.client("sagemaker", region_name=REGION).list_transform_jobs()[
        "TransformJobSummaries"] == []
