"""Durr et al. Appendix C (Algorithm 2): phase diagrams of the Fourier discriminator, Figs. 14 and 15.

D(x) = sum_k w1_k sin(k.x) + w2_k cos(k.x) (eqs. C1-C2) on the 50 x 50 frequency grid, each weight
learning at alpha_D gamma(|k|): gamma_pow = min(10^3, |k|^-3) (C3, Fig. 14, 3000 steps) or
gamma_exp = 668.8 exp(-2.05 |k|) (C4, Fig. 15, 2000 steps). As in Section IV (Fig. 5) the diagram is
the time-averaged mode-collapse metric (eq. 22, mean over T ± 20 n, n = 0..3) over x = g2/g1 and
y = n_disc; the boundary is where it crosses (1/2) log 8, and its "slope" is that of the boundary line
drawn in those axes: d ln n_disc / d ln(g2/g1) for the power law (log-log, Fig. 14), d ln n_disc /
d(g2/g1) for the exponential (log-linear, Fig. 15).

The paper states no rates: alpha_G = 1e-3 and lambda = 1 (fastgan's calibrated Fourier defaults) for
both figures, alpha_D = 1e-3 (default) for Fig. 14 and 1e-4 for Fig. 15 (``LR_DISC``, reasons in ``LR_NOTE``).

For every n_disc the boundary ratio is bisected (``analysis.bisect_boundaries``: each round is one
fused ensemble of every line's midpoint and replicates); the evaluated points are the scatter plot
the paper draws, and n_disc against the boundary ratio is fitted by both shapes (``compare_fits``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .common import experiment, figure

# gamma -> what Durr et al. report: boundary shape, slope, iterations T of the figure
PAPER = {"pow": ("power", 4.90, 3000, "Fig. 14"), "exp": ("exponential", 1.86, 2000, "Fig. 15")}
WINDOW = 60                      # the time average covers T - 60 .. T + 60 (Durr et al. Fig. 5: T ± 20 n, n <= 3)
# alpha_D per figure (None: fastgan's Fourier default 1e-3; lambda = 1 and alpha_G = 1e-3 throughout).
# gamma_exp learns the frequencies |k| ~ 1-2 about 100x faster than gamma_pow; why 1e-4 for it: LR_NOTE.
LR_DISC = {"pow": None, "exp": 1e-4}
LR_NOTE = {"exp": "alpha_D = 1e-4 is 10x below fastgan's Fourier default: at 1e-3 the gamma_exp boundary starts at "
                  "g2/g1 ~ 0.4 (n_disc = 1) and flattens near 0.7 from n_disc = 8 on (found at quick scale while "
                  "choosing it: exponential preferred by only dAIC = 2)"}
# smoke test only: a smaller, faster-moving model whose boundary appears within 200 iterations
TINY_OVERRIDES = {"generator.n_particles": 64, "discriminator.freq_count": 10, "training.lr_gen": 0.003}


def _scale(ctx, gamma: str) -> dict:
    """Iterations T, n_disc lines, initial g2/g1 bracket, bisection rounds and replicates per scale.
    g2/g1 = 1 (g1 = g2: the cloud moves rigidly) always stays collapsed; the lower end converges
    for every line at the paper's T (probed at n_disc = 1, 4, 16)."""
    return {"T": ctx.pick(200, PAPER[gamma][2], PAPER[gamma][2]),
            "n_disc": ctx.pick([4, 8, 16], [1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 32, 64]),
            "rounds": ctx.pick(2, {"pow": 4, "exp": 5}[gamma], 8), "replicates": ctx.pick(1, 1, 3),
            "bracket": {"pow": (0.01, 1.0), "exp": (0.0, 1.0)}[gamma],
            "overrides": ({} if LR_DISC[gamma] is None else {"training.lr_disc": LR_DISC[gamma]})
            | (TINY_OVERRIDES if ctx.tiny else {})}


