"""The backend interface: what every place that runs jobs and endpoints offers.

Two implementations: :class:`detectctl.sagemaker.backend.SageMakerBackend` (SageMaker, S3 and
CloudWatch through boto3) and :class:`detectctl.local.backend.LocalBackend` (processes on this
machine). A :class:`detectctl.session.Session` picks one; the handles they return
(:class:`detectctl.jobs.TrainingJob`, :class:`detectctl.endpoints.Endpoint`) have the same
methods whichever made them.

An option a backend cannot honour is refused, never ignored, through :func:`refuse`: one line
naming the option and the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from detectctl.errors import UsageError

if TYPE_CHECKING:
    from detectctl.detections import Detection
    from detectctl.endpoints import Endpoint
    from detectctl.jobs import TrainingJob
    from detectctl.logs import JobLogs
    from detectctl.training import TrainingRequest
    from detectctl.transforms import TransformJob, TransformRequest

SAGEMAKER = "sagemaker"
LOCAL = "local"
BACKENDS = (SAGEMAKER, LOCAL)
# The instance type that means "this machine" (the sagemaker SDK's local mode uses the same).
LOCAL_INSTANCE = "local"


def refuse(backend: str, options: Mapping[str, Any]) -> None:
    """Raise a usage error for the first option in ``options`` (name -> value) that was given
    (not None, not False, not empty): ``backend`` does not support it."""
    for option, value in options.items():
        if value not in (None, False, (), [], {}):
            raise UsageError(f"{option} does not apply to the {backend} backend",
                             hint=_HINTS.get(backend))


def not_available(what: str, backend: str, hint: Optional[str] = None) -> UsageError:
    """The error for an operation a backend does not offer."""
    return UsageError(f"{what} is not available on the {backend} backend", hint=hint)


# deploy()'s options that go to launching the endpoint, not to planning it.
LAUNCH_OPTIONS = ("wait", "timeout", "poll", "keep_on_failure")
_HINTS = {LOCAL: "the local backend runs on this machine: no AWS account, role, bucket or "
                 "region, and no SageMaker-only job settings"}


class Plan(ABC):
    """A backend's resolved job or deployment: what will run, shown before it does."""

    #: the name of the backend that made the plan (and launches it)
    backend: str = ""

    @property
    @abstractmethod
    def name(self) -> str:
        """The job's or endpoint's name."""

    @abstractmethod
    def summary(self) -> list[tuple[str, str]]:
        """Label/value rows for the confirmation screen."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """What ``--dry-run`` prints: exactly what will be sent or written."""

    @property
    def notes(self) -> tuple[str, ...]:
        """Things worth saying before launch (what was left unchecked, defaults taken)."""
        return ()

    @property
    def confirm(self) -> bool:
        """Whether launching costs money, so the CLI asks first."""
        return False

    @property
    def question(self) -> str:
        """What the CLI asks before launching (when :attr:`confirm`)."""
        return f"Launch {self.name}?"

    @property
    def wait_hint(self) -> str:
        """How long launching usually takes, in words."""
        return "a few seconds"


class Backend(ABC):
    """Where training jobs and endpoints run."""

    name: str

    # --- training --------------------------------------------------------------------------

    @abstractmethod
    def plan(self, request: TrainingRequest, *, offline: bool = False) -> Plan:
        """Resolve ``request`` for this backend; ``offline`` (dry runs) reads nothing remote."""

    @abstractmethod
    def launch(self, plan: Plan,
               confirm: Callable[[str], bool] = lambda question: True) -> TrainingJob:
        """Start the planned job; ``confirm`` is asked before anything else is created."""

    def train(self, request: TrainingRequest) -> TrainingJob:
        """Plan and launch ``request``."""
        return self.launch(self.plan(request))

    @abstractmethod
    def training_job(self, name: str) -> TrainingJob:
        """A handle on an existing job (``NotFoundError`` when there is none)."""

    @abstractmethod
    def training_jobs(self, *, status: Optional[str] = None,
                      name_contains: Optional[str] = None,
                      limit: int = 20) -> list[TrainingJob]:
        """Recent jobs, newest first."""

    def logs(self, name: str, **options: Any) -> JobLogs:
        """A job's log events (see :meth:`TrainingJob.logs`)."""
        return self.training_job(name).logs(**options)

    def stop(self, name: str) -> None:
        self.training_job(name).stop()

    # --- serving ---------------------------------------------------------------------------

    @abstractmethod
    def plan_deployment(self, source: str, **options: Any) -> Plan:
        """Resolve serving ``source`` (a job's name or a model archive)."""

    @abstractmethod
    def launch_deployment(self, plan: Plan, **options: Any) -> Endpoint:
        """Create the planned endpoint; it answers when this returns (unless told not to
        wait)."""

    def deploy(self, source: str, **options: Any) -> Endpoint:
        """Serve a job's model or a model archive (plan, then launch)."""
        launch = {k: options.pop(k) for k in LAUNCH_OPTIONS if k in options}
        return self.launch_deployment(self.plan_deployment(source, **options), **launch)

    @abstractmethod
    def endpoint(self, name: str) -> Endpoint:
        """A handle on an existing endpoint."""

    @abstractmethod
    def endpoints(self) -> list[Endpoint]:
        """Endpoints, newest first."""

    # --- batch transform ---------------------------------------------------------------------

    @abstractmethod
    def plan_transform(self, request: TransformRequest) -> Plan:
        """Resolve a batch transform for this backend."""

    @abstractmethod
    def launch_transform(self, plan: Plan,
                         confirm: Callable[[str], bool] = lambda question: True
                         ) -> TransformJob:
        """Start the planned transform job."""

    @abstractmethod
    def transform_job(self, name: str) -> TransformJob:
        """A handle on an existing transform job."""

    @abstractmethod
    def transform_jobs(self, *, limit: int = 20) -> list[TransformJob]:
        """Recent transform jobs, newest first."""

    def predict(self, endpoint: str, image: Union[bytes, str, Path],
                **options: Any) -> list[Detection]:
        return self.endpoint(endpoint).predict(image, **options)
