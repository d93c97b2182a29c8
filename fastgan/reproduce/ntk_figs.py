"""Durr et al. Section III.A and Appendix G: the NTK of real generators (Figs. 2, 20, 21) and the simulator
driven by a realistic Gram coupling instead of the coarse (g1, g2) (Fig. 5 with a Gram coupling)."""

from __future__ import annotations

import numpy as np

from .common import experiment, figure

RING_THRESHOLD = 0.5 * np.log(8)          # mode-collapse boundary of Fig. 5: MC crosses ½ log 8


def _device(ctx) -> str:
    """torch device for ctx.backend: a CUDA GPU when one is usable and the backend allows it."""
    import torch
    return "cuda" if ctx.backend in (None, "auto", "cuda") and torch.cuda.is_available() else "cpu"


def _great_circle(k: int, dim: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(angles (k,), inputs (k, dim)) at angles 0..π along one great circle of the sphere."""
    phi = np.linspace(0.0, np.pi, k)
    X = np.zeros((k, dim))
    X[:, 0], X[:, 1] = radius * np.cos(phi), radius * np.sin(phi)
    return phi, X


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1.0)))


# ---------------------------------------------------------------------------------------------- Fig. 2

@experiment("egan-fig2", "001", "Fig. 2", "NTK universality: pairwise NTK values of one-hidden-layer ReLU and erf "
            "networks vs the analytic g1, g2", needs=("torch",))
def ntk_universality(ctx) -> None:
    from ..ntk import FIG2_ERF, FIG2_RELU, analytic_g1_g2, analytic_gram, empirical_ntk_one_hidden, sample_sphere
    n, dim, width = 50, 100, 2048                         # Fig. 2 and footnote 28
    draws = ctx.pick(2, 20, 50)
    widths = ctx.pick((4096,), (4096, 2 ** 16), (4096, 2 ** 16))
    phi, Xc = _great_circle(ctx.pick(7, 37, 73), dim, 1.0)
    phi_fine = np.linspace(0, np.pi, 181)
    iu = np.triu_indices(n, 1)
    data, r = {}, ctx.report
    fig, ax = figure(2, 1, size=(4.6, 3.6))
    for act, setup, colour in (("relu", FIG2_RELU, "C0"), ("erf", FIG2_ERF, "C3")):
        ana = analytic_g1_g2(setup, dim)
        g = np.zeros((draws, 2))
        for k in range(draws):            # each draw: fresh inputs and a fresh network, as in the figure
            X = sample_sphere(n, dim, 1.0, seed=1000 + k)
            gram = empirical_ntk_one_hidden(X, width, setup, seed=k)
            g[k] = np.diag(gram).mean(), gram[iu].mean()
            if k == 0:
                first = gram
        diag, off = np.diag(first), first[iu]
        bins = np.linspace(min(off.min(), diag.min()) - 0.02, max(off.max(), diag.max()) + 0.02, 80)
        ax[0, 0].hist(off, bins, color=colour, alpha=0.55, label=f"{act}: distinct inputs")
        ax[0, 0].hist(diag, bins, color=colour, alpha=0.95, histtype="step", lw=1.5, label=f"{act}: same input")
        for v in (ana.g1, ana.g2_mean):
            ax[0, 0].axvline(v, color=colour, ls="--", lw=1)
        curve = setup.kernel(np.cos(phi_fine), 1.0, 1.0, dim)
        ax[0, 1].plot(phi_fine, curve, color=colour, lw=1, label=f"{act}: infinite width")
        dev = {}
        for w, marker in zip(widths, ("o", "x")):
            emp = empirical_ntk_one_hidden(Xc, w, setup, seed=7)
            dev[w] = _rel(emp, analytic_gram(setup, Xc))
            ax[0, 1].plot(phi, emp[0], marker, color=colour, ms=3.5, mfc="none", label=f"{act}: W = {w}")
        data[act] = {"diag_first": diag, "offdiag_first": off, "g1_draws": g[:, 0], "g2_draws": g[:, 1],
                     "analytic": np.array([ana.g1, ana.g2, ana.g2_mean, ana.g2_std]),
                     "angle": {"phi": phi, "widths": np.array(widths), "max_rel_dev": np.array([dev[w] for w in widths])}}
        m, s = g.mean(0), g.std(0)
        r.value(f"{act}_g1_peak_mean", m[0])
        r.value(f"{act}_g2_peak_mean", m[1])
        r.value(f"{act}_g1_peak_spread_over_draws", s[0])
        r.value(f"{act}_g2_peak_spread_over_draws", s[1])
        r.value(f"{act}_offdiag_std_within_one_draw", off.std())
        for w in widths:
            r.value(f"{act}_max_rel_dev_vs_angle_W{w}", dev[w], ".3f")
        r.compare(f"{act}: peak means (g1, g2) over {draws} networks vs the analytic kernel",
                  f"({m[0]:.3f} ± {s[0]:.3f}, {m[1]:.3f} ± {s[1]:.3f})", f"analytic ({ana.g1:.3f}, {ana.g2_mean:.3f})",
                  abs(m[0] / ana.g1 - 1) < 0.05 and abs(m[1] / ana.g2_mean - 1) < 0.05,
                  "the histogram peaks at the analytic g1, g2 (fastgan's criterion: within 5%)")
        w0 = min(widths)
        r.compare(f"{act}: NTK vs input angle, W = {w0}, every entry", f"max deviation {100 * dev[w0]:.1f}%",
                  "no number (fastgan's criterion: within 5% at W >= 4096)", dev[w0] < 0.05)
    ctx.save_h5(data, attrs={"n": n, "dim": dim, "width": width, "draws": draws,
                             "setups": "FIG2_RELU, FIG2_ERF of fastgan.ntk (footnote 28)"})
    ax[0, 0].set(xlabel="NTK value", ylabel="count (log)", yscale="log",
                 title="Fig. 2: NTK values, 50 inputs, width 2048")
    ax[0, 0].legend(fontsize=6)
    ax[0, 1].set(xlabel="angle between inputs", ylabel="NTK", title="analytic vs measured NTK by angle")
    ax[0, 1].legend(fontsize=6)
    ctx.save_figure(fig)
    rm, em = data["relu"]["g1_draws"].mean(), data["erf"]["g1_draws"].mean()
    r2, e2 = data["relu"]["g2_draws"].mean(), data["erf"]["g2_draws"].mean()
    r.compare("universality: ReLU vs erf peaks", f"g1 {rm:.3f} vs {em:.3f}, g2 {r2:.3f} vs {e2:.3f}",
              "the two networks' NTK values are approximately the same two numbers", abs(rm / em - 1) < 0.05
              and abs(r2 / e2 - 1) < 0.05, "with our reading of footnote 28 (read-out variance = weight variance, "
              "see fastgan.ntk): other readings separate the networks")
    angle_dev = max(d["angle"]["max_rel_dev"][0] for d in data.values())
    peak_dev = max(max(abs(d["g1_draws"].mean() / d["analytic"][0] - 1), abs(d["g2_draws"].mean() / d["analytic"][2] - 1))
                   for d in data.values())
    r.summary = (f"Width-2048 ReLU and erf networks give NTK peaks at (g1, g2) = ({rm:.2f}, {r2:.2f}) and "
                 f"({em:.2f}, {e2:.2f}), within {100 * peak_dev:.1f}% of the analytic kernels and "
                 f"{100 * max(abs(rm / em - 1), abs(r2 / e2 - 1)):.1f}% of each other (the paper's universality); "
                 f"measured and analytic NTKs agree within {100 * angle_dev:.1f}% "
                 f"at every angle at W = 4096.")


# ---------------------------------------------------------------------------------------------- Fig. 20

@experiment("egan-fig20", "001", "Fig. 20", "NTK of a wide generator during training on the 8-Gaussian ring (App. G)",
            needs=("torch",))
def ntk_during_training(ctx) -> None:
    from ..ntk import APPENDIX_G_ERF, APPENDIX_G_RELU, analytic_g1_g2
    from ..ntk_train import train_appendix_g
    width = ctx.pick(512, 2 ** 14, 2 ** 16)
    n_seeds = ctx.pick(48, 200, 200)
    iters = ctx.pick(4, 200, 2000)
    measure_at = np.unique(np.linspace(0, iters, ctx.pick(3, 11, 21)).astype(int))
    device = _device(ctx)
    threads = 1 if device == "cpu" and width <= 2 ** 14 else None
    paper = {"relu": (4.5, 1.1), "erf": (10.6, 5.2)}
    traces, data, r = {}, {}, ctx.report
    r.parameters({"App. G": "one hidden layer of width 2^16 (w ~ N(0, 0.046), b = 0 for ReLU, a ~ N(0, 2.25); "
                            "erf as App. G), 200 seeds on the unit sphere in 256 dimensions, trained with RMSProp at "
                            "learning rate 1e-3 on the 8-Gaussian ring",
                  "Fig. 20": "(g1, g2) ≈ (4.5, 1.1) for ReLU and (10.6, 5.2) for erf; the peaks 'hardly vary'"},
                 {"RMSProp decay": "0.9 (optax / Keras default; the paper names only RMSProp and its rate)",
                  "training length": f"{iters} iterations (not stated)",
                  "discriminator": "the eq. 23 ReLU network, W = 2048, alpha_D = 0.25, n_disc = 5 (App. G does "
                                   "not describe the one it trains against)",
                  "generator width": f"{width} here (the paper's 2^16 at full scale); narrower widths below show how "
                                     "the drift scales with it, under RMSProp and under plain gradient descent"})
    for act, setup in (("relu", APPENDIX_G_RELU), ("erf", APPENDIX_G_ERF)):
        tr = train_appendix_g(setup, width=width, n_seeds=n_seeds, n_iterations=iters, measure_at=measure_at,
                              seed=0, device=device, threads=threads)
        traces[act] = tr
        ana = analytic_g1_g2(setup, 256)
        d1, d2 = tr.drift()
        m1, m2 = tr.drift("median")
        data[act] = {"iterations": tr.iterations, "g1": tr.g1, "g2": tr.g2, "g1_std": tr.g1_std, "g2_std": tr.g2_std,
                     "cross_over_g1": tr.cross, "diag": tr.diag, "offdiag": tr.offdiag, "outputs": tr.outputs,
                     "mode_collapse": tr.mode_collapse, "analytic_g1_g2": np.array([ana.g1, ana.g2_mean])}
        p1, p2 = paper[act]
        r.value(f"{act}_g1_initial", tr.g1[0])
        r.value(f"{act}_g2_initial", tr.g2[0])
        r.value(f"{act}_g1_final", tr.g1[-1])
        r.value(f"{act}_g2_final", tr.g2[-1])
        r.value(f"{act}_g1_drift", d1, ".3f")
        r.value(f"{act}_g2_drift", d2, ".3f")
        r.value(f"{act}_g1_drift_median", m1, ".3f")
        r.value(f"{act}_g2_drift_median", m2, ".3f")
        r.value(f"{act}_cross_component_over_g1_max", tr.cross.max(), ".2e")
        r.value(f"{act}_mode_collapse_final", tr.mode_collapse[-1], ".3f")
        r.compare(f"{act}: (g1, g2) at initialisation, width {width}", f"({tr.g1[0]:.2f}, {tr.g2[0]:.2f}); "
                  f"infinite width ({ana.g1:.2f}, {ana.g2_mean:.2f})", f"≈ ({p1}, {p2})",
                  abs(tr.g1[0] / p1 - 1) < 0.05 and abs(tr.g2[0] / p2 - 1) < 0.05)
        r.compare(f"{act}: largest drift of (g1, g2) over {iters} iterations",
                  f"means ({100 * d1:.1f}%, {100 * d2:.1f}%), medians ({100 * m1:.1f}%, {100 * m2:.1f}%)",
                  "the peaks hardly vary (words, no number)", "qualitative" if max(d1, d2, m1, m2) < 0.1 else False,
                  ("a few percent over the run: the peaks stay where they start. Observation: RMSProp moves every "
                   "parameter by ~lr per step whatever the width (and each pre-activation by ~sqrt(256) lr, the 256 "
                   "input weights moving together), so the drift hardly shrinks with W, while under plain gradient "
                   "descent it does (drift.png); ReLU's NTK, through the step σ', feels these shifts most")
                  if act == "relu" else "")
        r.compare(f"{act}: outputs reach the 8 modes", f"final mode collapse {tr.mode_collapse[-1]:.3f}",
                  "the generator converges to the target", tr.mode_collapse[-1] < 0.1 if not ctx.tiny else None)
    # ReLU's drift against the width (the same training, NTK at the start and the end)
    narrower = ctx.pick((256,), (2 ** 12, 2 ** 13), (2 ** 12, 2 ** 14))
    widths = np.array(list(narrower) + [width])
    drifts = np.array([train_appendix_g(APPENDIX_G_RELU, width=int(w), n_seeds=n_seeds, n_iterations=iters,
                                        measure_at=measure_at, seed=0, device=device, threads=threads).drift()
                       for w in narrower] + [traces["relu"].drift()])
    # the lazy-training control: plain gradient descent at one rate for every width
    lazy_widths = np.array(ctx.pick((128, 512), (2 ** 10, 2 ** 12, 2 ** 14), (2 ** 12, 2 ** 14, 2 ** 16)))
    lazy_lr = 0.01
    lazy_tr = [train_appendix_g(APPENDIX_G_RELU, width=int(w), n_seeds=n_seeds, n_iterations=iters,
                                measure_at=measure_at, seed=0, device=device, threads=threads, optimiser="sgd",
                                lr=lazy_lr) for w in lazy_widths]
    lazy = np.array([t.drift() for t in lazy_tr])
    data["relu_drift_vs_width"] = {"width": widths, "g1_drift": drifts[:, 0], "g2_drift": drifts[:, 1]}
    data["relu_drift_vs_width_sgd"] = {"width": lazy_widths, "g1_drift": lazy[:, 0], "g2_drift": lazy[:, 1],
                                       "mode_collapse_final": np.array([t.mode_collapse[-1] for t in lazy_tr])}
    for w, (d1, d2) in zip(widths, drifts):
        r.line(f"ReLU, width {w}: drift of (g1, g2) over {iters} iterations ({100 * d1:.1f}%, {100 * d2:.1f}%)")
    for w, (d1, d2), t in zip(lazy_widths, lazy, lazy_tr):
        r.line(f"ReLU, plain gradient descent (rate {lazy_lr}), width {w}: drift of (g1, g2) ({100 * d1:.1f}%, "
               f"{100 * d2:.1f}%), final mode collapse {t.mode_collapse[-1]:.2f}")
    rms_slope = _loglog_slope(widths, drifts[:, 1])
    sgd_slope = _loglog_slope(lazy_widths, lazy[:, 1])
    r.scan("ReLU: relative drift of g2 (RMSProp)", "generator width", list(widths), list(drifts[:, 1]))
    r.scan(f"ReLU: relative drift of g2 (gradient descent, rate {lazy_lr})", "generator width", list(lazy_widths),
           list(lazy[:, 1]))
    r.value("relu_g2_drift_width_exponent_rmsprop", rms_slope, ".2f")
    r.value("relu_g2_drift_width_exponent_sgd", sgd_slope, ".2f")
    r.compare("ReLU: g2 drift against width, drift ∝ W^p", f"p = {rms_slope:.2f} (RMSProp), {sgd_slope:.2f} "
              "(plain gradient descent)", "the NTK freezes as W → ∞ (lazy training, the paper's ref. [18])",
              None if ctx.tiny else bool(sgd_slope < -0.3),
              "the freezing holds for gradient descent, whose parameter steps shrink as W^-1/2; RMSProp "
              "normalises every step to ~lr, so under the paper's optimiser the drift does not shrink with W")
    ctx.save_h5(data, attrs={"width": width, "n_seeds": n_seeds, "latent_dim": 256, "n_iterations": iters,
                             "optimiser": "RMSProp lr 1e-3, decay 0.9 (optax / Keras default)",
                             "sgd_control_lr": lazy_lr,
                             "discriminator": "eq. 23 ReLU MLP, width 2048, paper init, alpha_D 0.25, n_disc 5"})
    _plot_fig20(ctx, traces, width, widths, drifts, lazy_widths, lazy)
    rl, er = traces["relu"], traces["erf"]
    r.summary = (f"A width-{width} generator trained with RMSProp onto the ring (final MC {rl.mode_collapse[-1]:.2f}) "
                 f"keeps its NTK near (g1, g2) = ({rl.g1[0]:.2f}, {rl.g2[0]:.2f}) for ReLU and ({er.g1[0]:.2f}, "
                 f"{er.g2[0]:.2f}) for erf, the paper's (4.5, 1.1) and (10.6, 5.2); erf drifts "
                 f"{100 * max(er.drift()):.1f}%, ReLU {100 * rl.drift()[0]:.1f}% in g1 but "
                 f"{100 * rl.drift()[1]:.1f}% in g2: RMSProp's steps do not shrink with the width (drift ∝ "
                 f"W^{rms_slope:.2f}), while under plain gradient descent it does (W^{sgd_slope:.2f}).")


def _loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (nan when a y is not positive)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.any(y <= 0) or len(x) < 2:
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def _plot_fig20(ctx, traces, width, widths, drifts, lazy_widths, lazy) -> None:
    tr = traces["relu"]
    slices = [0, len(tr.iterations) // 2, len(tr.iterations) - 1]
    ring = 2.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    fig, ax = figure(3, 2, size=(3.4, 3.0), layout="constrained")
    for col, k in enumerate(slices):
        a = ax[0, col]
        a.plot(ring[:, 0], ring[:, 1], "k+", ms=8)
        a.plot(tr.outputs[k, :, 0], tr.outputs[k, :, 1], ".", ms=3, color="C0")
        a.set(xlim=(-2.6, 2.6), ylim=(-2.6, 2.6), aspect="equal", xlabel="x", ylabel="y",
              title=f"ReLU generator, iteration {tr.iterations[k]}")
        h = ax[1, col]
        vals = np.concatenate([tr.offdiag[k], tr.diag[k]])
        h.hist(vals, bins=80, color="C0")
        for v in (np.median(tr.diag[k]), np.median(tr.offdiag[k])):
            h.axvline(v, color="k", ls="--", lw=1)
        h.set(yscale="log", xlabel="NTK value", ylabel="count (log)",
              title=f"medians {np.median(tr.diag[k]):.2f}, {np.median(tr.offdiag[k]):.2f}")
    fig.suptitle(f"Fig. 20: generator outputs and NTK during training (width {width})", fontsize=10)
    ctx.save_figure(fig)
    fig, ax = figure(2, 1, size=(4.6, 3.4), layout="constrained")
    for act, tr in traces.items():
        ax[0, 0].plot(tr.iterations, tr.g1 / tr.g1[0], "-o", ms=3, label=f"{act}: g1(t)/g1(0)")
        ax[0, 0].plot(tr.iterations, tr.g2 / tr.g2[0], "--s", ms=3, label=f"{act}: g2(t)/g2(0)")
    ax[0, 0].axhspan(0.95, 1.05, color="0.9", zorder=0, label="±5%")
    ax[0, 0].set(xlabel="iteration", ylabel="relative NTK value", title=f"Fig. 20: drift of g1, g2 (width {width})")
    ax[0, 0].legend(fontsize=7)
    ax[0, 1].plot(widths, 100 * drifts[:, 0], "-o", ms=4, color="C0", label="g1, RMSProp")
    ax[0, 1].plot(widths, 100 * drifts[:, 1], "--s", ms=4, color="C0", label="g2, RMSProp")
    ax[0, 1].plot(lazy_widths, 100 * lazy[:, 0], "-o", ms=4, color="C3", label="g1, gradient descent")
    ax[0, 1].plot(lazy_widths, 100 * lazy[:, 1], "--s", ms=4, color="C3", label="g2, gradient descent")
    ax[0, 1].axhline(5.0, color="k", ls=":", lw=1, label="5%")
    ax[0, 1].set(xscale="log", yscale="log", xlabel="generator width W", ylabel="largest drift (%)",
                 title="ReLU: NTK drift against width")
    ticks = np.union1d(widths, lazy_widths)
    ax[0, 1].set_xticks(ticks, [str(w) for w in ticks])
    ax[0, 1].minorticks_off()
    ax[0, 1].legend(fontsize=7)
    ctx.save_figure(fig, "drift.png")


# ---------------------------------------------------------------------------------------------- Fig. 21

@experiment("egan-fig21", "001", "Fig. 21", "Order and chaos: g2/g1 of a deep mu-parametrised network against mu",
            needs=("torch",))
def ntk_order_chaos(ctx) -> None:
    import torch

    from ..ntk import analytic_g1_g2, analytic_gram, sample_sphere
    from ..ntk_deep import DeepSetup, empirical_ntk_deep, init_deep
    depth, dim = 6, 256                                   # App. G: 6 hidden layers, n_0 = 256, radius sqrt(n_0)
    radius = float(np.sqrt(dim))
    width = ctx.pick(256, 2 ** 12, 2 ** 12)
    n = ctx.pick(12, 64, 200)
    draws = ctx.pick(1, 5, 10)
    mus = np.round(np.linspace(0.0, 1.0, ctx.pick(3, 11, 21)), 6)
    mu_fine = np.linspace(0.0, 1.0, 201)
    acts = ("relu", "erf")
    X = sample_sphere(n, dim, radius, seed=21)
    phi, Xc = _great_circle(ctx.pick(5, 19, 37), dim, radius)
    iu = np.triu_indices(n, 1)
    emp = np.zeros((len(acts), draws, len(mus), 2))
    angle = np.zeros((len(acts), draws, len(phi)))
    angle_mu = 0.5
    for k in range(draws):
        params = init_deep(width, dim, depth, seed=k, dtype=torch.float32)   # one draw serves every mu
        for a, act in enumerate(acts):
            for j, mu in enumerate(mus):
                gram = empirical_ntk_deep(X, DeepSetup.mu_param(mu, depth, act), params)
                emp[a, k, j] = np.diag(gram).mean(), gram[iu].mean()
            angle[a, k] = empirical_ntk_deep(Xc, DeepSetup.mu_param(angle_mu, depth, act), params)[0]
        del params
    ana = np.array([[[s.g1, s.g2_mean] for s in (analytic_g1_g2(DeepSetup.mu_param(m, depth, act), dim, radius)
                                                 for m in mus)] for act in acts])
    ana_fine = np.array([[analytic_g1_g2(DeepSetup.mu_param(m, depth, act), dim, radius, n_quad=16)
                          for m in mu_fine] for act in acts])[..., :3]
    ratio_emp = emp[..., 1] / emp[..., 0]                 # (act, draw, mu)
    ratio_ana = ana[..., 1] / ana[..., 0]
    ana_angle = np.array([analytic_gram(DeepSetup.mu_param(angle_mu, depth, act), Xc)[0] for act in acts])
    ctx.save_h5({"mu": mus, "acts": np.array(acts, dtype="S4"), "empirical_g1_g2": emp, "analytic_g1_g2": ana,
                 "mu_fine": mu_fine, "analytic_fine_g1_g2": ana_fine[..., [0, 2]],
                 "angle": {"phi": phi, "mu": angle_mu, "empirical": angle, "analytic": ana_angle}},
                attrs={"depth": depth, "width": width, "n_inputs": n, "latent_dim": dim, "radius": radius,
                       "draws": draws})

    fig, ax = figure(2, 1, size=(4.6, 3.6))
    for a, (act, c) in enumerate(zip(acts, ("C0", "C3"))):
        ax[0, 0].plot(mu_fine, ana_fine[a, :, 2] / ana_fine[a, :, 0], color=c, lw=1, label=f"{act}: infinite width")
        m, s = ratio_emp[a].mean(0), ratio_emp[a].std(0)
        ax[0, 0].errorbar(mus, m, yerr=s, fmt="o", color=c, ms=4, mfc="none", label=f"{act}: width {width}")
        ax[0, 1].plot(phi, ana_angle[a], color=c, lw=1, label=f"{act}: infinite width")
        ax[0, 1].plot(phi, angle[a].mean(0), "o", color=c, ms=3.5, mfc="none", label=f"{act}: width {width}")
    ax[0, 0].set(xlabel="mu", ylabel="g2 / g1", title=f"Fig. 21: order and chaos ({depth} hidden layers)")
    ax[0, 0].legend(fontsize=7)
    ax[0, 1].set(xlabel="angle between inputs", ylabel="NTK", title=f"NTK by angle at mu = {angle_mu}")
    ax[0, 1].legend(fontsize=7)
    ctx.save_figure(fig)

    r = ctx.report
    for a, act in enumerate(acts):
        mean = emp[a].mean(0)
        dev_g1 = _rel(mean[:, 0], ana[a, :, 0])
        dev_g1_single = float(np.max(np.abs(emp[a, :, :, 0] / ana[a, :, 0] - 1)))
        dev_ratio = float(np.max(np.abs(ratio_emp[a].mean(0) - ratio_ana[a])))
        dev_angle = _rel(angle[a].mean(0), ana_angle[a])
        mono_ana = bool(np.all(np.diff(ratio_ana[a]) >= -1e-12) and np.all(np.diff(ratio_ana[a][mus <= 0.7]) > 0))
        mono_emp = bool(np.all(np.diff(ratio_emp[a].mean(0)) > -2e-3))
        r.value(f"{act}_ratio_mu0_analytic", ratio_ana[a, 0], ".4f")
        r.value(f"{act}_ratio_mu0_empirical", ratio_emp[a, :, 0].mean(), ".4f")
        r.value(f"{act}_ratio_mid_analytic", ratio_ana[a, len(mus) // 2], ".4f")
        r.value(f"{act}_max_rel_dev_g1_mean_of_draws", dev_g1, ".3f")
        r.value(f"{act}_max_rel_dev_g1_single_network", dev_g1_single, ".3f")
        r.value(f"{act}_max_abs_dev_ratio", dev_ratio, ".4f")
        r.value(f"{act}_max_rel_dev_vs_angle", dev_angle, ".3f")
        if act == "relu":
            r.compare("ReLU: g2/g1 against mu", f"rises monotonically from {ratio_ana[a, 0]:.3f} (mu = 0) to 1 "
                      f"(analytic{', and measured' if mono_emp else '; measured NOT monotone'})",
                      "rises towards 1 as mu -> 1 (order), low for small mu (chaos)", mono_ana and mono_emp)
        r.compare(f"{act}: measured vs analytic deep NTK (width {width}, mean of {draws} networks)",
                  f"g1 within {100 * dev_g1:.1f}% (one network {100 * dev_g1_single:.1f}%), g2/g1 within "
                  f"{dev_ratio:.3f}, NTK by angle within {100 * dev_angle:.1f}%",
                  "no number (fastgan's criterion: within 5% at W >= 4096)",
                  (dev_g1 < 0.05 and dev_angle < 0.05) if width >= 4096 else None)
    r.line("erf (not in the paper) behaves alike, from g2/g1 = 0 at mu = 0: an odd activation without bias keeps "
           "orthogonal inputs uncorrelated through every layer")
    r.summary = (f"g2/g1 of the 6-layer mu-parametrised ReLU network rises monotonically with mu, from "
                 f"{ratio_ana[0, 0]:.2f} (chaos, mu = 0) to 1 (order), as in Fig. 21; networks of width {width} "
                 f"match the analytic recursion (g1 within {100 * _rel(emp[0].mean(0)[:, 0], ana[0, :, 0]):.1f}%).")


# ---------------------------------------------------------------------------------------------- Fig. 5, Gram

@experiment("egan-gram-vs-coarse", "001", "Fig. 5 with a Gram coupling", "Phase diagram: coarse (g1, g2) against "
            "the full analytic NTK Gram matrix of the same (deep erf) generator")
def gram_vs_coarse(ctx) -> None:
    import fastgan

    from ..analysis import locate_crossings, time_average
    from ..ntk import analytic_g1_g2, extract_g1_g2
    from ..ntk_gram import preset_radius, preset_setup, spec_gram
    depth, dim, N = 6, 256, 200
    mus = np.array(ctx.pick([0.0, 0.06, 0.15], [0.0, 0.025, 0.04, 0.055, 0.075, 0.1],
                            [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.115, 0.13, 0.15]))
    n_discs = ctx.pick([1, 2], [1, 2, 4, 8], [1, 2, 3, 4, 6, 8, 11, 16, 23, 32])
    iters = ctx.pick(20, 600, 5000)
    seeds = list(range(ctx.pick(1, 1, 3)))
    every = ctx.pick(10, 20, 20)
    ratio = np.array([(lambda s: s.g2_mean / s.g1)(analytic_g1_g2(preset_setup("deep", "erf", depth, m), dim,
                                                                  preset_radius("deep", dim))) for m in mus])
    ratio = np.maximum(ratio, 0.0)                        # erf at mu = 0: exactly 0 up to rounding
    base = {"generator.n_particles": N, "training.n_iterations": iters, "record.every": every,
            "record.snapshots": 0, "record.discriminator": False}
    grid = [(i, j, s) for i in range(len(n_discs)) for j in range(len(mus)) for s in seeds]
    coarse = [fastgan.default_config(**base, **{"training.n_disc": n_discs[i], "training.seed": s,
                                                "coupling.ratio": float(ratio[j])}) for i, j, s in grid]
    gram = [fastgan.default_config(**base, **{"training.n_disc": n_discs[i], "training.seed": s,
                                              "coupling.kind": "gram", "coupling.gram_arch": "erf",
                                              "coupling.gram_setting": "deep", "coupling.gram_depth": depth,
                                              "coupling.gram_mu": float(mus[j]), "coupling.gram_dim": dim,
                                              "coupling.normalize": True}) for i, j, s in grid]
    runs = {"coarse": fastgan.simulate_ensemble(coarse, ctx.backend, ctx.progress),
            "gram": fastgan.simulate_ensemble(gram, ctx.backend, ctx.progress)}
    times = runs["coarse"][0].time
    centre, offsets = (iters - 3 * every, every * np.arange(-3, 4)) if iters >= 6 * every else (iters, [0])
    mc, bound = {}, {}
    for name, rs in runs.items():
        m = np.array([time_average(rr.observables["mode_collapse"], times, centre, offsets, nan_policy="omit")
                      for rr in rs]).reshape(len(n_discs), len(mus), len(seeds)).mean(-1)
        mc[name] = m
        bound[name] = locate_crossings(ratio, m, RING_THRESHOLD)[0]
    spread = [extract_g1_g2(spec_gram("erf", "deep", N, dim, 0, depth, m)) for m in mus]
    ctx.save_h5({"mu": mus, "ratio": ratio, "n_disc": np.array(n_discs),
                 "mode_collapse": {k: v for k, v in mc.items()},
                 "boundary_ratio": {k: _nan_ok(v) for k, v in bound.items()},
                 "gram_offdiag_std_over_g1": np.array([s.g2_std / s.g1 for s in spread])},
                attrs={"architecture": f"deep erf, {depth} hidden layers, mu-parametrised (Fig. 21 with erf)",
                       "latent_dim": dim, "n_particles": N, "n_iterations": iters, "seeds": len(seeds),
                       "average": f"MC at {centre} + {list(np.atleast_1d(offsets))}"})
    _plot_gram_vs_coarse(ctx, mus, ratio, n_discs, mc, bound)

    r = ctx.report
    for name in mc:
        for i, nd in enumerate(n_discs):
            if np.isfinite(bound[name][i]):
                r.value(f"boundary_ratio_{name}_ndisc{nd}", bound[name][i], ".4f")
    r.value("mean_mc_coarse", mc["coarse"].mean(), ".3f")
    r.value("mean_mc_gram", mc["gram"].mean(), ".3f")
    spread_std = r.value("gram_offdiag_std_over_g1", np.mean([s.g2_std / s.g1 for s in spread]), ".4f")
    both = np.isfinite(bound["coarse"]) & np.isfinite(bound["gram"])
    shift = float(np.median(bound["gram"][both] / bound["coarse"][both])) if both.any() else float("nan")
    if both.any():
        r.value("boundary_shift_gram_over_coarse_median", shift, ".3f")
    r.compare("phase boundary with the full Gram matrix vs the coarse (g1, g2) of the same architecture",
              (f"boundary g2/g1 moves by a factor {shift:.2f} (median over n_disc with both bracketed)" if both.any()
               else "boundaries not both bracketed at this scale"),
              "the paper uses the coarse NTK only (no number to compare)", None,
              f"the off-diagonal spread of a finite latent dimension (std {spread_std:.3f} g1) adds modes the "
              "coarse matrix lacks")
    r.compare("mode collapse grows with g2/g1 (Fig. 5), coarse coupling",
              f"MC {mc['coarse'][:, 0].mean():.2f} at the smallest ratio, {mc['coarse'][:, -1].mean():.2f} at the largest",
              "convergence at small g2/g1, collapse at large", bool(mc["coarse"][:, -1].mean() > mc["coarse"][:, 0].mean()))
    for name in bound:
        ok = np.isfinite(bound[name])
        b = bound[name][ok]
        where = ", ".join(f"{v:.4f} (n_disc {n})" for v, n in zip(b, np.array(n_discs)[ok]))
        r.compare(f"the boundary moves to larger g2/g1 as n_disc grows (Fig. 5), {name} coupling", where or "none",
                  "the discriminator needs more steps at larger g2/g1",
                  None if ctx.tiny else bool(len(b) >= 2 and np.all(np.diff(b) > 0)))
    r.line(f"after {iters} iterations (the paper: 5000) the boundary sits at smaller g2/g1 than the paper's "
           "≈ 0.06 at n_disc = 6 (Appendix D): short runs have not finished converging")
    r.line(f"at these small ratios the spread of the Gram matrix's off-diagonal entries (std {spread_std:.3f} g1, from "
           "the 256-dimensional latent sphere) is as large as their mean g2: the coarse matrix misses much of the coupling")
    r.summary = (_summary_gram(shift, both, mc))


def _nan_ok(v):
    from .common import allow_nonfinite
    return allow_nonfinite(np.asarray(v, dtype=np.float64))


def _summary_gram(shift, both, mc) -> str:
    where = (f"the mode-collapse boundary in g2/g1 moves by a factor {shift:.2f}" if both.any()
             else "the boundaries are not both bracketed")
    return (f"Replacing the coarse (g1, g2) by the full analytic Gram matrix of the same deep erf generator "
            f"(mean MC {mc['coarse'].mean():.2f} coarse vs {mc['gram'].mean():.2f} Gram): {where}.")


def _plot_gram_vs_coarse(ctx, mus, ratio, n_discs, mc, bound) -> None:
    fig, ax = figure(3, 1, size=(3.8, 3.3), layout="constrained")
    x = np.arange(len(mus))
    for k, name in enumerate(("coarse", "gram")):
        im = ax[0, k].pcolormesh(x, np.arange(len(n_discs)), mc[name], vmin=0, vmax=np.log(8), shading="nearest")
        ax[0, k].set_xticks(x, [f"{v:.3f}" for v in ratio], rotation=60, fontsize=6)
        ax[0, k].set_yticks(np.arange(len(n_discs)), [str(v) for v in n_discs])
        ax[0, k].set(xlabel=f"g2/g1 of the deep erf NTK (mu {mus[0]:g} to {mus[-1]:g})", ylabel="n_disc",
                     title=f"Fig. 5, {name} coupling: MC")
    fig.colorbar(im, ax=ax[0, :2], label="mode collapse (time-averaged)")
    for name, style in (("coarse", "-o"), ("gram", "--s")):
        ax[0, 2].plot(bound[name], n_discs, style, ms=4, label=name)
    ax[0, 2].set(xlabel="boundary g2/g1 (MC = ½ log 8)", ylabel="n_disc", yscale="log",
                 title="mode-collapse boundary")
    ax[0, 2].set_yticks(n_discs, [str(v) for v in n_discs])
    ax[0, 2].minorticks_off()
    ax[0, 2].legend(fontsize=7)
    ctx.save_figure(fig)
