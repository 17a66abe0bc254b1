"""Metric lines match the built-in algorithm's format and the regexes sent to SageMaker."""

import re

from algorithm import metrics


def test_lines_have_the_builtin_format():
    ce, l1 = metrics.train_loss_lines("algo-1", 3, 40, 1.2345, 0.5)
    assert ce == ("#quality_metric: host=algo-1, epoch=3, batch=40 "
                  "train cross_entropy <loss>=(1.2345)")
    assert l1 == "#quality_metric: host=algo-1, epoch=3, batch=40 train smooth_l1 <loss>=(0.5)"
    assert metrics.throughput_line("algo-1", 250.5) == (
        "#throughput_metric: host=algo-1, train throughput=250.5 records/second")
    assert metrics.progress_line("algo-1", 50) == "#progress_metric: host=algo-1, completed 50 %"
    assert metrics.validation_map_line("algo-2", 7, 0.781) == (
        "#quality_metric: host=algo-2, epoch=7, validation mAP <score>=(0.781)")


def test_regexes_extract_every_value():
    lines = [*metrics.train_loss_lines("algo-1", 1, 2, 3.5e-05, 0.25),
             metrics.throughput_line("algo-1", 1234.5),
             metrics.progress_line("algo-1", 12.5),
             metrics.validation_map_line("algo-1", 1, 0.8123)]
    found = {}
    for line in lines:
        found.update(metrics.parse("[2026-11-27 10:00:00] " + line))
    assert found == {"train:cross_entropy": 3.5e-05, "train:smooth_l1": 0.25,
                     "train:throughput": 1234.5, "train:progress": 12.5,
                     "validation:mAP": 0.8123}
    assert metrics.parse("epoch 3 done") is None


def test_definitions_are_what_sagemaker_takes():
    names = [d["Name"] for d in metrics.METRIC_DEFINITIONS]
    assert names == ["train:cross_entropy", "train:smooth_l1", "train:throughput",
                     "train:progress", "validation:mAP"]
    for definition in metrics.METRIC_DEFINITIONS:
        assert set(definition) == {"Name", "Regex"}
        assert re.compile(definition["Regex"]).groups == 1
        assert len(definition["Regex"]) <= 500  # SageMaker's limit on a metric regex
