"""The memory this process may still allocate, and the error for a run, file or picture that would not
fit (also a MemoryError, so code that catches one catches both). Kept apart from :mod:`fastgan.resources`
so that the loaders can check a file's size before reading it without importing the run estimates."""

from __future__ import annotations

import os

from .errors import FastganError

GiB = 2 ** 30


class ResourceError(FastganError, MemoryError):
    """A run, ensemble or sweep needs more memory or work than allowed (the message names the key)."""


def available_memory() -> int:
    """Bytes this process may still allocate: the system's available memory, and within an address-space
    limit (ulimit -v) what is left of it."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 1 << 62
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = 0
            with open("/proc/self/statm") as fh:
                used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            avail = min(avail, max(0, soft - used))
    except (ImportError, OSError, ValueError):
        pass
    return int(avail)
