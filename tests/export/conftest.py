from __future__ import annotations

import pytest

from tests.export.support import save_image_dependent_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """The tiny model whose detections depend on the image (see the helper), once per run."""
    pytest.importorskip("torch")
    return save_image_dependent_model(tmp_path_factory.mktemp("export") / "model")
