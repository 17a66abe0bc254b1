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
