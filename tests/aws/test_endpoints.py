"""Deploy, update, list, describe, delete and predict (moto; invoke_endpoint stubbed)."""

from __future__ import annotations

import io
import json
import os

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from PIL import Image
from typer.testing import CliRunner

from detectctl import detections
from detectctl.aws import Aws
from detectctl.cli.app import app
from detectctl.errors import DetectctlError, EndpointFailedError, UsageError
from detectctl.sagemaker import class_names, endpoints
from tests.aws.support import BUCKET, REGION, ROLE, model_archive

runner = CliRunner()
ANSWER = {"prediction": [[1, 0.9, 0.1, 0.2, 0.5, 0.6], [0, 0.3, 0.0, 0.0, 1.0, 1.0],
                         [2, 0.7, 0.5, 0.5, 0.9, 0.9]]}


@pytest.fixture
def job(session):
    return session.launch(session.plan(
        instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/t.rec",
        hyperparameters={"num_classes": 3}, name="job-1"))


def sagemaker():
    return boto3.client("sagemaker", region_name=REGION)


def test_deploy_a_training_job_on_cpu(session, job):
    plan = endpoints.plan(session, "job-1", instance_type="ml.c5.xlarge")
    assert plan.spec.endpoint_name == "job-1" and not plan.update
    assert plan.spec.model_data == job.model_artifact
    assert plan.spec.image == ("763104351884.dkr.ecr.us-east-1.amazonaws.com/"
                               "pytorch-inference:2.6.0-cpu-py312")
    assert plan.cost_per_hour == pytest.approx(0.204)
    endpoint = endpoints.deploy(session, plan, poll=1)
    assert endpoint.status == "InService"
    assert endpoint.instance_type == "ml.c5.xlarge" and endpoint.instance_count == 1
    model = sagemaker().describe_model(ModelName=plan.spec.model_name)
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["ExecutionRoleArn"] == ROLE


def fake_update_endpoint(monkeypatch):
    """moto has no UpdateEndpoint: switch the endpoint's config in moto's backend."""
    from moto.sagemaker.models import sagemaker_backends

    from tests.aws.support import ACCOUNT

    real = Aws.call

    def call(self, service, operation, **request):
        if operation != "update_endpoint":
            return real(self, service, operation, **request)
        endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints[request["EndpointName"]]
        endpoint.endpoint_config_name = request["EndpointConfigName"]
        return {"EndpointArn": endpoint.arn}

    monkeypatch.setattr(Aws, "call", call)


def test_deploying_to_an_existing_endpoint_updates_it_and_removes_the_old_config(
        session, job, monkeypatch):
    fake_update_endpoint(monkeypatch)
    first = endpoints.plan(session, "job-1", instance_type="ml.c5.xlarge")
    endpoints.deploy(session, first, poll=1)
    second = endpoints.plan(session, "job-1", instance_type="ml.g4dn.xlarge", instance_count=2)
    assert second.update
    assert second.spec.image.endswith("pytorch-inference:2.6.0-gpu-py312")
    endpoint = endpoints.deploy(session, second, poll=1)
    assert endpoint.description["EndpointConfigName"] == second.spec.config_name
    configs = [c["EndpointConfigName"] for c in sagemaker().list_endpoint_configs()[
        "EndpointConfigs"]]
    assert configs == [second.spec.config_name]
    models = [m["ModelName"] for m in sagemaker().list_models()["Models"]]
    assert models == [second.spec.model_name]


def test_failed_endpoint_is_removed_and_its_reason_reported(session, job, monkeypatch):
    real = endpoints.SageMakerEndpoint.refresh

    def failing(self):
        described = real(self)
        described.update(EndpointStatus="Failed",
                         FailureReason="The primary container did not pass the ping check")
        return described

    monkeypatch.setattr(endpoints.SageMakerEndpoint, "refresh", failing)
    plan = endpoints.plan(session, "job-1", instance_type="ml.c5.xlarge", name="ep")
    monkeypatch.setattr(endpoints.SageMakerEndpoint, "exists", lambda self: False)
    with pytest.raises(EndpointFailedError) as info:
        endpoints.deploy(session, plan, poll=1)
    assert str(info.value).startswith(
        "deploy of endpoint ep failed: The primary container did not pass the ping check "
        "(what this deploy created was removed")
    assert sagemaker().list_endpoints()["Endpoints"] == []
    assert sagemaker().list_models()["Models"] == []


def test_source_must_be_a_completed_job_or_a_model_archive(session):
    with pytest.raises(UsageError, match=r"is not a model\.tar\.gz"):
        endpoints.plan(session, f"s3://{BUCKET}/model.bin", instance_type="ml.c5.xlarge")


