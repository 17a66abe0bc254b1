"""Pretrained weights on the client: torch hub's cache folder, download from a local HTTP server
with progress and a hash check, cache reuse, and one clear line for every way it can fail."""

import ast
import hashlib
import shutil
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from algorithm.hyperparameters import BASE_NETWORKS
from detectctl import pretrained
from detectctl.errors import PretrainedWeightsError, UsageError

ROOT = Path(__file__).resolve().parents[2]
VGG = "vgg16_features-amdegroot-88682ab5.pth"
FROM_SCRATCH = "or set use_pretrained_model=0 to train from scratch"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def environment(tmp_path, monkeypatch):
    """Never the real ~/.cache, never the real download host, no proxy in the way."""
    for name in ("XDG_CACHE_HOME", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                 "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(pretrained.BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}/")
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def server(monkeypatch):
    """A download host on 127.0.0.1: ``serve(name, body, length=...)`` publishes a file
    (``length=None``: no Content-Length; a number: that header whatever the body),
    ``requests`` lists the paths asked for."""
    files, requests = {}, []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            status, body, length = files.get(self.path, (404, b"", None))
            if status != 200:
                self.send_error(status)
                return
            self.send_response(200)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    monkeypatch.setenv(pretrained.BASE_URL_ENV, url)

    def serve(name, body, *, status=200, length="auto"):
        files["/" + name] = (status, body, len(body) if length == "auto" else length)

    yield SimpleNamespace(url=url, serve=serve, requests=requests)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def weights(monkeypatch):
    """2.5 MiB of made-up ResNet-50 weights whose name carries their hash, as torchvision's do;
    WEIGHTS points resnet-50 at them."""
    body = bytes(range(256)) * (10 * 1024) + b"end"
    name = f"resnet50-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    monkeypatch.setitem(pretrained.WEIGHTS, "resnet-50", (name, pretrained.TORCHVISION_URL + name))
    return SimpleNamespace(name=name, body=body)


# -- what is resolved, and where it goes


def test_one_file_per_base_network_of_the_schema_each_named_by_the_algorithm():
    assert set(pretrained.WEIGHTS) == set(BASE_NETWORKS)
    source = (ROOT / "algorithm" / "ssd" / "weights.py").read_text(encoding="utf-8")
    files = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                 if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", "") == "TORCHVISION_FILES")
    assert pretrained.WEIGHTS == {
        "vgg-16": (VGG, "https://download.pytorch.org/models/" + VGG),
        "resnet-50": ("resnet50-0676ba61.pth",
                      "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
        "mobilenet-v3-large": ("mobilenet_v3_large-8738ca79.pth",
                               "https://download.pytorch.org/models/"
                               "mobilenet_v3_large-8738ca79.pth"),
    }
    for network, (file_name, _) in pretrained.WEIGHTS.items():
        assert file_name in files[network]


def test_hash_prefix_is_what_follows_the_last_dash():
    assert pretrained.hash_prefix(VGG) == "88682ab5"
    assert pretrained.hash_prefix("resnet50-0676ba61.pth") == "0676ba61"
    assert pretrained.hash_prefix("mobilenet_v3_large-8738ca79.pth") == "8738ca79"
    for bad in ("weights.pth", "resnet50-zz.pth", "resnet50-.pth"):
        with pytest.raises(ValueError, match="no hash prefix"):
            pretrained.hash_prefix(bad)


def test_cache_folder_follows_torch_hub(tmp_path, monkeypatch):
    assert pretrained.cache_dir() == tmp_path / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", "~/th")
    assert pretrained.cache_dir() == tmp_path / "home" / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.cache_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "wins"))  # TORCH_HOME before XDG
    assert pretrained.cache_dir() == tmp_path / "wins" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert pretrained.cache_dir() == tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"


