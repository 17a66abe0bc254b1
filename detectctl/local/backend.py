"""The local backend: the :class:`detectctl.backend.Backend` interface on this machine.

Training jobs run as local processes under a supervisor (:mod:`detectctl.local.supervisor`),
endpoints as the model server (:mod:`detectctl.local.endpoints`); they live in
``~/.detectctl/jobs`` and ``~/.detectctl/endpoints`` (``DETECTCTL_HOME`` moves ``~/.detectctl``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from detectctl.backend import LOCAL, Backend, Plan
from detectctl.endpoints import Endpoint
from detectctl.jobs import TrainingJob
from detectctl.local import endpoints as local_endpoints
from detectctl.local import training
from detectctl.local import transform as local_transform
from detectctl.local.jobs import LocalTrainingJob, list_jobs
from detectctl.local.state import home, jobs_home
from detectctl.training import TrainingRequest
from detectctl.transforms import TransformJob, TransformRequest


class LocalBackend(Backend):
    """Jobs and endpoints on this machine."""

    name = LOCAL

    def __init__(self, home: Optional[Path] = None,
                 on_download: Optional[Callable[[int, Optional[int]], None]] = None):
        self.home = home
        self.jobs_dir = home / "jobs" if home else None
        self.on_download = on_download

    def plan(self, request: TrainingRequest, *, offline: bool = False) -> training.LocalPlan:
        return training.plan(request, jobs_dir=self.jobs_dir, offline=offline,
                             on_download=self.on_download)

    def launch(self, plan: Plan,
               confirm: Callable[[str], bool] = lambda question: True) -> LocalTrainingJob:
        assert isinstance(plan, training.LocalPlan)
        job = training.launch(plan)
        return LocalTrainingJob(job.path)

    def training_job(self, name: str) -> LocalTrainingJob:
        job = LocalTrainingJob((self.jobs_dir or jobs_home()) / name)
        job.refresh()
        return job

    def training_jobs(self, *, status: Optional[str] = None,
                      name_contains: Optional[str] = None, limit: int = 20
                      ) -> list[TrainingJob]:
        return list_jobs(self.jobs_dir, status=status, name_contains=name_contains,
                         limit=limit)

    def plan_deployment(self, source: str, **options: Any) -> local_endpoints.LocalDeployPlan:
        return local_endpoints.plan(source, home_dir=self.home, **options)

    def launch_deployment(self, plan: Plan, **options: Any) -> local_endpoints.LocalEndpoint:
        assert isinstance(plan, local_endpoints.LocalDeployPlan)
        return local_endpoints.deploy(plan, **options)

    def endpoint(self, name: str) -> local_endpoints.LocalEndpoint:
        endpoint = local_endpoints.LocalEndpoint((self.home or home()) / "endpoints" / name)
        endpoint.refresh()
        return endpoint

    def endpoints(self) -> list[Endpoint]:
        return local_endpoints.list_endpoints(self.home)

    def plan_transform(self, request: TransformRequest) -> local_transform.LocalTransformPlan:
        return local_transform.plan(request, self.home)

    def launch_transform(self, plan: Plan,
                         confirm: Callable[[str], bool] = lambda question: True
                         ) -> local_transform.LocalTransformJob:
        assert isinstance(plan, local_transform.LocalTransformPlan)
        return local_transform.launch(plan)

    def transform_job(self, name: str) -> local_transform.LocalTransformJob:
        job = local_transform.LocalTransformJob((self.home or home()) / "transforms" / name)
        job.refresh()
        return job

    def transform_jobs(self, *, limit: int = 20) -> list[TransformJob]:
        return local_transform.list_jobs(self.home, limit=limit)
