"""`detectctl demo`: every step on a tiny recipe (the real one takes minutes: see the README's
figures), the picture and the summary; Ctrl-C or a failure stops the job and removes the
endpoint."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from algorithm.data.sources import open_source
from detectctl.cli import main
from detectctl.demo import Demo, Recipe
from detectctl.local.jobs import LocalTrainingJob
from detectctl.local.state import alive
from tests.local.conftest import TINY

TINY_RECIPE = Recipe(images=30, validation_fraction=0.3, image_size=(96, 72),
                     hyperparameters={**TINY, "epochs": 2})


def test_every_step_on_a_tiny_recipe(tmp_path, home):
    run = Demo(tmp_path / "demo", recipe=TINY_RECIPE)
    run.make_data()
    assert run.result.files["training set"].endswith("train/shapes.rec")
    assert run.result.files["held-out set"].endswith("validation/shapes.rec")
    # no shape under the recipe's smallest side (0.15 of the shorter side, 72 pixels here)
    source = open_source(run.result.files["training set"])
    sides = [float(((b[2] - b[0]) * 96 * (b[3] - b[1]) * 72) ** 0.5)
             for i in range(len(source)) for b in source[i].boxes]
    assert sides and min(sides) >= TINY_RECIPE.min_size * 72 - 1
    run.check_data()
    job = run.train()
    assert job.wait(timeout=300) == "Completed"
    endpoint = run.deploy()
    report = run.score()
    assert 0.0 <= report.mAP <= 1.0 and report.images == 9
    assert run.result.held_out_map == report.mAP
    lines = (tmp_path / "demo" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 9 and all("prediction" in json.loads(line) for line in lines)
    picture = run.picture()
    with Image.open(picture) as image:
        assert image.size == (4 * 320, 2 * 240)
    result = run.finish()
    assert result.files["model"].endswith("model.tar.gz")
    assert not endpoint.directory.path.exists()  # removed: not --keep
    assert result.to_dict()["held_out_map"] == report.mAP


def test_an_interrupted_demo_stops_its_job_and_removes_its_endpoint(tmp_path, home,
                                                                     monkeypatch, capsys):
    from detectctl import demo as module

    real = module.Demo

    class Interrupted(real):
        def __init__(self, output, **options):
            super().__init__(output, recipe=Recipe(
                images=30, validation_fraction=0.3, image_size=(96, 72),
                hyperparameters={**TINY, "epochs": 200}), **options)

    def interrupt(job, **options):
        from tests.local.conftest import wait_for

        wait_for(lambda: job.refresh().get("Local", {}).get("Hosts"), what="the hosts")
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "Demo", Interrupted)
    monkeypatch.setattr("detectctl.cli.follow.follow", interrupt)
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--output", str(tmp_path / "demo")])
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert "stopped training job demo-" in err
    (job_dir,) = (home / "jobs").iterdir()
    job = LocalTrainingJob(job_dir)
    assert job.wait(timeout=120) == "Stopped"
    assert not alive(job.description["Local"]["Supervisor"])
    assert not (home / "endpoints").exists() or not any((home / "endpoints").iterdir())


def test_a_rerun_replaces_a_previous_demo_and_refuses_other_folders(tmp_path, home):
    from detectctl.errors import UsageError

    first = Demo(tmp_path / "demo", recipe=TINY_RECIPE)
    first.make_data()
    (tmp_path / "demo" / "detections.png").write_bytes(b"an old picture")
    Demo(tmp_path / "demo", recipe=TINY_RECIPE).make_data()
    assert not (tmp_path / "demo" / "detections.png").exists()
    assert (tmp_path / "demo" / "train" / "shapes.rec").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="exists and is not a demo's output"):
        Demo(mine, recipe=TINY_RECIPE).make_data()
    assert (mine / "thesis.tex").read_text() == "precious"
