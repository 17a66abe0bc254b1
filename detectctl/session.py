"""``Session``: where detectctl works: a backend (SageMaker or this machine), and for SageMaker
the AWS account, region, execution role and bucket.

    >>> import detectctl
    >>> session = detectctl.Session(backend="local")                     # doctest: +SKIP
    >>> job = session.train(train="data/train.rec", hyperparameters={"num_classes": 3})
    ... # doctest: +SKIP
    >>> job.wait()                                                       # doctest: +SKIP

    >>> session = detectctl.Session(region="us-east-1")                  # doctest: +SKIP
    >>> job = session.train(instance_type="ml.g5.xlarge", train="s3://bucket/voc/train.rec",
    ...                     hyperparameters={"num_classes": 20})        # doctest: +SKIP

The backend is the ``backend`` argument, then ``DETECTCTL_BACKEND``, then ``backend`` under
``[defaults]`` in the configuration file, then SageMaker. Training on instance type ``local``
always runs on this machine, whatever the session's backend.

Region and credentials resolve as the AWS CLI resolves them: the argument, then
``AWS_PROFILE`` / ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, then the configuration file, then
the profile. The execution role comes from the
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
from detectctl.backend import BACKENDS, LAUNCH_OPTIONS, LOCAL, LOCAL_INSTANCE, SAGEMAKER, refuse
from detectctl.errors import ConfigError, DetectctlError, NotFoundError, UsageError

if TYPE_CHECKING:
    from detectctl.aws import Aws
    from detectctl.backend import Backend, Plan
    from detectctl.endpoints import Endpoint
    from detectctl.jobs import TrainingJob
    from detectctl.training import TrainingRequest
    from detectctl.transforms import TransformJob

BACKEND_VARIABLE = "DETECTCTL_BACKEND"

# SageMaker notebook instances and Studio describe themselves in this file.
NOTEBOOK_METADATA = Path("/opt/ml/metadata/resource-metadata.json")

ROLE_HINT = ("pass --role ARN, set DETECTCTL_ROLE, or put role = \"ARN\" under [aws] in "
             "{path}; templates/sagemaker-execution-role.yaml creates a suitable role "
             "(docs/aws.md, 'Execution role')")


def backend_name(given: Optional[str], config: config_file.Config) -> str:
    """The backend to use: ``given``, else ``DETECTCTL_BACKEND``, else the configuration
    file's, else SageMaker."""
    for name, source in ((given, "--backend"), (os.environ.get(BACKEND_VARIABLE),
                                                   BACKEND_VARIABLE),
                         (config.backend, f"backend in {config.path}")):
        if name:
            if name not in BACKENDS:
                raise ConfigError(f"{source}: unknown backend {name!r}",
                                  hint="one of " + ", ".join(BACKENDS))
            return name
    return SAGEMAKER


