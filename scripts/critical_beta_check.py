"""The rigid-cloud prediction of the critical regulariser (fastgan.analysis.rigid_cloud) against the
settling-time optimum of simulated runs, over a small grid of alpha_G, alpha_D and n_disc.

For each setting (the Fig. 9 run: ReLU, g2/g1 = 0.275, N = 200, W = 2048, 1600 iterations, recorded every
--every iterations) it sweeps beta on a log grid with four seeds, takes the median settling time (the
mode-collapse metric below 0.2 to the end of the run) and reports the fastest-settling beta next to beta* of
the rigid-cloud map with K at the initial cloud and at the target (the fixed point), and the ratios.

    python scripts/critical_beta_check.py [--iterations 1600] [--betas 0.02 0.6 16] [--every 2] [--json out.json]

With --linear DELTA the same grid runs in the model's own domain: 200 particles on samples of the target with
their centroid moved by DELTA (1, 1) / sqrt 2 (a rigid offset from the fixed point), the settling time being
that of the centroid's distance to DELTA / 10, the optimum refined between grid points (parabola in log-log),
against the map's own fastest band settling (analysis.fastest_settling_beta: ~0.6 beta*, a second-order
system's 10 % band optimum).

    python scripts/critical_beta_check.py --linear 0.5 --iterations 600 [--json out.json]

With --optimizers the same measurement runs at the default setting for each discriminator optimiser
(gradient descent at the default alpha_D, RMSProp and Adam at --adaptive-rates) over a wider beta grid: where
the settling-time optimum and the dip of the final mode collapse land with each (the rigid-cloud map is the
gradient-descent dynamics; it predicts nothing for the adaptive ones).

    python scripts/critical_beta_check.py --optimizers sgd rmsprop adam --betas 0.01 1000 11 [--json out.json]
"""

import argparse
import json
import time

import numpy as np

import fastgan
from fastgan import analysis
from fastgan.reproduce.egan_dynamics import settle_time

GRID = [{}, {"training.lr_gen": 0.04}, {"training.n_disc": 2}, {"training.n_disc": 10}, {"training.lr_disc": 0.1}]


def optimum(keys, betas, seeds, iterations, backend, every=10):
    cfgs = [fastgan.default_config(**{"coupling.ratio": 0.275, "training.n_iterations": iterations, "record.every": every,
                                      "record.snapshots": 0, **keys, "training.beta": float(b), "training.seed": s})
            for b in betas for s in seeds]
    runs = fastgan.simulate_ensemble(cfgs, backend=backend, progress=False)
    groups = [runs[i * len(seeds):(i + 1) * len(seeds)] for i in range(len(betas))]
    settle = [float(np.median([settle_time(r.time, r.observables["mode_collapse"], 0.2) for r in g])) for g in groups]
    final = [float(np.median([r.average_last("mode_collapse") for r in g])) for g in groups]
    best = float(betas[int(np.argmin(settle))]) if np.isfinite(settle).any() else float("nan")
    return best, settle, final


def linear_domain(args, betas):
    """The grid in the rigid-cloud model's domain: the cloud on the data, offset rigidly by --linear."""
    from fastgan.targets import make_target
    delta = args.linear
    pts = make_target(fastgan.default_config().resolved).sample(200, seed=123)
    pts = (pts - pts.mean(0) + delta / np.sqrt(2)).tolist()
    snaps = list(range(0, args.iterations + 1, args.every))
    rows = []
    for keys in GRID:
        t0 = time.time()
        cfgs = [fastgan.default_config(**{"coupling.ratio": 0.275, "training.n_iterations": args.iterations,
                                          "record.every": 50, "record.snapshots": snaps, "record.discriminator": False,
                                          "generator.init_points": pts, **keys, "training.beta": float(b),
                                          "training.seed": s}) for b in betas for s in args.seeds]
        runs = fastgan.simulate_ensemble(cfgs, backend=args.backend, progress=False)
        st = [settle_time(r.particles_time, np.linalg.norm(r.particles.mean(1), axis=-1), delta / 10) for r in runs]
        settle = np.median(np.array(st).reshape(len(betas), -1), 1)
        best = analysis.refined_minimum(betas, settle)
        rt = analysis.rigid_cloud(fastgan.default_config(**{"coupling.ratio": 0.275, **keys}), at="target")
        pred = analysis.fastest_settling_beta(rt.k_mean, rt.n_disc, rt.lr_disc, rt.lr_gen, rt.l2, rt.c, band=0.1)
        rows.append({"setting": keys, "measured": best, "settle": settle.tolist(), "beta_star": rt.beta_star,
                     "predicted": pred})
        print(f"{json.dumps(keys):28s} fastest centroid settling at beta {best:.3g}; the map's fastest {pred:.3g} (ratio "
              f"{best / pred:.2f}); beta* {rt.beta_star:.3g} (zeta {best / rt.beta_star:.2f})  ({time.time() - t0:.0f} s)")
        print("         settle:" + " ".join(f"{x:7.0f}" for x in settle))
    return rows


