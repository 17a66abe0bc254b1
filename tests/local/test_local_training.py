"""`detectctl train --instance local`: the same job in local processes, no AWS."""

import json
import tarfile

import pytest

from algorithm import artifact
from detectctl.cli import main
from detectctl.datasets.synth import synth

TINY = ["--hp", "num_classes=3", "--hp", "base_network=mobilenet-v3-large",
        "--hp", "use_pretrained_model=0", "--hp", "image_shape=128", "--hp", "epochs=1",
        "--hp", "mini_batch_size=8", "--hp", "num_workers=0", "--hp", "seed=0"]


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTCTL_HOME", str(tmp_path / "home"))
    synth(str(tmp_path / "train"), images=16, classes=3, seed=1, format="recordio",
          image_size=(96, 72))
    synth(str(tmp_path / "val"), images=8, classes=3, seed=2, format="sagemaker-json",
          image_size=(96, 72))
    return tmp_path


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--instance", "local", *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_local_job_trains_and_leaves_a_deployable_model(data, capsys):
    code, out, err = _run(capsys, "--train", str(data / "train.rec"), "--validation",
                          str(data / "val"), "--name", "demo", "--json", *TINY)
    assert code == 0, out + err
    result = json.loads(out)
    assert result["status"] == "Completed" and result["job"] == "demo"
    job = data / "home" / "jobs" / "demo"
    assert result["model"] == str(job / "model.tar.gz")
    with tarfile.open(job / "model.tar.gz") as tar:
        names = tar.getnames()
    assert {"model.pt", "hyperparameters.json", "classes.json", "code"} <= set(names)
    model, hp, classes = artifact.load(job / "model.tar.gz")
    assert (hp.image_shape, classes) == (128, ["circle", "square", "triangle"])
    assert model.num_classes == 3
    log = (job / "logs" / "algo-1.log").read_text()
    assert "validation mAP <score>=" in log
    assert json.loads((job / "job.json").read_text())["status"] == "Completed"


def test_a_failing_job_reports_its_reason(data, capsys):
    code, _, err = _run(capsys, "--train", str(data / "train.rec"), "--name", "bad",
                        *TINY, "--hp", "num_classes=5")
    assert code == 1
    assert "training job bad failed: num_classes=5 but the training data names 3" in err


def test_options_that_only_apply_on_aws_are_refused(data, capsys):
    code, _, err = _run(capsys, "--train", str(data / "train.rec"), "--spot", *TINY)
    assert (code, err) == (2, "error: --spot does not apply to --instance local\n")


def test_bad_hyperparameters_fail_before_anything_runs(data, capsys):
    code, _, err = _run(capsys, "--train", str(data / "train.rec"), "--hp", "num_classes=0")
    assert code == 2 and "num_classes='0': must be an integer >= 1" in err
    assert not (data / "home" / "jobs").exists()


def test_s3_paths_are_refused(data, capsys):
    code, _, err = _run(capsys, "--train", "s3://bucket/train.rec", *TINY)
    assert code == 2 and "a local job reads local files" in err
