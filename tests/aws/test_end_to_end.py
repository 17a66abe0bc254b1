"""End to end: the installed `detectctl` executable against a moto server.

Upload a synthetic dataset, train on two instances, read both hosts' logs, deploy, list,
predict with the class names of the model (invoke_endpoint stubbed at the client: moto cannot
take image bodies), delete.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from PIL import Image

from detectctl.aws import Aws
from detectctl.datasets.synth import synth
from detectctl.sagemaker.logs import LOG_GROUP
from tests.aws.support import BUCKET, REGION, ROLE, ROLE_NAME, TRUST, model_archive

JOB = "e2e-job"


def executable() -> str:
    found = Path(sys.executable).with_name("detectctl")
    return str(found) if found.exists() else shutil.which("detectctl")


@pytest.fixture
def cli(moto_server, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    env = {**os.environ, "DETECTCTL_ROLE": ROLE, "NO_COLOR": "1"}

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([executable(), *args], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    return run


def client(service: str, url: str):
    return boto3.client(service, region_name=REGION, endpoint_url=url)


def test_upload_train_logs_deploy_predict_delete(cli, moto_server, tmp_path, monkeypatch,
                                                 capsys):
    client("iam", moto_server).create_role(RoleName=ROLE_NAME,
                                           AssumeRolePolicyDocument=json.dumps(TRUST))
    client("s3", moto_server).create_bucket(Bucket=BUCKET)
    data = tmp_path / "data"
    synth(str(data / "train" / "data"), images=4, classes=2, format="recordio",
          image_size=(64, 48))
    synth(str(data / "validation" / "data"), images=2, classes=2, format="recordio",
          image_size=(64, 48), seed=1)

    uploaded = cli("dataset", "upload", str(data), f"s3://{BUCKET}/voc")
    train_uri, validation_uri = f"s3://{BUCKET}/voc/train/data.rec", \
        f"s3://{BUCKET}/voc/validation/data.rec"
    classes_uri = f"s3://{BUCKET}/voc/meta/train/classes.json"
    assert (f"--train {train_uri} --validation {validation_uri} --classes {classes_uri}"
            in uploaded.stdout)
    again = cli("dataset", "upload", str(data), f"s3://{BUCKET}/voc")
    assert "uploaded 0 files (0 bytes), 8 already there" in again.stdout

    started = cli("train", "--instance", "ml.p3.8xlarge", "--count", "2", "--train", train_uri,
                  "--validation", validation_uri, "--hp", "num_classes=2",
                  "--hp", "mini_batch_size=16", "--hp", "use_pretrained_model=0",
                  "--name", JOB, "--yes")
    assert started.stdout.startswith(f"started training job {JOB}\n")
    assert "cost             $29.38/hour (2 x $14.688); at most $705.02 for the 24 h limit" in (
        started.stderr)
    job = client("sagemaker", moto_server).describe_training_job(TrainingJobName=JOB)
    assert job["ResourceConfig"] == {"InstanceType": "ml.p3.8xlarge", "InstanceCount": 2,
                                     "VolumeSizeInGB": 30}
    assert job["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert job["HyperParameters"]["mini_batch_size"] == "16"
    assert [(c["ChannelName"], c["DataSource"]["S3DataSource"]["S3Uri"])
            for c in job["InputDataConfig"]] == [
        ("train", train_uri), ("validation", validation_uri), ("classes", classes_uri)]
    assert job["RoleArn"] == ROLE

    logs = client("logs", moto_server)
    logs.create_log_group(logGroupName=LOG_GROUP)
    now = int(time.time() * 1000)
    for host, offsets in (("algo-1", (0, 20)), ("algo-2", (10, 30))):
        stream = f"{JOB}/{host}-1780000000"
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=[
            {"timestamp": now + t, "message": f"{host} at {t}"} for t in offsets])
    read = cli("logs", JOB)
    assert read.stdout == ("[algo-1] algo-1 at 0\n[algo-2] algo-2 at 10\n"
                           "[algo-1] algo-1 at 20\n[algo-2] algo-2 at 30\n")
    followed = cli("logs", JOB, "--follow", "--host", "algo-2")
    assert followed.stdout == "[algo-2] algo-2 at 10\n[algo-2] algo-2 at 30\n"
    assert "status          Completed (Completed)" in followed.stderr

    deployed = cli("deploy", JOB, "--instance", "ml.c5.xlarge", "--yes")
    assert deployed.stdout.startswith(f"endpoint {JOB}: InService\n")
    listed = json.loads(cli("endpoints", "list", "--json").stdout)
    assert [(e["endpoint"], e["status"], e["instance"]) for e in listed] == [
        (JOB, "InService", "ml.c5.xlarge")]

    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    client("s3", moto_server).put_object(Bucket=BUCKET, Key=artifact.split("/", 3)[3],
                                         Body=model_archive(["circle", "square"]))
    runtime = boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=moto_server)
    real = Aws.client
    monkeypatch.setattr(Aws, "client", lambda self, service: runtime
                        if service == "sagemaker-runtime" else real(self, service))
    body = json.dumps({"prediction": [[1, 0.8, 0.1, 0.1, 0.4, 0.5]]}).encode()
    image = tmp_path / "cat.jpg"
    Image.new("RGB", (32, 32), "gray").save(image)
    with Stubber(runtime) as stub:
        stub.add_response("invoke_endpoint",
                          {"Body": StreamingBody(io.BytesIO(body), len(body))},
                          {"EndpointName": JOB, "ContentType": "image/jpeg",
                           "Accept": "application/json", "Body": ANY})
        from detectctl.cli import main

        with pytest.raises(SystemExit) as info:
            main(["predict", JOB, str(image), "--json"])
        assert info.value.code == 0
    [answer] = json.loads(capsys.readouterr().out)
    assert answer["detections"] == [{"class_id": 1, "class_name": "square", "score": 0.8,
                                     "box": [0.1, 0.1, 0.4, 0.5]}]

    deleted = cli("endpoints", "delete", JOB, "--yes")
    assert deleted.stdout.startswith(f"deleted endpoint {JOB}\n")
    assert client("sagemaker", moto_server).list_endpoints()["Endpoints"] == []
