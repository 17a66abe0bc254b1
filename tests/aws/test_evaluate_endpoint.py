"""`detectctl evaluate --endpoint` against a SageMaker endpoint (moto; InvokeEndpoint stubbed
at the client to answer from a local model through the inference handlers): the number of
requests said first, bounded concurrency, and the same mAP as the model scored here."""

from __future__ import annotations

import io
import json
import threading

import pytest
from botocore.response import StreamingBody
from typer.testing import CliRunner

from detectctl.aws import Aws
from detectctl.cli.app import app
from detectctl.datasets.synth import synth
from tests.aws.support import BUCKET

runner = CliRunner()


@pytest.fixture
def served(session, tmp_path, monkeypatch):
    """An InService endpoint in moto whose InvokeEndpoint answers from a tiny local model."""
    from algorithm import inference
    from tests.serving.support import save_tiny_model

    model = save_tiny_model(tmp_path / "model")
    predictor = inference.model_fn(str(model))
    session.launch(session.plan(instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/t.rec",
                                hyperparameters={"num_classes": 3, "use_pretrained_model": 0},
                                name="job-e"))
    session.deploy("job-e", instance_type="ml.c5.xlarge", poll=0.01)
    real = Aws.call
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def call(self, service, operation, **request):
        if (service, operation) != ("sagemaker-runtime", "invoke_endpoint"):
            return real(self, service, operation, **request)
        assert request["EndpointName"] == "job-e"
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            parsed = inference.input_fn(request["Body"], request["ContentType"])
            rows = inference.predict_fn(parsed, predictor)
            body = inference.output_fn(rows, request["Accept"]).encode()
        finally:
            with lock:
                in_flight[0] -= 1
        return {"Body": StreamingBody(io.BytesIO(body), len(body)),
                "ContentType": "application/json"}

    monkeypatch.setattr(Aws, "call", call)
    synth(str(tmp_path / "val.rec"), images=6, classes=3, seed=4, image_size=(96, 72))
    return model, tmp_path / "val.rec", most


def test_the_endpoint_scores_as_the_model_does_here(served, tmp_path):
    model, dataset, most = served
    through = runner.invoke(app, ["evaluate", "--endpoint", "job-e", "--dataset", str(dataset),
                                  "--concurrency", "2", "--json"])
    assert through.exit_code == 0, through.output
    assert through.stderr.startswith("sending up to 6 requests to endpoint job-e, 2 at a time "
                                      "(SageMaker bills")
    assert most[0] <= 2
    here = runner.invoke(app, ["evaluate", "--model", str(model), "--dataset", str(dataset),
                               "--json"])
    assert here.exit_code == 0, here.output
    assert json.loads(through.stdout)["mAP"] == pytest.approx(json.loads(here.stdout)["mAP"],
                                                              abs=1e-4)


class _Raw(io.BytesIO):
    """A raw HTTP body for botocore's AWSResponse (read whole, or streamed)."""

    def stream(self, **_):
        yield self.getvalue()


def test_throttled_requests_are_retried_by_the_client(session, tmp_path, monkeypatch):
    """InvokeEndpoint answered below botocore's retry handler: each image's first request is
    throttled (HTTP 400 ThrottlingException), its retry answered from a local model; the run
    completes with every image scored, through the client's own retry policy."""
    import hashlib

    from botocore.awsrequest import AWSResponse

    from algorithm import inference
    from tests.serving.support import save_tiny_model

    predictor = inference.model_fn(str(save_tiny_model(tmp_path / "model")))
    session.launch(session.plan(instance_type="ml.g5.xlarge", train=f"s3://{BUCKET}/t.rec",
                                hyperparameters={"num_classes": 3, "use_pretrained_model": 0},
                                name="job-t"))
    session.deploy("job-t", instance_type="ml.c5.xlarge", poll=0.01)
    throttled, answered = set(), []
    lock = threading.Lock()

    def send(request, **_):
        body = bytes(request.body)
        digest = hashlib.sha256(body).hexdigest()
        with lock:
            first = digest not in throttled
            throttled.add(digest)
        if first:
            return AWSResponse(request.url, 400,
                               {"x-amzn-ErrorType": "ThrottlingException",
                                "Content-Type": "application/json"},
                               _Raw(b'{"message": "Rate exceeded"}'))
        kind = request.headers["Content-Type"]
        parsed = inference.input_fn(body, kind.decode() if isinstance(kind, bytes) else kind)
        answer = inference.output_fn(inference.predict_fn(parsed, predictor),
                                     "application/json").encode()
        with lock:
            answered.append(digest)
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(answer))

    # moto answers every request before botocore parses it; InvokeEndpoint goes to `send`.
    from moto.core.botocore_stubber import BotocoreStubber

    real = BotocoreStubber.__call__

    def stubber(self, event_name, request, **kwargs):
        if request.url.endswith("/endpoints/job-t/invocations"):
            return send(request)
        return real(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", stubber)
    synth(str(tmp_path / "val.rec"), images=4, classes=3, seed=4, image_size=(96, 72))
    result = runner.invoke(app, ["evaluate", "--endpoint", "job-t", "--dataset",
                                 str(tmp_path / "val.rec"), "--concurrency", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert len(throttled) == 4 and sorted(answered) == sorted(throttled)
    assert json.loads(result.stdout)["voc07"]["images"] == 4
