"""The instance catalog: what each SageMaker instance type offers and costs, and its images.

The data lives beside this module (``data/instances.json``, ``data/framework_images.json``).
GPU generations differ in CUDA compute capability, and PyTorch builds drop old ones: P2's K80
(sm_37) runs only images up to PyTorch 1.12, P3's V100 (sm_70) none built for CUDA 13. So the
framework image is chosen per GPU architecture, not per region alone; ``docs/instances.md``
records the evidence for each mapping.

    >>> from detectctl import instances
    >>> instances.get("ml.p3.8xlarge").gpus
    4
    >>> instances.training_image("ml.p2.xlarge", "us-east-1")
    '763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:1.12.1-gpu-py38'
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from detectctl.errors import InstanceTypeError

TRAINING = "training"
INFERENCE = "inference"

GPU_FAMILIES_FOR_TRAINING = "P2, P3, G4dn, G5, G6, P4d, P5"


@dataclass(frozen=True)
class InstanceType:
    """One SageMaker instance type.

    ``gpu_memory_gib`` is per GPU; ``compute_capability`` is the CUDA architecture ("7.0");
    ``price_per_hour`` is the on-demand list price in USD in :data:`PRICE_REGION`.
    """

    name: str
    vcpus: int
    memory_gib: float
    gpus: int
    price_per_hour: float
    gpu_model: str | None = None
    gpu_memory_gib: float | None = None
    compute_capability: str | None = None

    @property
    def family(self) -> str:
        return self.name.split(".")[1]

    @property
    def has_gpu(self) -> bool:
        return self.gpus > 0

    @property
    def can_train(self) -> bool:
        return self.has_gpu

    @property
    def can_host(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "family": self.family, "vcpus": self.vcpus,
            "memory_gib": self.memory_gib, "gpus": self.gpus, "gpu_model": self.gpu_model,
            "gpu_memory_gib": self.gpu_memory_gib, "compute_capability": self.compute_capability,
            "price_per_hour": self.price_per_hour, "price_region": PRICE_REGION,
            "price_as_of": PRICE_AS_OF, "training": self.can_train, "hosting": self.can_host,
        }


@dataclass(frozen=True)
class FrameworkImage:
    """A SageMaker PyTorch framework image and the GPU architectures its torch build targets."""

    scope: str
    version: str
    python: str
    cuda: str
    targets: tuple[str, ...]
    cpu: bool
    registries: dict[str, str]

    def runs_on(self, compute_capability: str) -> bool:
        """True when a cubin in the image runs natively on that architecture.

        A cubin built for X.y runs on X.z for z >= y (same major version).
        """
        major, minor = _arch(compute_capability)
        return any(m == major and n <= minor for m, n in map(_arch, self.targets))

    def uri(self, region: str, processor: str) -> str:
        account = self.registries.get(region)
        if account is None:
            raise InstanceTypeError(
                f"the PyTorch {self.scope} image {self.version} is not published in {region}",
                hint="pass --image with an image URI from your own ECR repository",
            )
        repository = f"pytorch-{self.scope}"
        return (f"{account}.dkr.ecr.{region}.{_dns_suffix(region)}/"
                f"{repository}:{self.version}-{processor}-{self.python}")


def _arch(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


@cache
def _load(name: str) -> Any:
    # Read once: the module's price constants and the catalog share instances.json.
    return json.loads(resources.files("detectctl").joinpath("data", name).read_text("utf-8"))


@cache
def _catalog() -> dict[str, InstanceType]:
    data = _load("instances.json")
    return {row["name"]: InstanceType(**row) for row in data["instances"]}


@cache
def _images() -> dict[str, list[FrameworkImage]]:
    data = _load("framework_images.json")
    return {
        scope: [FrameworkImage(scope=scope, version=row["version"], python=row["python"],
                               cuda=row["cuda"], targets=tuple(row["targets"]), cpu=row["cpu"],
                               registries=dict(row["registries"]))
                for row in data[scope]]
        for scope in (TRAINING, INFERENCE)
    }


_PRICES = _load("instances.json")
PRICE_REGION: str = _PRICES["price_region"]
PRICE_AS_OF: str = _PRICES["price_as_of"]
del _PRICES


def catalog() -> list[InstanceType]:
    """Every instance type detectctl offers, GPU types first, in catalog order."""
    return list(_catalog().values())


def get(name: str) -> InstanceType:
    """Look up an instance type by name (``ml.p3.2xlarge``; the ``ml.`` prefix is optional)."""
    key = name.strip().lower()
    if not key.startswith("ml."):
        key = "ml." + key
    found = _catalog().get(key)
    if found is None:
        close = difflib.get_close_matches(key, list(_catalog()), n=1, cutoff=0.75)
        hint = (f"did you mean {close[0]}?" if close
                else "run `detectctl instances` for the list")
        raise InstanceTypeError(f"unknown instance type {name!r}", hint=hint)
    return found


def for_training(name: str) -> InstanceType:
    """The instance type, checked to be one that can run a training job (it has a GPU)."""
    instance = get(name)
    if not instance.can_train:
        raise InstanceTypeError(
            f"{instance.name} has no GPU; SSD training jobs need a GPU instance "
            f"({GPU_FAMILIES_FOR_TRAINING})",
            hint="e.g. --instance ml.g4dn.xlarge; CPU instances can host endpoints "
                 "(detectctl deploy), and the local backend trains on this machine's CPU",
        )
    return instance


def framework_image(instance: InstanceType, scope: str) -> FrameworkImage:
    """The newest framework image of ``scope`` that runs natively on the instance."""
    for image in _images()[scope]:
        if instance.has_gpu:
            if image.runs_on(instance.compute_capability or "0.0"):
                return image
        elif image.cpu:
            return image
    raise InstanceTypeError(f"no PyTorch {scope} image in the catalog runs on {instance.name}",
                            hint="pass --image with an image that does")


def training_image(name: str, region: str) -> str:
    """The training image URI for an instance type in a region."""
    instance = for_training(name)
    return framework_image(instance, TRAINING).uri(region, "gpu")


def inference_image(name: str, region: str) -> str:
    """The inference image URI for hosting on an instance type in a region (CPU or GPU)."""
    instance = get(name)
    processor = "gpu" if instance.has_gpu else "cpu"
    return framework_image(instance, INFERENCE).uri(region, processor)


def images_for(instance: InstanceType, region: str) -> dict[str, str]:
    """The image URIs an instance type gets in a region: ``training_image`` (GPU types only)
    and ``inference_image``."""
    known = {r for scope in (TRAINING, INFERENCE) for i in _images()[scope] for r in i.registries}
    if region not in known:
        close = difflib.get_close_matches(region, sorted(known), n=1)
        raise InstanceTypeError(f"no SageMaker PyTorch images are published in region {region!r}",
                                hint=f"did you mean {close[0]}?" if close else None)
    found = {"inference_image": inference_image(instance.name, region)}
    if instance.can_train:
        found["training_image"] = training_image(instance.name, region)
    return found


def images(scope: str) -> list[FrameworkImage]:
    """The framework images of a scope, newest first."""
    return list(_images()[scope])
