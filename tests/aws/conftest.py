"""Fixtures for the AWS control plane: fake credentials, moto in-process, a moto server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.aws.support import BUCKET, REGION, ROLE, fake_weights, make_role


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, an empty detectctl config and cache; nothing from the developer's
    machine."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "DETECTCTL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("DETECTCTL_CONFIG", str(tmp_path / "detectctl.toml"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DETECTCTL_HOME", str(tmp_path / "detectctl-home"))


@pytest.fixture(autouse=True)
def weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """torchvision's weights "cached" (small stand-ins), nothing ever downloaded."""
    return fake_weights(monkeypatch, tmp_path / "torch")


@pytest.fixture
def moto():
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def session(moto):
    """A Session in moto's account with a role and the default bucket."""
    import boto3

    from detectctl.session import Session

    make_role()
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    return Session(region=REGION, role=ROLE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server():
    """``moto_server`` on 127.0.0.1 at a free port; yields its URL."""
    port = _free_port()
    executable = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen([str(executable), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
