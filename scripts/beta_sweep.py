"""Sweep the regulariser beta at fixed ratio and n_disc (Fig. 9 / Fig. 19 settings) and print the
time-averaged mode-collapse metric per beta and seed.

    python scripts/beta_sweep.py --ratio 0.2 --n-disc 5 --iterations 3000 --betas 1 10 100 1000
"""

import argparse
import itertools
import time

import numpy as np

import fastgan


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratio", type=float, default=0.2)
    ap.add_argument("--n-disc", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--betas", type=float, nargs="+", default=[0.1, 1, 3, 10, 30, 100, 300, 1000, 10000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--backend", default="numba")
    args = ap.parse_args()
    extra = dict(fastgan.config.parse_override(o) for o in args.overrides)
    cfgs = [fastgan.default_config(**{"coupling.ratio": args.ratio, "training.n_disc": args.n_disc,
                                      "training.beta": b, "training.seed": s, "training.n_iterations": args.iterations,
                                      "discriminator.activation": args.activation, "record.snapshots": 0,
                                      "record.discriminator": False, **extra})
            for b, s in itertools.product(args.betas, args.seeds)]
    t0 = time.time()
    res = fastgan.simulate_ensemble(cfgs, backend=args.backend, progress=False)
    print(f"ratio {args.ratio} n_disc {args.n_disc} {args.activation} {args.iterations} it ({time.time() - t0:.0f} s)")
    i = 0
    for b in args.betas:
        vals = []
        for _ in args.seeds:
            r = res[i]
            i += 1
            vals.append("  div " if r.diverged else f"{r.average_last('mode_collapse'):6.3f}")
        print(f"beta {b:10.4g}: " + " ".join(vals))


if __name__ == "__main__":
    main()
