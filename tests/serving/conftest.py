from __future__ import annotations

import pytest

from tests.serving.support import save_tiny_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("serving") / "model")


@pytest.fixture(scope="session")
def predictor(model_dir):
    from algorithm import inference

    return inference.model_fn(str(model_dir))
