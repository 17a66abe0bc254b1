"""`detectctl model export`: the command end to end (export, description, check, atomic
rename) and its refusals, each one line."""

from __future__ import annotations

import json

import pytest

from detectctl.cli import main

pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTCTL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "none.toml"))


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(["model", "export", *map(str, args)])
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_onnx_export_is_described_checked_and_carries_its_description(model_dir, tmp_path,
                                                                      capsys):
    onnx = pytest.importorskip("onnx", reason="pip install 'detectctl[export]'")
    pytest.importorskip("onnxruntime", reason="pip install 'detectctl[export]'")
    target = tmp_path / "out" / "detector.onnx"
    target.parent.mkdir()
    code, out, err = _run(capsys, model_dir, "--format", "onnx", "--output", target, "--local")
    assert (code, err) == (0, "")
    rows = dict(line.split("  ", 1) for line in out.splitlines())
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["file"] == str(target) and rows["format"] == "onnx (opset 16)"
    assert rows["input"] == ("images: [N, 3, 128, 128] float32, RGB in [0, 1], resized to "
                             "image_shape x image_shape; normalised inside")
    assert rows["post-processing"] == "score > 0.01, NMS 0.45, at most 200 detections"
    assert rows["check"].startswith("same ") and "in PyTorch on 2 test images" in rows["check"]
    assert [p.name for p in target.parent.iterdir()] == ["detector.onnx"]
    (prop,) = onnx.load(str(target)).metadata_props
    carried = json.loads(prop.value)
    assert prop.key == "detectctl" and carried["classes"] == ["circle", "square", "triangle"]
    assert carried["opset"] == 16 and carried["format"] == "onnx"


def test_torchscript_export_as_json_without_the_check(model_dir, tmp_path, capsys):
    target = tmp_path / "detector.pt"
    target.write_bytes(b"an older export")
    code, out, err = _run(capsys, model_dir, "-f", "torchscript", "-o", target, "--no-check",
                          "--json", "--local")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["path"] == str(target) and result["checked"] is None
    assert result["format"] == "torchscript" and result["image_shape"] == 128
    assert target.read_bytes()[:2] == b"PK"  # a TorchScript zip replaced the old file


def test_a_failed_check_writes_nothing(model_dir, tmp_path, capsys, monkeypatch):
    from algorithm import export

    def moved(source, images):
        rows, counts = real(source, images)
        rows[0, 0, 2] += 0.01
        return rows, counts

    real = export.graph_detections
    monkeypatch.setattr(export, "graph_detections", moved)
    target = tmp_path / "detector.pt"
    target.write_bytes(b"an older export")
    code, out, err = _run(capsys, model_dir, "-f", "torchscript", "-o", target, "--local")
    assert code == 1 and out == ""
    assert err.startswith("error: the exported torchscript file's detections differ from the "
                          "model's in PyTorch on test image 0: no detection like 0: class ")
    assert err.endswith("; nothing was written (--no-check writes the file anyway; see "
                        "docs/export.md, Checking)\n") and err.count("\n") == 1
    assert target.read_bytes() == b"an older export"
    assert [p.name for p in tmp_path.iterdir()] == ["detector.pt"]


@pytest.mark.parametrize("args, code, message", [
    (["-f", "tflite", "-o", "{tmp}/m.tflite"], 2,
     "error: --format 'tflite' is not one of onnx, torchscript\n"),
    (["-f", "onnx", "-o", "{tmp}/no/such/dir/m.onnx"], 2,
     "error: --output {tmp}/no/such/dir/m.onnx: no directory {tmp}/no/such/dir\n"),
    (["-f", "onnx", "-o", "{tmp}"], 2,
     "error: --output {tmp} is a directory; name the file to write\n"),
])
def test_usage_errors(model_dir, tmp_path, capsys, args, code, message):
    args = [a.format(tmp=tmp_path) for a in args]
    assert _run(capsys, model_dir, *args, "--local") == (code, "", message.format(tmp=tmp_path))


def test_what_is_not_a_model_and_a_missing_job(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    code, _, err = _run(capsys, folder, "-f", "torchscript", "-o", tmp_path / "m.pt",
                          "--local")
    assert (code, err) == (1, f"error: {folder}: no model.pt; is this a detectctl model "
                              "artifact?\n")
    code, _, err = _run(capsys, "no-such-job", "-f", "torchscript", "-o", tmp_path / "m.pt",
                          "--local")
    assert (code, err) == (1, "error: no local training job named no-such-job (see "
                              "`detectctl jobs list --local`)\n")


def test_missing_packages_name_the_extra(model_dir, tmp_path, capsys, monkeypatch):
    from detectctl import exports

    real = exports.find_spec
    for missing, extra in (("onnxruntime", "export"), ("onnx", "export"), ("torch", "train")):
        monkeypatch.setattr(exports, "find_spec",
                            lambda name, missing=missing: None if name == missing else real(name))
        code, _, err = _run(capsys, model_dir, "-f", "onnx", "-o", tmp_path / "m.onnx",
                            "--local")
        assert code == 1 and err.startswith("error: ")
        assert f"needs {missing}, which is not installed (pip install 'detectctl[{extra}]')" \
            in err, err


def test_a_model_in_s3_is_downloaded_then_exported(model_dir, tmp_path, monkeypatch):
    import tarfile

    import boto3
    from moto import mock_aws

    from detectctl.exports import export_model
    from detectctl.session import Session

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    target = tmp_path / "detector.pt"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        s3.upload_file(str(archive), "models", "m/model.tar.gz")
        result = export_model(Session(region="us-east-1"), "s3://models/m/model.tar.gz",
                              "torchscript", str(target), check=False)
    assert result.artifact == "s3://models/m/model.tar.gz" and result.path == str(target)
    assert dict(result.summary())["model"] == "s3://models/m/model.tar.gz"
    assert target.read_bytes()[:2] == b"PK"
