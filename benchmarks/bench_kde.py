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
import subprocess
import sys
import textwrap

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import agree, compare_and_time, timeit  # noqa: E402

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


def _keops_ops():
    """kde_log_density / kde_grad_sum written with pykeops LazyTensors (its CPU backend here), one run
    at a time, the same formulas; None when pykeops is not installed."""
    try:
        from pykeops.numpy import LazyTensor
    except Exception:  # noqa: BLE001
        return None

    def terms(q, x, logw, bw, lm, d):
        Q, X = LazyTensor(np.ascontiguousarray(q.T)[:, None, :]), LazyTensor(np.ascontiguousarray(x.T)[None, :, :])
        D = ((Q - X) ** 2).sum(-1)
        W = LazyTensor(np.ascontiguousarray(logw)[None, :, None])
        out = []
        for sig, l in zip(bw, lm):
            c = np.float64(l - 0.5 * d * math.log(2 * math.pi * sig * sig)).astype(q.dtype)
            out.append((W - D * q.dtype.type(0.5 / (sig * sig)) + c, q.dtype.type(1 / (sig * sig)), Q, X))
        return out

    def log_density(q, x, logw, bw, lm):
        B, d, n = q.shape
        out = np.empty((B, n), dtype=q.dtype)
        for b in range(B):
            parts = [t.logsumexp(dim=1)[:, 0] for t, _, _, _ in terms(q[b], x[b], logw[b], bw[b], lm[b], d)]
            out[b] = np.logaddexp.reduce(np.stack(parts), axis=0) if len(parts) > 1 else parts[0]
        return out

    def grad_sum(q, x, logw, la, lb, bw, lm):
        B, d, n = q.shape
        out = np.zeros((B, d, n), dtype=q.dtype)
        for b in range(B):
            for t, is2, Q, X in terms(q[b], x[b], logw[b], bw[b], lm[b], d):
                if la is not None:
                    out[b] += is2 * ((t + LazyTensor(np.ascontiguousarray(la[b])[None, :, None])).exp()
                                     * (X - Q)).sum(dim=1).T
                if lb is not None:
                    out[b] += is2 * ((t + LazyTensor(np.ascontiguousarray(lb[b])[:, None, None])).exp()
                                     * (X - Q)).sum(dim=1).T
        return out

    class KeOps:
        name, xp = "pykeops", np
        kde_log_density = staticmethod(log_density)
        kde_grad_sum = staticmethod(grad_sum)

        @staticmethod
        def to_host(a):
            return a
    return KeOps


def bench_headline(dtype=np.float32, min_time=0.3, n=200, m=10 ** 5, keops=True):
    """The kernel-model scale (issue 5): log-density plus gradient (grad log p: lb = -log p), N = M = 10^5, d = 2,
    timed per query on ``n`` of the 10^5 queries (the work is linear in the queries): the chunked
    NumPy reference, numba and, when installed, pykeops (CPU)."""
    from fastgan.kernels.ops import load_ops
    v = _kde(1, n, m, 2, 1, dtype)

    def work(ops):
        lp = ops.kde_log_density(v["q"], v["x"], v["logw"], v["bandwidths"], v["logmix"])
        return lp, ops.kde_grad_sum(v["q"], v["x"], v["logw"], None, -lp, v["bandwidths"], v["logmix"])
    impls = [load_ops("numpy"), load_ops("numba")]
    k = _keops_ops() if keops else None
    if k is not None:
        impls.append(k)
    ref = work(impls[0])
    rows, t_ref = [], None
    for ops in impls:
        ok = agree(ops, work(ops), ref, dtype)
        t = timeit(lambda ops=ops: work(ops), min_time=min_time, repeats=3) / n
        t_ref = t if ops.name == "numpy" else t_ref
        rows.append({"op": "kde logp+grad", "sizes": f"N=M={m:.0e} d=2 (per query)", "backend": ops.name,
                     "s_per_run_step": t, "ratio": t_ref / t, "peak_fraction": None, "ok": ok,
                     "s_full": t * m})
    return rows


_MEMORY_SCRIPT = textwrap.dedent("""
    import math, sys, numpy as np
    from fastgan.kernels.ops import load_ops
    n, m = int(sys.argv[1]), int(sys.argv[2])
    ops = load_ops("numba")
    def run(n, m):
        g = np.random.default_rng(0)
        q, x = g.standard_normal((1, 2, n)).astype(np.float32), g.standard_normal((1, 2, m)).astype(np.float32)
        lw, bw, lm = np.full((1, m), -math.log(m), np.float32), np.full((1, 1), 0.3, np.float32), np.zeros((1, 1), np.float32)
        def work():
            lp = ops.kde_log_density(q, x, lw, bw, lm)
            return ops.kde_grad_sum(q, x, lw, None, -lp, bw, lm)
        return work
    run(50, 70)()                                            # compile, warm the allocator
    work = run(n, m)                                         # inputs allocated
    def vm(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    open("/proc/self/clear_refs", "w").write("5")            # reset the peak (VmHWM) to the current RSS
    base = vm("VmRSS:")
    work()
    print(vm("VmHWM:") - base)
""")


def kde_memory(n=2 * 10 ** 5, m=2 * 10 ** 5, timeout=900):
    """Peak resident memory beyond the inputs (bytes) of numba log-density + gradient for n queries
    against m centres, in a fresh process (Linux; None where /proc is unavailable)."""
    proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(n), str(m)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        return None
    return int(proc.stdout.strip().splitlines()[-1])


def main():
    from bench_mlp_step import print_rows
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--backends", nargs="+", default=["numpy", "numba"])
    ap.add_argument("--memory", action="store_true", help="also measure the working memory at N = M = 2e5")
    args = ap.parse_args()
    dtype = np.float64 if args.float64 else np.float32
    print_rows(bench(args.B, dtype=dtype, backends=args.backends) + bench_headline(dtype))
    if args.memory:
        mem = kde_memory()
        print(f"working memory beyond the inputs, N = M = 2e5: {mem / 2**20:.1f} MiB" if mem is not None else
              "working memory: unavailable here")


if __name__ == "__main__":
    main()
