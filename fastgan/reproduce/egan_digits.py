"""Durr et al.'s MNIST protocol (their published data: final particles on 100 MNIST images over a g2/g1 x
alpha_D grid) transferred to scikit-learn's 8 x 8 digits: the effective model in d = 64.

Stated by the protocol (the data set's description): 100 target images, N = 100 particles, T = 1000
iterations, a ReLU discriminator, weight decay 1e-4, particle step alpha_G = 1e-4, alpha_D on 26 values
10^(-5 + j/24) (j = 0..7) and 10^(-4 + j/12) (j = 0..17), g2/g1 = 0 and 25 values 10^(-2 + 1.99 j/24). The
metric: each particle's nearest data image by cosine similarity, the entropy-based mode collapse
log M + sum_i p_i log p_i over those assignments and the mean minimum cosine distance (fastgan's
``cosine_mode_collapse`` and ``cosine_distance`` observables), with the mean pairwise |cos| between
particles and the runaway flag beside them.

Left open, with fastgan's choices (``OPEN``): the data (8 x 8 digits instead of MNIST: ships with
scikit-learn, no download; ten images of each class), its scaling (pixel / 16, MNIST's [0, 1] intensities),
the initial particles, n_disc, the width, the optimiser, and the time unit of the rates: at the stated rates in
fastgan's normalisation of D (eq. 23, s = sqrt(2 / W)) and of the coupling (g1 + (N - 1) g2 = N) the particles
move by ~1 % of the data's scale in T = 1000 (measured: the cloud's spread stays 0.10 at every alpha_D), so
both rates are multiplied by RATE_UNIT = 100, which puts alpha_G on fastgan's calibrated 2-D value (0.01) and
the top of the alpha_D grid (0.26) on its calibrated alpha_D (0.25): the same diagram over the same ratios
of rates, with the clock of the 2-D reproductions.
"""

from __future__ import annotations

import os

import numpy as np

from ..plots import image_mosaic
from .common import experiment, figure
from .egan_phase import _sweep

RATE_UNIT = 100.0                                  # both rates x 100 (module docstring)
ALPHA_G = 1e-4                                     # the protocol's particle step
WEIGHT_DECAY = 1e-4                                # torch-style: the gradient gains 1e-4 phi, i.e. c = 5e-5 in eq. 24
T_PROTOCOL = 1000
THRESHOLD = 0.5 * np.log(100)                      # collapsed: cosine mode collapse above half its maximum
LR, RATIO = "training.lr_disc", "coupling.ratio"
OBSERVABLES = ["cosine_mode_collapse", "cosine_distance", "particle_cosine", "runaway"]


def protocol_lr_disc() -> np.ndarray:
    """The protocol's 26 alpha_D values (before RATE_UNIT)."""
    return np.concatenate([10.0 ** (-5 + np.arange(8) / 24), 10.0 ** (-4 + np.arange(18) / 12)])


def protocol_ratios() -> np.ndarray:
    """The protocol's 26 g2/g1 values: 0 and 10^(-2 + 1.99 j / 24), j = 0..24."""
    return np.concatenate([[0.0], 10.0 ** (-2 + 1.99 * np.arange(25) / 24)])


OPEN = {
    "target data": "scikit-learn's 8 x 8 digits, the first ten images of each class (MNIST needs a download; the "
                   "protocol's 100 MNIST images are not listed)",
    "target.normalize": "affine, scale 1/16: pixel intensities in [0, 1] as MNIST's",
    "generator.init_mean": "the mean of the 100 images, init_std 0.1 per pixel: the cloud starts collapsed on the "
                           "data's centre, as the 2-D runs start on one mode",
    "training.n_disc": "1: one discriminator step per particle step",
    "discriminator.width": "2048 with eq. 23's initialisation (the paper's Appendix A width)",
    "training.optimizer_disc": "gradient descent (as the 2-D experiments)",
    "rate unit": f"both rates x {RATE_UNIT:g}: at the stated rates the particles do not move in T = 1000 in "
                 "fastgan's normalisation of D and of the coupling (module docstring)",
    "discriminator.l2": f"c = {WEIGHT_DECAY / 2:g}: weight decay {WEIGHT_DECAY:g} read as torch's (the gradient "
                        f"gains {WEIGHT_DECAY:g} phi), i.e. c |phi|^2 with c = {WEIGHT_DECAY / 2:g}",
}


