"""Benchmark: the other in-loop ops (grad_x D, target sampling, couplings, mode statistics).

    python benchmarks/bench_ops.py [--B 16] [--N 200] [--W 2048]

Each backend's result is compared with the NumPy reference before it is timed.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import compare_and_time  # noqa: E402


def _inputs(B, N, W, d=2, K=8, dtype=np.float32, seed=0):
    from fastgan.kernels import rng as R
    from fastgan.targets import ring_modes
    g = np.random.default_rng(seed)
    modes = np.broadcast_to(ring_modes(K, 2.0), (B, K, 2)).copy()
    cum = np.broadcast_to(np.cumsum(np.full(K, 1.0 / K)), (B, K)).copy()
    cum[:, -1] = 1.0
    return dict(
        w=g.standard_normal((B, d, W)).astype(dtype), b=(3 * g.standard_normal((B, W))).astype(dtype),
        a=g.standard_normal((B, W)).astype(dtype),
        X=(modes[:, g.integers(0, K, N)].transpose(0, 2, 1) + 0.05 * g.standard_normal((B, d, N))).astype(dtype),
        G=g.standard_normal((B, d, N)).astype(dtype),
        g1=np.full(B, 4.9), g2=np.full(B, 0.98), ell=np.full(B, 0.5),
        gram=np.broadcast_to(np.full((N, N), 0.98) + 3.92 * np.eye(N), (1, N, N)).astype(dtype).copy(),
        modes=modes, weights=np.full((B, K), 1.0 / K), stds=np.full((B, K), 0.02), cum=cum,
        cb=R.base_keys(range(B), R.STREAM_TARGET_COMPONENT), nb=R.base_keys(range(B), R.STREAM_TARGET_NOISE),
    )


def _cases(B, N, W, dtype):
    """(op name, sizes, flop-ish work, call(ops, dev) -> result)."""
    return [
        ("mlp_grad_x", f"B={B} N={N} W={W}",
         lambda o, v: o.mlp_grad_x(v["w"], v["b"], v["a"], v["X"], "relu")),
        ("sample_mixture", f"B={B} M={N} K=8",
         lambda o, v: o.sample_mixture(v["cb"], v["nb"], 3, 1, v["modes"], v["cum"], v["stds"], N, dtype)),
        ("velocity_coarse", f"B={B} N={N}",
         lambda o, v: o.coupled_velocity_coarse(v["G"], v["g1"], v["g2"])),
        ("velocity_gram", f"B={B} N={N}",
         lambda o, v: o.coupled_velocity_gram(v["G"], v["gram"])),
        ("velocity_spatial", f"B={B} N={N}",
         lambda o, v: o.coupled_velocity_spatial(v["G"], v["X"], v["g1"], v["g2"], v["ell"], "rbf")),
        ("mode_stats", f"B={B} N={N} K=8",
         lambda o, v: o.mode_stats(v["X"], v["modes"], v["weights"], v["stds"])),
    ]


def bench(B=16, N=200, W=2048, dtype=np.float32, backends=("numpy", "numba"), min_time=0.3):
    host = _inputs(B, N, W, dtype=dtype)
    cases = [(name, sizes, host, call, None) for name, sizes, call in _cases(B, N, W, dtype)]
    return compare_and_time(cases, backends, B, dtype, min_time, host_only=("modes", "weights", "stds"))


def main():
    from bench_mlp_step import print_rows
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--N", type=int, default=200)
    ap.add_argument("--W", type=int, default=2048)
    ap.add_argument("--backends", nargs="+", default=["numpy", "numba"])
    args = ap.parse_args()
    print_rows(bench(args.B, args.N, args.W, backends=args.backends))


if __name__ == "__main__":
    main()
