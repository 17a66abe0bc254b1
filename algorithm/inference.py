"""Inference handlers: the SageMaker PyTorch serving contract, in the built-in algorithm's format.

``model_fn`` loads the artifact; ``input_fn`` accepts ``image/jpeg``, ``image/png`` and
``application/x-image`` bodies up to 6 MB, and ``application/x-recordio`` (one record of a .rec,
as batch transform sends them), and reads the request's custom attributes;
``predict_fn`` decodes the image (:func:`algorithm.images.load_image`), resizes it to the model's
``image_shape`` exactly as validation does in training and runs the detector; ``output_fn``
answers ``{"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}`` with coordinates
normalised to [0, 1], best first, as the built-in Object Detection algorithm does (one line
of it, newline-ended, for ``Accept: application/jsonlines``).

The same functions serve behind SageMaker's PyTorch inference toolkit (TorchServe) and behind
``algorithm/serve.py``, which adds dynamic batching through :meth:`Predictor.detect_batch`.

Client mistakes raise :class:`RequestError` with an HTTP status. The toolkit reads a status only
from its own error classes, so where ``sagemaker_inference`` is importable RequestError is a
subclass of its ``GenericInferenceToolkitError`` and TorchServe answers that status, not 500.

Score threshold and maximum detections: per model from the environment variables
``DETECTCTL_SCORE_THRESHOLD`` and ``DETECTCTL_MAX_DETECTIONS``, per request from the
``X-Amzn-SageMaker-Custom-Attributes`` header, e.g. ``threshold=0.3,max_detections=50``.
"""

from __future__ import annotations

import http
import importlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from algorithm import artifact, images, memory
from algorithm.data.dataset import pixels_to_tensor
from algorithm.hyperparameters import Hyperparameters
from algorithm.ssd import SSD
from algorithm.ssd.postprocess import postprocess_detections

RECORDIO = "application/x-recordio"
# An image, or one RecordIO record of a .rec (batch transform splits a .rec into records).
CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image", RECORDIO)
JSON_LINES = "application/jsonlines"
ACCEPT_TYPES = ("application/json", JSON_LINES, "*/*")
MAX_BODY_BYTES = 6 * 1024 * 1024
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
SCORE_THRESHOLD_VARIABLE = "DETECTCTL_SCORE_THRESHOLD"
MAX_DETECTIONS_VARIABLE = "DETECTCTL_MAX_DETECTIONS"
# The job's validation settings (SSD.detect's defaults), so an endpoint scores as training did.
DEFAULT_SCORE_THRESHOLD = 0.01
DEFAULT_MAX_DETECTIONS = 200
MAX_DETECTIONS_LIMIT = 1000


def _toolkit_error() -> type:
    """The SageMaker inference toolkit's error class that carries a status, when installed."""
    try:  # imported by name: algorithm/ does not depend on the toolkit
        return importlib.import_module("sagemaker_inference.errors").GenericInferenceToolkitError
    except (ImportError, AttributeError):
        return ValueError


_ErrorBase: Any = _toolkit_error()


class RequestError(_ErrorBase):  # type: ignore[misc, valid-type]
    """The request cannot be served as sent; ``status`` is the HTTP status to answer.

    Under SageMaker's inference toolkit this is a ``GenericInferenceToolkitError`` (status code,
    message, reason phrase); elsewhere a ``ValueError``.
    """

    def __init__(self, message: str, status: int = 400):
        if _ErrorBase is ValueError:
            super().__init__(message)
        else:
            super().__init__(status, message, http.HTTPStatus(status).phrase)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class DetectionOptions:
    """What a response holds: detections scoring above ``score_threshold``, at most
    ``max_detections`` of them."""

    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> DetectionOptions:
        """The model's defaults from ``DETECTCTL_SCORE_THRESHOLD`` and
        ``DETECTCTL_MAX_DETECTIONS``; ``ValueError`` naming the variable when one is bad."""
        environ = os.environ if environ is None else environ
        options = cls()
        for name, key in ((SCORE_THRESHOLD_VARIABLE, "threshold"),
                          (MAX_DETECTIONS_VARIABLE, "max_detections")):
            if environ.get(name, "").strip():
                try:
                    options = options.with_attribute(key, environ[name])
                except ValueError as exc:
                    raise ValueError(f"environment variable {name}: {exc}") from None
        return options

    def with_attribute(self, key: str, value: str) -> DetectionOptions:
        """These options with ``key`` (``threshold`` or ``max_detections``) set from text;
        ``ValueError`` naming the key and value when the value is out of range."""
        text = value.strip()
        if key == "threshold":
            try:
                threshold = float(text)
            except ValueError:
                threshold = math.nan
            if not 0.0 <= threshold < 1.0:
                raise ValueError(f"threshold={text!r} must be a number in [0, 1)")
            return DetectionOptions(threshold, self.max_detections)
        try:
            count = int(text)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_DETECTIONS_LIMIT:
            raise ValueError(f"max_detections={text!r} must be an integer from 1 to "
                             f"{MAX_DETECTIONS_LIMIT}")
        return DetectionOptions(self.score_threshold, count)


