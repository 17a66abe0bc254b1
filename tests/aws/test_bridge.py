"""The bridge to the sagemaker SDK (detectctl/sagemaker/bridge.py), against moto.

Tests marked ``dev`` need the sagemaker SDK 3.x (``pip install -e '.[dev,sagemaker]'``; run
with ``pytest -m dev tests/aws/test_bridge.py``); the others run everywhere. The SDK's
telemetry is opted out through its own configuration file, and every socket that is not to this
machine is refused, so nothing reaches AWS.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from detectctl.errors import MissingDependencyError, NotFoundError, UsageError
from detectctl.sagemaker import bridge
from detectctl.sagemaker.model_trainer import model_trainer
from detectctl.session import Session
from tests.aws.support import ACCOUNT, BUCKET, REGION, ROLE, make_role

ROOT = Path(__file__).resolve().parents[2]
dev = pytest.mark.dev

# Imports detectctl's modules, builds sessions and handles and runs two commands with the
# sagemaker package made unimportable; prints which sagemaker modules were loaded.
BLOCKED = r"""
import sys
class _NoSageMaker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sagemaker":
            raise ImportError("blocked by the test")
        return None
sys.meta_path.insert(0, _NoSageMaker())
import detectctl
from detectctl.session import Session
from detectctl.sagemaker import backend, endpoints, jobs, training
from detectctl.sagemaker.jobs import SageMakerTrainingJob
from detectctl.local.backend import LocalBackend
session = Session(region="us-east-1", role="arn:aws:iam::123456789012:role/r", bucket="b")
session.plan(instance_type="ml.g5.xlarge", train="s3://b/t.rec", offline=True,
             hyperparameters={"num_classes": 3, "use_pretrained_model": 0})
SageMakerTrainingJob(session, "job")
from detectctl.cli import main
for args in (["--help"], ["train", "--help"], ["hyperparameters"]):
    try:
        main(args)
    except SystemExit:
        pass
print("LOADED=" + ",".join(sorted(m for m in sys.modules if m.split(".")[0] == "sagemaker")))
"""


def test_detectctl_imports_sagemaker_only_when_the_bridge_is_called():
    result = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LOADED="


def test_without_the_sdk_the_bridge_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sagemaker", None)
    with pytest.raises(MissingDependencyError) as info:
        bridge.import_sagemaker("sagemaker.core.resources")
    assert "pip install 'detectctl[sagemaker]'" in str(info.value)


def test_local_handles_refuse_in_one_line(tmp_path):
    from detectctl.local.endpoints import LocalEndpoint
    from detectctl.local.jobs import LocalTrainingJob

    for handle in (LocalTrainingJob(tmp_path / "job"), LocalEndpoint(tmp_path / "endpoint")):
        with pytest.raises(UsageError) as info:
            handle.to_sagemaker()
        assert str(info.value).startswith("to_sagemaker() is not available on the local "
                                          "backend (")
        assert "\n" not in str(info.value)


def test_a_local_plan_has_no_model_trainer():
    with pytest.raises(UsageError, match="ModelTrainer runs SageMaker jobs"):
        model_trainer(Session(backend="local"), SimpleNamespace(backend="local"))


def test_something_else_than_a_sagemaker_session_is_refused():
    with pytest.raises(UsageError, match="not a sagemaker SDK session"):
        bridge.borrow(object())


# --- with the sagemaker SDK ---------------------------------------------------------------

@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No telemetry (the SDK's own opt-out), no socket beyond this machine."""
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
                      "      TelemetryOptOut: true\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("SAGEMAKER_ADMIN_CONFIG_OVERRIDE", str(config))
    # ModelTrainer checks the role with iam:SimulatePrincipalPolicy, which moto lacks.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    real = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") \
                and not host.startswith("/"):
            raise OSError(f"the test refused a connection to {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def sdk(offline, moto):
    """The sagemaker SDK's session module (skips when the SDK is not installed)."""
    return pytest.importorskip("sagemaker.core.helper.session_helper")


def _sagemaker_session(sdk, boto_session=None):
    return sdk.Session(boto_session=boto_session or boto3.Session(region_name=REGION))


@dev
def test_from_sagemaker_reuses_boto_session_region_and_default_bucket(sdk):
    sm = _sagemaker_session(sdk)
    session = Session.from_sagemaker(sm, role=ROLE)
    assert session.aws._session is sm.boto_session
    assert session.region == REGION and session.backend_name == "sagemaker"
    assert session.bucket == sm.default_bucket() == BUCKET  # created by the SDK, as it does
    assert session.role == ROLE
    assert session.account == ACCOUNT  # calls go through the borrowed session


@dev
def test_the_role_is_the_argument_then_detectctls_then_the_sdks(sdk, monkeypatch):
    make_role()
    sts = boto3.client("sts", region_name=REGION)
    credentials = sts.assume_role(RoleArn=ROLE, RoleSessionName="notebook")["Credentials"]
    as_role = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name=REGION)
    sm = _sagemaker_session(sdk, as_role)
    assert Session.from_sagemaker(sm).role == ROLE  # the SDK's get_execution_role
    assert Session.from_sagemaker(sm, role="arn:aws:iam::1:role/given").role == (
        "arn:aws:iam::1:role/given")
    monkeypatch.setenv("DETECTCTL_ROLE", "arn:aws:iam::1:role/configured")
    assert Session.from_sagemaker(sm).role == "arn:aws:iam::1:role/configured"


