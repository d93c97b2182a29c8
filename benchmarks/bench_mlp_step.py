"""Benchmark: one MLP discriminator step (Durr et al. eq. 23-24) per run, across implementations.

    python benchmarks/bench_mlp_step.py [--B 16] [--N 200] [--W 2048] [--backends numpy numba naive torch]

Every implementation is first checked against the NumPy reference on the same inputs; only then
is it timed. Reported: seconds per run-step (one discriminator step of one run), the ratio to the
NumPy reference ensemble op, and the fraction of the machine's measured float32 matmul peak,
counting 12 FLOP per (sample, hidden unit) pair (2N samples per step).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from baselines import naive_numpy_disc_step, torch_algorithm1_runner  # noqa: E402
from common import matmul_peak_flops, timeit  # noqa: E402

FLOP_PER_PAIR = 12


def make_inputs(B, N, W, d=2, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((B, d, W)).astype(dtype)
    b = (3 * rng.standard_normal((B, W))).astype(dtype)
    a = rng.standard_normal((B, W)).astype(dtype)
    xg = (np.sqrt(2) + 0.1 * rng.standard_normal((B, d, N))).astype(dtype)
    xt = (2 * rng.standard_normal((B, d, N))).astype(dtype)
    lr = np.full(B, 0.25, dtype=dtype)
    l2 = np.full(B, 1.0 / W, dtype=dtype)
    return w, b, a, xg, xt, lr, l2


def _close(x, ref, dtype):
    tol = 2e-3 if dtype == np.float32 else 1e-9
    return float(np.max(np.abs(x - ref)) / max(1.0, np.max(np.abs(ref)))) <= tol


def bench(B=16, N=200, W=2048, d=2, dtype=np.float32, act="relu", backends=("numpy", "numba", "naive"),
          peak=None, min_time=1.0, beta=False):
    """Rows of {op, sizes, backend, s_per_run_step, ratio, peak_fraction, ok} (ratio: reference / this)."""
    from fastgan.kernels.ops import load_ops

    w, b, a, xg, xt, lr, l2 = make_inputs(B, N, W, d, dtype)
    u = (0.01 * np.random.default_rng(1).standard_normal(xg.shape)).astype(dtype) if beta else None
    ref = load_ops("numpy")
    p_ref = [w.copy(), b.copy(), a.copy()]
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act)
    # d = 2: 12 FLOP per (sample, hidden unit); beyond, the step's two matrix products of 2N x W x d
    # multiply-adds (4 * 2N * W * d FLOP), the count of the high-dimensional rows
    flops = FLOP_PER_PAIR * 2 * N * W if d == 2 else 4 * 2 * N * W * d
    peak = peak or matmul_peak_flops(dtype=np.float32)
    sizes = f"B={B} N={N} W={W} d={d} {np.dtype(dtype).name} {act}" + (" beta" if beta else "")
    rows, t_ref = [], None
    for name in backends:
        if name in ("numpy", "numba", "cuda", "numba-fused"):
            try:
                ops = load_ops(name.split("-")[0])
                if name == "numba-fused":                  # the fused kernels at any d (the GEMM form's baseline)
                    ops = _FusedOnly(ops)
            except Exception as exc:  # noqa: BLE001
                rows.append({"op": "mlp_disc_step", "sizes": sizes, "backend": name, "error": str(exc)})
                continue
            xp = ops.xp
            dev = [xp.array(v, copy=True) for v in (w, b, a, xg, xt, lr, l2)]
            du = None if u is None else xp.asarray(u)
            p = [v.copy() for v in dev[:3]]
            ops.mlp_disc_step(*p, dev[3], dev[4], dev[5], dev[6], du, act)
            ok = all(_close(ops.to_host(x), r, dtype) for x, r in zip(p, p_ref))
            sync = (lambda: xp.cuda.Device().synchronize()) if xp is not np else (lambda: None)

            def call(ops=ops, dev=dev, du=du, sync=sync):
                ops.mlp_disc_step(dev[0], dev[1], dev[2], dev[3], dev[4], dev[5], dev[6], du, act)
                sync()

            t = timeit(call, min_time=min_time) / B
        elif name == "naive":
            pw = [np.ascontiguousarray(w[0].T).copy(), b[0].copy(), a[0].copy()]
            naive_numpy_disc_step(*pw, xg[0].T.copy(), xt[0].T.copy(), lr[0], l2[0], act)
            ok = (_close(pw[0].T, p_ref[0][0], dtype) and _close(pw[1], p_ref[1][0], dtype)
                  and _close(pw[2], p_ref[2][0], dtype))
            state = [[np.ascontiguousarray(w[r].T), b[r].copy(), a[r].copy(), xg[r].T.copy(), xt[r].T.copy()]
                     for r in range(B)]

            def call():
                for r in range(B):
                    naive_numpy_disc_step(*state[r], lr[r], l2[r], act)

            t = timeit(call, min_time=min_time) / B
        elif name == "torch":
            try:
                step = torch_algorithm1_runner(W, N, d, np.dtype(dtype).name, act)
            except ImportError:
                continue
            ok = True  # checked separately in the test-suite against autograd; here: same FLOPs, same algorithm
            t = timeit(step, min_time=min_time)
        else:
            raise ValueError(name)
        if name == "numpy":
            t_ref = t
        rows.append({"op": "mlp_disc_step", "sizes": sizes, "backend": name, "s_per_run_step": t,
                     "ratio": (t_ref / t) if t_ref else None, "peak_fraction": flops / t / peak, "ok": bool(ok)})
    return rows


class _FusedOnly:
    """The numba ops with the MLP step held to the fused kernels (no GEMM form), for the d rows."""

    def __init__(self, ops):
        self._ops = ops

    def __getattr__(self, name):
        return getattr(self._ops, name)

    def mlp_disc_step(self, *args, **kw):
        from fastgan.kernels import mlp_numba
        return mlp_numba.mlp_disc_step(*args, **kw, gemm_min_d=1 << 30)


def print_rows(rows):
    print(f"{'op':16s} {'sizes':38s} {'backend':11s} {'time/run-step':>14s} {'vs numpy':>9s} {'of peak':>8s} check")
    for r in rows:
        if "error" in r:
            print(f"{r['op']:16s} {r['sizes']:38s} {r['backend']:11s} unavailable: {r['error']}")
            continue
        ratio = f"{r['ratio']:8.1f}x" if r.get("ratio") else "        -"
        peak = f"{100 * r['peak_fraction']:7.1f}%" if r.get("peak_fraction") is not None else "       -"
        print(f"{r['op']:16s} {r['sizes']:38s} {r['backend']:11s} {r['s_per_run_step'] * 1e6:11.1f} us {ratio} "
              f"{peak} {'ok' if r['ok'] else 'MISMATCH'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--N", type=int, default=200)
    ap.add_argument("--W", type=int, default=2048)
    ap.add_argument("--act", default="relu")
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--backends", nargs="+", default=["numpy", "naive", "numba"])
    args = ap.parse_args()
    rows = bench(args.B, args.N, args.W, dtype=np.float64 if args.float64 else np.float32, act=args.act,
                 backends=args.backends)
    print_rows(rows)


if __name__ == "__main__":
    main()
