"""Benchmark: the kernel-density reductions (``kde_log_density``, ``kde_grad_sum``; reference ``kde_numpy``).

    python benchmarks/bench_kde.py [--B 16] [--float64] [--backends numpy numba]

Sizes: the ensemble case B = 16 runs of n = m = 1000 queries / centres in d = 2 with S = 1 and
S = 3 bandwidths (the Kernel GAN / optimal-discriminator fields at a typical particle count), and
one large per-run case, B = 1, n = 200 queries against m = 10^5 centres (the NumPy reference is
chunked, the twins keep O(n + m) memory). ``kde_grad_sum`` is timed with both weight terms (la and
lb, the Kernel GAN data term). Each backend's result is compared with the NumPy reference before
it is timed; times are per run. ``big=False`` shrinks every case (smoke runs).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import compare_and_time  # noqa: E402

def _kde(B, n, m, d, S, dtype, seed=0):
    """Queries and centres from N(0, I), uniform log weights, Silverman-like bandwidths, lb = -log p."""
    g = np.random.default_rng(seed)
    bw = np.broadcast_to(0.3 * np.linspace(0.5, 2.0, S) if S > 1 else np.array([0.3]), (B, S))
    return dict(
        q=g.standard_normal((B, d, n)).astype(dtype), x=g.standard_normal((B, d, m)).astype(dtype),
        logw=np.full((B, m), -math.log(m), dtype=dtype), la=(-g.random((B, m)) - 1).astype(dtype),
        lb=(-g.random((B, n)) - 1).astype(dtype), bandwidths=np.ascontiguousarray(bw, dtype=dtype),
        logmix=np.full((B, S), -math.log(S), dtype=dtype),
    )


def _cases(B, dtype, big=True):
    """(op name, sizes, inputs, call(ops, v) -> result, None)."""
    ld = lambda o, v: o.kde_log_density(v["q"], v["x"], v["logw"], v["bandwidths"], v["logmix"])  # noqa: E731
    gs = lambda o, v: o.kde_grad_sum(v["q"], v["x"], v["logw"], v["la"], v["lb"], v["bandwidths"], v["logmix"])  # noqa: E731
    N, QL, ML = (1000, 200, 10 ** 5) if big else (60, 50, 700)
    out = []
    for S in (1, 3):
        v = _kde(B, N, N, 2, S, dtype)
        out += [("kde_log_density", f"B={B} n=m={N} d=2 S={S}", v, ld, None),
                ("kde_grad_sum", f"B={B} n=m={N} d=2 S={S}", v, gs, None)]
    v = _kde(1, QL, ML, 2, 1, dtype)
    out += [("kde_log_density", f"B=1 n={QL} m={ML:.0e} d=2 S=1", v, ld, None),
            ("kde_grad_sum", f"B=1 n={QL} m={ML:.0e} d=2 S=1", v, gs, None)]
    return out


def bench(B=16, dtype=np.float32, backends=("numpy", "numba"), min_time=0.3, big=True):
    cases = _cases(B, dtype, big)
    rows = compare_and_time(cases[:-2], backends, B, dtype, min_time)
    return rows + compare_and_time(cases[-2:], backends, 1, dtype, min_time)     # the B = 1 cases: per run


def main():
    from bench_mlp_step import print_rows
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--backends", nargs="+", default=["numpy", "numba"])
    args = ap.parse_args()
    print_rows(bench(args.B, dtype=np.float64 if args.float64 else np.float32, backends=args.backends))


if __name__ == "__main__":
    main()