def _evaluator(ctx, base, T: int, replicates: int, threshold: float):
    """F([(n_disc, ratio), ...]) -> window- and replicate-averaged MC, one fused ensemble per call;
    every run is kept in ``runs`` (dicts of ratio, n_disc, seed, mc (T_rec,), nearest (T_rec,))."""
    import fastgan
    from ..analysis import time_average
    runs: list[dict] = []

    def F(points):
        cfgs = [base.replace(**{"coupling.ratio": float(r), "training.n_disc": int(nd), "training.seed": s})
                for nd, r in points for s in range(replicates)]
        results = fastgan.simulate_ensemble(cfgs, backend=ctx.backend, progress=ctx.progress)
        out = []
        for i, (nd, r) in enumerate(points):
            mine = results[i * replicates:(i + 1) * replicates]
            mc = [time_average(res.observables["mode_collapse"], res.time, T, nan_policy="omit") for res in mine]
            for s, res, m in zip(range(replicates), mine, mc):
                runs.append({"ratio": float(r), "n_disc": int(nd), "seed": s, "metric": float(m),
                             "mc": res.observables["mode_collapse"],
                             "nearest": res.observables["nearest_mode_distance"], "time": res.time,
                             "diverged": res.diverged})
            # a diverged run counts as collapsed (it left the ring); the paper shows none
            out.append(float(np.mean([threshold + 1.0 if not np.isfinite(m) else m for m in mc])))
        return out
    return F, runs


@dataclass
class _Diagram:
    """One phase diagram: the scale's settings, the base config, every evaluated run, the lines'
    end points {n_disc: (lo, hi, MC(lo), MC(hi))}, the bisected boundaries {n_disc: Bisection} and
    the fits of n_disc against the boundary g2/g1 (None with fewer than 3 boundaries)."""

    gamma: str
    scale: dict
    base: object
    threshold: float
    runs: list
    spans: dict
    found: dict
    fits: object

    @property
    def paper(self):
        return PAPER[self.gamma]


def _fourier_phase(ctx, gamma: str) -> None:
    """The shared body of Figs. 14 and 15: bisect the boundary for each n_disc, fit, draw, report."""
    import fastgan
    from ..analysis import bisect_boundaries, compare_fits, default_threshold

    s = _scale(ctx, gamma)
    T, lines, (lo, hi) = s["T"], s["n_disc"], s["bracket"]
    base = fastgan.default_config(**{"discriminator.kind": "fourier", "discriminator.gamma": gamma,
                                     "training.n_iterations": T + WINDOW, "record.every": 20,
                                     "record.snapshots": 0, "record.discriminator": False, **s["overrides"]})
    threshold = default_threshold(8)
    F, runs = _evaluator(ctx, base, T, s["replicates"], threshold)

    ends = F([(nd, x) for nd in lines for x in (lo, hi)])
    spans = {nd: (lo, hi, ends[2 * i], ends[2 * i + 1]) for i, nd in enumerate(lines)}
    bracketed = {nd: sp for nd, sp in spans.items() if sp[2] < threshold <= sp[3]}
    found = {}
    if bracketed:
        found, _ = bisect_boundaries(F, bracketed, threshold, tol=1e-6, log=gamma == "pow", max_evals=s["rounds"])
    found = dict(sorted(found.items()))
    fits = None
    if len(found) >= 3:
        fits = compare_fits([b.estimate for b in found.values()], np.array(list(found), dtype=np.float64))
    d = _Diagram(gamma, s, base, threshold, runs, spans, found, fits)
    _save(ctx, d)
    _draw(ctx, d)
    _report(ctx, d)


def _fit_dict(f) -> dict:
    return {k: float(getattr(f, k)) for k in ("slope", "slope_stderr", "prefactor", "log_prefactor_stderr", "r2",
                                              "chi2_dof", "aic")} | {"n": int(f.n)}


