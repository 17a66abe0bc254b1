"""Local jobs as resources: detached under a supervisor, state and logs readable by anyone,
stopped, resumed, killed; `detectctl train --instance local` and the jobs commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile

import pytest

from algorithm import artifact
from detectctl.cli import main
from detectctl.local.state import alive
from detectctl.session import Session
from tests.local.conftest import TINY, wait_for

pytestmark = pytest.mark.usefixtures("jobs_to_clean")

TINY_ARGS = [arg for key, value in TINY.items() for arg in ("--hp", f"{key}={value}")]


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def _epochs_logged(job, count: int) -> bool:
    return sum("#progress_metric" in e.message for e in job.logs()) >= count


def test_a_job_trains_follows_and_leaves_a_deployable_model(data, home, capsys):
    code, out, err = _cli(capsys, "train", "--instance", "local", "--train",
                          str(data / "train.rec"), "--validation", str(data / "val.rec"),
                          "--name", "demo", "--hp", "epochs=2", *TINY_ARGS)
    assert code == 0, out + err
    assert "started training job demo on this machine; Ctrl-C detaches from it" in err
    assert "epoch 2/2, cross_entropy" in err  # the plain (not a terminal) progress lines
    job = home / "jobs" / "demo"
    assert out.startswith("training job demo completed: validation mAP ")
    assert out.endswith(f"  model:  {job / 'model.tar.gz'}\n")
    with tarfile.open(job / "model.tar.gz") as tar:
        assert {"model.pt", "hyperparameters.json", "classes.json", "metrics.json",
                "code"} <= set(tar.getnames())
    recorded = json.loads((job / "model" / "metrics.json").read_text())
    assert recorded["epochs"] == 2 and set(recorded["final"]) == {
        "train:cross_entropy", "train:smooth_l1", "train:throughput", "validation:mAP"}
    assert recorded["best_validation_mAP"] >= recorded["final"]["validation:mAP"]
    model, hp, classes = artifact.load(job / "model.tar.gz")
    assert (hp.image_shape, classes, model.num_classes) == (128, ["circle", "square",
                                                                  "triangle"], 3)
    state = json.loads((job / "job.json").read_text())
    assert state["TrainingJobStatus"] == "Completed"
    # only what was given, as SageMaker gets it: the job fills in the defaults
    assert state["HyperParameters"] == {"epochs": "2", **{k: str(v) for k, v in TINY.items()}}
    assert [t["Status"] for t in state["SecondaryStatusTransitions"]] == [
        "Starting", "Starting", "Training", "Uploading", "Completed"]
    assert {m["MetricName"] for m in state["FinalMetricDataList"]} >= {
        "validation:mAP", "train:cross_entropy", "train:throughput"}


def test_a_failing_job_reports_its_reason(data, home):
    session = Session(backend="local")
    job = session.train(train=str(data / "train.rec"), name="bad",
                        hyperparameters={**TINY, "num_classes": 5})
    assert job.wait(timeout=120) == "Failed"
    assert job.failure_reason.startswith("num_classes=5 but the training data names 3")


def test_kill_9_of_a_host_ends_the_job_failed_with_a_reason(data, home):
    job = Session(backend="local").train(train=str(data / "train.rec"), instance_count=2,
                                         hyperparameters={**TINY, "epochs": 200})
    wait_for(lambda: _epochs_logged(job, 1), what="an epoch")
    host = next(h for h in job.refresh()["Local"]["Hosts"] if h["Host"] == "algo-2")
    os.killpg(host["Pid"], signal.SIGKILL)
    assert job.wait(timeout=120) == "Failed"
    assert job.failure_reason.startswith("host algo-2 was killed by SIGKILL")


def test_kill_9_of_the_supervisor_is_noticed_and_its_hosts_stopped(data, home):
    job = Session(backend="local").train(train=str(data / "train.rec"),
                                         hyperparameters={**TINY, "epochs": 200})
    wait_for(lambda: job.refresh()["Local"].get("Hosts"), what="the hosts")
    supervisor = job.description["Local"]["Supervisor"]
    hosts = job.description["Local"]["Hosts"]
    os.kill(supervisor["Pid"], signal.SIGKILL)
    wait_for(lambda: not alive(supervisor), what="the supervisor to die")
    assert job.refresh()["TrainingJobStatus"] == "Failed"
    assert job.failure_reason.startswith(f"the job's supervisor process (pid "
                                         f"{supervisor['Pid']}) ended without recording")
    wait_for(lambda: not any(alive(h) for h in hosts), timeout=30, what="the hosts to end")


def test_the_cli_returns_while_the_job_goes_on(data, home, capsys):
    code, out, err = _cli(capsys, "train", "--instance", "local", "--count", "2", "--train",
                          str(data / "train.rec"), "--name", "bg", "--no-wait",
                          "--hp", "epochs=200", *TINY_ARGS)
    assert code == 0, err
    assert out.splitlines()[:3] == [
        "started training job bg",
        "  follow it:        detectctl jobs attach bg --local",
        "  its logs:         detectctl logs bg --local --follow"]
    code, out, _ = _cli(capsys, "jobs", "list", "--local", "--json")
    assert [(j["TrainingJobName"], j["TrainingJobStatus"]) for j in json.loads(out)] == [
        ("bg", "InProgress")]
    code, out, _ = _cli(capsys, "jobs", "describe", "bg", "--local", "--json")
    described = json.loads(out)
    assert described["ResourceConfig"] == {"InstanceType": "local", "InstanceCount": 2}
    assert alive(described["Local"]["Supervisor"])
    wait_for(lambda: _epochs_logged(Session(backend="local").training_job("bg"), 1),
             what="an epoch")
    reader = subprocess.run(  # another process reads the running job's state and logs
        [sys.executable, "-c", "import sys, json; import detectctl;"
         "job = detectctl.Session(backend='local').training_job('bg');"
         "print(json.dumps([job.status, sorted({e.host for e in job.logs()})]))"],
        capture_output=True, text=True, check=True, env=os.environ)
    assert json.loads(reader.stdout) == ["InProgress", ["algo-1", "algo-2"]]
    code, out, _ = _cli(capsys, "jobs", "stop", "bg", "--local", "--yes")
    assert (code, out) == (0, "stopping bg; `detectctl jobs wait bg --local` waits until it "
                              "has stopped\n")
    code, out, err = _cli(capsys, "jobs", "wait", "bg", "--local", "--json")
    assert code == 1 and json.loads(out)["status"] == "Stopped"
    code, out, err = _cli(capsys, "logs", "bg", "--local", "--host", "algo-2")
    assert code == 0 and out.startswith("[algo-2] ")
    assert {line.split(" ")[0] for line in out.splitlines()} == {"[algo-2]"}
    code, out, _ = _cli(capsys, "jobs", "delete", "bg", "--local", "--yes")
    assert (code, out) == (0, "deleted bg\n") and not (home / "jobs" / "bg").exists()


def test_options_that_only_apply_on_sagemaker_are_refused_by_name(data, capsys):
    for option, value in (("--spot", None), ("--role", "arn:aws:iam::1:role/r"),
                          ("--region", "eu-west-1"), ("--checkpoint-s3", "s3://b/c"),
                          ("--input-mode", "Pipe"), ("--yes", None)):
        args = [option] + ([value] if value else [])
        code, _, err = _cli(capsys, "train", "--instance", "local", "--train",
                            str(data / "train.rec"), *args, *TINY_ARGS)
        assert (code, err) == (2, f"error: {option} does not apply to the local backend (the "
                                  "local backend runs on this machine: no AWS account, role, "
                                  "bucket or region, and no SageMaker-only job settings)\n")


def test_bad_hyperparameters_fail_before_anything_runs(data, home, capsys):
    code, _, err = _cli(capsys, "train", "--instance", "local", "--train",
                        str(data / "train.rec"), "--hp", "num_classes=0")
    assert code == 2 and "num_classes='0': must be an integer >= 1" in err
    assert not (home / "jobs").exists()


def test_s3_paths_and_missing_files_are_refused(data, home, capsys):
    code, _, err = _cli(capsys, "train", "--instance", "local", "--train",
                        "s3://bucket/train.rec", *TINY_ARGS)
    assert code == 2 and "a local job reads local files" in err
    code, _, err = _cli(capsys, "train", "--instance", "local", "--train",
                        str(data / "missing.rec"), *TINY_ARGS)
    assert (code, err) == (2, f"error: --train {data / 'missing.rec'}: no such file or "
                              "directory\n")
    assert not (home / "jobs").exists()


def test_dry_run_prints_the_plan_and_creates_nothing(data, home, capsys):
    code, out, _ = _cli(capsys, "train", "--instance", "local", "--count", "2", "--train",
                        str(data / "train.rec"), "--name", "dry", "--dry-run", *TINY_ARGS)
    assert code == 0
    plan = json.loads(out)
    assert (plan["TrainingJobName"], plan["Hosts"]) == ("dry", ["algo-1", "algo-2"])
    assert plan["Channels"]["train"] == {"Format": "recordio",
                                         "Path": str(data / "train.rec")}
    assert not (home / "jobs").exists()


def test_generated_names_never_collide(data, home):
    from datetime import datetime, timezone

    from detectctl import names
    from detectctl.local import training
    from detectctl.training import training_request

    request = training_request(instance_type="local", train=str(data / "train.rec"),
                               hyperparameters=TINY)
    when = datetime(2026, 11, 29, 10, 0, 0, 123000, tzinfo=timezone.utc)
    first = next(names.candidates(request.base_name, when))
    (home / "jobs" / first).mkdir(parents=True)
    plan = training.plan(request)
    reserved = training._reserve(plan.__class__(**{**plan.__dict__,
                                                   "directory": home / "jobs" / first}))
    assert reserved.name != first and reserved.parent == home / "jobs"


def test_unknown_local_job_is_a_clear_error(home, capsys):
    code, _, err = _cli(capsys, "jobs", "describe", "nope", "--local")
    assert (code, err) == (1, "error: no local training job named nope (see `detectctl jobs "
                              "list --local`)\n")


def test_a_validation_set_of_another_format_is_refused_before_anything_runs(data, home,
                                                                          capsys):
    from detectctl.datasets.synth import synth

    synth(str(data / "json"), images=4, classes=3, seed=5, format="sagemaker-json",
          image_size=(96, 72))
    code, _, err = _cli(capsys, "train", "--instance", "local", "--train",
                        str(data / "train.rec"), "--validation", str(data / "json"), *TINY_ARGS)
    assert (code, err) == (2, f"error: --validation {data / 'json'}: sagemaker-json data, but "
                              "--train holds recordio (convert one of them: detectctl dataset "
                              "convert)\n")
    assert not (home / "jobs").exists()
