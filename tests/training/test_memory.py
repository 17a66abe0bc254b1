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


# A server's pattern: many blocks freed, one still held above them, so the heap's top cannot be
# trimmed. Prints the resident memory (kB) before and after release_freed_memory.
RELEASE = textwrap.dedent("""
    from algorithm import memory
    def rss_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    assert memory.reuse_freed_memory()
    blocks = [bytearray(64 * 1024) for _ in range(3200)]  # 200 MiB, each written (zeroed)
    pinned = bytearray(64 * 1024)
    del blocks
    before = rss_kb()
    released = memory.release_freed_memory()
    print(before, rss_kb(), released)
""")


@linux_only
def test_freed_memory_inside_the_heap_is_handed_back_to_the_kernel():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True,
                          env=env, check=True)
    before, after, released = done.stdout.split()
    assert released == "True"
    assert int(before) - int(after) > 150 * 1024, done.stdout


def test_the_users_arena_setting_is_left_alone():
    assert memory.limit_arenas(2, environ={"MALLOC_ARENA_MAX": "8"}) is False
    assert memory.limit_arenas(2, environ={"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}) is False
    assert memory.limit_arenas(0, environ={}) is False  # 0: glibc's default


@linux_only
def test_arenas_can_be_limited_here():
    assert memory.limit_arenas(2, environ={}) is True
