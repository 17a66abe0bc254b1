"""`detectctl jobs` and TrainingJob: moto where it can, a botocore Stubber where it cannot
(moto lacks StopTrainingJob and finishes every job at once)."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from detectctl.aws import Aws
from detectctl.cli.app import app
from detectctl.errors import JobFailedError
from detectctl.session import Session
from tests.aws.support import BUCKET, REGION

runner = CliRunner()
T = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)


def launch(session, name, **options):
    values = dict(instance_type="ml.p3.2xlarge", train=f"s3://{BUCKET}/t.rec",
                  hyperparameters={"num_classes": 2}, name=name)
    values.update(options)
    return session.launch(session.plan(**values))


def description(name="job", status="InProgress", **extra):
    d = {"TrainingJobName": name, "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:job/{name}",
         "TrainingJobStatus": status, "SecondaryStatus": "Training",
         "AlgorithmSpecification": {"TrainingInputMode": "File"},
         "ResourceConfig": {"InstanceType": "ml.p3.8xlarge", "InstanceCount": 2,
                            "VolumeSizeInGB": 30},
         "StoppingCondition": {"MaxRuntimeInSeconds": 3600}, "CreationTime": T,
         "ModelArtifacts": {"S3ModelArtifacts": ""}}
    d.update(extra)
    return d


@pytest.fixture
def stub(monkeypatch):
    """A stubbed SageMaker client that every Aws in the test uses."""
    client = boto3.client("sagemaker", region_name=REGION)
    real = Aws.client
    monkeypatch.setattr(Aws, "client",
                        lambda self, service: client if service == "sagemaker"
                        else real(self, service))
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_job_properties_cost_and_metrics(session):
    job = launch(session, "job-1")
    assert job.status == "Completed" and job.done
    assert job.model_artifact == f"s3://{BUCKET}/detectctl/jobs/job-1/output/model.tar.gz"
    assert job.metrics == {"train:progress": 100.0}
    assert repr(job) == "TrainingJob('job-1', status='Completed')"
    assert "<table>" in job._repr_html_()


def test_list_describe_and_wait_commands(session):
    launch(session, "job-1")
    launch(session, "job-2")
    listed = runner.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "job-1" in listed.stdout and "job-2" in listed.stdout
    described = runner.invoke(app, ["jobs", "describe", "job-1"])
    assert described.exit_code == 0
    assert "status          Completed (Completed)\ninstances       1 x ml.p3.2xlarge" in (
        described.stdout)
    assert "Preparing the instances for training" in described.stdout
    waited = runner.invoke(app, ["jobs", "wait", "job-1", "--timeout", "1m"])
    assert waited.exit_code == 0 and "Completed" in waited.stdout


def test_stop_asks_then_stops(stub):
    stub.add_response("describe_training_job", description(), {"TrainingJobName": "job"})
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "job"})
    result = runner.invoke(app, ["jobs", "stop", "job"], input="y\n")
    assert result.exit_code == 0, result.output
    # CliRunner echoes the typed answer to stdout.
    assert result.stdout.endswith("\nstopping job; `detectctl jobs wait job` waits until it "
                                  "has stopped\n")


def test_stop_of_a_finished_job_does_nothing(stub):
    stub.add_response("describe_training_job", description(status="Completed"),
                      {"TrainingJobName": "job"})
    result = runner.invoke(app, ["jobs", "stop", "job", "--yes"])
    assert result.exit_code == 0 and result.stdout == "job is Completed; nothing to stop\n"


def test_failed_job_exits_1_with_its_reason(stub):
    failed = description(status="Failed", FailureReason="AlgorithmError: num_classes=3 but "
                         "the data has class id 7", BillableTimeInSeconds=120)
    stub.add_response("describe_training_job", failed, {"TrainingJobName": "job"})
    stub.add_response("describe_training_job", failed, {"TrainingJobName": "job"})
    result = runner.invoke(app, ["jobs", "wait", "job"])
    assert result.exit_code == 1
    assert isinstance(result.exception, JobFailedError)
    assert str(result.exception).startswith(
        "training job job failed: AlgorithmError: num_classes=3 but the data has class id 7")
    assert "billable   120 s per instance, about $0.98" in result.stdout


def test_cost_is_billable_seconds_times_instances(stub):
    stub.add_response("describe_training_job",
                      description(status="Completed", BillableTimeInSeconds=3600),
                      {"TrainingJobName": "job"})
    job = Session(region=REGION).training_job("job")
    assert job.cost == pytest.approx(2 * 14.688)


def test_ctrl_c_while_following_detaches_and_says_how_to_reattach(stub, monkeypatch):
    from detectctl.cli import follow

    def interrupted(job, events):
        raise KeyboardInterrupt

    monkeypatch.setattr(follow, "_plain", interrupted)
    stub.add_response("describe_training_job", description(), {"TrainingJobName": "job"})
    result = runner.invoke(app, ["jobs", "attach", "job"])
    assert result.exit_code == 130
    assert result.stderr == ("\ndetached from job; it keeps running. Re-attach with: "
                             "detectctl jobs attach job\n")
