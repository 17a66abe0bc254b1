"""Local batch transform: the model server over a folder of images and over a .rec, as a local
job; one bad input does not stop the rest and is reported; stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from detectctl.cli import main
from detectctl.datasets.synth import synth
from detectctl.session import Session
from tests.local.conftest import wait_for
from tests.serving.support import save_tiny_model


@pytest.fixture
def model(tmp_path: Path, home: Path) -> Path:
    return save_tiny_model(tmp_path / "model")


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_a_folder_of_images_with_a_bad_one(model, tmp_path, home, capsys):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    Image.new("RGB", (160, 120), (10, 200, 30)).save(images / "a.jpg")
    Image.new("RGB", (100, 80), (200, 10, 30)).save(images / "sub" / "b.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    (images / "notes.txt").write_text("not an input")
    out = tmp_path / "out"
    code, stdout, err = _cli(capsys, "transform", str(model), "--input", str(images),
                             "--output", str(out), "--instance", "local", "--name", "t1",
                             "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert (result["job"], result["status"], result["output"]) == ("t1", "Completed", str(out))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.out")) == [
        "a.jpg.out", "sub/b.png.out"]
    answer = json.loads((out / "a.jpg.out").read_text())
    assert answer["prediction"] and all(len(row) == 6 for row in answer["prediction"])
    code, stdout, _ = _cli(capsys, "transform", "describe", "t1", "--local", "--json")
    local = json.loads(stdout)["Local"]
    assert (local["Done"], local["Failed"], local["Total"]) == (2, 1, 3)
    assert local["FailedInputs"][0]["input"] == "broken.jpg"
    assert local["FailedInputs"][0]["reason"].startswith("400: ")
    code, stdout, _ = _cli(capsys, "transform", "describe", "t1", "--local")
    assert "inputs         2 of 3 done, 1 failed" in stdout
    code, stdout, _ = _cli(capsys, "transform", "logs", "t1", "--local")
    assert "input broken.jpg failed: 400: " in stdout
    assert "[algo-1] POST /invocations 200 " in stdout


def test_a_rec_gives_one_json_line_per_record(model, tmp_path, home):
    synth(str(tmp_path / "data.rec"), images=5, classes=3, seed=3, image_size=(96, 72))
    job = Session(backend="local").transform(str(model), input=str(tmp_path / "data.rec"),
                                              output=str(tmp_path / "out"))
    assert job.wait(timeout=300) == "Completed"
    lines = (tmp_path / "out" / "data.rec.out").read_text().splitlines()
    assert len(lines) == 5 and all("prediction" in json.loads(line) for line in lines)
    assert job.progress == (5, None)


def test_stop_ends_it_stopped(model, tmp_path, home):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(400):
        Image.new("RGB", (64, 48), (i % 255, 0, 0)).save(images / f"{i:03d}.png")
    job = Session(backend="local").transform(str(model), input=str(images),
                                              output=str(tmp_path / "out"))
    wait_for(lambda: (job.refresh().get("Local", {}).get("Done") or 0) > 0, timeout=300,
             what="the first answers")
    job.stop()
    assert job.wait(timeout=120) == "Stopped"
    done = len(list((tmp_path / "out").glob("*.out")))
    assert 0 < done < 400


def test_inputs_that_are_not_local_are_refused(model, tmp_path, home, capsys):
    code, _, err = _cli(capsys, "transform", str(model), "--input", "s3://b/images/",
                        "--output", str(tmp_path / "o"), "--instance", "local")
    assert (code, err) == (2, "error: --input s3://b/images/: a local transform reads and "
                              "writes local files (run it on SageMaker, or copy the data "
                              "here)\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(capsys, "transform", str(model), "--input", str(empty), "--output",
                        str(tmp_path / "o"), "--instance", "local")
    assert code == 2 and "no images in it" in err
    code, _, err = _cli(capsys, "transform", str(model), "--input", str(empty), "--output",
                        str(tmp_path / "o"), "--instance", "local", "--keep-model")
    assert code == 2 and err.startswith("error: --keep-model does not apply to the local")