def test_download_url_is_torchvisions_unless_overridden(monkeypatch):
    monkeypatch.delenv(pretrained.BASE_URL_ENV)
    assert pretrained.weights_url("vgg-16") == "https://download.pytorch.org/models/" + VGG
    monkeypatch.setenv(pretrained.BASE_URL_ENV, "http://mirror.example/models")
    assert pretrained.weights_url("vgg-16") == "http://mirror.example/models/" + VGG


def test_unknown_base_network_is_a_usage_error():
    with pytest.raises(UsageError) as caught:
        pretrained.resolve("alexnet")
    assert str(caught.value) == ("base_network='alexnet' has no pretrained weights "
                                 "(one of: vgg-16, resnet-50, mobilenet-v3-large)")
    assert caught.value.exit_code == 2


# -- download, cache


def test_download_streams_with_progress_and_lands_in_the_cache(server, weights, environment):
    server.serve(weights.name, weights.body)
    calls = []
    path = pretrained.resolve("resnet-50", on_progress=lambda done, total: calls.append(
        (done, total)))
    assert path == environment / weights.name
    assert path.read_bytes() == weights.body
    assert sorted(p.name for p in environment.iterdir()) == [weights.name]  # no temp file left
    total = len(weights.body)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert len(calls) == 1 + -(-total // pretrained.CHUNK)  # before the first byte, each chunk
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert server.requests == ["/" + weights.name]
    assert pretrained.sha256_of(path) == hashlib.sha256(weights.body).hexdigest()


def test_download_without_a_length_reports_an_unknown_total(server, weights):
    server.serve(weights.name, weights.body, length=None)
    calls = []
    path = pretrained.resolve("resnet-50", on_progress=lambda *call: calls.append(call))
    assert path.read_bytes() == weights.body
    assert {total for _, total in calls} == {None}
    assert calls[-1][0] == len(weights.body)


def test_a_cached_file_is_used_without_a_request(server, weights):
    server.serve(weights.name, weights.body)
    first = pretrained.resolve("resnet-50")
    pretrained._DIGESTS.clear()  # as in a new process: the cached file is hashed again
    assert pretrained.resolve("resnet-50", on_progress=pytest.fail) == first
    assert server.requests == ["/" + weights.name]


def test_a_file_put_in_the_cache_by_hand_needs_no_network(weights, environment):
    environment.mkdir(parents=True)
    (environment / weights.name).write_bytes(weights.body)  # the download host is unreachable
    assert pretrained.resolve("resnet-50", download=False) == environment / weights.name
    assert pretrained.resolve("resnet-50") == environment / weights.name



def test_a_mirror_folder_by_file_url(weights, environment, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / weights.name).write_bytes(weights.body)
    monkeypatch.setenv(pretrained.BASE_URL_ENV, mirror.as_uri())
    assert pretrained.resolve("resnet-50").read_bytes() == weights.body


# -- refusals: one line each, nothing left behind


def test_a_download_failing_its_hash_check_is_refused_and_not_kept(server, weights, environment):
    server.serve(weights.name, weights.body[:-1] + b"!")
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("resnet-50")
    got = hashlib.sha256(weights.body[:-1] + b"!").hexdigest()[:8]
    expected = weights.name.split("-")[1][:8]
    assert str(caught.value) == (
        f"{weights.name} from {server.url}{weights.name} failed its hash check: its SHA-256 "
        f"starts with {got}, not {expected}; nothing was kept (try again, or put a good copy "
        f"in {environment}, {FROM_SCRATCH})")
    assert list(environment.iterdir()) == []


def test_a_wrong_file_in_the_cache_is_refused_and_left_alone(server, weights, environment):
    environment.mkdir(parents=True)
    (environment / weights.name).write_bytes(b"not the weights")
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("resnet-50")
    got = hashlib.sha256(b"not the weights").hexdigest()[:8]
    expected = weights.name.split("-")[1][:8]
    assert str(caught.value) == (
        f"{environment / weights.name} is not torchvision's {weights.name}: its SHA-256 starts "
        f"with {got}, not {expected} (delete it to download it again, {FROM_SCRATCH})")
    assert (environment / weights.name).read_bytes() == b"not the weights"
    assert server.requests == []


def test_offline_with_nothing_cached_is_one_line_naming_file_folder_url_and_the_alternative(
        environment):
    url = pretrained.weights_url("vgg-16")
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("vgg-16")
    error = caught.value
    assert str(error) == (
        f"cannot download {VGG} from {url}: Connection refused "
        f"(put {VGG} in {environment}, {FROM_SCRATCH})")
    assert (error.file_name, error.folder, error.url, error.exit_code) == (
        VGG, str(environment), url, 1)
    assert list(environment.iterdir()) == []


def test_nothing_cached_and_downloading_off(server, environment):
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("vgg-16", download=False)
    assert str(caught.value) == (
        f"{VGG} is not in {environment} and downloading is off "
        f"(download {server.url}{VGG} into that folder, {FROM_SCRATCH})")
    assert server.requests == []


@pytest.mark.parametrize(("status", "reason"), [(404, "Not Found"),
                                                (500, "Internal Server Error")])
def test_http_errors(server, weights, environment, status, reason):
    server.serve(weights.name, b"", status=status)
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("resnet-50")
    assert str(caught.value) == (
        f"cannot download {weights.name} from {server.url}{weights.name}: HTTP {status} "
        f"{reason} (put {weights.name} in {environment}, {FROM_SCRATCH})")
    assert list(environment.iterdir()) == []


def test_a_connection_that_closes_early(server, weights, environment):
    server.serve(weights.name, weights.body[:1000], length=len(weights.body))
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("resnet-50")
    assert str(caught.value).startswith(
        f"cannot download {weights.name} from {server.url}{weights.name}: the connection "
        f"closed after 1000 of {len(weights.body)} bytes (")
    assert list(environment.iterdir()) == []


def test_a_cache_folder_that_cannot_be_written(server, weights, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "a-file"))
    server.serve(weights.name, weights.body)
    folder = tmp_path / "a-file" / "hub" / "checkpoints"
    with pytest.raises(PretrainedWeightsError) as caught:
        pretrained.resolve("resnet-50")
    assert str(caught.value) == (
        f"cannot write {weights.name} to the torch hub cache {folder}: Not a directory "
        f"(set TORCH_HOME to a writable folder, or put {weights.name} in {folder}, "
        f"{FROM_SCRATCH})")
    assert server.requests == []  # refused before downloading


