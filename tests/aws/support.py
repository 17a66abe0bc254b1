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
