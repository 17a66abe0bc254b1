"""The instance catalog: specs, refusal of CPU training, the image chosen per GPU architecture."""

import pytest

from detectctl import instances
from detectctl.errors import InstanceTypeError

REQUIRED = [
    "ml.p2.xlarge", "ml.p2.8xlarge", "ml.p2.16xlarge",
    "ml.p3.2xlarge", "ml.p3.8xlarge", "ml.p3.16xlarge", "ml.p3dn.24xlarge",
    "ml.g4dn.xlarge", "ml.g5.xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge",
    "ml.c5.xlarge", "ml.m5.xlarge", "ml.c6i.xlarge", "ml.m6i.xlarge", "ml.c7i.xlarge",
    "ml.m7i.xlarge",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_catalog_has(name):
    instance = instances.get(name)
    assert instance.vcpus > 0 and instance.memory_gib > 0 and instance.price_per_hour > 0
    if instance.has_gpu:
        assert instance.gpu_model and instance.gpu_memory_gib and instance.compute_capability


def test_known_specs():
    p3 = instances.get("ml.p3.8xlarge")
    assert (p3.gpus, p3.gpu_model, p3.gpu_memory_gib, p3.compute_capability) == (
        4, "V100", 16, "7.0")
    p2 = instances.get("p2.16xlarge")  # the ml. prefix is optional
    assert (p2.name, p2.gpus, p2.compute_capability) == ("ml.p2.16xlarge", 16, "3.7")
    assert instances.get("ml.p3dn.24xlarge").gpu_memory_gib == 32
    assert instances.get("ml.c5.xlarge").gpus == 0


def test_every_row_is_consistent():
    names = [i.name for i in instances.catalog()]
    assert len(names) == len(set(names))
    for i in instances.catalog():
        assert i.name.startswith("ml.")
        assert (i.gpus > 0) == (i.compute_capability is not None) == (i.gpu_model is not None)


def test_cpu_training_refused_with_advice():
    with pytest.raises(InstanceTypeError) as caught:
        instances.for_training("ml.c5.xlarge")
    message = str(caught.value)
    assert "ml.c5.xlarge has no GPU" in message
    assert "ml.g4dn.xlarge" in message
    assert caught.value.exit_code == 2
    assert instances.for_training("ml.p3.2xlarge").gpus == 1


def test_cpu_and_gpu_both_host():
    assert instances.get("ml.c5.large").can_host
    assert instances.get("ml.g4dn.xlarge").can_host


def test_unknown_instance_type_did_you_mean():
    with pytest.raises(InstanceTypeError, match=r"unknown instance type 'ml\.p3\.2xlarg' "
                                                r"\(did you mean ml\.p3\.2xlarge\?\)"):
        instances.get("ml.p3.2xlarg")
    with pytest.raises(InstanceTypeError, match="detectctl instances"):
        instances.get("potato")


@pytest.mark.parametrize(("name", "tag"), [
    ("ml.p2.xlarge", "1.12.1-gpu-py38"),       # K80 (sm_37): nothing newer runs
    ("ml.p3.2xlarge", "2.8.0-gpu-py312"),      # V100 (sm_70): CUDA 13 images drop it
    ("ml.p3dn.24xlarge", "2.8.0-gpu-py312"),
    ("ml.g4dn.xlarge", "2.8.0-gpu-py312"),
    ("ml.g5.xlarge", "2.8.0-gpu-py312"),
    ("ml.g6.xlarge", "2.8.0-gpu-py312"),       # L4 (8.9) runs the 8.6 cubin
    ("ml.p4d.24xlarge", "2.8.0-gpu-py312"),
    ("ml.p5.48xlarge", "2.8.0-gpu-py312"),
])
def test_training_image_per_architecture(name, tag):
    uri = instances.training_image(name, "us-east-1")
    assert uri == f"763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:{tag}"


def test_image_accounts_differ_by_region():
    assert instances.training_image("ml.p3.2xlarge", "af-south-1").startswith(
        "626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert instances.training_image("ml.p3.2xlarge", "cn-north-1").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")


def test_region_without_the_image():
    with pytest.raises(InstanceTypeError, match=r"not published in mars-west-1.*--image"):
        instances.training_image("ml.p3.2xlarge", "mars-west-1")


@pytest.mark.parametrize(("name", "tag"), [
    ("ml.c5.xlarge", "2.6.0-cpu-py312"),
    ("ml.m5.large", "2.6.0-cpu-py312"),
    ("ml.g4dn.xlarge", "2.6.0-gpu-py312"),
    ("ml.p3.2xlarge", "2.6.0-gpu-py312"),
    ("ml.p2.xlarge", "1.12.1-gpu-py38"),
])
def test_inference_image(name, tag):
    uri = instances.inference_image(name, "eu-west-1")
    assert uri == f"763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:{tag}"


def test_runs_on_uses_binary_compatibility_within_a_major_version():
    image = instances.images("training")[0]
    assert image.runs_on("8.9")       # 8.6 cubin
    assert image.runs_on("7.0")
    assert not image.runs_on("3.7")
    assert not image.runs_on("6.1")   # no 6.x target in this build