def _save(ctx, d: _Diagram) -> None:
    runs, lines, found = d.runs, list(d.spans), d.found
    data = {
        "points": {"ratio": np.array([r["ratio"] for r in runs]), "n_disc": np.array([r["n_disc"] for r in runs]),
                   "seed": np.array([r["seed"] for r in runs]),
                   "mode_collapse_window": np.array([r["metric"] for r in runs]),
                   "time": runs[0]["time"],
                   "mode_collapse": np.stack([np.nan_to_num(r["mc"], nan=math.log(8)) for r in runs]),
                   "nearest_mode_distance": np.stack([np.nan_to_num(r["nearest"], nan=-1.0) for r in runs]),
                   "diverged": np.array([r["diverged"] for r in runs])},
        "lines": {"n_disc": np.array(lines), "bracketed": np.array([nd in found for nd in lines]),
                  "mc_lo": np.array([d.spans[nd][2] for nd in lines]),
                  "mc_hi": np.array([d.spans[nd][3] for nd in lines])},
        "boundary": {"n_disc": np.array(list(found), dtype=np.int64),
                     "ratio": np.array([b.estimate for b in found.values()], dtype=np.float64),
                     "bracket_lo": np.array([b.bracket[0] for b in found.values()], dtype=np.float64),
                     "bracket_hi": np.array([b.bracket[1] for b in found.values()], dtype=np.float64)},
    }
    if d.fits is not None:
        data["fits"] = {"power": _fit_dict(d.fits.power), "exponential": _fit_dict(d.fits.exponential)}
    ctx.save_h5(data, attrs={"gamma": d.gamma, "T": d.scale["T"], "window": WINDOW, "threshold": d.threshold,
                             "replicates": d.scale["replicates"], "config": d.base.to_dict(),
                             "note": "diverged runs: mode_collapse stored as log 8, nearest distance -1"})


def _point_means(runs) -> dict:
    """{(n_disc, ratio): MC averaged over the window and the replicates (NaN: every replicate diverged)}."""
    acc: dict = {}
    for r in runs:
        acc.setdefault((r["n_disc"], r["ratio"]), []).append(r["metric"])
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for k, v in sorted(acc.items())}


def _draw(ctx, d: _Diagram) -> None:
    """Left: the evaluated points coloured by MC (bright = collapse, as the paper's scatter plots),
    the boundary and both fits; right: MC against g2/g1 along every n_disc line."""
    import matplotlib.pyplot as plt
    log_ratio = d.gamma == "pow"
    fig, ax = figure(2, 1, size=(4.6, 3.8))
    a, b = ax[0, 0], ax[0, 1]
    points = _point_means(d.runs)
    y, x = (np.array(v, dtype=np.float64) for v in zip(*points))
    m = np.nan_to_num(np.array(list(points.values())), nan=math.log(8))
    sc = a.scatter(x, y, c=m, cmap="viridis", vmin=0, vmax=math.log(8), s=22, edgecolors="none")
    fig.colorbar(sc, ax=a, shrink=0.85, label=f"MC (mean over T ± {WINDOW})")
    if d.found:
        nd = np.array(list(d.found), dtype=np.float64)
        xb = np.array([bi.estimate for bi in d.found.values()])
        a.plot(xb, nd, "o", mfc="none", mec="r", ms=7, label="boundary (MC = ½ log 8)")
    if d.fits is not None:
        xs = np.geomspace(xb.min(), xb.max(), 100) if log_ratio else np.linspace(xb.min(), xb.max(), 100)
        for f, style in ((d.fits.power, "-"), (d.fits.exponential, "--")):
            a.plot(xs, f(xs), "r" + style, lw=2.0 if f.kind == d.fits.best else 1.0,
                   label=f"{f.kind}: slope {f.slope:.2f} ± {f.slope_stderr:.2f}, R² {f.r2:.3f}")
    lines = list(d.spans)
    a.set_yscale("log")
    a.set_yticks(lines, [str(n) for n in lines], minor=False)
    a.minorticks_off()
    a.set_ylim(lines[0] / 1.4, lines[-1] * 1.4)
    a.set(xlabel="g2/g1", ylabel="n_disc", title=f"Durr et al. {d.paper[3]}: gamma_{d.gamma}, T = {d.scale['T']}")
    a.legend(fontsize=6, loc="lower right", framealpha=0.7)
    for i, nd in enumerate(lines):
        px, pm = np.array([(xr, v) for (n, xr), v in points.items() if n == nd]).T
        b.plot(px, pm, "o-", ms=3, color=plt.cm.plasma(i / len(lines)), label=f"n_disc = {nd}")
    b.axhline(d.threshold, color="k", ls=":", lw=1)
    for axis in (a, b) if log_ratio else ():
        axis.set_xscale("log")
    b.set(xlabel="g2/g1", ylabel="time-averaged MC", title="evaluated points per n_disc line")
    b.legend(fontsize=6)
    fig.tight_layout()
    ctx.save_figure(fig, f"fig{d.paper[3].split()[-1]}.png")


