"""`detectctl evaluate`: predictions in the endpoint's format scored against a dataset."""

import json

import pytest

from algorithm.data.sources import open_source
from detectctl.datasets.synth import synth
from detectctl.errors import UsageError
from detectctl.evaluation import evaluate_predictions


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval") / "data"
    synth(str(root), images=12, classes=3, seed=4, format="sagemaker-json", image_size=(96, 72))
    return root


def _perfect(dataset, path, drop=0, shift=0.0):
    source = open_source(str(dataset), "sagemaker-json")
    with open(path, "w") as f:
        for i in range(len(source) - drop):
            sample = source[i]
            rows = [[int(c), 0.9, *(b + shift).tolist()] for b, c in zip(sample.boxes,
                                                                         sample.labels)]
            f.write(json.dumps({"file": sample.key, "prediction": rows}) + "\n")
    return path


def test_perfect_predictions(dataset, tmp_path):
    report = evaluate_predictions(_perfect(dataset, tmp_path / "p.jsonl"), dataset)
    assert report.mAP == pytest.approx(1.0)
    assert set(report.ap) == {"circle", "square", "triangle"}
    assert report.images == 12 and report.images_without_predictions == 0


def test_missing_lines_count_as_no_detections(dataset, tmp_path):
    report = evaluate_predictions(_perfect(dataset, tmp_path / "p.jsonl", drop=4), dataset,
                                  metric="voc12")
    assert report.images_without_predictions == 4
    assert 0 < report.mAP < 1


def test_iou_threshold_matters(dataset, tmp_path):
    path = _perfect(dataset, tmp_path / "p.jsonl", shift=0.02)
    assert evaluate_predictions(path, dataset, iou=0.95).mAP < evaluate_predictions(
        path, dataset, iou=0.3).mAP


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "p.jsonl:1: not valid JSON"),
    ('{"file": "nope.jpg", "prediction": []}', "p.jsonl:1: file 'nope.jpg' is not in the dataset"),
    ('{"prediction": []}', 'p.jsonl:1: expected {"file": ..., "prediction": [...]}'),
    ('{"file": "synth_000000.jpg", "prediction": [[1, 2]]}', "p.jsonl:1: prediction must be"),
])
def test_bad_lines_are_named(dataset, tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UsageError) as caught:
        evaluate_predictions(path, dataset)
    assert message in str(caught.value)
