"""cuda against numba at the sizes of the GPU check (each result checked against the NumPy reference first).

    python benchmarks/gpu_timings.py [--backends numba cuda] [--min-time 0.2] [--warm] [--json PATH]

- the MLP discriminator step and the other in-loop ops at B = 16, N = 200, W = 2048 (ReLU, float32);
- a whole engine iteration: 16 runs, N = 200, W = 2048, n_disc = 5 (``simulate_ensemble``, seconds per
  run-iteration, JIT compilation excluded by a short warm-up ensemble);
- the KDE reductions at d = 64 (B = 16, n = m = 500);
- the isolated points model with random Fourier features at N = 4 (Becker et al.): its ops (L = 1024
  features) and its engine loop, 16 runs, float64.

Rows carry ``speedup`` = numba time / cuda time for the same op and sizes. ``--warm`` only compiles the
numba kernels at tiny sizes (fills numba's on-disk cache; the GPU check runs it beside the device tests).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

B, N, W, N_DISC = 16, 200, 2048, 5
KDE_D, KDE_N = 64, 500
IPM_N, IPM_L = 4, 1024


def _mlp_configs(iterations, runs=B):
    import fastgan
    return [fastgan.default_config(**{"training.seed": s, "coupling.ratio": 0.05 * (s % 4), "training.n_disc": N_DISC,
                                      "generator.n_particles": N, "discriminator.width": W,
                                      "training.n_iterations": iterations, "record.snapshots": 0,
                                      "record.discriminator": False}) for s in range(runs)]


def _ipm_configs(iterations, runs=B):
    import fastgan
    pts = [[-3.0, 3.0], [3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]]
    return [fastgan.default_config(**{"discriminator.kind": "rff", "discriminator.n_features": IPM_L,
                                      "discriminator.bandwidth": 0.5, "target.kind": "points", "target.points": pts,
                                      "generator.n_particles": IPM_N, "training.update_order": "simultaneous",
                                      "training.lr_disc": 0.05, "training.lr_gen": 0.3, "training.seed": s,
                                      "training.n_iterations": iterations, "record.snapshots": 0,
                                      "record.discriminator": False, "precision": "float64"}) for s in range(runs)]


def engine_row(name, make, backend, iterations, warm_iterations=2) -> dict:
    """Seconds per run-iteration of ``simulate_ensemble`` (after a short warm-up ensemble)."""
    import fastgan
    fastgan.simulate_ensemble(make(warm_iterations), backend=backend)
    cfgs = make(iterations)
    t0 = time.perf_counter()
    res = fastgan.simulate_ensemble(cfgs, backend=backend)
    t = time.perf_counter() - t0
    return {"op": name, "sizes": f"B={len(cfgs)} {iterations} iterations", "backend": backend,
            "s_per_run_iteration": t / (len(cfgs) * iterations), "ok": not any(r.diverged for r in res)}


def _kde_cases(dtype):
    from bench_kde import _kde
    v = _kde(B, KDE_N, KDE_N, KDE_D, 1, dtype)
    return [("kde_log_density", f"B={B} n=m={KDE_N} d={KDE_D}", v,
             lambda o, v: o.kde_log_density(v["q"], v["x"], v["logw"], v["bandwidths"], v["logmix"]), None),
            ("kde_grad_sum", f"B={B} n=m={KDE_N} d={KDE_D}", v,
             lambda o, v: o.kde_grad_sum(v["q"], v["x"], v["logw"], v["la"], v["lb"], v["bandwidths"], v["logmix"]),
             None)]


def _ipm_cases(dtype):
    from bench_linear import _trig
    v = _trig(B, IPM_L, IPM_N, IPM_N, 2, dtype)
    return [("trig_disc_step", f"IPM rff B={B} L={IPM_L} N=M={IPM_N}", v,
             lambda o, v: o.trig_disc_step(v["theta"], v["omega"], v["phase"], v["amp"], v["rate"], v["xg"], v["wg"],
                                           v["xt"], v["wt"], v["lr"], v["lam"]), "theta"),
            ("trig_grad_x", f"IPM rff B={B} L={IPM_L} n={IPM_N}", v,
             lambda o, v: o.trig_grad_x(v["theta"], v["omega"], v["phase"], v["amp"], v["xg"]), None)]


def speedups(rows) -> list:
    """Add ``speedup`` (numba time / cuda time) to the cuda rows that have a numba twin."""
    key = lambda r: (r.get("op"), r.get("sizes"))                  # noqa: E731
    t = lambda r: r.get("s_per_run_step", r.get("s_per_run_iteration"))  # noqa: E731
    numba = {key(r): t(r) for r in rows if r.get("backend") == "numba" and t(r)}
    for r in rows:
        if r.get("backend") == "cuda" and t(r) and key(r) in numba:
            r["speedup"] = numba[key(r)] / t(r)
    return rows


def run(backends=("numba", "cuda"), min_time=0.2, iterations=60) -> list:
    """Every timing row (errors as rows with ``error``)."""
    from bench_mlp_step import bench as bench_step
    from bench_ops import bench as bench_ops
    from common import compare_and_time, matmul_peak_flops
    rows = []

    def guarded(what, fn):
        try:
            rows.extend(fn())
        except Exception as exc:  # noqa: BLE001 - one failing group does not stop the others
            rows.append({"op": what, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})

    peak = matmul_peak_flops(2048)
    for be in backends:                              # one backend at a time: a failing one keeps the other's rows
        guarded(f"mlp_disc_step ({be})", lambda be=be: bench_step(B, N, W, backends=[be], peak=peak, min_time=min_time))
        guarded(f"ops ({be})", lambda be=be: bench_ops(B, N, W, backends=[be], min_time=min_time))
        guarded(f"kde d={KDE_D} ({be})", lambda be=be: compare_and_time(_kde_cases(np.float32), [be], B, np.float32,
                                                                          min_time))
        guarded(f"ipm rff ops ({be})", lambda be=be: compare_and_time(_ipm_cases(np.float64), [be], B, np.float64,
                                                                        min_time))
        guarded(f"engine mlp ({be})", lambda be=be: [engine_row(f"engine mlp n_disc={N_DISC} N={N} W={W}",
                                                                 _mlp_configs, be, iterations)])
        guarded(f"engine ipm rff ({be})", lambda be=be: [engine_row(f"engine IPM rff N={IPM_N} L={IPM_L}",
                                                                     _ipm_configs, be, 10 * iterations)])
    return speedups(rows)


def warm() -> None:
    """Compile the numba kernels the timings use, at tiny sizes (numba caches them on disk)."""
    import fastgan
    from fastgan.kernels.ops import load_ops
    ops = load_ops("numba")
    from bench_mlp_step import make_inputs
    ops.mlp_disc_step(*make_inputs(2, 7, 9), None, "relu")
    from bench_ops import _cases as op_cases
    from bench_ops import _inputs
    v = _inputs(2, 7, 9)
    for _, _, call in op_cases(2, 7, 9, np.float32):
        call(ops, v)
    from bench_kde import _kde
    kv = _kde(2, 9, 9, KDE_D, 1, np.float32)
    ops.kde_log_density(kv["q"], kv["x"], kv["logw"], kv["bandwidths"], kv["logmix"])
    ops.kde_grad_sum(kv["q"], kv["x"], kv["logw"], kv["la"], kv["lb"], kv["bandwidths"], kv["logmix"])
    fastgan.simulate_ensemble(_mlp_configs(2, runs=2), backend="numba")
    fastgan.simulate_ensemble(_ipm_configs(2, runs=2), backend="numba")


def print_rows(rows) -> None:
    for r in rows:
        if "error" in r:
            print(f"{r.get('op', '?')}: ERROR {r['error']}")
            continue
        t = r.get("s_per_run_step", r.get("s_per_run_iteration"))
        sp = f"  cuda {r['speedup']:.1f}x numba" if r.get("speedup") else ""
        ok = "" if r.get("ok", True) else "  MISMATCH"
        print(f"{r['op']:32s} {r.get('sizes', ''):34s} {r['backend']:6s} "
              f"{(t or math.nan) * 1e6:10.1f} us{sp}{ok}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["numba", "cuda"])
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--iterations", type=int, default=60, help="engine iterations timed (IPM: 10x)")
    ap.add_argument("--warm", action="store_true", help="only compile the numba kernels (tiny sizes)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    np.seterr(all="ignore")
    if args.warm:
        t0 = time.perf_counter()
        warm()
        print(f"numba kernels compiled / loaded in {time.perf_counter() - t0:.1f} s")
        return 0
    rows = run(args.backends, args.min_time, args.iterations)
    print_rows(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=float)
    return 1 if any("error" in r or r.get("ok") is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