ATTRIBUTES = ("threshold", "max_detections")


@dataclass(frozen=True)
class Request:
    """A checked request: the image's bytes and the custom attributes it sets (``key: text``)."""

    data: bytes
    attributes: Dict[str, str]


def parse_custom_attributes(header: Optional[str]) -> Dict[str, str]:
    """The detection settings a ``X-Amzn-SageMaker-Custom-Attributes`` value sets.

    Syntax: comma-separated ``name=value`` entries, e.g. ``threshold=0.3,max_detections=50``;
    spaces around names and values are ignored. Names: ``threshold`` (a number in [0, 1)) and
    ``max_detections`` (an integer from 1 to 1000). Other entries are ignored: the header is
    shared with other uses (trace ids, say). A known name given twice or with a bad value is a
    :class:`RequestError` (400) naming it.
    """
    found: Dict[str, str] = {}
    check = DetectionOptions()
    for entry in (header or "").split(","):
        name, equals, value = entry.partition("=")
        name = name.strip().lower()
        if not equals or name not in ATTRIBUTES:
            continue
        if name in found:
            raise RequestError(f"custom attribute {name} is given twice")
        try:
            check.with_attribute(name, value)
        except ValueError as exc:
            raise RequestError(f"custom attribute {exc}") from None
        found[name] = value.strip()
    return found


