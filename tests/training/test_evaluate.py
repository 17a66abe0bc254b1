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


FILE = '{"file": "synth_000000.jpg", "prediction": '


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "p.jsonl:1: malformed JSON at line 1 column 1"),
    ('{"file": "nope.jpg", "prediction": []}', "p.jsonl:1: file 'nope.jpg' is not in the dataset"),
    ('{"prediction": []}', 'p.jsonl:1: expected {"file": ..., "prediction": [...]}'),
    ('{"file": ["a.jpg"], "prediction": []}', "p.jsonl:1: file: missing: expected a file name"),
    (FILE + "[[1, 2]]}", "p.jsonl:1: prediction: must be a list of [class_id, score"),
    (FILE + "[[0, [0.5], 0, 0, 1, 1]]}", "prediction[0][1]: not a number: [0.5]"),
    (FILE + '[[0, "high", 0, 0, 1, 1]]}', "prediction[0][1]: not a number: 'high'"),
    (FILE + "[[0, NaN, 0, 0, 1, 1]]}", "p.jsonl:1: malformed JSON: NaN is not a JSON number"),
    (FILE + "[[0, 0.5, 0, 0, 1, " + "9" * 400 + "]]}", "prediction[0][5]: not a number: a "
                                                        "400-digit integer"),
    (FILE + "[[0, 0.5, 0, 0, 1, " + "9" * 5000 + "]]}", "more than 4300 digits"),
    (FILE + "[[" + "9" * 30 + ", 0.5, 0, 0, 1, 1]]}", "prediction[0][0]: class id a 30-digit "
                                                      "integer out of range"),
    (FILE + "[[3, 0.5, 0, 0, 1, 1]]}", "class id 3 is not one of the dataset's 3 classes"),
    (FILE + "[" * 100_000 + "]" * 100_000 + "}", "p.jsonl:1: malformed JSON: nested too deeply"),
])
def test_bad_lines_are_named(dataset, tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UsageError) as caught:
        evaluate_predictions(path, dataset)
    assert message in str(caught.value)


def test_a_binary_file_is_named_not_decoded(dataset, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(UsageError, match=r"p\.jsonl:1: not UTF-8 text \(byte 0 is 0x89\)"):
        evaluate_predictions(path, dataset)


def test_a_missing_or_empty_dataset_is_named(dataset, tmp_path):
    path = _perfect(dataset, tmp_path / "p.jsonl")
    with pytest.raises(UsageError, match=r"--dataset .*/nowhere/x\.rec: no such file"):
        evaluate_predictions(path, tmp_path / "nowhere" / "x.rec")
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "annotations").mkdir()
    with pytest.raises(UsageError, match="no images to evaluate on"):
        evaluate_predictions(path, empty)


def test_class_ids_without_names_are_the_ones_used(tmp_path):
    """Without class names, a huge class id is one class, not an array of that size."""
    from tests.datasets.support import jpeg

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "images" / "a.jpg").write_bytes(jpeg())
    (root / "annotations" / "a.json").write_text(json.dumps({
        "file": "a.jpg", "image_size": [{"width": 64, "height": 48}],
        "annotations": [{"class_id": 16_000_000, "left": 1, "top": 1, "width": 30,
                         "height": 30}]}))
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(json.dumps({"file": "a.jpg", "prediction": [
        [16_000_000, 0.9, 1 / 64, 1 / 48, 31 / 64, 31 / 48]]}) + "\n")
    report = evaluate_predictions(predictions, root)
    assert report.ap == {"16000000": pytest.approx(1.0)} and report.mAP == pytest.approx(1.0)
