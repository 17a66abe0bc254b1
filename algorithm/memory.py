"""Host memory: keep freed memory in the process instead of handing it back to the kernel.

glibc's malloc serves large blocks (above 128 KiB to 32 MiB, adjusted as it goes) with their own
``mmap`` and returns them with ``munmap`` when freed, and trims the top of its heap. PyTorch's
CPU allocator is malloc, so every step of a training job (each activation, each gradient) maps
fresh pages and the kernel zeroes them on first touch: an SSD300 VGG-16 step at batch 8 spent
1.55 s of its 8.74 s in such page faults on one core (tests/benchmarks/cpu_step.py). Two workers
on one host also contend for that kernel work. ``reuse_freed_memory`` tells malloc to serve every
block from its heap and never trim it, so that a step reuses the previous step's pages; the
process then holds on to its peak (2.88 GB instead of 2.46 GB in that job, which it reaches
every step anyway).

This is what the ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` environment variables
do, set at run time with ``mallopt`` because a container starts the job with its own
environment. Other allocators (jemalloc or tcmalloc through ``LD_PRELOAD``) and a user's own
malloc settings are left alone; so are systems without glibc.

A model server adds two settings (``algorithm/serve.py``). ``limit_arenas`` caps glibc's heaps
(by default up to 8 per core, as threads contend): in trials on 2 cores (servers side by side,
400 requests each from 8 clients) two arenas gave 5-6% more throughput. And a full batch's
forward pass needs far more memory than the model, which the process keeps once freed:
``release_freed_memory`` hands the heaps' free pages back to the kernel, which the server does
once it has had no request for a while. Doing it after every batch costs about 4% throughput
(the next batch faults its pages in again), so the server does not.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Mapping, Optional, Sequence

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
LARGEST_THRESHOLD = 2**31 - 1  # mallopt takes an int; no tensor of a job's step comes near it
NEVER_TRIM = -1  # documented: -1 turns trimming off

# What says that the user chose the allocator or its settings.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "GLIBC_TUNABLES")
ARENA_SETTINGS = ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")


def _glibc(environ: Mapping[str, str], settings: Sequence[str]) -> Optional[ctypes.CDLL]:
    """glibc's malloc, unless another allocator is preloaded or the user set one of
    ``settings``; None then, and on systems without glibc."""
    if not sys.platform.startswith("linux"):
        return None
    if any(name in environ for name in settings) or "malloc" in environ.get("LD_PRELOAD", ""):
        return None
    try:
        libc = ctypes.CDLL(None)
        # gnu_get_libc_version exists only in glibc (musl has a mallopt that does nothing).
        libc.gnu_get_libc_version  # noqa: B018
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def reuse_freed_memory(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Make glibc's malloc keep and reuse freed memory; True when it was set."""
    libc = _glibc(os.environ if environ is None else environ, USER_SETTINGS)
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST_THRESHOLD)
                                     and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def limit_arenas(arenas: int, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Let glibc's malloc keep at most ``arenas`` heaps for all threads (call it before the
    threads start); True when it was set. ``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES`` in the
    environment win."""
    libc = _glibc(os.environ if environ is None else environ, ARENA_SETTINGS)
    return libc is not None and arenas > 0 and bool(libc.mallopt(M_ARENA_MAX, arenas))


def release_freed_memory() -> bool:
    """Hand the free pages of malloc's heaps back to the kernel (glibc's ``malloc_trim``);
    True when some were. Takes milliseconds; the next allocations of those pages fault them in
    again, so a server calls it when idle, not after every request."""
    libc = _glibc({}, ())
    return libc is not None and bool(libc.malloc_trim(0))
