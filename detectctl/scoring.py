"""Predictions of an endpoint over a dataset, written as the JSON lines ``evaluate`` reads.

Every image of the dataset is sent to the endpoint as it is stored (its encoded bytes), a few
requests at a time, and the answers are written one line per image in dataset order::

    {"file": "<the image's key>", "prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}

The request carries no score threshold and no detection limit of its own, so the endpoint
answers with the defaults of the model, which are the training job's validation settings: the
mAP of these predictions is the mAP the job reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import DetectctlError, UsageError

if TYPE_CHECKING:
    from detectctl.endpoints import Endpoint

CONCURRENCY = 4
# The leading bytes of the image types endpoints take.
_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def content_type(data: bytes) -> str:
    """The request content type for encoded image bytes."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    return "application/x-image"


def predict_dataset(endpoint: Endpoint, dataset: str | Path, output: str | Path, *,
                    format: Optional[str] = None, concurrency: int = CONCURRENCY,
                    on_image: Callable[[], None] = lambda: None) -> int:
    """Write the endpoint's predictions for every image of ``dataset`` to ``output`` (JSON
    lines, under a temporary name until complete); the number of images. ``on_image`` is
    called as each answer arrives."""
    from algorithm.data.sources import open_source

    try:
        source = open_source(str(dataset), format)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{dataset}: {exc}") from None
    if source.problems:
        raise DetectctlError(f"{dataset}: {len(source.problems)} unreadable entries, the "
                             f"first: {source.problems[0]}",
                             hint=f"run `detectctl dataset validate {dataset}`")

    def predict(index: int) -> dict[str, Any]:
        sample = source[index]
        data = sample.read_image_bytes()
        answer = json.loads(endpoint.invoke(data, content_type(data)))
        on_image()
        return {"file": str(sample.key), "prediction": answer["prediction"]}

    output = Path(output)
    partial = output.with_name(f".{output.name}.partial")
    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool, \
                open(partial, "w", encoding="utf-8") as out:
            for line in pool.map(predict, range(len(source))):
                out.write(json.dumps(line) + "\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    return len(source)
