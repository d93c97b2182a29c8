"""Calibrate the Algorithm 2 (Fourier discriminator) defaults: Durr et al. do not state alpha_D,
alpha_G or lambda.

    python scripts/calibrate_fourier.py --scan        # rates x ratio at n_disc = 5 (is the motion bounded?)
    python scripts/calibrate_fourier.py --phase       # g2/g1 x n_disc at the chosen rates

Prints, per run, the mode-collapse metric at iterations 500, 1000, 1500 and the end, and the final
nearest-mode distance (a cloud that drifts off the ring shows up there, not in MC).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

import fastgan
from fastgan.engine import simulate_ensemble


def run(rows, iterations, gamma, backend):
    cfgs = [fastgan.default_config(**{"discriminator.kind": "fourier", "discriminator.gamma": gamma,
                                      "training.lr_disc": ad, "training.lam": lam, "training.lr_gen": ag,
                                      "coupling.ratio": r, "training.n_disc": nd, "training.n_iterations": iterations,
                                      "record.every": 100, "record.snapshots": 0, "record.discriminator": False})
            for ad, lam, ag, r, nd in rows]
    for c, res in zip(cfgs, simulate_ensemble(cfgs, backend=backend, progress=None)):
        t = c.training
        mc = res.observables["mode_collapse"]
        pick = [i for i in (5, 10, 15) if i < mc.size] + [mc.size - 1]
        print(f"lr_disc={t.lr_disc:g} lam={t.lam:g} lr_gen={t.lr_gen:g} ratio={c.coupling.ratio:g} n_disc={t.n_disc}"
              f"  MC {np.round(mc[pick], 3)}  nearest {res.final('nearest_mode_distance'):.3f}"
              + ("  DIVERGED" if res.diverged else ""), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scan", action="store_true")
    ap.add_argument("--phase", action="store_true")
    ap.add_argument("--gamma", default="pow", choices=("pow", "exp", "const"))
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--backend", default="numba")
    a = ap.parse_args()
    if a.scan:
        run([(ad, lam, ag, r, 5) for ad, lam, ag, r in
             itertools.product([1e-4, 3e-4, 1e-3], [0.1, 1.0], [1e-3, 3e-3, 1e-2], [0.0, 0.3])], a.iterations, a.gamma,
            a.backend)
    if a.phase or not a.scan:
        run([(1e-3, 1.0, 1e-3, r, nd) for nd, r in itertools.product([1, 4, 16], [0.01, 0.03, 0.1, 0.3])],
            a.iterations, a.gamma, a.backend)


if __name__ == "__main__":
    main()
