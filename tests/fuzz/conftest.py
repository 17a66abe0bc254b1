"""One torch thread while fuzzing: each example is a few tiny tensors, and a thread pool on a
shared machine costs more than the work."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