def _digits(ctx) -> tuple[str, np.ndarray]:
    """The target file (100 images, 10 per class, raw 0..16 values as (M, 8, 8)) in the output folder."""
    from sklearn.datasets import load_digits
    dg = load_digits()
    idx = np.concatenate([np.nonzero(dg.target == c)[0][:10] for c in range(10)])
    path = ctx.path("digits100.npz")
    np.savez(path, images=dg.images[idx].astype(np.float64), labels=dg.target[idx])
    ctx.add_output(path)
    return path, dg.images[idx].reshape(len(idx), 64) / 16.0


def _base(path: str, mean: np.ndarray, T: int, width: int) -> dict:
    return {"precision": "float32",
            "target": {"kind": "file", "path": os.path.abspath(path), "normalize": "affine", "scale": 1 / 16},
            "generator": {"n_particles": 100, "init_mean": [float(v) for v in mean], "init_std": 0.1},
            "coupling": {"kind": "coarse", "ratio": 0.0},
            "discriminator": {"kind": "mlp", "width": int(width), "depth": 1, "activation": "relu",
                              "l2": WEIGHT_DECAY / 2},
            "training": {"n_iterations": int(T), "seed": 0, "n_disc": 1, "lr_gen": ALPHA_G * RATE_UNIT},
            "record": {"every": max(1, T // 20), "snapshots": 2, "discriminator": False}}


def _final(ds, name: str) -> np.ndarray:
    """The observable averaged over the last three records, (ratio, lr)."""
    v = ds[name].values                         # (ratio, lr, replicate, time)
    with np.errstate(invalid="ignore"):
        return np.nanmean(v[..., -3:], axis=(-1, -2))


@experiment("egan-digits-phase", "001", "MNIST protocol",
            "the authors' MNIST phase diagram (g2/g1 x alpha_D) on 8 x 8 digits: cosine mode collapse in d = 64",
            needs=("sklearn",))
def digits_phase(ctx) -> None:
    T = ctx.pick(40, T_PROTOCOL, T_PROTOCOL)
    width = ctx.pick(64, 2048, 2048)
    lrs_all, ratios_all = protocol_lr_disc(), protocol_ratios()
    lr_idx = ctx.pick([10, 25], [0, 7, 10, 14, 18, 21, 25], list(range(26)))
    ratio_idx = ctx.pick([0, 25], [0, 1, 7, 13, 17, 20, 23, 25], list(range(26)))
    lrs, ratios = lrs_all[lr_idx] * RATE_UNIT, ratios_all[ratio_idx]
    path, images = _digits(ctx)
    base = _base(path, images.mean(0), T, width)
    axes = [{"key": RATIO, "values": [float(r) for r in ratios]}, {"key": LR, "values": [float(v) for v in lrs]}]
    ds = _sweep(ctx, "sweep", base, axes, snapshots=True, observables=OBSERVABLES)
    mc, cd, pc, run = (_final(ds, n) for n in OBSERVABLES)
    particles = ds["particles"].values[:, :, 0, -1]          # (ratio, lr, N, 64) at T
    # how far each cloud is from the runaway flag: its largest norm over the data's largest
    norm_ratio = np.linalg.norm(particles, axis=-1).max(-1) / np.linalg.norm(images, axis=-1).max()
    ctx.save_h5({"ratio": ratios, "lr_disc": lrs, "lr_disc_protocol": lrs / RATE_UNIT, "cosine_mode_collapse": mc,
                 "cosine_distance": cd, "particle_cosine": pc, "runaway": run, "norm_ratio": norm_ratio, "images": images,
                 "final_particles": particles},
                attrs={"iterations": T, "width": width, "rate_unit": RATE_UNIT, "threshold": THRESHOLD})
    _draw(ctx, ratios, lrs, mc, pc, run, particles, images, T, width)
    _report(ctx, ratios, lrs, mc, cd, pc, run, norm_ratio, T, width)


def _ratio_positions(ratios: np.ndarray) -> tuple[np.ndarray, list]:
    """x positions for g2/g1 with 0 drawn one decade left of the smallest positive value; tick labels."""
    pos = np.log10(np.where(ratios > 0, ratios, np.nan))
    lo = np.nanmin(pos) if np.isfinite(pos).any() else 0.0
    pos = np.where(np.isfinite(pos), pos, lo - 1.0)
    return pos, ["0" if r == 0 else f"{r:.2g}" for r in ratios]


def _extremes(mc: np.ndarray, run: np.ndarray) -> tuple[tuple, tuple]:
    """(ratio, lr) indices of the most spread and of the most collapsed cell that did not run away."""
    ok = np.isfinite(mc) & ~(run > 0)
    masked_lo = np.where(ok, mc, np.inf)
    masked_hi = np.where(ok, mc, -np.inf)
    return np.unravel_index(np.argmin(masked_lo), mc.shape), np.unravel_index(np.argmax(masked_hi), mc.shape)


def _draw(ctx, ratios, lrs, mc, pc, run, particles, images, T, width) -> None:
    x, labels = _ratio_positions(ratios)
    y = np.log10(lrs / RATE_UNIT)
    fig, ax = figure(3, 2, size=(4.4, 3.8), layout="constrained")
    for panel, (vals, title) in zip(ax[0, :2], ((mc, f"cosine mode collapse at T = {T} (max log 100 = 4.6)"),
                                                (pc, "mean pairwise |cos| of the particles"))):
        im = panel.pcolormesh(_mid_edges(x), _mid_edges(y), vals.T, shading="flat", cmap="viridis")
        fig.colorbar(im, ax=panel, shrink=0.85)
        i, j = np.nonzero(run > 0)
        if len(i):
            panel.plot(x[i], y[j], "rx", ms=6, label="runaway (|x| > 10 x data norm)")
            panel.legend(fontsize=6, loc="upper right")
        if panel is ax[0, 0] and np.isfinite(mc).any():
            panel.contour(x, y, mc.T, levels=[THRESHOLD], colors="w", linewidths=1.2)
        panel.set_xticks(x, labels, rotation=60, fontsize=6)
        panel.set_xlabel("g2/g1")
        panel.set_ylabel("log10 alpha_D (protocol units)")
        panel.set_title(title, fontsize=8)
    ax[0, 2].imshow(image_mosaic(images, (8, 8)), cmap="gray_r", vmin=0, vmax=1)
    ax[0, 2].set_title("the 100 target digits", fontsize=8)
    lo, hi = _extremes(mc, run)
    for panel, (i, j), what in ((ax[1, 0], lo, "most spread"), (ax[1, 1], hi, "most collapsed")):
        panel.imshow(image_mosaic(particles[i, j], (8, 8)), cmap="gray_r", vmin=0, vmax=1)
        panel.set_title(f"{what}: g2/g1 = {ratios[i]:.2g}, alpha_D = {lrs[j] / RATE_UNIT:.2g} (MC {mc[i, j]:.2f})",
                        fontsize=7)
    spread = np.where(np.isfinite(mc), mc, np.nan)
    for j in range(len(lrs)):
        ax[1, 2].plot(x, spread[:, j], "o-", ms=3, label=f"alpha_D = {lrs[j] / RATE_UNIT:.2g}")
    ax[1, 2].axhline(THRESHOLD, color="k", ls=":", lw=1)
    ax[1, 2].set_xticks(x, labels, rotation=60, fontsize=6)
    ax[1, 2].set(xlabel="g2/g1", ylabel="cosine mode collapse")
    ax[1, 2].legend(fontsize=5)
    for a in ax[1, :2].tolist() + [ax[0, 2]]:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"MNIST protocol on 8 x 8 digits (W = {width}, N = 100, rates x {RATE_UNIT:g})", fontsize=9)
    ctx.save_figure(fig, "digits_phase.png")


def _mid_edges(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _report(ctx, ratios, lrs, mc, cd, pc, run, norm_ratio, T, width) -> None:
    r = ctx.report
    r.parameters({"MNIST protocol": "100 images, N = 100, T = 1000, ReLU, weight decay 1e-4, alpha_G = 1e-4, "
                                    "alpha_D on 26 values 1e-5..2.6e-3, g2/g1 = 0 and 25 values 0.01..0.98",
                  "metric": "nearest data image by cosine similarity, log M + sum p log p over the assignments, "
                            "mean minimum cosine distance"}, OPEN)
    collapsed = mc > THRESHOLD
    r.value("iterations", T)
    r.value("width", width)
    for j, lr in enumerate(lrs):
        row = ", ".join(f"{m:.2f}" for m in mc[:, j])
        r.line(f"alpha_D = {lr / RATE_UNIT:.3g} (x {RATE_UNIT:g} = {lr:.3g}): cosine mode collapse over g2/g1 = "
               f"{', '.join(f'{x:.2g}' for x in ratios)}: {row}")
    r.value("collapsed_cells", int(collapsed.sum()), ".0f")
    r.value("runaway_cells", int((run > 0).sum()), ".0f")
    # the 2-D diagrams' two trends: collapse grows with g2/g1 (at fixed alpha_D) and shrinks with alpha_D
    with np.errstate(invalid="ignore"):
        up_ratio = np.nanmean(np.sign(np.diff(mc, axis=0)))
        down_lr = np.nanmean(np.sign(np.diff(mc, axis=1)))
    r.value("trend_with_ratio", up_ratio, ".2f")
    r.value("trend_with_lr_disc", down_lr, ".2f")
    r.compare("mode collapse against g2/g1 (each alpha_D row)", f"mean sign of the step-to-step change {up_ratio:+.2f}",
              "collapse grows with g2/g1 (the 2-D diagrams, Figs. 5 and 10)", "qualitative" if up_ratio > 0 else False,
              "+1: rises at every step; the protocol's own numbers are in its published data, not stated in the paper")
    r.compare("mode collapse against alpha_D (each g2/g1 column)", f"mean sign of the step-to-step change {down_lr:+.2f}",
              "a faster discriminator resists collapse (Fig. 10)", "qualitative" if down_lr < 0 else False)
    spread = np.isfinite(mc) & (mc <= THRESHOLD)
    r.line(f"converged (cosine mode collapse <= ½ log 100 = {THRESHOLD:.2f}): {int(spread.sum())} of {mc.size} cells; "
           f"runaway: {int((run > 0).sum())} cells")
    k = np.unravel_index(np.nanargmax(norm_ratio), norm_ratio.shape)
    r.value("largest_norm_over_data_norm", float(np.nanmax(norm_ratio)), ".3g")
    r.line(f"largest particle norm over the data's largest norm: {norm_ratio[k]:.3g} at g2/g1 = {ratios[k[0]]:.2g}, "
           f"alpha_D = {lrs[k[1]] / RATE_UNIT:.2g} (the runaway flag needs > 10)")
    if (run > 0).any():
        i, j = np.nonzero(run > 0)
        r.line("runaway cells (g2/g1, alpha_D): " + ", ".join(f"({ratios[a]:.2g}, {lrs[b] / RATE_UNIT:.2g})"
                                                              for a, b in zip(i, j)))
    lo, hi = _extremes(mc, run)
    r.line(f"most spread: g2/g1 = {ratios[lo[0]]:.2g}, alpha_D = {lrs[lo[1]] / RATE_UNIT:.2g}: MC {mc[lo]:.2f}, cosine "
           f"distance {cd[lo]:.3f}, pairwise |cos| {pc[lo]:.3f}; most collapsed: g2/g1 = {ratios[hi[0]]:.2g}, alpha_D "
           f"= {lrs[hi[1]] / RATE_UNIT:.2g}: MC {mc[hi]:.2f}, pairwise |cos| {pc[hi]:.3f}")
    r.summary = (f"On 100 digits in d = 64 ({len(ratios)} x {len(lrs)} grid, T = {T}, rates x {RATE_UNIT:g}): "
                 f"{int(collapsed.sum())} of {mc.size} cells collapse (cosine mode collapse > ½ log 100); collapse "
                 f"{'grows' if up_ratio > 0 else 'does not grow'} with g2/g1 and "
                 f"{'falls' if down_lr < 0 else 'does not fall'} with alpha_D (the 2-D diagrams: grows, falls); "
                 f"{int((run > 0).sum())} cells run away (largest particle norm {np.nanmax(norm_ratio):.2g}x the "
                 f"data's).")
