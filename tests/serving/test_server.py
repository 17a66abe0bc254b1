"""algorithm/serve.py in this process: statuses, batching, the queue bound, timeouts, stopping."""

from __future__ import annotations

import http.client
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from algorithm import inference, memory
from algorithm.batching import Batcher, Job, nested_sizes, work
from algorithm.serve import ModelServer, Settings
from tests.serving.support import (
    check_rows,
    encode,
    invoke,
    photo,
    png_header_only,
    raw_connection,
    read_response,
    request,
)

JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def server(model_dir):
    """A server shared by the tests that change nothing in it."""
    shared = ModelServer(Settings(model_dir=str(model_dir), port=0))
    shared.start()
    shared.load()
    yield shared
    shared.stop()


@pytest.fixture
def start_server(model_dir):
    servers = []

    def start(load: bool = True, **settings) -> ModelServer:
        server = ModelServer(Settings(model_dir=str(model_dir), port=0, **settings))
        server.start()
        servers.append(server)
        if load:
            server.load()
        return server

    yield start
    for server in servers:
        if not server.stopping:
            server.stop()


class Gate:
    """A forward-pre-hook that records each batch's size and holds passes until opened."""

    def __init__(self, server: ModelServer, closed: bool = True):
        self.sizes: list = []
        self.entered = threading.Semaphore(0)
        self.open = threading.Event()
        if not closed:
            self.open.set()
        server.predictor.model.register_forward_pre_hook(self._hook)

    def _hook(self, module, inputs):
        self.sizes.append(inputs[0].shape[0])
        self.entered.release()
        assert self.open.wait(30), "the gate was never opened"