SCAN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sensitivity", "fourier_lambda.json")


def lambda_scan(gamma: str) -> dict | None:
    """The measured slope of the figure's boundary against lambda (``scripts/fourier_cross_prediction.py``, its
    settings in the file's "source"): {"lambda": [...], "slope": [...], "stderr": [...], "source": text}."""
    if not os.path.isfile(SCAN_FILE):
        return None
    with open(SCAN_FILE) as f:
        doc = json.load(f)
    return None if gamma not in doc else {**doc[gamma], "source": doc["source"]}


def _declare(ctx, d: _Diagram) -> None:
    shape, _, T_paper, fig_name = d.paper
    t = d.base.resolved.training
    gamma_text = {"pow": "gamma_pow = min(1e3, |k|^-3) (C3)", "exp": "gamma_exp = 668.8 exp(-2.05 |k|) (C4)"}[d.gamma]
    ctx.report.parameters(
        {"App. C": f"Fourier discriminator on the 50 x 50 frequency grid (C1-C2), {gamma_text}, Algorithm 2; "
                   "Appendix A's ring and particles", fig_name: f"the boundary after {T_paper} steps, {shape}"},
        {"training.lam": f"lambda = {t.lam:g}: fastgan's Fourier default (App. C writes lambda/2 sum (...)^2 "
                         "without a value); the slope depends on it strongly (scan below)",
         "training.lr_disc": f"alpha_D = {t.lr_disc:g}" + (f" ({LR_NOTE[d.gamma]})" if d.gamma in LR_NOTE else
                                                          ": fastgan's Fourier default"),
         "training.lr_gen": f"alpha_G = {t.lr_gen:g}: fastgan's Fourier default",
         "n_disc lines": f"{', '.join(map(str, d.spans))}: the figure's y range is not printed"})


