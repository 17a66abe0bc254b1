"""A model's predictions over a dataset, written as the JSON lines ``evaluate`` reads.

Through an endpoint (:func:`predict_dataset`): every image of the dataset is sent as it is
stored (its encoded bytes), a few requests at a time, each answer appended to a cache file as
it arrives, so an interrupted run, started again, sends only what is missing. In this process
(:func:`predict_dataset_with_model`, the ``train`` extra): the model is loaded with the
inference handlers and run on the images in batches, as an endpoint would run them.

Either way the output has one line per image, in dataset order::

    {"file": "<the image's key>", "prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}

The requests carry no score threshold and no detection limit of their own: the model's
defaults are the training job's validation settings (score 0.01, 200 detections, its NMS
threshold), and the images are decoded and resized exactly as validation resizes them. The mAP
of these predictions is therefore the mAP the job reports (docs/evaluation.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from detectctl.endpoints import Endpoint

CONCURRENCY = 4
BATCH = 8
# The leading bytes of the image types endpoints take.
_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def content_type(data: bytes) -> str:
    """The request content type for encoded image bytes."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    return "application/x-image"


def open_dataset_source(dataset: str | Path, format: Optional[str] = None) -> Any:
    """The dataset's samples (``len()``, ``[i]``), refused with one line if any is unreadable
    (:func:`detectctl.evaluation.open_dataset`: the same checks as scoring's)."""
    from detectctl.evaluation import open_dataset

    return open_dataset(dataset, format)


def cache_path(endpoint: str, dataset: str | Path) -> Path:
    """Where the answers of ``endpoint`` for ``dataset`` are kept until the run completes:
    ``$XDG_CACHE_HOME/detectctl/evaluate/<hash>.jsonl``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    where = Path(dataset).resolve()
    stamp = f"{endpoint}\n{where}\n{where.stat().st_mtime_ns if where.exists() else 0}"
    return Path(base) / "detectctl" / "evaluate" / (
        hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".jsonl")


def cached_answers(path: Path) -> dict[str, list]:
    """The answers a cache file holds, by image key (a torn last line, from an interruption,
    is dropped); none when there is no such file."""
    found: dict[str, list] = {}
    if not path.is_file():
        return found
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                doc = json.loads(line)
                found[str(doc["file"])] = doc["prediction"]
            except (ValueError, KeyError, TypeError):
                continue
    return found


def predict_dataset(endpoint: Endpoint, dataset: str | Path, output: str | Path, *,
                    format: Optional[str] = None, concurrency: int = CONCURRENCY,
                    on_image: Callable[[], None] = lambda: None,
                    cache: Optional[Path] = None) -> int:
    """Write the endpoint's predictions for every image of ``dataset`` to ``output``; the
    number of requests sent. With ``cache``, answers already there are not asked again, and
    each new one is added as it arrives (the cache is removed once ``output`` is written)."""
    source = open_dataset_source(dataset, format)
    keys = [str(source[i].key) for i in range(len(source))]
    answers = cached_answers(cache) if cache else {}
    missing = [i for i, key in enumerate(keys) if key not in answers]
    for _ in range(len(keys) - len(missing)):
        on_image()
    lock = threading.Lock()
    sink = None
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        sink = open(cache, "a", encoding="utf-8")  # noqa: SIM115 (closed below)

    def ask(index: int) -> None:
        sample = source[index]
        data = sample.read_image_bytes()
        found = json.loads(endpoint.invoke(data, content_type(data)))["prediction"]
        line = {"file": keys[index], "prediction": found}
        with lock:
            answers[keys[index]] = found
            if sink is not None:
                sink.write(json.dumps(line) + "\n")
                sink.flush()
        on_image()

    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            list(pool.map(ask, missing))
    finally:
        if sink is not None:
            sink.close()
    _write_lines(Path(output), ({"file": key, "prediction": answers[key]} for key in keys))
    if cache is not None:
        cache.unlink(missing_ok=True)
    return len(missing)


def predict_dataset_with_model(model: str | Path, dataset: str | Path, output: str | Path, *,
                               format: Optional[str] = None, batch: int = BATCH,
                               on_image: Callable[[], None] = lambda: None) -> None:
    """Write the predictions of ``model`` (a model.tar.gz or model directory, run in this
    process with the inference handlers) for every image of ``dataset`` to ``output``."""
    try:
        from algorithm import inference
    except ImportError as exc:
        raise MissingDependencyError(f"--model needs PyTorch ({exc.name} is not installed)",
                                     hint="pip install 'detectctl[train]'") from None
    source = open_dataset_source(dataset, format)
    try:
        predictor = inference.model_fn(str(model))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--model {model}: {exc}") from None

    def lines() -> Iterator[dict[str, Any]]:
        for start in range(0, len(source), batch):
            samples = [source[i] for i in range(start, min(start + batch, len(source)))]
            requests = [inference.Request(s.read_image_bytes(), {}) for s in samples]
            pixels = [predictor.prepare(r) for r in requests]
            found = predictor.detect_batch(pixels, [predictor.options] * len(pixels))
            for sample, rows in zip(samples, found):
                on_image()
                yield {"file": str(sample.key),
                       "prediction": [[float(v) for v in row] for row in rows]}

    _write_lines(Path(output), lines())


def _write_lines(output: Path, lines: Any) -> None:
    """JSON lines to ``output``, under a temporary name until complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line) + "\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
