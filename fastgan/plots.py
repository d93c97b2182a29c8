"""Pictures of a run: particle snapshots over the discriminator heat-map (the look of Figs. 3-4)
and the observables against time. Headless (Agg)."""

from __future__ import annotations

import numpy as np

from .h5io import atomic_figure

OVERLAY_ELEMENTS = 1 << 24      # points x discriminator numbers evaluated at once (a wide network's picture)


def disc_values(params: dict, cfg, pts: np.ndarray, particles: np.ndarray | None = None) -> np.ndarray:
    """D at points (n, d) from exported parameters of one run (user layout, see store), drawn by the
    run's discriminator family (e.g. a kde run's d* = p_data / (p_data + p_g) also needs the generated
    ``particles`` (N, d) of that time)."""
    r = getattr(cfg, "resolved", cfg)
    pts = np.asarray(pts)
    per_point = max(1, sum(int(np.size(v)) for v in params.values()))
    if particles is not None:
        per_point += int(np.size(particles))
    step = max(1, OVERLAY_ELEMENTS // per_point)          # temporaries of about points x state elements
    if len(pts) <= step:
        return r.family.overlay(params, r, pts, particles)
    return np.concatenate([np.asarray(r.family.overlay(params, r, pts[i:i + step], particles))
                           for i in range(0, len(pts), step)])


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


def plot_run(run: dict, out_png: str, max_panels: int = 6, grid: int = 160) -> str:
    """Draw a run (as returned by :func:`fastgan.store.read_run`) to ``out_png`` (a diverged run's
    non-finite values are left out of the picture without numpy's warnings)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _plot_run(run, out_png, max_panels, grid)


def _plot_run(run: dict, out_png: str, max_panels: int, grid: int) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = run["config"]
    fam = cfg.resolved.family
    S = run["particles"].shape[0]
    pick = np.unique(np.round(np.linspace(0, S - 1, min(S, max_panels))).astype(int)) if S else np.zeros(0, int)
    n_obs = [k for k in fam.plot_observables if k in run["observables"]]
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
    g = cfg.resolved.coupling                       # g2/g1 as given, else from the resolved constants
    ratio = cfg.coupling.ratio if cfg.coupling.ratio is not None else g.g2 / g.g1
    div = f", DIVERGED at {run['diverged_at']}" if run["diverged"] else ""
    fig.suptitle(fam.title(cfg.resolved, ratio) + div, fontsize=10)
    fig.tight_layout()
    try:
        atomic_figure(out_png, fig, dpi=110)
    finally:
        plt.close(fig)
    return out_png
