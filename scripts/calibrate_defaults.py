"""Calibrate alpha_D, alpha_G so that the n_disc = 6 mode-collapse transition sits near g2/g1 = 0.06.

Runs, for each (alpha_D, alpha_G) candidate, the ring setting of Appendix A over a grid of ratios and
n_disc values as one ensemble, and prints the time-averaged mode-collapse metric (iterations
T +- n*20, n = 0..3) with the estimated transition ratio (where MC crosses (1/2) log 8).

    python scripts/calibrate_defaults.py --lr-disc 0.1 0.3 --lr-gen 0.01 --iterations 3000
"""

import argparse
import itertools
import json
import time

import numpy as np

import fastgan
from fastgan.observables import time_average


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr-disc", type=float, nargs="+", default=[0.1])
    ap.add_argument("--lr-gen", type=float, nargs="+", default=[0.01])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.02, 0.04, 0.06, 0.08, 0.12, 0.2])
    ap.add_argument("--n-disc", type=int, nargs="+", default=[5, 6])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    thr = 0.5 * np.log(8)
    rows = []
    for lrd, lrg in itertools.product(args.lr_disc, args.lr_gen):
        cfgs = []
        for r, nd, s in itertools.product(args.ratios, args.n_disc, args.seeds):
            cfgs.append(fastgan.default_config(**{
                "training.lr_disc": lrd, "training.lr_gen": lrg, "coupling.ratio": r, "training.n_disc": nd,
                "training.seed": s, "training.n_iterations": args.iterations, "record.snapshots": 0,
                "record.discriminator": False}))
        t0 = time.time()
        res = fastgan.simulate_ensemble(cfgs, backend=args.backend, progress=False)
        el = time.time() - t0
        print(f"\nalpha_D = {lrd}, alpha_G = {lrg}  ({len(cfgs)} runs, {el:.0f} s)")
        i = 0
        table = {}
        for r, nd, s in itertools.product(args.ratios, args.n_disc, args.seeds):
            rr = res[i]
            i += 1
            mc = time_average(rr.time, rr.observables["mode_collapse"], args.iterations)
            table.setdefault((r, nd), []).append(float(mc) if not rr.diverged else float("nan"))
        print("ratio  " + " ".join(f"nd={nd:<9d}" for nd in args.n_disc))
        for r in args.ratios:
            print(f"{r:5.3f}  " + " ".join(" ".join(f"{v:5.2f}" for v in table[(r, nd)]) + "   " for nd in args.n_disc))
        for nd in args.n_disc:
            means = np.array([np.nanmean(table[(r, nd)]) for r in args.ratios])
            above = np.nonzero(means > thr)[0]
            cross = None
            if above.size and above[0] > 0:
                j = above[0]
                r0, r1 = args.ratios[j - 1], args.ratios[j]
                m0, m1 = means[j - 1], means[j]
                cross = r0 + (thr - m0) * (r1 - r0) / (m1 - m0)
            print(f"  n_disc={nd}: transition ratio ~ {cross}")
            rows.append({"lr_disc": lrd, "lr_gen": lrg, "n_disc": nd, "transition": cross,
                         "mc": {str(r): table[(r, nd)] for r in args.ratios}})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
