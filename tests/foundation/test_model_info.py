"""`detectctl model info`: a model described from the small files at the top of its artifact,
whether a directory, a model.tar.gz here or in S3, or a job's; older artifacts without
metrics.json still described; a file that is not a model refused in one line."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from detectctl.cli import main
from detectctl.models import model_info
from detectctl.session import Session

HYPERPARAMETERS = {"num_classes": "2", "base_network": "resnet-50", "image_shape": "512"}
METRICS = {"epochs": 12, "final": {"validation:mAP": 0.81, "train:cross_entropy": 1.5},
           "best_validation_mAP": 0.83}


def _archive(members: dict[str, bytes], weights_first: bool = False) -> bytes:
    buffer = io.BytesIO()
    order = sorted(members, key=lambda n: (n != "model.pt") if weights_first else n)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in order:
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tar.addfile(info, io.BytesIO(members[name]))
    return buffer.getvalue()


def _members(metrics: bool = True) -> dict[str, bytes]:
    members = {"model.pt": b"w" * 5000, "hyperparameters.json": json.dumps(
        HYPERPARAMETERS).encode(), "classes.json": b'{"classes": ["cat", "dog"]}'}
    if metrics:
        members["metrics.json"] = json.dumps(METRICS).encode()
    return members


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "none.toml"))
    return Session(backend="local")


def test_an_archive_with_metrics(session, tmp_path):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(_archive(_members(), weights_first=True))
    info = model_info(session, str(path))
    assert (info.base_network, info.image_shape, info.classes) == ("resnet-50", 512,
                                                                   ["cat", "dog"])
    assert info.metrics == METRICS and info.hyperparameters == HYPERPARAMETERS
    rows = dict(info.summary())
    assert rows["validation:mAP"] == "0.81" and rows["best validation:mAP"] == "0.83"
    assert rows["epochs"] == "12"


def test_an_older_artifact_without_metrics_and_a_directory(session, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in _members(metrics=False).items():
        (folder / name).write_bytes(data)
    info = model_info(session, str(folder))
    assert info.metrics is None and info.classes == ["cat", "dog"]
    assert ("metrics", "(none recorded: a model from before metrics.json)") in info.summary()


def test_an_s3_archive_is_read_only_up_to_what_it_needs(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "none.toml"))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="m/model.tar.gz", Body=_archive(_members()))
        info = model_info(Session(region="us-east-1"), "s3://models/m/model.tar.gz")
    assert info.metrics == METRICS and info.base_network == "resnet-50"


def test_the_command_and_its_errors(session, tmp_path, capsys):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(_archive(_members()))
    with pytest.raises(SystemExit) as exited:
        main(["model", "info", str(path), "--json"])
    assert exited.value.code == 0
    assert json.loads(capsys.readouterr().out)["metrics"] == METRICS
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(SystemExit) as exited:
        main(["model", "info", str(junk)])
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith(f"error: {junk}: not a readable "
                                                      "model.tar.gz")
    with pytest.raises(SystemExit) as exited:
        main(["model", "info", "no-such-job", "--local"])
    assert exited.value.code == 1
    assert capsys.readouterr().err == ("error: no local training job named no-such-job (see "
                                       "`detectctl jobs list --local`)\n")


def test_a_model_the_artifact_code_writes(session, tmp_path):
    """algorithm.artifact.save writes metrics.json beside the weights, and load still reads
    the model (it ignores the file)."""
    from algorithm import artifact
    from tests.serving.support import save_tiny_model

    folder = save_tiny_model(tmp_path / "model")
    assert not (folder / "metrics.json").exists()
    model, hp, _ = artifact.load(folder)
    artifact.save(folder, model, hp.to_sagemaker(), ["a", "b", "c"], metrics=METRICS)
    assert json.loads((folder / "metrics.json").read_text()) == METRICS
    assert artifact.load(folder)[0].num_classes == 3
    assert model_info(session, str(Path(folder))).metrics == METRICS
