"""Benchmark: the linear-discriminator ops (trig-feature step and grad_x, kernel-sum gradient).

    python benchmarks/bench_linear.py [--B 16] [--float64] [--backends numpy numba]

Sizes: the random-Fourier-feature step at the issue's size (D = 4096 features, N = M = 1000) and
grad_x of a small RFF discriminator (L = 1000, n = 8); the Fourier discriminator's generic trig ops
(L = 5000, N = M = 200), d = 2; the exact kernel discriminator with n = 10 generated points and
C = 10 true points + 10 x 500 history centres (d = 2 and d = 10), and 64 queries against 10^6
history centres (d = 2, B = 1: the op is linear in the queries, so 10^4 queries take 156x as long;
the NumPy reference is chunked, the numba twin keeps O(queries + centres) memory). The Fourier step
in the form the engine runs it (separable d = 2 grid) is ``bench_fourier``. Each backend's result is
compared with the NumPy reference before it is timed; times are per run-step (per run for grad_x).
``big=False`` shrinks every case (the test suite's smoke run).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import compare_and_time, timeit  # noqa: E402


def _trig(B, L, N, M, d, dtype, seed=0):
    g = np.random.default_rng(seed)
    return dict(
        theta=(0.1 * g.standard_normal((B, L))).astype(dtype),
        omega=(3 * g.standard_normal((B, d, L))).astype(dtype),
        phase=(2 * np.pi * g.random((B, L))).astype(dtype),
        amp=np.full((B, L), np.sqrt(2.0 / L), dtype=dtype),
        rate=np.ones((B, L), dtype=dtype),
        xg=g.standard_normal((B, d, N)).astype(dtype), wg=np.full((B, N), 1.0 / N, dtype=dtype),
        xt=g.standard_normal((B, d, M)).astype(dtype), wt=np.full((B, M), 1.0 / M, dtype=dtype),
        lr=np.full(B, 1e-3), lam=np.full(B, 1e-2),
    )


def _kernel(B, n, C, d, dtype, seed=0):
    g = np.random.default_rng(seed)
    return dict(
        x=g.standard_normal((B, d, n)).astype(dtype), centres=g.standard_normal((B, d, C)).astype(dtype),
        weights=(g.standard_normal((B, C)) / C).astype(dtype), bandwidths=np.full((B, 1), 0.5, dtype=dtype),
    )


def _cases(B, dtype, big=True):
    """(op name, sizes, inputs, call(ops, v) -> result, in_place key or None)."""
    step = lambda o, v: o.trig_disc_step(v["theta"], v["omega"], v["phase"], v["amp"], v["rate"],  # noqa: E731
                                         v["xg"], v["wg"], v["xt"], v["wt"], v["lr"], v["lam"])
    gx = lambda o, v: o.trig_grad_x(v["theta"], v["omega"], v["phase"], v["amp"], v["xg"])  # noqa: E731
    kg = lambda o, v: o.kernel_sum_grad(v["x"], v["centres"], v["weights"], v["bandwidths"], "rbf")  # noqa: E731
    C = 10 + 10 * 500
    D, NR, Q, CH = (4096, 1000, 64, 10 ** 6) if big else (512, 64, 16, 10 ** 4)
    kgb = lambda o, v: o.kernel_sum_grad(v["x"], v["centres"], v["weights"], v["bandwidths"], "rbf")  # noqa: E731
    return [
        ("trig_disc_step", f"RFF B={B} L={D} N=M={NR} d=2", _trig(B, D, NR, NR, 2, dtype), step, "theta"),
        ("trig_disc_step", f"Fourier B={B} L=5000 N=M=200 d=2", _trig(B, 5000, 200, 200, 2, dtype), step, "theta"),
        ("trig_grad_x", f"RFF B={B} L=1000 n=8 d=2", _trig(B, 1000, 8, 8, 2, dtype), gx, None),
        ("trig_grad_x", f"Fourier B={B} L=5000 n=200 d=2", _trig(B, 5000, 200, 200, 2, dtype), gx, None),
        ("kernel_sum_grad", f"rbf B={B} n=10 C={C} d=2", _kernel(B, 10, C, 2, dtype), kg, None),
        ("kernel_sum_grad", f"rbf B={B} n=10 C={C} d=10", _kernel(B, 10, C, 10, dtype), kg, None),
        ("kernel_sum_grad", f"rbf B=1 n={Q} C={CH:.0e} d=2 (per run)", _kernel(1, Q, CH, 2, dtype), kgb, None),
    ]


def bench(B=16, dtype=np.float32, backends=("numpy", "numba"), min_time=0.3, big=True):
    cases = _cases(B, dtype, big)
    rows = compare_and_time(cases[:-1], backends, B, dtype, min_time)
    return rows + compare_and_time(cases[-1:], backends, 1, dtype, min_time)     # the B = 1 case: per run


def bench_fourier(B=16, dtype=np.float32, min_time=0.3, backends=("numpy", "numba")):
    """Algorithm 2 as the engine runs it in d = 2: the separable grid step of each backend's op table
    (``fourier_grid`` over NumPy BLAS; ``fourier_grid_numba``) against the generic trig step
    (reference and numba) on the expanded 50 x 50 grid, N = M = 200. Ratios are to the generic
    NumPy reference, the oracle of both forms."""
    from fastgan.kernels import fourier_grid
    from fastgan.kernels.ops import load_ops
    from fastgan.families.fourier import fourier_axis, fourier_gamma
    g = np.random.default_rng(1)
    ax = fourier_axis(25, 0.01, 20.0, "both")
    K = ax.size
    u = np.broadcast_to(ax, (B, K)).astype(dtype).copy()
    kabs = np.sqrt(ax[:, None] ** 2 + ax[None, :] ** 2)
    rate = np.broadcast_to(fourier_gamma("pow", kabs), (B, K, K)).astype(dtype).copy()
    w1, w2 = (1e-2 * g.standard_normal((2, B, K, K))).astype(dtype)
    xg, xt = g.standard_normal((2, B, 2, 200)).astype(dtype)
    wg = np.full((B, 200), 1 / 200, dtype=dtype)
    lr, lam = np.full(B, 1e-3), np.full(B, 1.0)
    theta, omega, phase, amp, rt = fourier_grid.expand(w1, w2, u, u, rate)
    ref_t = theta.copy()
    load_ops("numpy").trig_disc_step(ref_t, omega, phase, amp, rt, xg, wg, xt, wg, lr, lam)
    rows, t_ref = [], None
    for be, form in [(b, "generic") for b in backends] + [(b, "separable") for b in backends]:
        ops = load_ops(be)
        if form == "separable":
            a1, a2 = w1.copy(), w2.copy()
            ops.fourier_grid_disc_step(a1, a2, u, u, rate, xg, wg, xt, wg, lr, lam)
            got = np.concatenate([a1.reshape(B, -1), a2.reshape(B, -1)], 1)
            fn = lambda ops=ops, a1=a1, a2=a2: ops.fourier_grid_disc_step(a1, a2, u, u, rate, xg, wg, xt, wg, lr, lam)  # noqa: E731
        else:
            th = theta.copy()
            ops.trig_disc_step(th, omega, phase, amp, rt, xg, wg, xt, wg, lr, lam)
            got = th.copy()
            fn = lambda ops=ops, th=th: ops.trig_disc_step(th, omega, phase, amp, rt, xg, wg, xt, wg, lr, lam)  # noqa: E731
        ok = bool(np.allclose(got, ref_t, rtol=2e-3, atol=2e-5 * float(np.abs(ref_t).max())))
        t = timeit(fn, min_time=min_time) / B
        t_ref = t if (be, form) == ("numpy", "generic") else t_ref
        rows.append({"op": "fourier step (Alg. 2)", "sizes": f"B={B} K=50x50 N=M=200",
                     "backend": f"{be} ({form})", "s_per_run_step": t,
                     "ratio": t_ref / t if t_ref else None, "peak_fraction": None, "ok": ok})
    return rows


def main():
    from bench_mlp_step import print_rows
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--backends", nargs="+", default=["numpy", "numba"])
    args = ap.parse_args()
    dtype = np.float64 if args.float64 else np.float32
    print_rows(bench(args.B, dtype=dtype, backends=args.backends)
               + bench_fourier(args.B, dtype=dtype, backends=args.backends))


if __name__ == "__main__":
    main()
