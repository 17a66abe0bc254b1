"""One SDK scenario on both backends: a two-host job launched, described, listed, its logs read,
stopped, resumed from its checkpoint to the end; and a failing job with its reason.

SageMaker runs on moto in-process. What moto does not do is stubbed at the boto3 client, with
botocore's own call events: training jobs move InProgress -> Completed over a few descriptions
(moto finishes them at once), StopTrainingJob moves one to Stopping -> Stopped (moto lacks it),
each description of a running job writes an epoch's log lines for each host to moto's
CloudWatch Logs (moto writes none), and a job given num_classes=5 for the three-class data
fails with the training job's own message. The local backend runs the real job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from detectctl.session import Session
from tests.local.conftest import TINY, wait_for

BUCKET = "sagemaker-us-east-1-123456789012"
FAILURE = ("num_classes=5 but the training data names 3 classes (circle, square, "
           "triangle...); set num_classes=3")


@dataclass
class SimulatedJob:
    hosts: int
    failing: bool
    status: str = "InProgress"
    epochs: int = 0


@dataclass
class TrainingSimulator:
    """SageMaker's side of a training job, as far as the scenario needs it (see the module)."""

    jobs: dict[str, SimulatedJob] = field(default_factory=dict)

    def created(self, params: dict[str, Any], **_: Any) -> None:
        name = params["TrainingJobName"]
        self.jobs[name] = SimulatedJob(params["ResourceConfig"]["InstanceCount"],
                                       params["HyperParameters"].get("num_classes") == "5")

    def stop(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict]:
        job = self.jobs[params["TrainingJobName"]]
        if job.status == "InProgress":
            job.status = "Stopping"
        return (_Http(), {})

    def describe(self, params: dict[str, Any], parsed: dict[str, Any], **_: Any) -> None:
        job = self.jobs.get(params["TrainingJobName"])
        if job is None or "TrainingJobStatus" not in parsed:
            return
        self._advance(params["TrainingJobName"], job)
        parsed["TrainingJobStatus"] = job.status
        parsed["SecondaryStatus"] = {"InProgress": "Training"}.get(job.status, job.status)
        if job.status == "Failed":
            parsed["FailureReason"] = FAILURE
        if job.status != "Completed":
            parsed.pop("ModelArtifacts", None)

    def _advance(self, name: str, job: SimulatedJob) -> None:
        if job.status == "Stopping":
            job.status = "Stopped"
        elif job.status == "InProgress":
            if job.failing:
                job.status = "Failed"
                return
            job.epochs += 1
            self._log(name, job)
            if job.epochs >= 6:
                job.status = "Completed"

    def _log(self, name: str, job: SimulatedJob) -> None:
        import boto3

        logs = boto3.client("logs", region_name="us-east-1")
        group = "/aws/sagemaker/TrainingJobs"
        now = int(time.time() * 1000)
        for host in range(1, job.hosts + 1):
            stream = f"{name}/algo-{host}-1780000000"
            if job.epochs == 1:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
                {"timestamp": now, "message": f"#progress_metric: host=algo-{host}, completed "
                                              f"{job.epochs * 10} %"}])


class _Http:
    status_code = 200
    headers: ClassVar[dict] = {}


@pytest.fixture
def sagemaker(monkeypatch, tmp_path):
    """A SageMaker session on moto, with the simulator hooked into every SageMaker client."""
    import boto3
    from moto import mock_aws

    from detectctl.aws import Aws
    from tests.aws.support import REGION, ROLE, fake_weights, make_role

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "DETECTCTL_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "detectctl.toml"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fake_weights(monkeypatch, tmp_path / "torch")
    simulator = TrainingSimulator()
    real = Aws.client

    def client(self, service):
        made = real(self, service)
        if service == "sagemaker" and not getattr(made, "_simulated", False):
            events = made.meta.events
            # The call's parameters ride in its context from parameter building to the call.
            events.register("before-parameter-build.sagemaker",
                            lambda params, context, **kw: context.update(api=params))
            events.register("after-call.sagemaker.CreateTrainingJob",
                            lambda context, **kw: simulator.created(context["api"]))
            events.register("before-call.sagemaker.StopTrainingJob",
                            lambda context, **kw: simulator.stop(context["api"]))
            events.register("after-call.sagemaker.DescribeTrainingJob",
                            lambda context, parsed, **kw: simulator.describe(context["api"],
                                                                             parsed))
            made._simulated = True
        return made

    with mock_aws():
        make_role()
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("logs", region_name=REGION).create_log_group(
            logGroupName="/aws/sagemaker/TrainingJobs")
        monkeypatch.setattr(Aws, "client", client)
        yield Session(region=REGION, role=ROLE)


@dataclass
class Backend:
    session: Session
    options: dict[str, Any]
    timeout: float
    poll: float


@pytest.fixture(params=["sagemaker", "local"])
def backend(request, tmp_path):
    if request.param == "sagemaker":
        session = request.getfixturevalue("sagemaker")
        return Backend(session, {"instance_type": "ml.p3.2xlarge",
                                 "train": f"s3://{BUCKET}/voc/train.rec",
                                 "checkpoint_s3": f"s3://{BUCKET}/checkpoints/scenario"},
                       timeout=30, poll=0.01)
    data = request.getfixturevalue("data")
    request.getfixturevalue("jobs_to_clean")
    return Backend(Session(backend="local"),
                   {"train": str(data / "train.rec"), "validation": str(data / "val.rec")},
                   timeout=300, poll=0.5)


def _hosts_logged(job) -> set[str]:
    """The hosts that have written to the log, once an epoch has ended (its checkpoint
    saved)."""
    events = list(job.logs())
    if not any("#progress_metric" in event.message for event in events):
        return set()
    return {event.host for event in events}


def test_launch_describe_list_logs_stop_resume_and_a_failure(backend):
    session = backend.session
    job = session.train(**backend.options, instance_count=2,
                        hyperparameters={**TINY, "epochs": 8})
    assert job.status == "InProgress"
    assert job.refresh()["ResourceConfig"]["InstanceCount"] == 2
    assert job.hyperparameters["epochs"] == "8"
    assert job.name in [listed.name for listed in session.training_jobs()]
    assert wait_for(lambda: _hosts_logged(job) == {"algo-1", "algo-2"}, what="both hosts")

    job.stop()
    assert job.wait(timeout=backend.timeout, poll=backend.poll) == "Stopped"
    assert job.model_artifact is None
    resumed = job.resume()
    assert resumed.wait(timeout=backend.timeout, poll=backend.poll) == "Completed"
    assert resumed.model_artifact
    assert resumed.instance_count == 2
    if job.backend == "local":  # resumed in place, from the checkpoint, in new log streams
        assert resumed.name == job.name
        assert [t["Status"] for t in resumed.history].count("Restarting") == 1
        assert any("resumed from" in e.message for e in resumed.logs(hosts=["algo-1"]))
        assert len(resumed.log_streams().streams(job.name)) == 4

    failing = session.train(**backend.options, hyperparameters={**TINY, "num_classes": 5})
    assert failing.wait(timeout=backend.timeout, poll=backend.poll) == "Failed"
    assert failing.failure_reason == FAILURE
