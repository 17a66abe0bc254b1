"""Exported models (algorithm/export.py) give an endpoint's answers: the ONNX file under
onnxruntime and the TorchScript file under torch, on the same decoded images as the server's
handlers (algorithm.artifact.load + algorithm.inference), with any batch size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.export.support import (
    assert_same_detections,
    endpoint_answers,
    jpeg_images,
    no_ties,
)

torch = pytest.importorskip("torch")

from algorithm import export  # noqa: E402


@pytest.fixture(scope="module")
def answers(model_dir):
    pixels, expected = endpoint_answers(model_dir, jpeg_images())
    # What makes the comparison mean something: the answers differ from image to image,
    # hold many detections, and involve no choice between equal scores.
    assert len({e.tobytes() for e in expected}) == len(expected)
    assert all(len(e) >= 50 and no_ties(e) for e in expected)
    return pixels, expected


@pytest.fixture(scope="module")
def onnx_file(model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return path, export.export_artifact(model_dir, "onnx", path)


@pytest.fixture(scope="module")
def torchscript_file(model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("torchscript") / "model.pt"
    return path, export.export_artifact(model_dir, "torchscript", path)


@pytest.fixture(scope="module")
def torchscript_module(torchscript_file):
    module, _ = export.load_torchscript(torchscript_file[0])
    return module


def _onnx_session(path):
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="the ONNX tests need pip install 'detectctl[export]'")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_file_under_onnxruntime_answers_as_the_endpoint(onnx_file, answers):
    session = _onnx_session(onnx_file[0])
    pixels, expected = answers
    rows, counts = session.run(None, {"images": pixels})
    assert rows.dtype == np.float32 and rows.shape == (len(pixels), 200, 6)
    assert counts.dtype == np.int64 and counts.tolist() == [len(e) for e in expected]
    for i, want in enumerate(expected):
        assert_same_detections(want, rows[i], counts[i])


def test_torchscript_file_under_torch_answers_as_the_endpoint(torchscript_file, answers):
    import torchvision  # noqa: F401  (registers torchvision::nms for torch.jit.load)

    pixels, expected = answers
    module = torch.jit.load(str(torchscript_file[0]))
    with torch.no_grad():
        rows, counts = module(torch.from_numpy(pixels))
    assert rows.dtype == torch.float32 and tuple(rows.shape) == (len(pixels), 200, 6)
    assert counts.dtype == torch.int64 and counts.tolist() == [len(e) for e in expected]
    for i, want in enumerate(expected):
        assert_same_detections(want, rows[i].numpy(), int(counts[i]))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_any_batch_size_gives_each_image_its_answer(fmt, onnx_file, torchscript_module, answers):
    pixels, expected = answers
    if fmt == "onnx":
        session = _onnx_session(onnx_file[0])

        def run(batch):
            return session.run(None, {"images": batch})
    else:
        def run(batch):
            with torch.no_grad():
                return [t.numpy() for t in torchscript_module(torch.from_numpy(batch))]

    for batch in ([3], [2, 3, 0, 1, 2]):  # 1 and 5 images (traced with 2; 4 above)
        rows, counts = run(pixels[batch])
        assert len(rows) == len(batch)
        for j, i in enumerate(batch):
            assert_same_detections(expected[i], rows[j], int(counts[j]))


def test_the_onnx_graph_declares_its_input_outputs_and_opset(onnx_file, model_dir):
    onnx = pytest.importorskip("onnx", reason="pip install 'detectctl[export]'")
    model = onnx.load(str(onnx_file[0]))
    onnx.checker.check_model(model)
    assert {o.domain: o.version for o in model.opset_import}[""] == export.ONNX_OPSET
    assert "NonMaxSuppression" in {node.op_type for node in model.graph.node}

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    (images,) = model.graph.input
    assert (images.name, dims(images)) == ("images", ["N", 3, 128, 128])
    assert images.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    detections, counts = model.graph.output
    assert (detections.name, counts.name) == ("detections", "counts")
    assert detections.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert counts.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert dims(counts) == ["N"] and dims(detections)[0] == "N" and dims(detections)[2] == 6


def test_the_description_and_the_torchscript_metadata(torchscript_file, onnx_file):
    path, described = torchscript_file
    assert described["format"] == "torchscript" and "opset" not in described
    assert onnx_file[1]["opset"] == export.ONNX_OPSET
    assert described["image_shape"] == 128 and described["classes"] == [
        "circle", "square", "triangle"]
    assert described["input"]["shape"] == ["N", 3, 128, 128]
    assert [o["shape"] for o in described["outputs"]] == [["N", 200, 6], ["N"]]
    assert (described["score_threshold"], described["nms_threshold"],
            described["max_detections"], described["top_k"]) == (0.01, 0.45, 200, 400)
    _, carried = export.load_torchscript(path)
    assert carried == json.loads(json.dumps(described))


def test_the_check_compares_the_graph_in_pytorch(model_dir, torchscript_module):
    images = export.example_images(128, 4)
    rows, counts = export.graph_detections(model_dir, images)
    with torch.no_grad():
        found, found_counts = [t.numpy() for t in torchscript_module(torch.from_numpy(images))]
    assert counts.tolist() == found_counts.tolist()
    for i in range(4):
        assert export.difference(rows[i][:counts[i]], found[i][:found_counts[i]], 1e-4) is None
    moved = rows[0][:counts[0]].copy()
    moved[5, 3] += 0.01
    assert export.difference(rows[0][:counts[0]], moved, 1e-4).startswith("no detection like 5")
    assert export.difference(rows[0][:counts[0]], moved[:-1], 1e-4).startswith(
        f"{counts[0] - 1} detections instead of {counts[0]}")


def test_export_replaces_the_file_atomically(model_dir, tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous export")

    def broken(*args, **kwargs):
        raise RuntimeError("the exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="the exporter failed"):
        export.export_artifact(model_dir, "onnx", target)
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    with pytest.raises(export.ExportError, match="format 'tflite' is not one of onnx, "):
        export.export(export.DetectionGraph(*_model(model_dir)), "tflite", target)


def _model(model_dir):
    from algorithm import artifact

    model, hp, _ = artifact.load(model_dir)
    return model, hp.nms_threshold
