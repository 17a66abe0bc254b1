"""The training job end to end on CPU, under a temporary /opt/ml."""

import json
import re
import signal
import sys
import time

import pytest
import torch

from algorithm import artifact, checkpoints
from algorithm.metrics import METRIC_REGEXES
from tests.training.jobs import add_channel, make_job, run_job


def _metrics(stdout):
    found = {name: [float(m) for m in re.findall(regex, stdout)]
             for name, regex in METRIC_REGEXES.items()}
    return found


@pytest.mark.parametrize("fmt", ["recordio", "sagemaker-json", "manifest"])
def test_tiny_job_in_every_format(tmp_path, fmt):
    root = make_job(tmp_path, fmt)
    result = run_job(root)
    assert result.returncode == 0, result.stdout + result.stderr
    found = _metrics(result.stdout)
    assert len(found["validation:mAP"]) == 2
    assert len(found["train:cross_entropy"]) >= 2 and len(found["train:smooth_l1"]) >= 2
    assert found["train:throughput"] and all(v > 0 for v in found["train:throughput"])
    assert found["train:progress"] == [50.0, 100.0]
    assert "epoch 2/2: cross_entropy" in result.stdout
    if sys.platform.startswith("linux"):
        assert "host memory: malloc keeps freed memory for reuse" in result.stdout
    # The artifact deploys as it is: weights load with weights_only, classes travel along.
    model_dir = root / "model"
    weights = torch.load(model_dir / "model.pt", weights_only=True)
    assert any(k.startswith("backbone.") for k in weights)
    assert json.loads((model_dir / "classes.json").read_text()) == {
        "classes": ["circle", "square", "triangle"]}
    assert (model_dir / "code" / "inference.py").is_file()
    assert (model_dir / "code" / "algorithm" / "ssd" / "model.py").is_file()
    model, hp, classes = artifact.load(model_dir)
    assert model.num_classes == 3
    assert (hp.num_classes, hp.image_shape, classes[0]) == (3, 128, "circle")
    assert not (root / "output" / "failure").exists()


def test_checkpoint_every_epoch_and_resume_after_a_kill(tmp_path):
    root = make_job(tmp_path, images=48, epochs="4", validation=False)
    job = run_job(root, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once the first checkpoint is written
        state = checkpoints.load(root / "checkpoints") if (
            root / "checkpoints" / "checkpoint.pt").exists() else None
        if state is not None and state["epoch"] >= 1:
            break
        time.sleep(0.05)
    job.kill()
    job.wait()
    assert not (root / "model" / "model.pt").exists()
    killed_at = checkpoints.load(root / "checkpoints")["epoch"]
    assert 1 <= killed_at < 4

    result = run_job(root)
    assert result.returncode == 0, result.stdout
    assert f"resumed from {root / 'checkpoints'} after epoch {killed_at}" in result.stdout
    epochs_run = re.findall(r"epoch (\d)/4:", result.stdout)
    assert epochs_run == [str(e) for e in range(killed_at + 1, 5)]
    assert checkpoints.load(root / "checkpoints")["epoch"] == 4
    artifact.load(root / "model")


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    root = make_job(tmp_path, images=200, epochs="3", validation=False, mini_batch_size="4")
    job = run_job(root, wait=False)
    deadline = time.time() + 120
    out = ""
    while time.time() < deadline:
        line = job.stdout.readline()
        out += line
        if "train cross_entropy" in line:  # training has started
            break
    started = time.time()
    job.send_signal(signal.SIGTERM)
    rest, _ = job.communicate(timeout=60)
    assert job.returncode == 0, out + rest
    assert time.time() - started < 10
    assert "stopped by SIGTERM after saving a checkpoint" in rest
    assert (root / "checkpoints" / "checkpoint.pt").exists()


def test_early_stopping(tmp_path):
    root = make_job(tmp_path, epochs="8", early_stopping="True", early_stopping_min_epochs="2",
                    early_stopping_patience="1", early_stopping_tolerance="1.0")
    result = run_job(root)
    assert result.returncode == 0, result.stdout
    stopped = re.search(r"early stopping after epoch (\d+)", result.stdout)
    assert stopped and int(stopped.group(1)) < 8
    assert len(_metrics(result.stdout)["validation:mAP"]) == int(stopped.group(1))


def test_two_processes_keep_identical_replicas(tmp_path):
    root = make_job(tmp_path, images=24, epochs="1", validation=True)
    result = run_job(root, env={"DETECTCTL_PROCS_PER_HOST": "2",
                                "DETECTCTL_MASTER_ADDR": "127.0.0.1",
                                "MASTER_PORT": str(29600 + (hash(str(tmp_path)) % 300))})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 2 model replicas are identical" in result.stdout
    assert "2 process(es) per host" in result.stdout
    assert "Warning" not in result.stdout + result.stderr  # e.g. a deprecated DDP option
    artifact.load(root / "model")


def test_bad_hyperparameters_fail_fast_with_a_reason(tmp_path):
    root = make_job(tmp_path, learning_rate="2", optimiser="adam")
    started = time.time()
    result = run_job(root)
    assert result.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert "learning_rate='2': must be a number in (0, 1]" in failure
    assert "did you mean 'optimizer'?" in failure
    assert time.time() - started < 30


def test_bad_data_fails_with_the_file_named(tmp_path):
    root = make_job(tmp_path, validation=False)
    rec = root / "input" / "data" / "train" / "data.rec"
    rec.write_bytes(rec.read_bytes()[:100])  # truncated
    result = run_job(root)
    assert result.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("channel train: ")
    assert "data.rec" in failure


def test_pretrained_weights_missing_is_explained(tmp_path):
    root = make_job(tmp_path, use_pretrained_model="1", validation=False)
    result = run_job(root)
    assert result.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert "`pretrained` channel" in failure and "use_pretrained_model=0" in failure


def test_num_classes_must_match_the_data(tmp_path):
    root = make_job(tmp_path, num_classes="5", validation=False)
    result = run_job(root)
    assert result.returncode == 1
    assert "set num_classes=3" in (root / "output" / "failure").read_text()


def test_incremental_training_from_a_previous_model(tmp_path):
    import tarfile

    first = make_job(tmp_path / "first", epochs="1", validation=False)
    assert run_job(first).returncode == 0
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in (first / "model").iterdir():
            tar.add(path, arcname=path.name)

    second = make_job(tmp_path / "second", epochs="1", validation=False,
                      freeze_layer_pattern="^backbone\\.")
    add_channel(second, "model", {"model.tar.gz": archive.read_bytes()})
    result = run_job(second)
    assert result.returncode == 0, result.stdout
    assert "froze" in result.stdout
    assert "starting from the model in channel model" in result.stdout

    third = make_job(tmp_path / "third", epochs="1", validation=False, image_shape="160")
    add_channel(third, "model", {"model.tar.gz": archive.read_bytes()})
    assert run_job(third).returncode == 1
    assert ("the previous model has image_shape=128 but this job has image_shape=160"
            in (third / "output" / "failure").read_text())


def test_dist_async_and_unmatched_freeze_pattern_are_explained(tmp_path):
    root = make_job(tmp_path / "a", kv_store="dist_async", validation=False)
    assert run_job(root).returncode == 1
    assert "dist_async is not available" in (root / "output" / "failure").read_text()
    root = make_job(tmp_path / "b", freeze_layer_pattern="^conv1_", validation=False)
    assert run_job(root).returncode == 1
    assert "matches no parameter" in (root / "output" / "failure").read_text()
