"""The bridge to the sagemaker SDK (3.x), for notebooks that use both.

- :func:`borrow`: what a detectctl session takes from a sagemaker session (its boto3 session,
  so its credentials and region; its default bucket), for :meth:`Session.from_sagemaker
  <detectctl.session.Session.from_sagemaker>`; :func:`execution_role` the role the SDK finds.
- :func:`training_job_resource`, :func:`endpoint_resource`: the sagemaker-core resources
  (``sagemaker.core.resources.TrainingJob`` / ``Endpoint``) of a detectctl job or endpoint,
  for ``to_sagemaker()`` on the handles.
- :mod:`detectctl.sagemaker.model_trainer` (beside the training plan it converts): a plan as a
  ``sagemaker.train.ModelTrainer``.

The sagemaker SDK (``pip install 'detectctl[sagemaker]'``) is imported only by these functions:
it takes seconds to import and detectctl does not need it. v3 has no Estimator, Model or
Predictor; these are what replaced them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from detectctl.aws import Aws
from detectctl.aws.errors import translated
from detectctl.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from detectctl.session import Session

INSTALL_HINT = "pip install 'detectctl[sagemaker]' (the sagemaker SDK 3.x)"


def import_sagemaker(module: str) -> Any:
    """A module of the sagemaker SDK, or a ``MissingDependencyError`` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the sagemaker SDK is not installed ({module}: {exc})", hint=INSTALL_HINT) from None


class BorrowedAws(Aws):
    """detectctl's AWS adaptor on a sagemaker session's boto3 session: its credentials (an
    assumed role, SSO, a profile, keys given in code) and its region."""

    def __init__(self, sagemaker_session: Any):
        boto_session = getattr(sagemaker_session, "boto_session", None)
        if boto_session is None or not hasattr(boto_session, "client"):
            raise UsageError(f"{type(sagemaker_session).__name__} is not a sagemaker SDK "
                             "session (it has no boto_session)",
                             hint="pass a sagemaker.core.helper.session_helper.Session")
        self.sagemaker_session = sagemaker_session
        self._session = boto_session
        self.profile = boto_session.profile_name
        self._clients: dict[str, Any] = {}


@dataclass(frozen=True)
class Borrowed:
    """What a detectctl session takes from a sagemaker session."""

    aws: BorrowedAws
    region: str
    bucket: str


def borrow(sagemaker_session: Any) -> Borrowed:
    """The boto3 session (as an adaptor), region and default bucket of ``sagemaker_session``.
    ``default_bucket()`` is the SDK's: it creates ``sagemaker-<region>-<account>`` when that
    bucket does not exist yet, as any sagemaker SDK call needing it would."""
    aws = BorrowedAws(sagemaker_session)
    with translated("s3", "default_bucket"):
        bucket = sagemaker_session.default_bucket()
    return Borrowed(aws, aws.region, bucket)


def execution_role(sagemaker_session: Any) -> Optional[str]:
    """The execution role the sagemaker SDK finds (``get_execution_role``: the notebook's role,
    or the role whose credentials make the calls); None when the caller is not a role."""
    helper = import_sagemaker("sagemaker.core.helper.session_helper")
    with translated("sts", "get_execution_role"):
        try:
            return helper.get_execution_role(sagemaker_session)
        except ValueError:  # "The current AWS identity is not a role"
            return None


def boto_session(session: Session) -> Any:
    """The boto3 session under a detectctl session's AWS adaptor."""
    return session.aws._session


def sagemaker_session(session: Session) -> Any:
    """A sagemaker SDK session for ``session``: the one it was made from, or one on the same
    boto3 session with the same default bucket."""
    if isinstance(session.aws, BorrowedAws):
        return session.aws.sagemaker_session
    helper = import_sagemaker("sagemaker.core.helper.session_helper")
    return helper.Session(boto_session=boto_session(session), default_bucket=session.bucket)


# --- sagemaker-core resources --------------------------------------------------------------

def training_job_resource(session: Session, name: str) -> Any:
    """``sagemaker.core.resources.TrainingJob`` for the job ``name``."""
    resources = import_sagemaker("sagemaker.core.resources")
    with translated("sagemaker", "DescribeTrainingJob"):
        return resources.TrainingJob.get(training_job_name=name, session=boto_session(session),
                                         region=session.region)


def endpoint_resource(session: Session, name: str) -> Any:
    """``sagemaker.core.resources.Endpoint`` for the endpoint ``name``."""
    resources = import_sagemaker("sagemaker.core.resources")
    with translated("sagemaker", "DescribeEndpoint"):
        return resources.Endpoint.get(endpoint_name=name, session=boto_session(session),
                                      region=session.region)