def _report(ctx, d: _Diagram) -> None:
    shape, paper_slope, T_paper, fig_name = d.paper
    s, r = d.scale, ctx.report
    _declare(ctx, d)
    r.value("iterations", s["T"], ".0f")
    r.value("lines_bracketed", len(d.found), ".0f")
    for nd, (lo, hi, m_lo, m_hi) in d.spans.items():
        if nd in d.found:
            r.value(f"boundary_ratio_n_disc_{nd}", d.found[nd].estimate, ".4g")
        else:
            r.line(f"n_disc = {nd}: no crossing between g2/g1 = {lo} (MC {m_lo:.2f}) and {hi} (MC {m_hi:.2f})")
    t = d.base.resolved.training
    setting = (f"alpha_D = {t.lr_disc:g}, lambda = {t.lam:g}, alpha_G = {t.lr_gen:g} (the paper states none), "
               f"N = {d.base.generator.n_particles}, T = {s['T']} (paper {T_paper}), "
               f"{s['replicates']} seed(s) per point")
    r.line(setting)
    if d.gamma in LR_NOTE:
        r.line(LR_NOTE[d.gamma])
    if d.fits is None:
        r.compare(f"phase-boundary slope ({shape})", "not measured (fewer than 3 n_disc lines cross)",
                  f"≈ {paper_slope}", None, "too few iterations for a boundary at this scale")
        r.summary = (f"{fig_name} (gamma_{d.gamma}): only {len(d.found)} of {len(d.spans)} n_disc lines cross "
                     f"MC = ½ log 8 at T = {s['T']}, too few to fit the boundary (paper: {shape} boundary, "
                     f"slope ≈ {paper_slope}).")
        return
    p, e = d.fits.power, d.fits.exponential
    for f in (p, e):
        r.value(f"{f.kind}_slope", f.slope, ".4g")
        r.value(f"{f.kind}_slope_stderr", f.slope_stderr, ".2g")
        r.value(f"{f.kind}_r2", f.r2, ".4f")
        r.value(f"{f.kind}_aic", f.aic, ".3f")
    r.value("delta_aic", d.fits.delta_aic, ".3f")
    ours = p if shape == "power" else e
    n_sig = abs(ours.slope - paper_slope) / ours.slope_stderr if ours.slope_stderr > 0 else math.inf
    r.value("slope_deviation_sigma", min(n_sig, 1e6), ".2f")
    distinguished = d.fits.delta_aic >= 2.0
    r.compare("preferred boundary shape (lower AIC)", f"{d.fits.best} (ΔAIC = {d.fits.delta_aic:.2f}; R² power "
              f"{p.r2:.3f}, exponential {e.r2:.3f})", shape, (d.fits.best == shape) if distinguished else None,
              "" if distinguished else "ΔAIC < 2: the two shapes are not distinguished on these points")
    units = ("d ln n_disc / d ln(g2/g1)" if shape == "power"
             else f"d ln n_disc / d(g2/g1); in log10 units {ours.slope / math.log(10):.2f} ± "
                  f"{ours.slope_stderr / math.log(10):.2f}")
    determined = ours.slope_stderr < 0.5 * abs(ours.slope)
    scan, sc = lambda_scan(d.gamma), None
    if scan is None:
        r.compare(f"{shape} boundary slope ({units})", f"{ours.slope:.2f} ± {ours.slope_stderr:.2f}",
                  f"≈ {paper_slope}", (n_sig <= 2.0) if determined else None,
                  f"{n_sig:.1f} standard errors apart" + ("" if determined else " (slope not determined: error > 50 %)")
                  + f"; {setting}")
    else:
        sc = r.scan(f"{fig_name} {shape} slope", "training.lam", scan["lambda"], scan["slope"], paper_slope,
                    note=f"standard errors {', '.join(f'{e:.2g}' for e in scan['stderr'])}; {scan['source']}")
        r.compare_scanned(f"{shape} boundary slope ({units})", f"{ours.slope:.2f} ± {ours.slope_stderr:.2f} at "
                          f"lambda = {d.base.resolved.training.lam:g}", f"≈ {paper_slope}", sc,
                          f"{n_sig:.1f} standard errors from the paper's at our lambda"
                          + ("" if determined else " (slope not determined: error > 50 %)") + f"; {setting}")
    xb = [b.estimate for b in d.found.values()]
    tuned = ("" if LR_DISC[d.gamma] is None else
             f", alpha_D = {LR_DISC[d.gamma]:g} chosen for this figure (10x below the Fourier default; report)")
    r.summary = (f"{fig_name} (gamma_{d.gamma}, T = {s['T']}{tuned}): the mode-collapse boundary moves from g2/g1 = "
                 f"{xb[0]:.2g} to {xb[-1]:.2g} as n_disc goes from {list(d.found)[0]} to {list(d.found)[-1]} and is "
                 f"best fitted by {'a power law' if d.fits.best == 'power' else 'an exponential'} (ΔAIC "
                 f"{d.fits.delta_aic:.1f}; paper: {shape}), with {shape} slope {ours.slope:.2f} ± "
                 f"{ours.slope_stderr:.2f} against the paper's ≈ {paper_slope}"
                 + ("." if sc is None else
                    f", a number set by the unstated lambda: {sc.span()} over lambda = "
                    f"{min(sc.values):.2g}-{max(sc.values):.2g}, the paper's {'inside' if sc.covers_paper() else 'outside'}"
                    " that range."))


@experiment("egan-fig14", "001", "Fig. 14",
            "Fourier discriminator, gamma_pow = min(1e3, |k|^-3): power-law mode-collapse boundary (App. C)")
def fourier_pow(ctx) -> None:
    _fourier_phase(ctx, "pow")


@experiment("egan-fig15", "001", "Fig. 15",
            "Fourier discriminator, gamma_exp = 668.8 exp(-2.05 |k|): exponential mode-collapse boundary (App. C)")
def fourier_exp(ctx) -> None:
    _fourier_phase(ctx, "exp")
