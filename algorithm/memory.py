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
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Mapping, Optional

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST_THRESHOLD = 2**31 - 1  # mallopt takes an int; no tensor of a job's step comes near it
NEVER_TRIM = -1  # documented: -1 turns trimming off

# What says that the user chose the allocator or its settings.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "GLIBC_TUNABLES")


def reuse_freed_memory(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Make glibc's malloc keep and reuse freed memory; True when it was set."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    if any(name in environ for name in USER_SETTINGS) or "malloc" in environ.get("LD_PRELOAD", ""):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        # gnu_get_libc_version exists only in glibc (musl has a mallopt that does nothing).
        libc.gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