def test_an_interrupted_download_leaves_nothing(server, weights, environment):
    server.serve(weights.name, weights.body)

    def interrupt(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrained.resolve("resnet-50", on_progress=interrupt)
    assert list(environment.iterdir()) == []


# -- hashing and the S3 key for SageMaker jobs


def test_sha256_of_streams_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "CHUNK", 7)
    path = tmp_path / "w.pth"
    path.write_bytes(b"x" * 100)
    assert pretrained.sha256_of(path) == hashlib.sha256(b"x" * 100).hexdigest()
    copy = tmp_path / "copy.pth"
    shutil.copy(path, copy)
    assert pretrained.sha256_of(str(copy)) == pretrained.sha256_of(path)


def test_weights_key():
    sha = hashlib.sha256(b"w").hexdigest()
    assert pretrained.weights_key(sha, VGG) == f"detectctl/weights/{sha}/{VGG}"
    with pytest.raises(ValueError, match="not a SHA-256"):
        pretrained.weights_key(sha[:8], VGG)
    with pytest.raises(ValueError, match="plain file name"):
        pretrained.weights_key(sha, "a/" + VGG)


def test_module_imports_only_the_standard_library_and_errors():
    tree = ast.parse((ROOT / "detectctl" / "pretrained.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name in ("detectctl.errors", "__future__") or (
                name.split(".")[0] in sys.stdlib_module_names), name
