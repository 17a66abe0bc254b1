"""The guarantee: a job's model scored with `evaluate --model` and, deployed on the local
backend, with `evaluate --endpoint` gives the job's own final validation mAP (to 1e-4); an
interrupted endpoint run resumes with only what is missing."""

from __future__ import annotations

import json

import pytest

from detectctl.cli import main
from detectctl.session import Session
from tests.local.conftest import TINY


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.fixture
def trained(data, home):
    """A tiny job trained with a validation channel, and its reported final mAP."""
    session = Session(backend="local")
    job = session.train(train=str(data / "train.rec"), validation=str(data / "val.rec"),
                        name="scored", hyperparameters={**TINY, "epochs": 3})
    assert job.wait(timeout=300) == "Completed"
    return job, job.metrics["validation:mAP"]


def test_model_and_endpoint_give_the_jobs_own_map(trained, data, home, capsys, tmp_path):
    job, reported = trained
    code, out, err = _cli(capsys, "evaluate", "--model", job.model_artifact, "--dataset",
                          str(data / "val.rec"), "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert scored["voc07"]["images"] == 8
    assert reported > 0.0  # the job found something: equal by content, not both zero
    assert abs(scored["mAP"] - reported) <= 1e-4, (scored["mAP"], reported)
    assert 0.0 <= scored["voc12"]["mAP"] <= 1.0

    endpoint = Session(backend="local").deploy(job)
    try:
        saved = tmp_path / "predictions.jsonl"
        code, out, err = _cli(capsys, "evaluate", "--endpoint", endpoint.name, "--local",
                              "--dataset", str(data / "val.rec"), "--save-predictions",
                              str(saved), "--json")
        assert code == 0, err
        through = json.loads(out)
        assert abs(through["mAP"] - reported) <= 1e-4, (through["mAP"], reported)
        assert len(saved.read_text().splitlines()) == 8
        # the saved predictions score the same when read back
        code, out, _ = _cli(capsys, "evaluate", "--predictions", str(saved), "--dataset",
                            str(data / "val.rec"), "--json")
        assert json.loads(out)["mAP"] == through["mAP"]
    finally:
        endpoint.delete()


def test_an_interrupted_endpoint_run_sends_only_what_is_missing(trained, data, home,
                                                                  tmp_path):
    from detectctl import scoring

    job, _ = trained
    endpoint = Session(backend="local").deploy(job, name="resumed")
    sent = []
    real = endpoint.invoke

    def flaky(body, content_type, **options):
        if len(sent) == 3:
            raise KeyboardInterrupt
        sent.append(content_type)
        return real(body, content_type, **options)

    try:
        cache = scoring.cache_path("local:resumed", data / "val.rec")
        endpoint.invoke = flaky
        with pytest.raises(KeyboardInterrupt):
            scoring.predict_dataset(endpoint, data / "val.rec", tmp_path / "p.jsonl",
                                    concurrency=1, cache=cache)
        assert len(cache.read_text().splitlines()) == 3
        assert not (tmp_path / "p.jsonl").exists()
        endpoint.invoke = real
        asked = scoring.predict_dataset(endpoint, data / "val.rec", tmp_path / "p.jsonl",
                                        concurrency=2, cache=cache)
        assert asked == 5 and not cache.exists()
        assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 8
    finally:
        endpoint.delete()


def test_a_resumed_endpoint_run_says_how_many_answers_it_kept(trained, data, home, capsys):
    from detectctl import scoring

    job, _ = trained
    endpoint = Session(backend="local").deploy(job, name="kept")
    try:
        source = scoring.open_dataset_source(data / "val.rec")
        cache = scoring.cache_path("local:kept", data / "val.rec")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(json.dumps({"file": str(source[i].key), "prediction": []})
                                 + "\n" for i in range(3)) + '{"file": "torn')
        code, _, err = _cli(capsys, "evaluate", "--endpoint", "kept", "--local",
                            "--dataset", str(data / "val.rec"))
        assert code == 0
        assert f"resuming: 3 of 8 answers kept from an interrupted run ({cache})" in err
        assert "sending up to 5 requests to endpoint kept" in err
        assert not cache.exists()
    finally:
        endpoint.delete()


def test_exactly_one_source_of_predictions(data, home, capsys):
    code, _, err = _cli(capsys, "evaluate", "--dataset", str(data / "val.rec"))
    assert (code, err) == (2, "error: give exactly one of --predictions, --endpoint and "
                              "--model\n")
    code, _, err = _cli(capsys, "evaluate", "--dataset", str(data / "nothing.rec"),
                        "--model", "m.tar.gz")
    assert code == 2 and "nothing.rec: no such file or directory" in err