def test_deploy_list_describe_delete_commands(session, job):
    deployed = runner.invoke(app, ["deploy", "job-1", "--instance", "ml.c5.xlarge", "--yes"])
    assert deployed.exit_code == 0, deployed.output
    assert "cost       $0.204/hour while it runs (about $147/month)" in deployed.stderr
    assert "TorchServe; AWS support ended 2026-06-30" in deployed.stderr
    assert deployed.stdout.startswith("endpoint job-1: InService\n")
    listed = runner.invoke(app, ["endpoints", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert row["endpoint"] == "job-1" and row["instance"] == "ml.c5.xlarge"
    assert row["cost_per_hour"] == 0.204 and row["flag"] == ""
    described = runner.invoke(app, ["endpoints", "describe", "job-1"])
    assert "instances  1 x ml.c5.xlarge" in described.stdout
    deleted = runner.invoke(app, ["endpoints", "delete", "job-1", "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.startswith("deleted endpoint job-1\ndeleted endpoint config job-1-")
    assert sagemaker().list_models()["Models"] == []


def test_idle_means_a_day_in_service_without_invocations():
    from datetime import datetime, timedelta, timezone

    old = endpoints.SageMakerEndpoint(None, "e", {"EndpointStatus": "InService",
                                         "CreationTime": datetime.now(timezone.utc)
                                         - timedelta(days=2)})
    new = endpoints.SageMakerEndpoint(None, "e", {"EndpointStatus": "InService",
                                         "CreationTime": datetime.now(timezone.utc)})
    assert not old.idle  # invocations unknown
    old.invocations_24h = 0
    assert old.idle
    old.invocations_24h = 3
    assert not old.idle
    new.invocations_24h = 0
    assert not new.idle


def stub_runtime(monkeypatch, answer: dict, endpoint: str = "ep") -> Stubber:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    real = Aws.client
    monkeypatch.setattr(Aws, "client", lambda self, service: client
                        if service == "sagemaker-runtime" else real(self, service))
    body = json.dumps(answer).encode()
    stubber = Stubber(client)
    stubber.add_response("invoke_endpoint", {
        "Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        {"EndpointName": endpoint, "ContentType": "image/png", "Accept": "application/json",
         "Body": stubber_any()})
    stubber.activate()
    return stubber


def stubber_any():
    from botocore.stub import ANY

    return ANY


def test_predict_prints_a_table_and_draws(monkeypatch, tmp_path):
    image = tmp_path / "dog.png"
    Image.new("RGB", (64, 48), "white").save(image)
    stub_runtime(monkeypatch, ANSWER)
    result = runner.invoke(app, ["predict", "ep", str(image), "--classes", "cat,dog,bird",
                                 "--draw", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines() if "dog.png" in line]
    assert [line[1:3] for line in lines] == [["dog", "0.900"], ["bird", "0.700"]]
    assert Image.open(tmp_path / "out" / "dog.png").size == (64, 48)


def test_parse_prediction_threshold_and_bad_answers():
    found = detections.parse_prediction(json.dumps(ANSWER).encode(), threshold=0.5)
    assert [(d.class_id, d.score) for d in found] == [(1, 0.9), (2, 0.7)]
    assert found[0].to_dict()["box"] == [0.1, 0.2, 0.5, 0.6]
    with pytest.raises(Exception, match="not a detectctl prediction"):
        detections.parse_prediction(b"<html>")


def test_images_over_6_mb_are_refused_before_sending():
    endpoint = endpoints.SageMakerEndpoint(None, "ep")
    with pytest.raises(UsageError, match="at most 6 MiB"):
        endpoint.predict(b"x" * (6 * 1024 * 1024 + 1), content_type="image/jpeg")


def put_model(job, classes) -> None:
    bucket, _, key = job.model_artifact[len("s3://"):].partition("/")
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key,
                                                      Body=model_archive(classes))


def test_predict_takes_class_names_from_the_model_and_caches_them(session, job, monkeypatch,
                                                                  tmp_path):
    put_model(job, ["cat", "dog", "bird"])
    endpoints.deploy(session, endpoints.plan(session, "job-1", instance_type="ml.c5.xlarge"),
                     poll=1)
    image = tmp_path / "dog.png"
    Image.new("RGB", (64, 48), "white").save(image)
    stub_runtime(monkeypatch, ANSWER, endpoint="job-1")
    result = runner.invoke(app, ["predict", "job-1", str(image)])
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines() if "dog.png" in line] == [
        "dog", "bird"]
    assert len(list(class_names.cache_dir().iterdir())) == 1

    def no_download(*args, **kwargs):
        raise AssertionError("the cached names were not used")

    download = Aws.read_object
    monkeypatch.setattr(Aws, "read_object", no_download)
    assert session.endpoint("job-1").class_names() == ["cat", "dog", "bird"]
    put_model(job, ["a", "b", "c"])  # a new archive at the same URI: a new ETag
    monkeypatch.setattr(Aws, "read_object", download)
    assert session.endpoint("job-1").class_names() == ["a", "b", "c"]


def test_a_model_without_classes_json_labels_by_class_id(session, job):
    put_model(job, None)
    assert class_names.for_model(session, job.model_artifact) is None


def test_reading_stops_at_classes_json():
    archive = model_archive(["cat"], weights=os.urandom(4 * 1024 * 1024))
    stream = io.BytesIO(archive)
    assert class_names.from_archive(stream, "m") == ["cat"]
    assert stream.tell() < 100_000 < len(archive)
    with pytest.raises(DetectctlError, match=r"m: not a readable model\.tar\.gz"):
        class_names.from_archive(io.BytesIO(b"not gzip"), "m")


def test_predict_warns_and_goes_on_without_the_model_names(session, job, monkeypatch, tmp_path):
    endpoints.deploy(session, endpoints.plan(session, "job-1", instance_type="ml.c5.xlarge"),
                     poll=1)
    image = tmp_path / "dog.png"
    Image.new("RGB", (64, 48), "white").save(image)
    stub_runtime(monkeypatch, ANSWER, endpoint="job-1")
    result = runner.invoke(app, ["predict", "job-1", str(image), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: no class names from the endpoint's model: ")
    assert [d["class_name"] for d in json.loads(result.stdout)[0]["detections"]] == [None, None]