@dev
def test_a_user_identity_has_no_role_and_says_how_to_set_one(sdk):
    from detectctl.errors import ConfigError

    session = Session.from_sagemaker(_sagemaker_session(sdk))  # moto's caller is a user
    with pytest.raises(ConfigError, match="no SageMaker execution role configured"):
        _ = session.role


def _launch_job(session, name="job-1"):
    make_role()
    return session.launch(session.plan(
        instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/t.rec", name=name,
        hyperparameters={"num_classes": 3, "use_pretrained_model": 0}))


@dev
def test_a_training_job_hands_back_its_sagemaker_core_resource(sdk):
    session = Session.from_sagemaker(_sagemaker_session(sdk), role=ROLE)
    job = _launch_job(session)
    resource = job.to_sagemaker()
    resources = pytest.importorskip("sagemaker.core.resources")
    assert isinstance(resource, resources.TrainingJob)
    assert resource.training_job_name == "job-1"
    assert resource.algorithm_specification.training_image == job.description[
        "AlgorithmSpecification"]["TrainingImage"]
    with pytest.raises(NotFoundError):
        session.training_job("no-such-job").to_sagemaker()


@dev
def test_an_endpoint_hands_back_its_sagemaker_core_resource(sdk):
    from detectctl.sagemaker import endpoints

    session = Session(region=REGION, role=ROLE)  # made the plain way: same credentials chain
    job = _launch_job(session)
    plan = endpoints.plan(session, job.name, instance_type="ml.c5.xlarge")
    endpoint = endpoints.deploy(session, plan, poll=1)

    def as_aws_answers(parsed, **_):
        # moto answers an empty DataCaptureConfig, which SageMaker leaves out and which
        # sagemaker-core's Endpoint refuses (its fields are required when it is there).
        if not parsed.get("DataCaptureConfig"):
            parsed.pop("DataCaptureConfig", None)

    session.aws._session.events.register("after-call.sagemaker.DescribeEndpoint",
                                          as_aws_answers)
    resource = endpoint.to_sagemaker()
    assert type(resource).__name__ == "Endpoint" and resource.endpoint_name == endpoint.name
    assert resource.endpoint_status == "InService"
    with pytest.raises(NotFoundError):
        session.endpoint("no-such-endpoint").to_sagemaker()


def _plan(session, **options):
    values = dict(instance_type="ml.p3.8xlarge", instance_count=2,
                  train=f"s3://{BUCKET}/voc/train/", validation=f"s3://{BUCKET}/voc/validation/",
                  data_format="recordio", spot=True, max_run_seconds=7200,
                  subnets=("subnet-1",), security_groups=("sg-1",), network_isolation=True,
                  tags={"team": "vision"}, name="ssd-job",
                  hyperparameters={"num_classes": 20, "image_shape": 512})
    values.update(options)
    return session.plan(**values)


