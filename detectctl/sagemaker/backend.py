"""The SageMaker backend: the :class:`detectctl.backend.Backend` interface on SageMaker."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from detectctl.backend import SAGEMAKER, Backend
from detectctl.sagemaker import endpoints, jobs, training, transform

if TYPE_CHECKING:
    from detectctl.session import Session
    from detectctl.training import TrainingRequest
    from detectctl.transforms import TransformJob, TransformRequest


class SageMakerBackend(Backend):
    """Jobs and endpoints in the session's AWS account and region."""

    name = SAGEMAKER

    def __init__(self, session: Session):
        self.session = session

    def plan(self, request: TrainingRequest, *, offline: bool = False) -> training.TrainingPlan:
        return training.plan(self.session, request, offline=offline)

    def launch(self, plan: training.TrainingPlan,  # type: ignore[override]
               confirm: Callable[[str], bool] = lambda question: True
               ) -> jobs.SageMakerTrainingJob:
        return training.launch(self.session, plan, confirm)

    def training_job(self, name: str) -> jobs.SageMakerTrainingJob:
        return jobs.SageMakerTrainingJob(self.session, name)

    def training_jobs(self, *, status: Optional[str] = None,
                      name_contains: Optional[str] = None,
                      limit: int = 20) -> list[jobs.TrainingJob]:
        return jobs.list_jobs(self.session, status=status, name_contains=name_contains,
                              limit=limit)

    def plan_deployment(self, source: str, **options: Any) -> endpoints.DeployPlan:
        return endpoints.plan(self.session, source, **options)

    def launch_deployment(self, plan: endpoints.DeployPlan,  # type: ignore[override]
                          **options: Any) -> endpoints.SageMakerEndpoint:
        return endpoints.deploy(self.session, plan, **options)

    def endpoint(self, name: str) -> endpoints.SageMakerEndpoint:
        return endpoints.SageMakerEndpoint(self.session, name)

    def endpoints(self) -> list[endpoints.SageMakerEndpoint]:  # type: ignore[override]
        return endpoints.list_endpoints(self.session)

    def plan_transform(self, request: TransformRequest) -> transform.TransformPlan:
        return transform.plan(self.session, request)

    def launch_transform(self, plan: transform.TransformPlan,  # type: ignore[override]
                         confirm: Callable[[str], bool] = lambda question: True
                         ) -> transform.SageMakerTransformJob:
        return transform.launch(self.session, plan, confirm)

    def transform_job(self, name: str) -> transform.SageMakerTransformJob:
        return transform.SageMakerTransformJob(self.session, name)

    def transform_jobs(self, *, limit: int = 20) -> list[TransformJob]:
        return transform.list_jobs(self.session, limit=limit)
