"""algorithm.memory: freed blocks stay in the process and are reused without page faults."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from algorithm import memory

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# A training step's pattern: tensors of several sizes allocated, then all freed. Prints the minor
# page faults of 5 steps after 20 (the heap finds its layout in the first few).
FAULTS = textwrap.dedent("""
    import resource, sys
    import torch
    from algorithm import memory
    if sys.argv[1] == "reuse":
        assert memory.reuse_freed_memory()
    def step():
        activations = [torch.empty(mib * 2**18).fill_(1) for mib in (8, 16, 40, 64, 24)]
        return len(activations)
    for _ in range(20):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                          env=env, check=True)
    return int(done.stdout.strip())


@linux_only
def test_freed_memory_is_reused_without_page_faults():
    # By default glibc maps blocks above 32 MiB afresh on every step (the 40 and 64 MiB tensors:
    # up to 26,624 pages of 4 KiB a step); set, a step reuses the pages of the step before.
    default, reused = _faults("default"), _faults("reuse")
    assert default > 50_000
    assert reused < 1_000


@pytest.mark.parametrize("environ", [
    {"MALLOC_MMAP_THRESHOLD_": "131072"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
    {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
    {"LD_PRELOAD": "libtcmalloc_minimal.so.4"},
])
def test_the_users_allocator_settings_are_left_alone(environ):
    assert memory.reuse_freed_memory(environ=environ) is False


def test_not_on_other_systems(monkeypatch):
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.reuse_freed_memory(environ={}) is False