def content_type_of(value: Optional[str]) -> str:
    """The media type of a Content-Type header; 415 unless it is an image type we read."""
    content_type = (value or "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        shown = repr(value) if value else "missing"
        raise RequestError(f"content type {shown} is not supported; send one of "
                           f"{', '.join(CONTENT_TYPES)}", status=415)
    return content_type


def accept_type_of(value: Optional[str]) -> str:
    """The media type to answer for an Accept header: JSON, or JSON lines (one line per
    answer, as batch transform assembles a .rec's); 406 unless one of them (or anything) is."""
    accepted = [part.split(";")[0].strip().lower() for part in (value or "").split(",")]
    if JSON_LINES in accepted:
        return JSON_LINES
    if not value or any(a in ACCEPT_TYPES or a == "application/*" for a in accepted):
        return "application/json"
    raise RequestError(f"accept type {value!r} is not supported; use application/json or "
                       f"{JSON_LINES}", status=406)


def image_of_record(data: bytes) -> bytes:
    """The image in one RecordIO record: framed as in a .rec file (magic, length, payload), or
    the payload alone (the image record header, the label, the encoded image)."""
    from algorithm.data import recordio

    try:
        if data[:4] == recordio.MAGIC_BYTES:
            payload = recordio.read_record(io.BytesIO(data))
            if payload is None:
                raise recordio.RecordIOError("no record in the body")
            data = payload
        _, _, image = recordio.unpack_detection(data)
    except (recordio.RecordIOError, ValueError) as exc:
        raise RequestError(f"the body is not a RecordIO image record: {exc}") from None
    if not image:
        raise RequestError("the RecordIO record holds no image")
    return image


def custom_attributes_of(context: Any) -> Optional[str]:
    """The custom attributes header of the request a serving ``context`` describes.

    ``context`` is TorchServe's (``context.request_processor[0].get_request_properties()``, the
    request's headers), or the same interface from ``algorithm/serve.py``; None gives None.
    """
    processors = getattr(context, "request_processor", None)
    if not processors:
        return None
    headers = processors[0].get_request_properties() or {}
    wanted = CUSTOM_ATTRIBUTES_HEADER.lower()
    for name, value in headers.items():
        if str(name).lower() == wanted:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


@dataclass
class Predictor:
    """A loaded model with what serving needs beside it."""

    model: SSD
    hyperparameters: Hyperparameters
    classes: List[str]
    device: torch.device
    options: DetectionOptions = DetectionOptions()

    def options_for(self, request: Request) -> DetectionOptions:
        """The model's options with the request's custom attributes applied."""
        options = self.options
        for key, value in request.attributes.items():
            options = options.with_attribute(key, value)
        return options

    def prepare(self, request: Request) -> torch.Tensor:
        """The request's image as the model takes it: Tensor[3, S, S], RGB in [0, 1],
        ``S = image_shape``, resized (stretched) exactly as validation does in training."""
        try:
            pixels = images.model_pixels(request.data, self.hyperparameters.image_shape)
        except images.ImageError as exc:
            raise RequestError(str(exc)) from None
        return pixels_to_tensor(pixels)

    def detect_batch(self, pixels: Sequence[torch.Tensor],
                     options: Sequence[DetectionOptions]) -> List[np.ndarray]:
        """Detections of prepared images in one forward pass: one ndarray[K, 6] per image,
        rows (class_id, score, xmin, ymin, xmax, ymax) normalised, best first."""
        batch = torch.stack(list(pixels)).to(self.device)  # [N, 3, S, S]
        batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            cls_logits, box_regression = self.model(batch)
        results: List[np.ndarray] = [np.zeros((0, 6), np.float32)] * len(pixels)
        # Requests with the same options are post-processed together.
        for setting in sorted(set(options), key=lambda o: (o.score_threshold, o.max_detections)):
            index = [i for i, o in enumerate(options) if o == setting]
            where = torch.tensor(index, device=cls_logits.device)
            found = postprocess_detections(
                cls_logits.index_select(0, where), box_regression.index_select(0, where),
                self.model.anchors, score_threshold=setting.score_threshold,
                nms_threshold=self.hyperparameters.nms_threshold,
                max_detections=setting.max_detections)
            for i, detections in zip(index, found):
                results[i] = detections.cpu().numpy()
        return results


def model_fn(model_dir: str, context: Any = None) -> Predictor:
    options = DetectionOptions.from_environ()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    memory.reuse_freed_memory()  # each request reuses the last one's pages
    model, hp, classes = artifact.load(Path(model_dir), device)
    # Channels-last: an SSD512 VGG-16 request on 2 CPU cores takes 25% less time.
    model = model.to(memory_format=torch.channels_last).eval()
    return Predictor(model, hp, classes, device, options)


def input_fn(request_body: Any, request_content_type: Optional[str], context: Any = None
             ) -> Request:
    content_type = content_type_of(request_content_type)
    attributes = parse_custom_attributes(custom_attributes_of(context))
    if isinstance(request_body, str):
        raise RequestError("the body must be the image's bytes, not text")
    data = bytes(request_body or b"")
    if len(data) > MAX_BODY_BYTES:
        raise RequestError(f"the body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}",
                           status=413)
    if not data:
        raise RequestError("the body is empty; send an image")
    if content_type == RECORDIO:
        data = image_of_record(data)
    return Request(data, attributes)


def predict_fn(input_data: Request, model: Predictor, context: Any = None) -> np.ndarray:
    options = model.options_for(input_data)
    return model.detect_batch([model.prepare(input_data)], [options])[0]


def output_fn(prediction: np.ndarray, accept: Optional[str], context: Any = None) -> str:
    accepted = accept_type_of(accept)
    rows = [[float(value) for value in row] for row in np.asarray(prediction).reshape(-1, 6)]
    answer = json.dumps({"prediction": rows})
    return answer + "\n" if accepted == JSON_LINES else answer
