"""Session set-up (role, bucket, config file), `detectctl doctor`, and the code archive."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest
from typer.testing import CliRunner

from detectctl import config, packaging
from detectctl import session as session_module
from detectctl.aws import Aws
from detectctl.cli.app import app
from detectctl.errors import ConfigError
from detectctl.sagemaker import doctor
from detectctl.session import Session
from tests.aws.support import ACCOUNT, BUCKET, REGION, ROLE, ROLE_NAME, make_role

runner = CliRunner()


def test_role_comes_from_argument_then_env_then_config(tmp_path, monkeypatch):
    path = tmp_path / "detectctl.toml"
    path.write_text('[aws]\nrole = "arn:file"\nbucket = "file-bucket"\n')
    assert Session(region=REGION).role == "arn:file"
    monkeypatch.setenv("DETECTCTL_ROLE", "arn:env")
    assert Session(region=REGION).role == "arn:env"
    assert Session(region=REGION, role="arn:arg").role == "arn:arg"
    assert Session(region=REGION).bucket == "file-bucket"


def test_missing_role_says_how_to_set_one(monkeypatch, tmp_path):
    monkeypatch.setattr(session_module, "NOTEBOOK_METADATA", tmp_path / "absent.json")
    with pytest.raises(ConfigError) as info:
        Session(region=REGION).role  # noqa: B018
    assert str(info.value).startswith("no SageMaker execution role configured (pass --role ARN, "
                                      "set DETECTCTL_ROLE, or put role = \"ARN\" under [aws] in")


def test_notebook_instance_role_is_discovered(moto, monkeypatch, tmp_path):
    make_role()
    boto3.client("sagemaker").create_notebook_instance(
        NotebookInstanceName="nb", InstanceType="ml.t3.medium", RoleArn=ROLE)
    metadata = tmp_path / "resource-metadata.json"
    metadata.write_text(json.dumps({"ResourceName": "nb"}))
    monkeypatch.setattr(session_module, "NOTEBOOK_METADATA", metadata)
    assert Session(region=REGION).role == ROLE


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[aws]\nrgion = 'x'\n")
    with pytest.raises(ConfigError, match="unknown key 'rgion'"):
        config.load(bad)
    bad.write_text("[aws\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)
    assert config.load(tmp_path / "absent.toml").role is None


def test_default_bucket_is_created_after_confirmation(moto):
    session = Session(region="eu-west-1", role=ROLE)
    assert session.bucket == f"sagemaker-eu-west-1-{ACCOUNT}"
    with pytest.raises(Exception, match="does not exist"):
        session.ensure_bucket(lambda question: False)
    assert session.ensure_bucket(lambda question: True) == session.bucket
    s3 = boto3.client("s3", region_name="eu-west-1")
    assert s3.get_bucket_location(Bucket=session.bucket)["LocationConstraint"] == "eu-west-1"
    block = s3.get_public_access_block(Bucket=session.bucket)
    assert all(block["PublicAccessBlockConfiguration"].values())


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="AWS profile 'nobody' not found"):
        Aws(profile="nobody")


def test_doctor_reports_each_check(session, monkeypatch):
    real = Aws.paginate

    def quotas(self, service, operation, key, **request):
        if service != "service-quotas":
            return real(self, service, operation, key, **request)
        return iter([{"QuotaName": "ml.p3.8xlarge for training job usage", "Value": 1.0}])

    real_call = Aws.call

    def simulate(self, service, operation, **request):
        if operation != "simulate_principal_policy":  # moto lacks it
            return real_call(self, service, operation, **request)
        return {"EvaluationResults": [
            {"EvalActionName": a, "EvalDecision": "implicitDeny" if a == "s3:PutObject"
             else "allowed"} for a in request["ActionNames"]]}

    monkeypatch.setattr(Aws, "paginate", quotas)
    monkeypatch.setattr(Aws, "call", simulate)
    result = runner.invoke(app, ["doctor", "--role", ROLE, "--instance", "ml.p3.8xlarge",
                                 "--count", "2"])
    lines = result.stdout.splitlines()
    assert lines[0] == f"OK    credentials: arn:aws:sts::{ACCOUNT}:user/moto (account {ACCOUNT})"
    assert lines[1] == f"OK    region: {REGION}"
    assert lines[2] == f"OK    role: {ROLE}, trusted by SageMaker"
    assert lines[3] == f"OK    bucket: s3://{BUCKET} (us-east-1)"
    assert lines[4] == f"FAIL  role and bucket: the role may not s3:PutObject on s3://{BUCKET}"
    assert lines[6] == "FAIL  quota: 'ml.p3.8xlarge for training job usage' is 1, 2 needed"
    assert lines[7].startswith("      fix: request an increase: Service Quotas console")
    assert result.exit_code == 1


def test_doctor_finds_a_role_sagemaker_cannot_assume(moto):
    iam = boto3.client("iam")
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps({
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": "sts:AssumeRole"}]}))
    check = doctor.check_role(Session(region=REGION, role=ROLE))
    assert check.status == doctor.FAIL and "does not trust sagemaker.amazonaws.com" in check.detail
    missing = doctor.check_role(Session(region=REGION, role=ROLE + "-x"))
    assert missing.status == doctor.FAIL and missing.detail.endswith("does not exist")


def test_source_archive_is_reproducible_and_runs_algorithm_train():
    first, second = packaging.source_archive(), packaging.source_archive()
    assert first.data == second.data and first.sha256 == second.sha256
    with tarfile.open(fileobj=io.BytesIO(first.data)) as archive:
        names = archive.getnames()
        entry = archive.extractfile("train.py").read()
    assert names[0] == "train.py" and "algorithm/__init__.py" in names
    assert "algorithm/hyperparameters.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert b'runpy.run_module("algorithm.train", run_name="__main__"' in entry
    assert first.uri("b") == f"s3://b/detectctl/source/{first.sha256[:16]}/sourcedir.tar.gz"


def test_import_detectctl_and_help_stay_light():
    import subprocess
    import sys

    code = ("import sys, detectctl.cli.app; "
            "print(sorted(m for m in ('boto3', 'botocore', 'pydantic', 'torch', 'rich') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_entry_point_runs_algorithm_train_from_the_unpacked_archive(tmp_path):
    import subprocess
    import sys

    package = tmp_path / "src"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(
        "import os, algorithm\n"
        "if __name__ == '__main__':\n"
        "    print('trained', os.environ['PYTHONPATH'].split(os.pathsep)[0])\n")
    archive = packaging.source_archive(package)
    code = tmp_path / "opt-ml-code"
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as unpacked:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        unpacked.extractall(code, **safe)
    done = subprocess.run([sys.executable, "train.py"], cwd=code, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.stdout == f"trained {code}\n", done.stderr


def test_sdk_entry_points_are_exported_lazily():
    import detectctl
    from detectctl.endpoints import Endpoint
    from detectctl.jobs import TrainingJob

    assert (detectctl.Session, detectctl.TrainingJob, detectctl.Endpoint) == (
        Session, TrainingJob, Endpoint)
    with pytest.raises(AttributeError):
        detectctl.Nothing  # noqa: B018