def by_optimizer(args, betas):
    """The settling-time optimum and the final mode collapse over beta for each discriminator optimiser."""
    rows = []
    settings = [("sgd", {})] + [(f"{o}", {"training.optimizer_disc": o, "training.lr_disc": lr})
                                for o in args.optimizers if o != "sgd" for lr in args.adaptive_rates]
    for name, keys in settings:
        if name not in args.optimizers:
            continue
        t0 = time.time()
        best, settle, final = optimum(keys, betas, args.seeds, args.iterations, args.backend, args.every)
        dip = float(betas[int(np.nanargmin(final))]) if np.isfinite(final).any() else float("nan")
        rows.append({"optimizer": name, "setting": keys, "measured": best, "settle": settle, "final": final,
                     "dip": dip})
        lr = keys.get("training.lr_disc", fastgan.default_config().resolved.training.lr_disc)
        print(f"{name:8s} alpha_D {lr:<7g} settling optimum beta {best:.3g}  lowest final mode collapse at "
              f"beta {dip:.3g} ({np.nanmin(final):.3f}; beta -> 0: {final[0]:.3f}; NaN: diverged)  ({time.time() - t0:.0f} s)")
        print("         beta:  " + " ".join(f"{b:7.3g}" for b in betas))
        print("         settle:" + " ".join(f"{x:7.0f}" for x in settle))
        print("         final: " + " ".join(f"{x:7.3f}" for x in final))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=1600)
    ap.add_argument("--betas", type=float, nargs=3, default=[0.02, 0.6, 16], metavar=("LO", "HI", "N"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--every", type=int, default=2, help="record interval (the settling time's resolution)")
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--optimizers", nargs="+", choices=("sgd", "rmsprop", "adam"))
    ap.add_argument("--adaptive-rates", type=float, nargs="+", default=[1e-3, 1e-4])
    ap.add_argument("--linear", type=float, metavar="DELTA", help="the model's domain: a cloud on the data offset by DELTA")
    ap.add_argument("--json")
    args = ap.parse_args()
    betas = np.geomspace(args.betas[0], args.betas[1], int(args.betas[2]))
    if args.linear or args.optimizers:
        rows = linear_domain(args, betas) if args.linear else by_optimizer(args, betas)
        _dump(args, {"betas": betas.tolist(), "iterations": args.iterations, "delta": args.linear, "rows": rows})
        return
    rows = []
    for keys in GRID:
        t0 = time.time()
        best, settle, _ = optimum(keys, betas, args.seeds, args.iterations, args.backend, args.every)
        cfg = fastgan.default_config(**{"coupling.ratio": 0.275, **keys})
        rc, rt = analysis.rigid_cloud(cfg), analysis.rigid_cloud(cfg, at="target")
        rows.append({"setting": keys, "measured": best, "settle": settle, **rc.as_dict(),
                     "at_target": rt.as_dict()})
        print(f"{json.dumps(keys):28s} measured beta* {best:.3g}  rigid-cloud {rc.beta_star:.3g} (K at the initial "
              f"cloud, k {rc.k_mean:.3g}; ratio {best / rc.beta_star:.2f}), {rt.beta_star:.3g} (at the target, k "
              f"{rt.k_mean:.3g}; ratio {best / rt.beta_star:.2f})  n alpha_D beta* {rc.n_disc * rc.lr_disc * best:.3g}"
              f"  ({time.time() - t0:.0f} s)")
        print("         beta:  " + " ".join(f"{b:7.3g}" for b in betas))
        print("         settle:" + " ".join(f"{x:7.0f}" for x in settle))
    _dump(args, {"betas": betas.tolist(), "iterations": args.iterations, "rows": rows})


def _dump(args, payload: dict) -> None:
    """The measurement as JSON to --json, when given."""
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1)


if __name__ == "__main__":
    main()
