"""Shared benchmark helpers: timing, machine peak, environment description."""

from __future__ import annotations

import os
import platform
import subprocess
import time

import numpy as np


def timeit(fn, *, min_time=0.5, warmup=1, repeats=5, max_calls=10_000):
    """Seconds per call of ``fn()``: the fastest of ``repeats`` batches lasting ~min_time/repeats each
    (the least noisy estimate on a shared machine)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    once = max(1e-7, time.perf_counter() - t0)
    calls = int(min(max_calls, max(1, (min_time / repeats) / once)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) / calls)
    return float(np.min(samples))


def matmul_peak_flops(n: int = 4096, dtype=np.float32, repeats: int = 3) -> float:
    """Measured FLOP/s of an n x n matrix product (numpy/BLAS): the machine's practical peak."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    t = timeit(lambda: a @ b, min_time=0.0, warmup=1, repeats=repeats, max_calls=1)
    return 2.0 * n ** 3 / t


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.path.dirname(os.path.abspath(__file__)),
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def environment() -> dict:
    import numba
    env = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(), "processor": _cpu_name(),
           "numba_threads": numba.config.NUMBA_NUM_THREADS, "git_commit": git_commit()}
    for mod in ("cupy", "torch"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
