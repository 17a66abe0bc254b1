"""The post-processing of exported graphs (algorithm/ssd/graph_postprocess.py) gives the
server's detections (algorithm/ssd/postprocess.py) on SSD300-VOC-like head outputs, padded;
in PyTorch and, exported on its own, under onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from algorithm.ssd.anchors import generate_default_boxes  # noqa: E402
from algorithm.ssd.graph_postprocess import multiclass_nms, padded_detections  # noqa: E402
from algorithm.ssd.layout import layout  # noqa: E402
from algorithm.ssd.postprocess import postprocess_detections  # noqa: E402
from tests.algorithm.support import head_outputs  # noqa: E402
from tests.export.support import assert_same_detections, no_ties  # noqa: E402

ANCHORS = generate_default_boxes(layout("vgg-16", 300).maps)
PADDING = [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def _check(logits, regression, **settings):
    expected = postprocess_detections(logits, regression, ANCHORS, **settings)
    rows, counts = padded_detections(logits, regression, ANCHORS, **settings)
    assert counts.tolist() == [len(e) for e in expected]
    for i, want in enumerate(expected):
        assert no_ties(want.numpy())
        assert_same_detections(want.numpy(), rows[i].numpy(), int(counts[i]), tolerance=1e-6)
    return rows, counts


@pytest.mark.parametrize("background, noise, settings", [
    (8.0, -2.4, {}),                                        # ~1,800 candidates, 200 kept
    (8.0, -1.0, {"top_k": 50}),                             # top_k binds in most classes
    (8.0, -2.4, {"max_detections": 20, "nms_threshold": 0.3}),
    (8.0, -2.4, {"score_threshold": 0.4}),                  # a few detections, padding
    (3.0, 0.0, {}),                                         # an untrained model's scores
])
def test_same_detections_as_the_server(background, noise, settings):
    logits, regression = head_outputs(ANCHORS, 3, 20, 0, background, noise, objects=(1, 4))
    rows, _ = _check(logits, regression, **settings)
    assert rows.shape == (3, settings.get("max_detections", 200), 6)


def test_an_image_without_detections_is_all_padding():
    logits, regression = head_outputs(ANCHORS, 2, 20, 1)
    logits[1, :, 0] = 30.0  # image 1: background everywhere
    rows, counts = _check(logits, regression)
    assert counts[1] == 0 and counts[0] > 0
    assert (rows[1] == torch.tensor(PADDING)).all()


def test_multiclass_nms_keeps_per_image_and_class():
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.55], [0.5, 0.5, 1.0, 1.0]]])
    boxes = boxes.repeat(2, 1, 1)  # two images, three boxes
    scores = torch.tensor([[0.9, 0.8, 0.7], [0.2, 0.95, 0.005]]).unsqueeze(0).repeat(2, 1, 1)
    scores[1, 0, 0] = 0.0  # image 1, class 0: box 0 does not take part
    kept = multiclass_nms(boxes, scores, 0.45, 0.01, 3)
    assert sorted(map(tuple, kept.tolist())) == [
        (0, 0, 0), (0, 0, 2), (0, 1, 1), (1, 0, 1), (1, 0, 2), (1, 1, 1)]


class _PostProcessing(torch.nn.Module):
    def forward(self, logits, regression):
        return padded_detections(logits, regression, ANCHORS)


def test_onnx_nonmaxsuppression_gives_the_same_detections(tmp_path):
    """The post-processing alone, exported (its NMS becomes ONNX's NonMaxSuppression), on
    head outputs with ~1,800 candidates per image, and a batch size not traced."""
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="the ONNX tests need pip install 'detectctl[export]'")
    pytest.importorskip("onnx", reason="torch's ONNX exporter needs pip install onnx")
    from algorithm.export import export_onnx_module

    path = tmp_path / "postprocess.onnx"
    example = head_outputs(ANCHORS, 2, 20, 5)
    export_onnx_module(_PostProcessing(), example, ("logits", "regression"), path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, regression = head_outputs(ANCHORS, 3, 20, 6)
    rows, counts = session.run(None, {"logits": logits.numpy(), "regression": regression.numpy()})
    expected = postprocess_detections(logits, regression, ANCHORS)
    assert counts.tolist() == [len(e) for e in expected]
    for i, want in enumerate(expected):
        assert_same_detections(want.numpy(), rows[i], int(counts[i]), tolerance=1e-6)
    assert np.asarray(rows).shape == (3, 200, 6)
