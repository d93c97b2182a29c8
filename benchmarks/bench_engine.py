"""Benchmark: whole iterations of the engine, ensemble-size scaling and memory.

    python benchmarks/bench_engine.py [--backend numba] [--sizes 4 16 64 256]

- iteration cost: n_disc = 5 discriminator steps + sampling + generator step + observables every
  20 iterations, per run, against five bare discriminator steps of the same ensemble;
- scaling: time per run-step of the discriminator step for several ensemble sizes B;
- memory: peak resident memory added while stepping, relative to the ensemble's state size.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_mlp_step import make_inputs  # noqa: E402
from common import timeit  # noqa: E402


def _configs(B, iterations):
    import fastgan
    return [fastgan.default_config(**{"training.seed": s, "coupling.ratio": 0.05 * (s % 4),
                                      "training.n_iterations": iterations, "record.snapshots": 0,
                                      "record.discriminator": False}) for s in range(B)]


def iteration_cost(backend="numba", B=16, iterations=200, rounds=5):
    """Seconds per (iteration, run) of the engine loop and of 5 bare discriminator steps on the same
    ensemble's arrays, measured in alternating rounds (fastest of each) so machine noise cancels."""
    from fastgan.engine import Ensemble, _LoopState, _Recorder, record_times, snapshot_times
    ens = Ensemble(_configs(B, iterations), backend)
    st = _LoopState(ens)
    rec = _Recorder(ens, record_times(iterations, 20), snapshot_times(iterations, 0), False)
    for it in range(3):                        # warm-up (JIT)
        ens.advance(st, it)
    ops, dt = ens.ops, ens.dtype
    xt = ops.sample_mixture(st.comp_base, st.noise_base, 0, 0, st.means, st.cum, st.stds, ens.M, dt)
    lr = np.full(B, 1e-30, dtype=dt)           # a real step that leaves the state (almost) unchanged
    per = max(1, iterations // rounds)
    t_iter, t_step = np.inf, np.inf
    it = 3
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per):
            ens.advance(st, it)
            it += 1
            rec.take(it if it % 20 == 0 else -1, st)
        t_iter = min(t_iter, (time.perf_counter() - t0) / per / B)
        t_step = min(t_step, timeit(lambda: ens.disc.step(st.p, st.X, xt, lr, st.l2, None), min_time=0.2,
                                    repeats=3) / B)
    return {"op": "engine_iteration", "sizes": f"B={B} N={ens.N} W={ens.configs[0].discriminator.width} n_disc=5",
            "backend": backend, "s_per_run_iteration": t_iter, "s_per_run_disc_step": t_step,
            "iteration_over_5_steps": t_iter / (5 * t_step)}


def scaling(backend="numba", sizes=(4, 16, 64, 256), N=200, W=2048):
    """Time per run-step of the MLP step against B, and peak memory added relative to the state size."""
    from fastgan.kernels.ops import load_ops
    ops = load_ops(backend)
    rows = []
    for B in sizes:
        inputs = make_inputs(B, N, W)
        state = sum(x.nbytes for x in inputs)
        base = _rss_peak()
        ops.mlp_disc_step(*inputs, None, "relu")
        t = timeit(lambda: ops.mlp_disc_step(*inputs, None, "relu"), min_time=1.0) / B
        extra = max(0, _rss_peak() - base)
        rows.append({"op": "mlp_disc_step", "sizes": f"B={B} N={N} W={W}", "backend": backend, "B": B,
                     "s_per_run_step": t, "state_bytes": state, "peak_extra_bytes": extra,
                     "memory_over_state": (state + extra) / state})
    return rows


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64, 256])
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args()
    r = iteration_cost(args.backend, 16, args.iterations)
    print(f"iteration (n_disc=5, sampling, generator step, observables/20): {r['s_per_run_iteration'] * 1e6:.1f} us/run, "
          f"5 disc steps {5 * r['s_per_run_disc_step'] * 1e6:.1f} us/run -> {r['iteration_over_5_steps']:.2f}x")
    for row in scaling(args.backend, args.sizes):
        print(f"B={row['B']:4d}: {row['s_per_run_step'] * 1e6:8.1f} us/run-step, memory {row['memory_over_state']:.2f}x state")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
