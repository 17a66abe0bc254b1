"""Shared fixtures for the dataset tests."""

from __future__ import annotations

import pytest

from algorithm.data.sample import Sample
from tests.datasets.support import synth_samples, write


@pytest.fixture(scope="session")
def samples() -> list[tuple[Sample, bytes]]:
    return synth_samples()


@pytest.fixture(scope="session")
def rec(tmp_path_factory: pytest.TempPathFactory, samples: list) -> str:
    """A RecordIO dataset of the synthetic samples (with classes.json)."""
    return write("recordio", str(tmp_path_factory.mktemp("rec") / "data.rec"), samples)