def _background(call, *args, **kwargs) -> dict:
    """Run ``call`` in a thread; the dict gets "result" (or "error") when it returns."""
    out: dict = {}

    def run():
        try:
            out["result"] = call(*args, **kwargs)
        except Exception as exc:
            out["error"] = exc

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def _wait_for(condition, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def _logs(capsys, lines: int) -> tuple:
    """(stdout, stderr) once stdout has ``lines`` lines: a request's line is written just after
    its response is sent."""
    out, err = "", ""
    end = time.monotonic() + 5
    while out.count("\n") < lines and time.monotonic() < end:
        time.sleep(0.01)
        captured = capsys.readouterr()
        out, err = out + captured.out, err + captured.err
    time.sleep(0.05)
    captured = capsys.readouterr()
    return out + captured.out, err + captured.err


def test_ping_is_503_until_the_model_is_loaded(start_server):
    server = start_server(load=False)
    status, headers, body = request(server.url)
    assert (status, json.loads(body)) == (503, {"error": "the model is loading"})
    assert headers["Retry-After"] == "5"
    assert invoke(server.url, JPEG)[0] == 503
    server.load()
    status, _, body = request(server.url)
    assert (status, json.loads(body)) == (200, {"status": "ready"})


@pytest.mark.parametrize("fmt, content_type", [("JPEG", "image/jpeg"), ("PNG", "image/png"),
                                               ("PNG", "application/x-image")])
def test_an_image_gets_normalised_rows_best_first(server, fmt, content_type):
    status, headers, answer = invoke(server.url, encode(photo(300, 200), fmt), content_type)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert list(answer) == ["prediction"] and len(answer["prediction"]) == 200
    check_rows(answer["prediction"], max_rows=200, threshold=0.01)


def test_a_json_lines_answer_says_so_and_ends_its_line(server):
    status, headers, body = request(server.url, "POST", "/invocations", JPEG, {
        "Content-Type": "image/jpeg", "Accept": "application/jsonlines"})
    assert status == 200 and headers["Content-Type"] == "application/jsonlines"
    assert body.endswith(b"\n") and body.count(b"\n") == 1
    assert list(json.loads(body)) == ["prediction"]
    status, headers, _ = request(server.url, "POST", "/invocations", b"not an image", {
        "Content-Type": "image/jpeg", "Accept": "application/jsonlines"})
    assert status == 400 and headers["Content-Type"] == "application/json"


def test_custom_attributes_over_http(server):
    everything = np.array(invoke(server.url, JPEG)[2]["prediction"])
    threshold = float(np.median(everything[:, 1]))
    status, _, answer = invoke(server.url, JPEG, X_Amzn_SageMaker_Custom_Attributes=(
        f"trace-id=42,threshold={threshold!r},max_detections=7"))
    assert status == 200
    rows = np.array(answer["prediction"])
    assert len(rows) == 7 and (rows[:, 1] > threshold).all()
    np.testing.assert_array_equal(rows[:, 1], everything[everything[:, 1] > threshold][:7, 1])


BAD_REQUESTS = [
    ("empty body", "POST", "/invocations", b"", {"Content-Type": "image/jpeg"}, 400,
     "the body is empty"),
    ("text as an image", "POST", "/invocations", b"hello", {"Content-Type": "image/jpeg"}, 400,
     "not a readable image"),
    ("truncated JPEG", "POST", "/invocations", JPEG[: len(JPEG) // 2],
     {"Content-Type": "image/jpeg"}, 400, "truncated or corrupt"),
    ("decompression bomb", "POST", "/invocations", png_header_only(100_000, 100_000),
     {"Content-Type": "image/png"}, 400, "decompression bomb"),
    ("float image", "POST", "/invocations", encode(Image.new("F", (4, 4)), "TIFF"),
     {"Content-Type": "application/x-image"}, 400, "unsupported image mode F"),
    ("no content type", "POST", "/invocations", JPEG, {}, 415, "content type missing"),
    ("wrong content type", "POST", "/invocations", JPEG, {"Content-Type": "text/csv"}, 415,
     "content type 'text/csv' is not supported"),
    ("accept CSV", "POST", "/invocations", JPEG,
     {"Content-Type": "image/jpeg", "Accept": "text/csv"}, 406, "accept type 'text/csv'"),
    ("bad attribute", "POST", "/invocations", JPEG,
     {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "max_detections=-1"},
     400, "custom attribute max_detections='-1'"),
    ("bad length", "POST", "/invocations", None, {"Content-Length": "ten"}, 400,
     "bad Content-Length"),
    ("GET invocations", "GET", "/invocations", None, {}, 405, "use POST /invocations"),
    ("POST ping", "POST", "/ping", b"", {}, 405, "use GET /ping"),
    ("unknown path", "GET", "/predict", None, {}, 404, "no such path /predict"),
    ("unknown method", "DELETE", "/invocations", None, {}, 501, "Unsupported method"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_client_mistakes_get_their_status_and_a_one_line_reason(server, case, capsys):
    _, method, path, body, headers, expected, reason = case
    status, answer_headers, data = request(server.url, method, path, body, headers)
    assert status == expected
    assert answer_headers["Content-Type"] == "application/json"
    assert data.count(b"\n") == 0 and b"Traceback" not in data
    assert reason in json.loads(data)["error"]
    # The server goes on answering.
    assert invoke(server.url, JPEG)[0] == 200
    errors = [line for line in _logs(capsys, lines=2)[1].splitlines() if " error " in line]
    assert len(errors) == 1 and f"{method} {path} {expected}: " in errors[0]
    assert reason in errors[0]


def test_bodies_up_to_6_mb_are_read_and_larger_ones_refused_unread(server):
    padded = JPEG + bytes(inference.MAX_BODY_BYTES - len(JPEG))  # JPEG ignores trailing bytes
    assert invoke(server.url, padded)[0] == 200
    # Only the headers are sent: the answer comes without the server waiting for the body.
    sock = raw_connection(server.url)
    with sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                     b"Content-Length: %d\r\n\r\n" % (inference.MAX_BODY_BYTES + 1))
        sock.settimeout(5)
        status, body = read_response(sock)
    assert status == 413
    assert json.loads(body) == {"error": "the body is 6291457 bytes; the limit is 6291456"}


def test_requests_that_wait_together_run_as_one_forward_pass(start_server):
    server = start_server(batch_size=8, batch_delay_ms=1000)
    gate = Gate(server)
    first = _background(invoke, server.url, JPEG)
    assert gate.entered.acquire(timeout=10)  # the worker is busy with the first request
    images = [encode(photo(seed=s), "JPEG") for s in range(8)]
    calls = [_background(invoke, server.url, image) for image in images]
    _wait_for(lambda: server.batcher.queued == 8)
    gate.open.set()
    for call in [first, *calls]:
        call["thread"].join(30)
        assert call["result"][0] == 200
    assert gate.sizes == [1, 8]
    # Each answer is its own image's.
    for image, call in zip(images, calls):
        alone = inference.predict_fn(inference.Request(image, {}), server.predictor)
        np.testing.assert_allclose(call["result"][2]["prediction"][0], alone[0], atol=1e-5)


def test_on_a_cpu_batches_are_powers_of_two_and_the_rest_waits_for_the_next(start_server):
    server = start_server(batch_size=8, batch_delay_ms=1000)
    assert server.predictor.device.type == "cpu" and server.batcher.sizes == [1, 2, 4, 8]
    gate = Gate(server)
    first = _background(invoke, server.url, JPEG)
    assert gate.entered.acquire(timeout=10)
    calls = [_background(invoke, server.url, JPEG) for _ in range(7)]
    _wait_for(lambda: server.batcher.queued == 7)
    gate.open.set()
    for call in [first, *calls]:
        call["thread"].join(30)
        assert call["result"][0] == 200
    assert gate.sizes == [1, 4, 2, 1]


@pytest.mark.parametrize("batch_size, sizes", [(1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]),
                                               (8, [1, 2, 4, 8]), (9, [1, 2, 4, 8, 9])])
def test_nested_sizes(batch_size, sizes):
    assert nested_sizes(batch_size) == sizes


def test_a_batcher_with_sizes_takes_the_largest_the_queue_fills_and_leaves_the_rest():
    batcher = Batcher(batch_size=6, delay=0.0, capacity=16, sizes=[1, 2, 4, 6])
    for name in "abcdefghijk":
        assert batcher.admit()
        batcher.put(Job(name, None))
    taken = [[job.pixels for job in batcher.take()] for _ in range(3)]
    assert taken == [list("abcdef"), list("ghij"), ["k"]]
    assert batcher.queued == 0
    # Without sizes, any count up to the batch size.
    batcher = Batcher(batch_size=6, delay=0.0, capacity=16)
    for name in "abc":
        assert batcher.admit()
        batcher.put(Job(name, None))
    assert [job.pixels for job in batcher.take()] == list("abc")


def test_a_batch_waits_only_for_requests_being_received():
    batcher = Batcher(batch_size=4, delay=5.0, capacity=8)
    assert batcher.admit() and batcher.admit()
    batcher.put(Job("a", None))
    taken = _background(batcher.take)
    time.sleep(0.2)
    assert "result" not in taken  # the second admitted request is awaited
    batcher.put(Job("b", None))
    taken["thread"].join(5)
    assert [job.pixels for job in taken["result"]] == ["a", "b"]
    # With nothing else admitted, a lone request runs at once.
    assert batcher.admit()
    batcher.put(Job("c", None))
    started = time.monotonic()
    assert [job.pixels for job in batcher.take()] == ["c"]
    assert time.monotonic() - started < 1.0


def test_the_worker_calls_idle_once_after_each_quiet_spell():
    batcher = Batcher(batch_size=1, delay=0.0, capacity=8)
    idle = threading.Semaphore(0)
    worker = _background(work, batcher, lambda pixels, options: pixels, idle=idle.release,
                         idle_after=0.2)
    assert idle.acquire(timeout=5)  # quiet since the start
    assert not idle.acquire(timeout=0.6)  # once per quiet spell, not every 0.2 s
    for name in "ab":
        assert batcher.admit()
        batcher.put(Job(name, None))
        _wait_for(lambda: batcher.queued == 0)
    started = time.monotonic()
    assert idle.acquire(timeout=5)  # quiet again after the batches
    assert time.monotonic() - started >= 0.1
    assert not idle.acquire(timeout=0.6)
    batcher.close()
    worker["thread"].join(5)
    assert not worker["thread"].is_alive()


@pytest.mark.parametrize("release_after, releases", [(0.3, 1), (0, 0)])
def test_freed_memory_is_released_after_a_spell_without_requests(start_server, monkeypatch,
                                                                   release_after, releases):
    released = threading.Semaphore(0)
    monkeypatch.setattr(memory, "release_freed_memory", lambda: released.release() or True)
    server = start_server(release_after=release_after)
    time.sleep(0.5)
    while released.acquire(blocking=False):
        pass  # the spell before the first request
    assert invoke(server.url, JPEG)[0] == 200
    got = 0
    while released.acquire(timeout=1.5):
        got += 1
    assert got == releases


def test_a_full_queue_answers_503_with_retry_after_and_ping_stays_fast(start_server):
    server = start_server(batch_size=1, queue_size=2)
    gate = Gate(server)
    held = [_background(invoke, server.url, JPEG) for _ in range(2)]
    _wait_for(lambda: server.batcher.held == 2)
    status, headers, answer = invoke(server.url, JPEG)
    assert status == 503 and headers["Retry-After"] == "1"
    assert "holds 2 requests" in answer["error"]
    started = time.monotonic()
    assert request(server.url)[0] == 200  # /ping is never queued behind inference
    assert time.monotonic() - started < 1.0
    gate.open.set()
    for call in held:
        call["thread"].join(30)
        assert call["result"][0] == 200
    assert invoke(server.url, JPEG)[0] == 200


def test_a_request_past_its_timeout_gets_504_and_the_worker_goes_on(start_server):
    server = start_server(timeout=0.5)
    gate = Gate(server)
    started = time.monotonic()
    status, _, answer = invoke(server.url, JPEG)
    assert status == 504 and "timeout of 0.5 s" in answer["error"]
    assert time.monotonic() - started < 5
    gate.open.set()
    assert invoke(server.url, JPEG)[0] == 200


def test_an_internal_error_is_a_500_without_traceback_and_the_worker_survives(server):
    failures = ["boom"]

    def fail_once(module, inputs):
        if failures:
            raise RuntimeError(failures.pop())

    handle = server.predictor.model.register_forward_pre_hook(fail_once)
    status, _, data = request(server.url, "POST", "/invocations", JPEG,
                              {"Content-Type": "image/jpeg"})
    assert status == 500 and b"\n" not in data and b"Traceback" not in data
    assert json.loads(data) == {"error": "internal error: RuntimeError: boom"}
    handle.remove()
    assert invoke(server.url, JPEG)[0] == 200


def test_stop_finishes_held_requests_and_refuses_new_connections(start_server):
    server = start_server()
    gate = Gate(server)
    kept_alive = http.client.HTTPConnection("127.0.0.1", server.httpd.server_address[1],
                                            timeout=10)
    kept_alive.request("GET", "/ping")
    assert kept_alive.getresponse().read() == b'{"status": "ready"}'
    held = _background(invoke, server.url, JPEG)
    assert gate.entered.acquire(timeout=10)
    stopping = _background(server.stop)
    _wait_for(lambda: server.stopping)
    time.sleep(0.8)  # shutdown() returns within serve_forever's poll interval
    with pytest.raises(OSError):
        request(server.url, timeout=2)
    for method, path in (("GET", "/ping"), ("POST", "/invocations")):
        kept_alive.request(method, path, body=JPEG if method == "POST" else None,
                           headers={"Content-Type": "image/jpeg"})
        answer = kept_alive.getresponse()
        assert (answer.status, answer.read()) == (503, b'{"error": "the server is shutting down"}')
    kept_alive.close()
    assert "result" not in stopping
    gate.open.set()
    held["thread"].join(30)
    assert held["result"][0] == 200
    stopping["thread"].join(30)
    assert stopping["result"] is True


def test_one_log_line_per_request_and_per_error(server, capsys):
    capsys.readouterr()
    invoke(server.url, JPEG)
    invoke(server.url, JPEG, "text/plain")
    request(server.url)
    out, err = _logs(capsys, lines=3)
    lines = out.splitlines()
    assert [line.split()[1:4] for line in lines] == [["POST", "/invocations", "200"],
                                                     ["POST", "/invocations", "415"],
                                                     ["GET", "/ping", "200"]]
    assert all(line.endswith(" ms") and line.startswith("20") for line in lines)
    (error,) = err.splitlines()
    assert error.split(" ", 1)[1] == ("error POST /invocations 415: content type 'text/plain' "
                                      "is not supported; send one of image/jpeg, image/png, "
                                      "application/x-image, application/x-recordio")
