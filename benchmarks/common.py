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


def agree(ops, out, ref, dtype) -> bool:
    """A backend's result (array or tuple of arrays) matches the reference within float rounding."""
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    tol = 2e-3 if dtype == np.float32 else 1e-9
    for o, r in zip(outs, refs):
        o = np.asarray(ops.to_host(o), dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        if not np.allclose(o, r, rtol=tol, atol=tol * max(1.0, np.nanmax(np.abs(r))), equal_nan=True):
            return False
    return True


def compare_and_time(cases, backends, B, dtype, min_time, host_only=()):
    """Rows (op, sizes, backend, s_per_run_step, ratio, ok) for cases (name, sizes, host inputs,
    call(ops, inputs) -> result, in-place key or None): each backend's result is checked against the
    NumPy reference before it is timed. An in-place op is checked on a copy of its state and then
    keeps stepping that state while timed. Keys in ``host_only`` stay host arrays."""
    from fastgan.kernels.ops import load_ops
    ref_ops = load_ops("numpy")
    rows = []
    for name, sizes, host, call, in_place in cases:
        def run(ops, v, call=call, in_place=in_place):
            if in_place is None:
                return call(ops, v)
            v = dict(v, **{in_place: v[in_place].copy()})
            call(ops, v)
            return v[in_place]
        ref = run(ref_ops, host)
        t_ref = None
        for be in backends:
            try:
                ops = load_ops(be)
            except Exception as exc:  # noqa: BLE001
                rows.append({"op": name, "sizes": sizes, "backend": be, "error": str(exc)})
                continue
            dev = {k: (ops.xp.asarray(v.copy() if k == in_place else v)
                       if isinstance(v, np.ndarray) and k not in host_only else v) for k, v in host.items()}
            ok = agree(ops, run(ops, dev), ref, dtype)
            sync = (lambda: ops.xp.cuda.Device().synchronize()) if ops.xp is not np else (lambda: None)
            t = timeit(lambda: (call(ops, dev), sync()), min_time=min_time) / B
            if be == "numpy":
                t_ref = t
            rows.append({"op": name, "sizes": sizes, "backend": be, "s_per_run_step": t,
                         "ratio": (t_ref / t) if t_ref else None, "peak_fraction": None, "ok": ok})
    return rows
