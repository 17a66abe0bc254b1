"""The inference handlers (algorithm/inference.py) as SageMaker's PyTorch toolkit calls them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from algorithm import inference
from algorithm.inference import DetectionOptions, RequestError
from tests.serving.support import check_rows, encode, photo

ROOT = Path(__file__).resolve().parents[2]


class TorchServeContext:
    """The part of TorchServe's Context the handlers read: request_processor[0]'s headers."""

    def __init__(self, headers):
        self.request_processor = [self]
        self._headers = headers

    def get_request_properties(self):
        return self._headers


def _status(call) -> int:
    with pytest.raises(RequestError) as caught:
        call()
    assert "\n" not in caught.value.message
    return caught.value.status


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/x-image",
                                          "Image/JPEG; charset=binary"])
def test_input_fn_takes_image_content_types(content_type):
    request = inference.input_fn(b"\xff\xd8", content_type)
    assert request == inference.Request(b"\xff\xd8", {})


@pytest.mark.parametrize("body, content_type, status", [
    (b"x", None, 415), (b"x", "", 415), (b"x", "text/plain", 415), (b"x", "application/json", 415),
    ("text", "image/jpeg", 400), (b"", "image/jpeg", 400), (bytearray(), "image/png", 400),
    (b"x" * (6 * 1024 * 1024 + 1), "image/jpeg", 413),
])
def test_input_fn_refuses_client_mistakes(body, content_type, status):
    assert _status(lambda: inference.input_fn(body, content_type)) == status


def test_input_fn_reads_custom_attributes_from_torchserve_context():
    context = TorchServeContext({"x-amzn-sagemaker-custom-attributes":
                                 b"trace=abc, threshold=0.3 ,max_detections=50"})
    request = inference.input_fn(b"data", "image/jpeg", context)
    assert request.attributes == {"threshold": "0.3", "max_detections": "50"}
    context = TorchServeContext({"X-Amzn-SageMaker-Custom-Attributes": "threshold=2"})
    with pytest.raises(RequestError, match=r"custom attribute threshold='2' must be a number"):
        inference.input_fn(b"data", "image/jpeg", context)


@pytest.mark.parametrize("header, expected", [
    (None, {}), ("", {}), ("c000b4f9-df62-4c85-a0bf-7c525f9104a4", {}),
    ("threshold=0.3,max_detections=50", {"threshold": "0.3", "max_detections": "50"}),
    (" Threshold = 0 , trace_id=x=y", {"threshold": "0"}),
    ("max_detections=1000", {"max_detections": "1000"}),
])
def test_custom_attributes_syntax(header, expected):
    assert inference.parse_custom_attributes(header) == expected


@pytest.mark.parametrize("header, named", [
    ("threshold=abc", "threshold='abc'"), ("threshold=1", "threshold='1'"),
    ("threshold=-0.1", "threshold='-0.1'"), ("threshold=nan", "threshold='nan'"),
    ("threshold=", "threshold=''"), ("max_detections=0", "max_detections='0'"),
    ("max_detections=2.5", "max_detections='2.5'"),
    ("max_detections=1001", "max_detections='1001'"),
    ("threshold=0.1,threshold=0.2", "threshold is given twice"),
])
def test_bad_custom_attributes_are_400_naming_them(header, named):
    with pytest.raises(RequestError) as caught:
        inference.parse_custom_attributes(header)
    assert caught.value.status == 400
    assert named in caught.value.message


def test_model_options_from_environment():
    assert DetectionOptions.from_environ({}) == DetectionOptions(0.01, 200)
    assert DetectionOptions.from_environ({"DETECTCTL_SCORE_THRESHOLD": "0.5",
                                          "DETECTCTL_MAX_DETECTIONS": " 7 "}) == \
        DetectionOptions(0.5, 7)
    with pytest.raises(ValueError, match="DETECTCTL_MAX_DETECTIONS: max_detections='x'"):
        DetectionOptions.from_environ({"DETECTCTL_MAX_DETECTIONS": "x"})


def test_model_fn_refuses_a_bad_environment_variable(model_dir, monkeypatch):
    monkeypatch.setenv("DETECTCTL_SCORE_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="DETECTCTL_SCORE_THRESHOLD"):
        inference.model_fn(str(model_dir))


def _predict(predictor, data, attributes=""):
    context = TorchServeContext({"X-Amzn-SageMaker-Custom-Attributes": attributes})
    request = inference.input_fn(data, "image/jpeg", context)
    answer = inference.output_fn(inference.predict_fn(request, predictor, context),
                                 "application/json", context)
    return json.loads(answer)["prediction"]


def test_predict_answers_normalised_rows_best_first(predictor):
    rows = _predict(predictor, encode(photo(), "JPEG"))
    assert len(rows) > 10
    check_rows(rows, max_rows=200, threshold=0.01)


def test_custom_attributes_filter_the_same_detections(predictor):
    data = encode(photo(seed=3), "PNG")
    everything = np.array(_predict(predictor, data))
    threshold = float(np.median(everything[:, 1]))
    above = np.array(_predict(predictor, data, f"threshold={threshold!r}"))
    check_rows(above, threshold=threshold)
    np.testing.assert_array_equal(_sorted(above), _sorted(everything[everything[:, 1] > threshold]))
    first = np.array(_predict(predictor, data, "max_detections=5"))
    np.testing.assert_array_equal(first[:, 1], everything[:5, 1])


def _sorted(rows: np.ndarray) -> np.ndarray:
    """Rows in a fixed order (equal scores may come in any order)."""
    return rows[np.lexsort(rows.T[::-1])]


def test_model_options_apply_when_the_request_sets_none(predictor):
    data = encode(photo(seed=4), "JPEG")
    everything = np.array(_predict(predictor, data))
    strict = inference.Predictor(predictor.model, predictor.hyperparameters, predictor.classes,
                                 predictor.device, DetectionOptions(0.01, 3))
    np.testing.assert_array_equal(np.array(_predict(strict, data))[:, 1], everything[:3, 1])
    np.testing.assert_array_equal(np.array(_predict(strict, data, "max_detections=4"))[:, 1],
                                  everything[:4, 1])


def test_a_batch_answers_as_its_images_one_by_one(predictor):
    """One forward pass, each image post-processed with its own options."""
    import torch

    from algorithm.ssd.postprocess import postprocess_detections

    requests = [inference.Request(encode(photo(seed=s), "JPEG"), {}) for s in range(4)]
    options = [DetectionOptions(), DetectionOptions(0.2, 10), DetectionOptions(),
               DetectionOptions(0.01, 1)]
    pixels = [predictor.prepare(r) for r in requests]
    batch = predictor.detect_batch(pixels, options)
    with torch.no_grad():
        cls_logits, box_regression = predictor.model(torch.stack(pixels))
    for i, (option, rows) in enumerate(zip(options, batch)):
        (expected,) = postprocess_detections(
            cls_logits[i:i + 1], box_regression[i:i + 1], predictor.model.anchors,
            option.score_threshold, predictor.hyperparameters.nms_threshold,
            max_detections=option.max_detections)
        np.testing.assert_allclose(rows, expected.numpy(), atol=1e-5)
        # Alone, the image gets the same best detections (further down, this untrained
        # model's near-equal boxes let float rounding of the batch change NMS decisions).
        alone = predictor.detect_batch([pixels[i]], [option])[0]
        assert len(rows) == option.max_detections == len(alone)
        np.testing.assert_allclose(rows[:10, 1], alone[:10, 1], atol=1e-5)


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json",
                                    "application/json; charset=utf-8", "text/csv, */*"])
def test_output_fn_answers_json(accept):
    answer = inference.output_fn(np.array([[1, 0.9, 0.1, 0.2, 0.3, 0.4]]), accept)
    assert json.loads(answer) == {"prediction": [[1.0, 0.9, 0.1, 0.2, 0.3, 0.4]]}


@pytest.mark.parametrize("accept", ["text/csv", "image/png", "application/x-recordio-protobuf"])
def test_output_fn_refuses_other_accept_types(accept):
    assert _status(lambda: inference.output_fn(np.zeros((0, 6)), accept)) == 406


def test_bad_images_are_400(predictor):
    for data in (b"not an image", encode(photo(), "JPEG")[:300]):
        request = inference.Request(data, {})
        assert _status(lambda r=request: inference.predict_fn(r, predictor)) == 400


def test_without_the_toolkit_request_error_is_a_value_error():
    error = RequestError("the body is empty", 400)
    assert isinstance(error, ValueError) and error.status == 400
    assert str(error) == "the body is empty"


def test_with_the_toolkit_request_error_is_its_error_class(tmp_path):
    """Where sagemaker_inference is importable, the toolkit sees its own class with a status
    (the real toolkit runs in tests/serving/test_toolkit.py)."""
    package = tmp_path / "sagemaker_inference"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text(textwrap.dedent("""
        class BaseInferenceToolkitError(Exception):
            def __init__(self, status_code, message, phrase):
                self.status_code, self.message, self.phrase = status_code, message, phrase
                super().__init__(status_code, message, phrase)

        class GenericInferenceToolkitError(BaseInferenceToolkitError):
            def __init__(self, status_code, message=None, phrase=None):
                super().__init__(status_code, message, phrase or message)
    """))
    code = ("from algorithm.inference import RequestError\n"
            "from sagemaker_inference.errors import BaseInferenceToolkitError as B\n"
            "e = RequestError('unsupported', 415)\n"
            "print(isinstance(e, B), e.status_code, e.phrase, str(e), e.status)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={"PYTHONPATH": f"{tmp_path}:{ROOT}"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "415", "Unsupported", "Media", "Type",
                                     "unsupported", "415"]
