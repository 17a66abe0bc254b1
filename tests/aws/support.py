"""Names shared by the AWS tests: moto's account, the role and the default bucket."""

from __future__ import annotations

import json

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_NAME = "detectctl-sagemaker"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


def make_role(trust: dict = TRUST) -> None:
    import boto3

    boto3.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))


def model_archive(classes: list | None, *, weights: bytes = b"weights") -> bytes:
    """A model.tar.gz as training writes it: classes.json (when given) first, then weights."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = [("model.pt", weights), ("code/inference.py", b"")]
        if classes is not None:
            members.insert(0, ("classes.json", json.dumps({"classes": classes}).encode()))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def fake_weights(monkeypatch, folder) -> dict[str, str]:
    """torchvision's weights files stood in for by small files in ``folder`` (TORCH_HOME), each
    named with the hash prefix of its content as torchvision names them; the download host a
    closed port. Returns base network -> file name."""
    import hashlib
    import socket

    from detectctl import pretrained

    checkpoints = folder / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    names = {}
    for network, (real, url) in list(pretrained.WEIGHTS.items()):
        body = f"stand-in for {real}".encode()
        name = f"{real.rsplit('-', 1)[0]}-{hashlib.sha256(body).hexdigest()[:8]}.pth"
        (checkpoints / name).write_bytes(body)
        monkeypatch.setitem(pretrained.WEIGHTS, network, (name, url.rsplit("/", 1)[0] + "/" + name))
        names[network] = name
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TORCH_HOME", str(folder))
    monkeypatch.setenv(pretrained.BASE_URL_ENV, f"http://127.0.0.1:{port}/")
    return names
