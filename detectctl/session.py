"""``Session``: the AWS account, region, execution role and bucket that detectctl works in.

    >>> import detectctl
    >>> session = detectctl.Session(region="us-east-1")        # doctest: +SKIP
    >>> job = session.train(instance_type="ml.g5.xlarge", train="s3://bucket/voc/train.rec",
    ...                     hyperparameters={"num_classes": 20})  # doctest: +SKIP
    >>> job.wait()                                               # doctest: +SKIP

Region and credentials resolve as the AWS CLI resolves them. The execution role comes from the
``role`` argument, then ``DETECTCTL_ROLE``, then the configuration file, then the notebook this
runs in (a SageMaker notebook instance or Studio). The bucket is the configured one or the
SageMaker convention ``sagemaker-<region>-<account>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from detectctl import config as config_file
from detectctl.errors import ConfigError, DetectctlError, NotFoundError

if TYPE_CHECKING:
    from detectctl.aws import Aws
    from detectctl.endpoints import Endpoint
    from detectctl.jobs import TrainingJob

# SageMaker notebook instances and Studio describe themselves in this file.
NOTEBOOK_METADATA = Path("/opt/ml/metadata/resource-metadata.json")

ROLE_HINT = ("pass --role ARN, set DETECTCTL_ROLE, or put role = \"ARN\" under [aws] in "
             "{path}; templates/sagemaker-execution-role.yaml creates a suitable role "
             "(docs/aws.md, 'Execution role')")


class Session:
    """The AWS account, region, role and bucket detectctl works in. Nothing is called until
    something needs it."""

    def __init__(self, *, profile: Optional[str] = None, region: Optional[str] = None,
                 role: Optional[str] = None, bucket: Optional[str] = None,
                 config: Optional[config_file.Config] = None):
        self.config = config if config is not None else config_file.load()
        self.profile = profile or self.config.profile
        self._region = region or self.config.region
        self._role = role or os.environ.get("DETECTCTL_ROLE") or self.config.role
        self._bucket = bucket or os.environ.get("DETECTCTL_BUCKET") or self.config.bucket

    def __repr__(self) -> str:
        region = self._region or "(profile's region)"
        return f"Session(profile={self.profile!r}, region={region!r})"

    @cached_property
    def aws(self) -> Aws:
        from detectctl.aws import Aws

        return Aws(profile=self.profile, region=self._region)

    @property
    def region(self) -> str:
        return self.aws.region

    @cached_property
    def identity(self) -> dict[str, Any]:
        """STS GetCallerIdentity: ``Account``, ``Arn``, ``UserId``."""
        return self.aws.call("sts", "get_caller_identity")

    @property
    def account(self) -> str:
        return str(self.identity["Account"])

    @property
    def configured_role(self) -> Optional[str]:
        """The role given by argument, environment or file (no AWS call)."""
        return self._role

    @cached_property
    def role(self) -> str:
        """The SageMaker execution role ARN, or a ``ConfigError`` saying how to set one."""
        if self._role:
            return self._role
        found = self._notebook_role()
        if found:
            return found
        path = self.config.path or config_file.config_path()
        raise ConfigError("no SageMaker execution role configured",
                          hint=ROLE_HINT.format(path=path))

    def _notebook_role(self) -> Optional[str]:
        try:
            meta = json.loads(NOTEBOOK_METADATA.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if "DomainId" not in meta:
            name = meta.get("ResourceName")
            if not name:
                return None
            found = self.aws.call("sagemaker", "describe_notebook_instance",
                                  NotebookInstanceName=name)
            return found.get("RoleArn")
        domain = meta["DomainId"]
        if meta.get("UserProfileName"):
            profile = self.aws.call("sagemaker", "describe_user_profile", DomainId=domain,
                                    UserProfileName=meta["UserProfileName"])
            role = profile.get("UserSettings", {}).get("ExecutionRole")
            if role:
                return role
        found = self.aws.call("sagemaker", "describe_domain", DomainId=domain)
        return found.get("DefaultUserSettings", {}).get("ExecutionRole")

    @property
    def configured_bucket(self) -> Optional[str]:
        return self._bucket

    @cached_property
    def bucket(self) -> str:
        """The bucket for source archives, outputs and uploads."""
        return self._bucket or f"sagemaker-{self.region}-{self.account}"

    def bucket_exists(self, bucket: Optional[str] = None) -> bool:
        try:
            self.aws.call("s3", "head_bucket", Bucket=bucket or self.bucket)
        except NotFoundError:
            return False
        return True

    def ensure_bucket(self, confirm: Callable[[str], bool]) -> str:
        """The bucket, created (private, in this region) if missing and ``confirm`` agrees."""
        from detectctl.aws.requests import bucket_request

        bucket = self.bucket
        if self.bucket_exists(bucket):
            return bucket
        if not confirm(f"Create bucket s3://{bucket} in {self.region}?"):
            raise DetectctlError(f"bucket s3://{bucket} does not exist",
                                 hint="create it, or set bucket under [aws] in the config file")
        self.aws.call("s3", "create_bucket", **bucket_request(bucket, self.region))
        self.aws.call("s3", "put_public_access_block", Bucket=bucket,
                      PublicAccessBlockConfiguration={
                          "BlockPublicAcls": True, "IgnorePublicAcls": True,
                          "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        return bucket

    def training_job(self, name: str) -> TrainingJob:
        """A handle on an existing training job."""
        from detectctl.jobs import TrainingJob

        return TrainingJob(self, name)

    def training_jobs(self, **filters: Any) -> list[TrainingJob]:
        """Recent training jobs, newest first (see :func:`detectctl.jobs.list_jobs`)."""
        from detectctl.jobs import list_jobs

        return list_jobs(self, **filters)

    def train(self, **options: Any) -> TrainingJob:
        """Launch a training job (see :func:`detectctl.training.plan` for the options)."""
        from detectctl.training import launch, plan

        return launch(self, plan(self, **options))

    def endpoint(self, name: str) -> Endpoint:
        """A handle on an existing endpoint."""
        from detectctl.endpoints import Endpoint

        return Endpoint(self, name)

    def endpoints(self) -> list[Endpoint]:
        from detectctl.endpoints import list_endpoints

        return list_endpoints(self)

    def deploy(self, source: str, **options: Any) -> Endpoint:
        """Deploy a job's model or a model.tar.gz (see :func:`detectctl.endpoints.plan`)."""
        from detectctl.endpoints import deploy, plan

        return deploy(self, plan(self, source, **options))
