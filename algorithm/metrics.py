"""Metric log lines in the built-in Object Detection algorithm's format, and their regexes.

Training jobs print these lines; SageMaker turns them into CloudWatch metrics through the metric
definitions below, so tuning objectives written for the built-in algorithm (``validation:mAP``)
work unchanged. ``detectctl`` sends ``METRIC_DEFINITIONS`` with every training job.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf)"

METRIC_REGEXES: Dict[str, str] = {
    "train:cross_entropy":
        r"#quality_metric: host=\S+, epoch=\d+, batch=\d+ train cross_entropy <loss>=\("
        + _NUMBER + r"\)",
    "train:smooth_l1":
        r"#quality_metric: host=\S+, epoch=\d+, batch=\d+ train smooth_l1 <loss>=\("
        + _NUMBER + r"\)",
    "train:throughput":
        r"#throughput_metric: host=\S+, train throughput=" + _NUMBER + r" records/second",
    "train:progress": r"#progress_metric: host=\S+, completed " + _NUMBER + r" %",
    "validation:mAP":
        r"#quality_metric: host=\S+, epoch=\d+, validation mAP <score>=\(" + _NUMBER + r"\)",
}

METRIC_DEFINITIONS: List[Dict[str, str]] = [
    {"Name": name, "Regex": regex} for name, regex in METRIC_REGEXES.items()
]


def train_loss_lines(host: str, epoch: int, batch: int, cross_entropy: float,
                     smooth_l1: float) -> List[str]:
    return [
        f"#quality_metric: host={host}, epoch={epoch}, batch={batch} "
        f"train cross_entropy <loss>=({cross_entropy})",
        f"#quality_metric: host={host}, epoch={epoch}, batch={batch} "
        f"train smooth_l1 <loss>=({smooth_l1})",
    ]


def throughput_line(host: str, records_per_second: float) -> str:
    return f"#throughput_metric: host={host}, train throughput={records_per_second} records/second"


def progress_line(host: str, percent: float) -> str:
    return f"#progress_metric: host={host}, completed {percent:g} %"


def validation_map_line(host: str, epoch: int, value: float) -> str:
    return f"#quality_metric: host={host}, epoch={epoch}, validation mAP <score>=({value})"


def parse(line: str) -> Optional[Dict[str, float]]:
    """The metric a log line carries, as ``{name: value}``, or None."""
    for name, regex in METRIC_REGEXES.items():
        found = re.search(regex, line)
        if found:
            return {name: float(found.group(1))}
    return None
