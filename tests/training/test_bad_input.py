"""The training job on bad input: every failure ends with the sample's own message in the failure
file (from a DataLoader worker too), empty or mismatched channels are refused before training,
and a second Ctrl-C leaves a job stopped with its checkpoint."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from algorithm import checkpoints
from algorithm.data.sample import Sample
from detectctl.datasets.synth import synth_image
from detectctl.datasets.writers import open_writer
from tests.training.jobs import make_job, run_job


def _rewrite_train(root, images: list[bytes | None], with_classes: bool = True) -> None:
    """Replace the train channel by a RecordIO file of synthetic images; None is a record whose
    image is not an image."""
    channel = root / "input" / "data" / "train"
    for path in channel.iterdir():
        path.unlink()
    classes = ["circle", "square", "triangle"] if with_classes else None
    with open_writer("recordio", str(channel / "data.rec"), classes) as writer:
        for i, data in enumerate(images):
            good, rows = synth_image(i, 0, 3, (96, 72))
            rows = np.array(rows, np.float64).reshape(-1, 5)
            sample = Sample(key=str(i), boxes=rows[:, 1:].astype(np.float32),
                            labels=rows[:, 0].astype(np.int64),
                            difficult=np.zeros(len(rows), bool))
            writer.add(sample, good if data is None else data, f"{i}.jpg", 96, 72)


def _failure(root) -> str:
    return (root / "output" / "failure").read_text()


def test_a_bad_record_met_by_a_loader_worker_is_named(tmp_path):
    root = make_job(tmp_path, validation=False, num_workers="2", epochs="1")
    _rewrite_train(root, [None] * 5 + [b"\xff\xd8 not a jpeg at all"] + [None] * 5)
    result = run_job(root)
    assert result.returncode == 1, result.stdout
    failure = _failure(root)
    assert failure.startswith("channel train: ") and "data.rec#5: image: not a readable image" \
        in failure, failure
    assert "DataLoader worker" not in failure and "internal error" not in failure


def test_class_ids_beyond_num_classes_without_a_classes_file(tmp_path):
    root = make_job(tmp_path, validation=False, num_classes="2", epochs="1")
    _rewrite_train(root, [None] * 8, with_classes=False)
    result = run_job(root)
    assert result.returncode == 1, result.stdout
    assert "is not below num_classes=2" in _failure(root) and "data.rec#" in _failure(root)


def test_empty_channels_and_a_validation_set_of_another_format_are_refused(tmp_path):
    root = make_job(tmp_path / "a", validation=False)
    _rewrite_train(root, [])
    assert run_job(root).returncode == 1
    assert "channel train: " in _failure(root) and "no images" in _failure(root)

    root = make_job(tmp_path / "b")
    validation = root / "input" / "data" / "validation"
    for path in validation.iterdir():
        path.unlink()
    (validation / "data.rec").write_bytes(b"")
    assert run_job(root).returncode == 1
    assert "channel validation: " in _failure(root) and "no images" in _failure(root)

    root = make_job(tmp_path / "c", fmt="sagemaker-json")
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        '{"train": {"ContentType": "application/x-image"}, "validation": {}}')
    data = root / "input" / "data"
    for path in (data / "validation").iterdir():
        path.unlink()
    make_job(tmp_path / "rec", validation=False)
    (data / "validation" / "data.rec").write_bytes(
        (tmp_path / "rec" / "input" / "data" / "train" / "data.rec").read_bytes())
    assert run_job(root).returncode == 1
    assert ("channel validation holds recordio data but channel train holds sagemaker-json"
            in _failure(root))


def test_a_mini_batch_larger_than_the_data_is_one_step_per_epoch(tmp_path):
    root = make_job(tmp_path, images=6, validation=False, epochs="1", mini_batch_size="32")
    result = run_job(root)
    assert result.returncode == 0, result.stdout
    assert ("mini_batch_size=32 is more than the 6 training images each of the 1 process(es) "
            "reads per epoch: every epoch is one step of 6 images") in result.stdout


def test_a_second_ctrl_c_leaves_the_job_stopped_with_its_checkpoint(tmp_path):
    root = make_job(tmp_path, images=200, epochs="3", validation=False, mini_batch_size="4")
    job = run_job(root, wait=False)
    deadline = time.time() + 120
    out = ""
    while time.time() < deadline:
        line = job.stdout.readline()
        out += line
        if "train cross_entropy" in line:  # training has started
            break
    job.send_signal(signal.SIGINT)
    time.sleep(0.3)  # the first one handled (signals sent at once arrive as one)
    job.send_signal(signal.SIGINT)  # while it stops, if it has not stopped yet
    rest, _ = job.communicate(timeout=60)
    assert job.returncode == 0, out + rest
    assert "stopped by SIGINT after saving a checkpoint" in rest
    assert "Traceback" not in rest
    assert checkpoints.load(root / "checkpoints")["epoch"] == 0
    assert not (root / "output" / "failure").exists()


def test_a_second_stop_signal_is_only_logged(caplog):
    from algorithm.train import StopRequest

    caplog.set_level("INFO", logger="algorithm.train")
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop = StopRequest().install()
        assert not stop
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        assert stop and stop.signal == "SIGINT"
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert "SIGTERM: already stopping (writing the checkpoint)" in caplog.text


@pytest.mark.parametrize("label", [[2, 5, float("nan"), .1, .1, .5, .5],
                                   [float("inf"), 5, 0, .1, .1, .5, .5],
                                   [7, 5, 0, .1, .1, .5, .5]])
def test_bad_labels_fail_with_the_record_named(tmp_path, label):
    """NaN class, infinite header width, a header that swallows the objects."""
    from algorithm.data import recordio
    from tests.datasets.support import jpeg

    root = make_job(tmp_path, validation=False, num_workers="1", epochs="1")
    rec = root / "input" / "data" / "train" / "data.rec"
    (root / "input" / "data" / "train" / "data.idx").unlink()
    rec.write_bytes(rec.read_bytes() + recordio.frame(recordio.pack(
        recordio.IRHeader(0, np.array(label, np.float32), 99, 0), jpeg())))
    result = run_job(root)
    assert result.returncode == 1, result.stdout
    assert "data.rec#16: " in _failure(root) and "internal error" not in _failure(root)