class Session:
    """Where detectctl works: a backend, and for SageMaker the AWS account, region, role and
    bucket. Nothing is called until something needs it."""

    def __init__(self, backend: Optional[str] = None, *, profile: Optional[str] = None,
                 region: Optional[str] = None, role: Optional[str] = None,
                 bucket: Optional[str] = None, config: Optional[config_file.Config] = None):
        self.config = config if config is not None else config_file.load()
        self.backend_name = backend_name(backend, self.config)
        if self.backend_name == LOCAL:
            refuse(LOCAL, {"--profile": profile, "--region": region, "--role": role,
                           "--bucket": bucket})
        self._backends: dict[str, Backend] = {}
        #: called with (bytes done, bytes in all) while pretrained weights download
        self.on_download: Optional[Callable[[int, Optional[int]], None]] = None
        environ = os.environ
        self.profile = profile or environ.get("AWS_PROFILE") or self.config.profile
        self._region = (region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
                        or self.config.region)
        self._role = role or os.environ.get("DETECTCTL_ROLE") or self.config.role
        self._bucket = bucket or os.environ.get("DETECTCTL_BUCKET") or self.config.bucket

    def __repr__(self) -> str:
        if self.backend_name == LOCAL:
            return "Session(backend='local')"
        region = self._region or "(profile's region)"
        return f"Session(profile={self.profile!r}, region={region!r})"

    @classmethod
    def from_sagemaker(cls, sagemaker_session: Any, *, role: Optional[str] = None,
                       config: Optional[config_file.Config] = None) -> Session:
        """A SageMaker session that works where ``sagemaker_session`` (the sagemaker SDK's,
        3.x) works: on its boto3 session (so its credentials and region), with its default
        bucket, and with the execution role ``role``, else the configured one
        (``DETECTCTL_ROLE``, the configuration file), else the one the SDK finds
        (``get_execution_role``: the notebook's role, or the role making the calls).

            >>> from sagemaker.core.helper.session_helper import Session as SageMakerSession
            ... # doctest: +SKIP
            >>> session = detectctl.Session.from_sagemaker(SageMakerSession())  # doctest: +SKIP

        Needs ``pip install 'detectctl[sagemaker]'``; see :mod:`detectctl.sagemaker.bridge`.
        """
        from detectctl.sagemaker import bridge

        borrowed = bridge.borrow(sagemaker_session)
        session = cls(SAGEMAKER, region=borrowed.region, role=role, bucket=borrowed.bucket,
                      config=config)
        session.profile = borrowed.aws.profile
        session.aws = borrowed.aws
        if session._role is None:
            session._role = bridge.execution_role(sagemaker_session)
        return session

    # --- backends --------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The session's backend."""
        return self.get_backend(self.backend_name)

    def get_backend(self, name: str) -> Backend:
        if name not in self._backends:
            if name == LOCAL:
                from detectctl.local.backend import LocalBackend

                self._backends[name] = LocalBackend(on_download=self._download_progress)
            else:
                from detectctl.sagemaker.backend import SageMakerBackend

                self._backends[name] = SageMakerBackend(self)
        return self._backends[name]

    def _download_progress(self, done: int, total: Optional[int]) -> None:
        if self.on_download is not None:
            self.on_download(done, total)

    def backend_for(self, instance_type: str) -> Backend:
        """The backend that runs ``instance_type``: this machine for ``local``."""
        if instance_type == LOCAL_INSTANCE:
            return self.get_backend(LOCAL)
        if self.backend_name == LOCAL:
            raise UsageError(f"instance type {instance_type!r} on the local backend",
                             hint="the local backend runs instance type local; use a "
                                  "SageMaker session (--backend sagemaker) for "
                                  f"{instance_type}")
        return self.backend

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

    # --- training ----------------------------------------------------------------------------

    def training_request(self, **options: Any) -> TrainingRequest:
        """Check a job's options (see :func:`detectctl.training.training_request`); the
        instance type defaults to ``local`` on the local backend."""
        from detectctl.training import training_request

        if self.backend_name == LOCAL:
            options.setdefault("instance_type", LOCAL_INSTANCE)
        elif "instance_type" not in options:
            raise UsageError("instance_type is required on SageMaker",
                             hint="e.g. ml.g5.xlarge; `detectctl instances --gpu` lists them")
        return training_request(**options)

    def plan(self, *, offline: bool = False, **options: Any) -> Plan:
        """Resolve a training job on the backend for its instance type, without starting it;
        ``offline`` (a dry run) reads nothing remote."""
        request = self.training_request(**options)
        return self.backend_for(request.instance_type).plan(request, offline=offline)

    def launch(self, plan: Plan,
               confirm: Callable[[str], bool] = lambda question: True) -> TrainingJob:
        """Start a planned job; ``confirm`` is asked before anything is created."""
        return self.get_backend(plan.backend).launch(plan, confirm)

    def train(self, **options: Any) -> TrainingJob:
        """Launch a training job (see :func:`detectctl.training.training_request` for the
        options); the job runs on when this returns: ``job.wait()`` waits for it."""
        return self.launch(self.plan(**options))

    def model_trainer(self, plan: Plan,
                      confirm: Callable[[str], bool] = lambda question: True) -> Any:
        """A planned SageMaker job (:meth:`plan`) as the sagemaker SDK's ``ModelTrainer``,
        configured the same way; ``trainer.train()`` starts it. Uploads what the job needs
        first, as :meth:`launch` would (see :mod:`detectctl.sagemaker.model_trainer`).
        Needs ``pip install 'detectctl[sagemaker]'``."""
        from detectctl.sagemaker.model_trainer import model_trainer

        return model_trainer(self, plan, confirm)

    def training_job(self, name: str) -> TrainingJob:
        """A handle on an existing training job."""
        return self.backend.training_job(name)

    def training_jobs(self, **filters: Any) -> list[TrainingJob]:
        """Recent training jobs, newest first (``status``, ``name_contains``, ``limit``)."""
        return self.backend.training_jobs(**filters)

    # --- batch transform ---------------------------------------------------------------------

    def plan_transform(self, source: Any, **options: Any) -> Plan:
        """Resolve a batch transform of ``source`` (a job, its name or a model archive) on the
        backend for ``instance_type`` (see :func:`detectctl.transforms.transform_request`)."""
        from detectctl.transforms import transform_request

        if self.backend_name == LOCAL:
            options.setdefault("instance_type", LOCAL_INSTANCE)
        elif "instance_type" not in options:
            raise UsageError("instance_type is required on SageMaker",
                             hint="e.g. ml.c5.xlarge; `detectctl instances` lists them")
        request = transform_request(source=getattr(source, "name", source), **options)
        return self.backend_for(request.instance_type).plan_transform(request)

    def launch_transform(self, plan: Plan,
                         confirm: Callable[[str], bool] = lambda question: True
                         ) -> TransformJob:
        return self.get_backend(plan.backend).launch_transform(plan, confirm)

    def transform(self, source: Any, **options: Any) -> TransformJob:
        """Start a batch transform job; it runs on: ``job.wait()`` waits for it."""
        return self.launch_transform(self.plan_transform(source, **options))

    def transform_job(self, name: str) -> TransformJob:
        return self.backend.transform_job(name)

    def transform_jobs(self, **filters: Any) -> list[TransformJob]:
        return self.backend.transform_jobs(**filters)

    # --- serving -----------------------------------------------------------------------------

    def endpoint(self, name: str) -> Endpoint:
        """A handle on an existing endpoint."""
        return self.backend.endpoint(name)

    def endpoints(self) -> list[Endpoint]:
        return self.backend.endpoints()

    def plan_deployment(self, source: Any, **options: Any) -> Plan:
        """Resolve serving ``source`` (a :class:`TrainingJob`, a job's name or a model archive)
        on the backend for ``instance_type``."""
        if self.backend_name == LOCAL:
            options.setdefault("instance_type", LOCAL_INSTANCE)
        elif "instance_type" not in options:
            raise UsageError("instance_type is required on SageMaker",
                             hint="e.g. ml.c5.xlarge; `detectctl instances` lists them")
        backend = self.backend_for(options["instance_type"])
        return backend.plan_deployment(getattr(source, "name", source), **options)

    def launch_deployment(self, plan: Plan, **options: Any) -> Endpoint:
        return self.get_backend(plan.backend).launch_deployment(plan, **options)

    def deploy(self, source: Any, **options: Any) -> Endpoint:
        """Serve a job's model or a model archive; the endpoint once it answers."""
        launch = {k: options.pop(k) for k in LAUNCH_OPTIONS if k in options}
        return self.launch_deployment(self.plan_deployment(source, **options), **launch)
