"""The AWS adaptor: the only package in detectctl that imports boto3, and only when it is used.

``Aws`` holds one boto3 session (profile and region resolved the way the AWS CLI resolves them;
``AWS_ENDPOINT_URL`` is honoured by botocore itself, so a moto server works) and sends requests
through three verbs, each translating AWS errors into detectctl's exceptions:

    aws.call("sagemaker", "describe_training_job", TrainingJobName=name)
    aws.paginate("logs", "describe_log_streams", "logStreams", logGroupName=group)
    aws.wait("sagemaker", "endpoint_in_service", timeout=1800, EndpointName=name)

The requests themselves are built by the pure functions in :mod:`detectctl.aws.requests`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from detectctl import __version__
from detectctl.aws.errors import translated
from detectctl.errors import ConfigError, MissingDependencyError, WaitTimeoutError

# Standard mode retries throttling and transient errors with jittered exponential backoff;
# adaptive mode adds client-side rate limiting, right for the log poller's bursts of calls.
RETRY_MODES = {"logs": "adaptive"}
MAX_ATTEMPTS = 8
T = TypeVar("T")


def import_boto3() -> Any:
    """The boto3 module, or a ``MissingDependencyError`` saying how to install it."""
    try:
        import boto3
    except ImportError:
        raise MissingDependencyError(
            "boto3 is not installed; the AWS commands need it",
            hint="pip install boto3 (it comes with `pip install detectctl`)") from None
    return boto3


class Aws:
    """A boto3 session and its clients, created on first use."""

    def __init__(self, *, profile: str | None = None, region: str | None = None):
        boto3 = import_boto3()
        from botocore.exceptions import ProfileNotFound

        try:
            self._session = boto3.session.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise ConfigError(f"AWS profile {profile!r} not found",
                              hint="see `aws configure list-profiles`") from None
        self.profile = profile
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        region = self._session.region_name
        if not region:
            raise ConfigError(
                "no AWS region configured",
                hint="pass --region, set AWS_REGION, or run `aws configure set region REGION`")
        return region

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (one per service, with detectctl's retry policy)."""
        if service not in self._clients:
            from botocore.config import Config

            config = Config(
                retries={"mode": RETRY_MODES.get(service, "standard"),
                         "max_attempts": MAX_ATTEMPTS},
                user_agent_extra=f"detectctl/{__version__}",
            )
            with translated(service, "client"):
                self._clients[service] = self._session.client(
                    service, region_name=self.region, config=config)
        return self._clients[service]

    def call(self, service: str, operation: str, **request: Any) -> dict[str, Any]:
        """Send one request: ``operation`` is the boto3 method name (snake_case)."""
        method = getattr(self.client(service), operation)
        with translated(service, operation):
            return method(**request)

    def paginate(self, service: str, operation: str, key: str, *, max_items: int | None = None,
                 **request: Any) -> Iterator[dict[str, Any]]:
        """The items under ``key`` of every page of a paginated operation."""
        paginator = self.client(service).get_paginator(operation)
        config = {"MaxItems": max_items} if max_items else {}
        with translated(service, operation):
            for page in paginator.paginate(PaginationConfig=config, **request):
                yield from page.get(key, [])

    def wait(self, service: str, waiter: str, *, timeout: float, delay: float = 15,
             **request: Any) -> bool:
        """Wait with a botocore waiter; ``False`` when it reached a failure state.

        Raises ``WaitTimeoutError`` after ``timeout`` seconds. The caller describes the
        resource afterwards to say what happened.
        """
        from botocore.exceptions import WaiterError

        attempts = max(1, math.ceil(timeout / delay) + 1)
        target = self.client(service).get_waiter(waiter)
        with translated(service, waiter):
            try:
                target.wait(WaiterConfig={"Delay": delay, "MaxAttempts": attempts}, **request)
            except WaiterError as exc:
                if "Max attempts exceeded" in str(exc):
                    raise WaitTimeoutError(f"still waiting after {timeout:g} s") from None
                if "terminal failure state" in str(exc):
                    return False
                raise
        return True

    def read_object(self, bucket: str, key: str, read: Callable[[IO[bytes]], T]) -> T:
        """``read(stream)`` of an S3 object's body: what ``read`` leaves unread is never
        downloaded."""
        with translated("s3", "GetObject"):
            body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return read(body)
            finally:
                body.close()

    def upload_files(self, files: Sequence[tuple[Path | bytes, str]], bucket: str, *,
                     extra_args: dict[str, Any], concurrency: int,
                     on_bytes: Callable[[int], None], on_file: Callable[[], None]) -> None:
        """Parallel multipart uploads (see :func:`detectctl.aws.transfer.upload_files`)."""
        from detectctl.aws.transfer import upload_files

        upload_files(self.client("s3"), files, bucket, extra_args=extra_args,
                     concurrency=concurrency, on_bytes=on_bytes, on_file=on_file)
