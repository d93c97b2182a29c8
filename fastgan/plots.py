"""Pictures of a run: particle snapshots over the discriminator heat-map (the look of Figs. 3-4)
and the observables against time. Headless (Agg)."""

from __future__ import annotations

import numpy as np

from .kernels.deep_mlp import deep_forward
from .kernels.mlp_numpy import mlp_forward


def disc_values(params: dict, cfg, pts: np.ndarray, particles: np.ndarray | None = None) -> np.ndarray:
    """D at points (n, d) from exported parameters of one run (user layout, see store); a kde run's
    d* = p_data / (p_data + p_g) also needs the generated ``particles`` (N, d) of that time."""
    from .config import resolved_dict
    from .kernels import fourier_grid, linear_numpy
    x = np.asarray(pts, dtype=np.float64).T[None]                        # (1, d, n)
    f64 = lambda k: np.asarray(params[k], dtype=np.float64)[None]       # noqa: E731
    if "data_log_weights" in params:                                     # kde: the optimal discriminator d*
        from .kde import kde_dstar
        return kde_dstar(cfg, params, particles, x)[0]
    if "w1" in params:                                                   # Fourier, separable d = 2 grid
        return fourier_grid.fourier_grid_forward(f64("w1"), f64("w2"), f64("axis"), f64("axis"), x)[0]
    if "theta" in params:                                                # trigonometric features
        omega = np.asarray(params["omega"], dtype=np.float64).T[None]
        return linear_numpy.trig_forward(f64("theta"), omega, f64("phase"), f64("amp"), x)[0]
    if "centres" in params:                                              # exact kernel (dual form)
        disc = resolved_dict(cfg)["discriminator"]
        centres = np.asarray(params["centres"], dtype=np.float64).T[None]
        return linear_numpy.kernel_sum(x, centres, f64("weights"), np.asarray([disc["bandwidth"]], dtype=np.float64),
                                       disc["kernel"], disc["rq_alpha"] or 1.0)[0]
    activation = cfg.discriminator.activation
    if "w" in params:
        w = np.asarray(params["w"], dtype=np.float64).T[None].copy()      # (1, d, W)
        return mlp_forward(w, np.asarray(params["b"], np.float64)[None], np.asarray(params["a"], np.float64)[None],
                           x, activation)[0]
    p = {k: np.asarray(v, dtype=np.float64)[None] for k, v in params.items()}
    return deep_forward(p, x, activation)[0]


def _snapshot_params(run: dict, i: int) -> dict | None:
    snaps = run.get("discriminator_snapshots") or {}
    if not snaps:
        return None
    return {k: v[i] for k, v in snaps.items()}


def _extent(run: dict) -> tuple[float, float, float, float]:
    pts = [run["particles"].reshape(-1, run["particles"].shape[-1])[:, :2]]
    if run.get("modes") is not None:
        pts.append(run["modes"][:, :2])
    allp = np.concatenate(pts)
    allp = allp[np.all(np.isfinite(allp), axis=1)]
    lo, hi = np.percentile(allp, 1, axis=0), np.percentile(allp, 99, axis=0)
    if run.get("modes") is not None:
        lo = np.minimum(lo, run["modes"][:, :2].min(0))
        hi = np.maximum(hi, run["modes"][:, :2].max(0))
    c, r = (lo + hi) / 2, max(0.5, float((hi - lo).max()) / 2 * 1.25)
    return c[0] - r, c[0] + r, c[1] - r, c[1] + r


def _title(cfg, ratio: float) -> str:
    from .config import resolved_dict
    r = resolved_dict(cfg)
    d, tr = r["discriminator"], r["training"]
    rates = f"lr_D={tr['lr_disc']:g} lr_G={tr['lr_gen']:g} n_disc={tr['n_disc']}"
    if d["kind"] == "mlp":
        return (f"{d['activation']} W={d['width']} N={cfg.generator.n_particles} g2/g1={ratio:.3g} {rates} "
                f"beta={tr['beta']:g}")
    if d["kind"] == "fourier":
        return f"fourier gamma={d['gamma']} N={cfg.generator.n_particles} g2/g1={ratio:.3g} {rates} lam={tr['lam']:g}"
    bw = ",".join(f"{b:g}" for b in d["bandwidth"])
    if d["kind"] == "kde":
        sched = " (scheduled)" if d["schedule"] else ""
        step = "scheduled" if any(len(e) > 2 for e in d["schedule"] or ()) else f"{tr['lr_gen']:g}"
        return (f"kde {d['model']} sigma={bw}{sched} p_data={d['data_density']} N={cfg.generator.n_particles} "
                f"g2/g1={ratio:.3g} step={step}")
    return f"{d['kind']} {d['kernel']} sigma={bw} N={cfg.generator.n_particles} {rates} lam={tr['lam']:g}"


def plot_run(run: dict, out_png: str, max_panels: int = 6, grid: int = 160) -> str:
    """Draw a run (as returned by :func:`fastgan.store.read_run`) to ``out_png``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = run["config"]
    S = run["particles"].shape[0]
    pick = np.unique(np.round(np.linspace(0, S - 1, min(S, max_panels))).astype(int)) if S else np.zeros(0, int)
    wanted = ("w2", "escaped_fraction", "nearest_mode_distance") if "w2" in run["observables"] else \
        ("mode_collapse", "kernel_gan_objective", "q_d") if "q_d" in run["observables"] else \
        ("mode_collapse", "log_likelihood", "nearest_mode_distance")
    n_obs = [k for k in wanted if k in run["observables"]]
    cols = max(len(pick), len(n_obs), 1)
    fig = plt.figure(figsize=(2.6 * cols, 2.6 * (1 + bool(n_obs)) + 0.4))
    x0, x1, y0, y1 = _extent(run) if S else (-1, 1, -1, 1)
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    dim = run["particles"].shape[-1] if S else 2
    for j, i in enumerate(pick):
        ax = fig.add_subplot(1 + bool(n_obs), cols, j + 1)
        params = _snapshot_params(run, i)
        if params is not None and dim == 2:
            vals = disc_values(params, cfg, np.stack([gx.ravel(), gy.ravel()], 1),
                               run["particles"][i]).reshape(grid, grid)
            ax.imshow(vals, origin="lower", extent=(x0, x1, y0, y1), cmap="viridis", aspect="equal")
        if run.get("modes") is not None:
            ax.scatter(run["modes"][:, 0], run["modes"][:, 1], c="k", s=14, marker="o", zorder=3)
        P = run["particles"][i]
        ax.scatter(P[:, 0], P[:, 1], c="w", s=3, edgecolors="none", zorder=4)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_facecolor("#222")
        ax.set_title(f"step {int(run['particles_time'][i])}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for j, name in enumerate(n_obs):
        ax = fig.add_subplot(2, cols, cols + j + 1)
        ax.plot(run["time"], run["observables"][name], lw=1)
        if name == "mode_collapse" and run.get("modes") is not None:
            ax.axhline(0.5 * np.log(len(run["modes"])), color="gray", ls="--", lw=0.8)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.tick_params(labelsize=7)
    c = cfg.coupling
    ratio = c.ratio if c.ratio is not None else (c.g2 / c.g1 if c.g1 else 0.0)
    div = f", DIVERGED at {run['diverged_at']}" if run["diverged"] else ""
    fig.suptitle(_title(cfg, ratio) + div, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