@dev
def test_a_plan_becomes_a_model_trainer_configured_the_same_way(sdk):
    from sagemaker.train.distributed import Torchrun

    make_role()
    session = Session.from_sagemaker(_sagemaker_session(sdk), role=ROLE)
    plan = _plan(session)
    trainer = session.model_trainer(plan)

    request = plan.request
    assert trainer.training_image == request["AlgorithmSpecification"]["TrainingImage"]
    assert trainer.role == ROLE and trainer.base_job_name == "ssd-job"
    assert isinstance(trainer.distributed, Torchrun)
    assert trainer.source_code.source_dir == plan.archive.uri(BUCKET)
    assert trainer.source_code.entry_script == "train.py"
    assert trainer.hyperparameters == {"num_classes": "20", "image_shape": "512"}
    # What detectctl uploads before its own launch is there: the source archive and weights.
    s3 = boto3.client("s3", region_name=REGION)
    s3.head_object(Bucket=BUCKET, Key=plan.archive.key())
    s3.head_object(Bucket=BUCKET, Key=plan.weights.key)

    # The CreateTrainingJob request the trainer sends, against detectctl's own.
    theirs = trainer._create_training_job_args(boto3=True)
    assert theirs["RoleArn"] == request["RoleArn"]
    for key in ("ResourceConfig", "StoppingCondition", "CheckpointConfig",
                "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                "EnableManagedSpotTraining"):
        assert theirs[key] == request[key], key
    # GZIP is what SageMaker does when the request does not say.
    assert theirs["OutputDataConfig"] == {**request["OutputDataConfig"], "CompressionType": "GZIP"}
    assert sorted(theirs["VpcConfig"]["Subnets"]) == ["subnet-1"]
    assert theirs["VpcConfig"]["SecurityGroupIds"] == ["sg-1"]
    ours = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    channels = {c["ChannelName"]: c for c in theirs["InputDataConfig"]}
    for name in ("train", "validation", "pretrained"):
        assert channels[name] == ours[name], name
    # The code: the same archive as the SDK's code channel, run by its drivers.
    assert channels["code"]["DataSource"]["S3DataSource"]["S3Uri"] == plan.archive.uri(BUCKET)
    assert "sm_drivers" in channels and "code" in ours  # ours: network isolation's channel
    specification = theirs["AlgorithmSpecification"]
    assert specification["TrainingImage"] == request["AlgorithmSpecification"]["TrainingImage"]
    assert specification["TrainingInputMode"] == "File"
    assert specification["MetricDefinitions"] == request["AlgorithmSpecification"][
        "MetricDefinitions"]
    assert {"Key": "team", "Value": "vision"} in theirs["Tags"]
    assert {t["Key"] for t in request["Tags"]} <= {t["Key"] for t in theirs["Tags"]}
    hp = theirs["HyperParameters"]
    assert hp["num_classes"] == "20" and not any(k.startswith("sagemaker_") for k in hp)


@dev
def test_the_model_trainer_starts_the_job(sdk):
    make_role()
    session = Session.from_sagemaker(_sagemaker_session(sdk), role=ROLE)
    plan = _plan(session, instance_count=1, instance_type="ml.g5.xlarge", spot=False,
                 subnets=(), security_groups=(), network_isolation=False,
                 train=f"s3://{BUCKET}/gt/train.manifest", validation=None,
                 data_format="manifest")
    trainer = session.model_trainer(plan)
    assert trainer.distributed is None  # one GPU: no torchrun, as detectctl plans it
    trainer.train(wait=False)
    created = trainer._latest_training_job.training_job_name
    job = session.training_job(created)
    described = job.refresh()
    assert described["AlgorithmSpecification"]["TrainingImage"] == plan.spec.image
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    train = next(c for c in described["InputDataConfig"] if c["ChannelName"] == "train")
    assert train["DataSource"]["S3DataSource"]["S3DataType"] == "AugmentedManifestFile"
    assert train["DataSource"]["S3DataSource"]["AttributeNames"] == ["source-ref",
                                                                      "bounding-box"]
    assert train["RecordWrapperType"] == "RecordIO"
    assert described["HyperParameters"]["num_classes"] == "20"
    assert job.to_sagemaker().training_job_name == created


@dev
def test_an_offline_plan_is_refused(sdk):
    session = Session.from_sagemaker(_sagemaker_session(sdk))
    plan = _plan(session, offline=True)
    with pytest.raises(UsageError, match="made offline"):
        session.model_trainer(plan)
