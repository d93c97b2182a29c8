"""Fig. 14 / Fig. 15 of Durr et al. App. C: how the boundary slopes depend on the unstated lambda (the
Fourier discriminator's weight decay), and a cross-prediction: the lambda that gives Fig. 14's slope 4.90
is used, unchanged, for Fig. 15, whose slope is then compared with the paper's 1.86.

Each slope comes from the boundaries of a few n_disc lines (default 1, 4, 16), bisected as in
``fastgan reproduce egan-fig14`` / ``egan-fig15`` at the paper's T (3000 / 2000 steps), with the
reproduction's other settings (alpha_G = 1e-3; alpha_D = 1e-3 for gamma_pow, 1e-4 for gamma_exp).

    python scripts/fourier_cross_prediction.py [--lams 0.1 0.25 0.5 1] [--lines 1 4 16] [--rounds 4] [--json F]

With --scan-only exp (or pow) it measures that figure's slope at each lambda and stops (a sensitivity
scan, no cross-prediction).
"""

import argparse
import json
import time

import numpy as np

import fastgan
from fastgan.analysis import bisect_boundaries, compare_fits, default_threshold
from fastgan.reproduce import egan_fourier as ef


class _Ctx:
    backend, progress, tiny = "numba", False, False


def slope(gamma: str, lam: float, lines, rounds: int) -> dict:
    """The boundary g2/g1 per n_disc line and both fits' slopes (power: d ln n / d ln r; exponential:
    d ln n / d r), at the paper's T."""
    T = ef.PAPER[gamma][2]
    over = {} if ef.LR_DISC[gamma] is None else {"training.lr_disc": ef.LR_DISC[gamma]}
    base = fastgan.default_config(**{"discriminator.kind": "fourier", "discriminator.gamma": gamma, "training.lam": lam,
                                     "training.n_iterations": T + ef.WINDOW, "record.every": 20, "record.snapshots": 0,
                                     "record.discriminator": False, **over})
    thr = default_threshold(8)
    F, _ = ef._evaluator(_Ctx(), base, T, 1, thr)
    lo, hi = {"pow": (0.01, 1.0), "exp": (0.0, 1.0)}[gamma]
    ends = F([(nd, x) for nd in lines for x in (lo, hi)])
    spans = {nd: (lo, hi, ends[2 * i], ends[2 * i + 1]) for i, nd in enumerate(lines)}
    ok = {nd: s for nd, s in spans.items() if s[2] < thr <= s[3]}
    found = bisect_boundaries(F, ok, thr, tol=1e-6, log=gamma == "pow", max_evals=rounds)[0] if ok else {}
    ratios = {int(nd): float(b.estimate) for nd, b in sorted(found.items())}
    out = {"gamma": gamma, "lambda": lam, "boundary": ratios,
           "unbracketed": {int(nd): [float(s[2]), float(s[3])] for nd, s in spans.items() if nd not in ok}}
    if len(ratios) >= 3:
        fits = compare_fits(list(ratios.values()), np.array(list(ratios), dtype=np.float64))
        out.update(power=fits.power.slope, power_err=fits.power.slope_stderr, exponential=fits.exponential.slope,
                   exponential_err=fits.exponential.slope_stderr, best=fits.best, delta_aic=fits.delta_aic)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lams", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    ap.add_argument("--lines", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--json")
    ap.add_argument("--scan-only", choices=("pow", "exp"))
    args = ap.parse_args()
    if args.scan_only:
        rows = []
        for lam in args.lams:
            t0 = time.time()
            r = slope(args.scan_only, lam, args.lines, args.rounds + (args.scan_only == "exp"))
            rows.append(r)
            kind = "power" if args.scan_only == "pow" else "exponential"
            print(f"{ef.PAPER[args.scan_only][3]} lambda {lam:g}: boundary {r['boundary']} {kind} slope "
                  f"{r.get(kind, float('nan')):.3g} ± {r.get(kind + '_err', float('nan')):.2g} "
                  f"({time.time() - t0:.0f} s)", flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"scan": args.scan_only, "rows": rows}, fh, indent=1)
        return
    rows = []
    for lam in args.lams:
        t0 = time.time()
        r = slope("pow", lam, args.lines, args.rounds)
        rows.append(r)
        print(f"Fig. 14 lambda {lam:g}: boundary {r['boundary']} power slope {r.get('power', float('nan')):.3g} "
              f"± {r.get('power_err', float('nan')):.2g} ({time.time() - t0:.0f} s)", flush=True)
    pts = [(r["lambda"], r["power"]) for r in rows if "power" in r and np.isfinite(r["power"])]
    target = ef.PAPER["pow"][1]
    lam_fit = None
    for (l0, s0), (l1, s1) in zip(pts, pts[1:]):               # the first bracketing pair, log-interpolated
        if (s0 - target) * (s1 - target) <= 0 and s0 != s1:
            lam_fit = float(np.exp(np.log(l0) + (target - s0) / (s1 - s0) * (np.log(l1) - np.log(l0))))
            break
    result = {"fig14": rows, "lambda_fit": lam_fit}
    if lam_fit is not None:
        check = slope("pow", lam_fit, args.lines, args.rounds)
        pred = slope("exp", lam_fit, args.lines, args.rounds + 1)
        result.update(fig14_at_fit=check, fig15_predicted=pred)
        print(f"lambda for Fig. 14's slope {target}: {lam_fit:.3g} (check: {check.get('power', float('nan')):.3g}); "
              f"Fig. 15 there: exponential slope {pred.get('exponential', float('nan')):.3g} (ln; "
              f"{pred.get('exponential', float('nan')) / np.log(10):.3g} in log10) against the paper's "
              f"{ef.PAPER['exp'][1]}, preferred shape {pred.get('best')}", flush=True)
    else:
        print(f"no lambda in {args.lams} brackets Fig. 14's slope {target}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
