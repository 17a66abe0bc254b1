"""Our framework-image table against the sagemaker SDK's own image URI tables.

The sagemaker SDK (its `sagemaker-core` package) is the authority on which PyTorch image exists
in which region under which account. It is heavy and slow to import, so it is not a detectctl
dependency; install it to run these checks:

    pip install sagemaker-core && pytest -m dev tests/dev
"""

import pytest

from detectctl import instances

pytestmark = pytest.mark.dev
image_uris = pytest.importorskip("sagemaker.core.image_uris")

# One instance type per GPU architecture (and one CPU type for hosting).
ARCHITECTURE_SAMPLES = ["ml.p2.xlarge", "ml.p3.2xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge",
                        "ml.p4d.24xlarge", "ml.p5.48xlarge"]


def _theirs(image, region, instance_type):
    return image_uris.retrieve("pytorch", region=region, version=image.version,
                               py_version=image.python, instance_type=instance_type,
                               image_scope=image.scope)


@pytest.mark.parametrize("scope", ["training", "inference"])
def test_every_region_and_version_matches_the_sdk(scope):
    for image in instances.images(scope):
        for region in image.registries:
            gpu = "ml.p2.xlarge" if image.version.startswith("1.") else "ml.g5.xlarge"
            assert image.uri(region, "gpu") == _theirs(image, region, gpu), (image, region)
            if image.cpu:
                assert image.uri(region, "cpu") == _theirs(image, region, "ml.c5.xlarge")


@pytest.mark.parametrize("name", ARCHITECTURE_SAMPLES)
def test_default_training_image_is_one_the_sdk_offers_for_that_instance(name):
    image = instances.framework_image(instances.get(name), "training")
    assert instances.training_image(name, "us-west-2") == _theirs(image, "us-west-2", name)


def test_sdk_refuses_newer_images_on_p2_as_we_do():
    newer = instances.images("training")[0]
    assert newer.version != "1.12.1"
    with pytest.raises(ValueError, match="P2 instances have been deprecated"):
        _theirs(newer, "us-east-1", "ml.p2.xlarge")


def test_sdk_knows_every_region_we_list():
    for scope in ("training", "inference"):
        for image in instances.images(scope):
            config = image_uris.config_for_framework("pytorch")[scope]["versions"][image.version]
            assert set(image.registries) <= set(config["registries"])
            for region, account in image.registries.items():
                assert config["registries"][region] == account
