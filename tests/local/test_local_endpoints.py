"""Local endpoints: the model server started detached on 127.0.0.1, described, invoked, logged,
noticed when it dies, deleted; `detectctl deploy --instance local` and the endpoints commands."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest
from PIL import Image

from detectctl.cli import main
from detectctl.errors import EndpointFailedError
from detectctl.local.state import alive
from detectctl.session import Session
from tests.local.conftest import wait_for
from tests.serving.support import save_tiny_model


@pytest.fixture
def model(tmp_path: Path, home: Path) -> Path:
    return save_tiny_model(tmp_path / "model")


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (160, 120), (200, 120, 40)).save(path)
    return path


@pytest.fixture
def servers(home: Path):
    """Every server a test started is killed at its end, whatever happened."""
    yield
    from detectctl.local.endpoints import list_endpoints

    for endpoint in list_endpoints(home):
        server = endpoint.description.get("Local", {}).get("Server")
        if server and alive(server):
            os.killpg(server["Pid"], signal.SIGKILL)


pytestmark = pytest.mark.usefixtures("servers")


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_deploy_predict_logs_describe_delete(model, image, home, capsys):
    code, out, err = _cli(capsys, "deploy", str(model), "--instance", "local", "--name", "e1")
    assert code == 0, err
    assert out == ("endpoint e1: InService\n  predict:  detectctl predict e1 --local IMAGE...\n"
                   "  delete:   detectctl endpoints delete e1 --local\n")
    code, out, _ = _cli(capsys, "endpoints", "list", "--local", "--json")
    assert [(e["endpoint"], e["status"], e["instance"]) for e in json.loads(out)] == [
        ("e1", "InService", "local")]
    code, out, _ = _cli(capsys, "endpoints", "describe", "e1", "--local", "--json")
    described = json.loads(out)
    assert described["Url"].startswith("http://127.0.0.1:")
    assert alive(described["Local"]["Server"])  # it outlives the command that started it

    code, out, err = _cli(capsys, "predict", "e1", "--local", str(image), "--threshold", "0",
                          "--json")
    assert code == 0, err
    (answer,) = json.loads(out)
    assert answer["image"] == str(image) and answer["detections"]
    assert answer["detections"][0]["class_name"] in ("circle", "square", "triangle")
    bad = image.with_name("bad.jpg")
    bad.write_text("not an image")
    code, _, err = _cli(capsys, "predict", "e1", "--local", str(bad))
    assert code == 2 and err.startswith("error: endpoint e1 answered 400: ")

    code, out, _ = _cli(capsys, "endpoints", "logs", "e1", "--local")
    lines = out.splitlines()
    assert any(line.startswith("[algo-1] POST /invocations 200 ") for line in lines)
    assert any(line.startswith("[algo-1] POST /invocations 400 ") for line in lines)

    code, out, _ = _cli(capsys, "endpoints", "delete", "e1", "--local", "--yes")
    assert (code, out) == (0, "deleted endpoint e1\n")
    assert not (home / "endpoints" / "e1").exists()
    wait_for(lambda: not alive(described["Local"]["Server"]), timeout=30, what="the server")


def test_the_sdk_deploys_a_completed_local_job(model, image, home):
    """session.deploy(job) then endpoint.predict(image), as on SageMaker."""
    import shutil

    job = home / "jobs" / "done"
    job.mkdir(parents=True)
    shutil.copytree(model, job / "model")
    (job / "job.json").write_text(json.dumps({"TrainingJobName": "done",
                                              "TrainingJobStatus": "Completed"}))
    session = Session(backend="local")
    endpoint = session.deploy(session.training_job("done"))
    assert (endpoint.name, endpoint.status, endpoint.backend) == ("done", "InService", "local")
    found = endpoint.predict(image, threshold=0.0)
    assert found and all(0.0 <= d.xmin <= d.xmax <= 1.0 for d in found)
    assert found == sorted(found, key=lambda d: -d.score)
    with pytest.raises(Exception, match="is InService already"):
        session.deploy("done")
    assert [e.name for e in session.endpoints()] == ["done"]
    endpoint.delete()


def test_a_dead_server_shows_as_failed_with_its_last_log_line(model, home):
    endpoint = Session(backend="local").deploy(str(model), name="e2")
    server = endpoint.description["Local"]["Server"]
    os.killpg(server["Pid"], signal.SIGKILL)
    wait_for(lambda: not alive(server), timeout=30, what="the server to die")
    assert endpoint.refresh()["EndpointStatus"] == "Failed"
    assert endpoint.failure_reason.startswith(f"the server (pid {server['Pid']}) is not "
                                              "running; its last log line: ")
    with pytest.raises(Exception, match="endpoint e2 is Failed"):
        endpoint.predict(io.BytesIO(b"").getvalue() or b"x", content_type="image/jpeg")
    endpoint.delete()


def test_a_model_that_cannot_load_fails_the_deploy_and_leaves_nothing(tmp_path, home):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.pt").write_bytes(b"not weights")
    (broken / "hyperparameters.json").write_text('{"num_classes": "3"}')
    with pytest.raises(EndpointFailedError, match=r"endpoint e3 failed: the server .* its last "
                                                  r"log line: .*cannot load the model"):
        Session(backend="local").deploy(str(broken), name="e3")
    assert not (home / "endpoints" / "e3").exists()


def test_sources_that_are_not_local_models_are_refused(home, capsys):
    code, _, err = _cli(capsys, "deploy", "s3://bucket/model.tar.gz", "--instance", "local")
    assert (code, err) == (2, "error: s3://bucket/model.tar.gz: a local endpoint serves a model "
                              "on this machine (download the model.tar.gz and deploy the "
                              "file)\n")
    code, _, err = _cli(capsys, "deploy", "nothing-here", "--instance", "local")
    assert code == 2 and "no local training job, model.tar.gz or model directory" in err
    code, _, err = _cli(capsys, "deploy", "x", "--instance", "local", "--count", "2")
    assert code == 2 and err.startswith("error: --count does not apply to the local backend")
