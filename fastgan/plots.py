"""Pictures of a run: particle snapshots over the discriminator heat-map (the look of Figs. 3-4), each
with its colour bar, and the observables against time. Headless (Agg).

A run on a target of images (its file recorded ``target_image_shape`` = (H, W) and the particles have
H W coordinates) shows its particles as images instead: grids of up to ``IMAGE_GRID`` x ``IMAGE_GRID``
particles, each reshaped to (H, W) in grayscale, at the first and the last snapshot, beside a grid of the
target's images when they are available (:func:`image_mosaic`, :func:`image_panels`).

The heat-maps are cheap at any size: the lattice side is chosen from the work of one evaluation
(``overlay_grid``: at most ``GRID[1]``, shrinking towards ``GRID[0]`` for discriminators with very many
numbers, drawn with bilinear interpolation), and the families' overlays use the numba ops where numba
is there and the work is large (``overlay_ops``); the values agree with the NumPy reference to rounding.
"""

from __future__ import annotations

import math

import numpy as np

from .h5io import atomic_figure

OVERLAY_ELEMENTS = 1 << 24      # points x discriminator numbers evaluated at once (a wide network's picture)
OVERLAY_MIN_POINTS = 512        # ... but never fewer points than this at once
OVERLAY_WORK = 1 << 28          # multiply-adds of all the heat-maps of one picture the automatic lattice aims at
GRID = (48, 80)                 # the automatic lattice's smallest and largest side
FAST_WORK = 1 << 20             # an overlay evaluation of at least this many multiply-adds uses numba's ops
IMAGE_GRID = 10                 # images per side of an image run's grids (up to 100 particles)
IMAGE_GAP = 1                   # pixels between the images of a grid
COSINE_OBSERVABLES = ("cosine_mode_collapse", "cosine_distance", "particle_cosine")   # drawn when the family's
#                                                         own defaults were not recorded (e.g. a target of images)
OVERLAY_LABELS = {"mlp": "$D(x)$", "fourier": "$D(x)$", "rff": "witness $f(x)$", "kernel": "witness $f(x)$",
                  "kde": r"$d^*(x)$"}                   # what a family's heat-map shows (else a family's
#                                                         ``overlay_label`` attribute, else D(x))


def overlay_ops(work: int):
    """The op table an overlay of ``work`` multiply-adds evaluates with: numba's when numba is there, the
    work is at least ``FAST_WORK`` and ``FASTGAN_BACKEND`` is not ``numpy``; else the NumPy reference's."""
    from . import environment
    from .backend import get_ops, probe
    if work >= FAST_WORK and (environment.get("FASTGAN_BACKEND") or "") != "numpy" and probe("numba").ok:
        return get_ops("numba")
    return get_ops("numpy")


def overlay_label(family) -> str:
    """What a family's heat-map shows (colour-bar text)."""
    return getattr(family, "overlay_label", None) or OVERLAY_LABELS.get(family.name, "$D(x)$")


def _per_point(params: dict, particles=None) -> int:
    n = max(1, sum(int(np.size(v)) for v in params.values()))
    return n + (int(np.size(particles)) if particles is not None else 0)


def overlay_grid(per_point: int, panels: int, grid: int | None = None) -> int:
    """The lattice side of ``panels`` heat-maps of a discriminator of ``per_point`` numbers: ``grid`` when
    given, else the largest side in ``GRID`` that keeps the evaluations under ``OVERLAY_WORK``."""
    if grid is not None:
        return max(2, int(grid))
    side = int(math.sqrt(OVERLAY_WORK / max(1, per_point * max(1, panels))))
    return max(GRID[0], min(GRID[1], side))


def disc_values(params: dict, cfg, pts: np.ndarray, particles: np.ndarray | None = None) -> np.ndarray:
    """D at points (n, d) from exported parameters of one run (user layout, see store), drawn by the
    run's discriminator family (e.g. a kde run's d* = p_data / (p_data + p_g) also needs the generated
    ``particles`` (N, d) of that time)."""
    r = getattr(cfg, "resolved", cfg)
    pts = np.asarray(pts)
    # temporaries of about points x state, but blocks of at least a few hundred points: the overlays bound
    # their own temporaries, and matmul-bound ones (deep networks) are slow on small blocks
    step = max(1, OVERLAY_ELEMENTS // _per_point(params, particles), min(OVERLAY_MIN_POINTS, OVERLAY_ELEMENTS))
    if len(pts) <= step:
        return r.family.overlay(params, r, pts, particles)
    return np.concatenate([np.asarray(r.family.overlay(params, r, pts[i:i + step], particles))
                           for i in range(0, len(pts), step)])


def lattice(extent, grid: int) -> np.ndarray:
    """The (grid², 2) points of a grid x grid lattice over extent (x0, x1, y0, y1), row-major from (x0, y0)."""
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    return np.stack([gx.ravel(), gy.ravel()], 1)


def disc_grid(run: dict, indices, extent, grid: int | None = None) -> np.ndarray:
    """D on a lattice over ``extent`` at the snapshots ``indices`` of a 2-D run -> (len(indices), g, g), NaN
    where no parameters were stored; g from :func:`overlay_grid` unless ``grid`` is given."""
    indices = np.asarray(indices, dtype=int)
    first = _snapshot_params(run, int(indices[0])) if len(indices) else None
    per = _per_point(first, run["particles"][0]) if first is not None else 1
    g = overlay_grid(per, len(indices), grid)
    pts = lattice(extent, g)
    values = np.full((len(indices), g, g), np.nan)
    for j, i in enumerate(indices):
        params = _snapshot_params(run, int(i))
        if params is not None:
            values[j] = np.asarray(disc_values(params, run["config"], pts, run["particles"][i])).reshape(g, g)
    return values


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


def image_shape_of(run: dict) -> tuple | None:
    """(H, W) when the run's particles are images: its target recorded an image shape (the run file's
    ``target_image_shape``), snapshots were recorded and the particles have H W coordinates; else None."""
    shape = run.get("image_shape")
    if shape is None:
        shape = (run.get("attrs") or {}).get("target_image_shape")
    if shape is None:
        return None
    shape = tuple(int(n) for n in np.ravel(shape))
    P = np.asarray(run["particles"])
    if len(shape) != 2 or min(shape) < 1 or P.ndim != 3 or P.shape[0] == 0 or P.shape[-1] != shape[0] * shape[1]:
        return None
    return shape


def image_mosaic(vectors, shape: tuple, side: int = IMAGE_GRID, gap: int = IMAGE_GAP) -> np.ndarray:
    """The first min(n, side²) rows of ``vectors`` (n, H W) as one picture of (H, W) images (row-major
    reshapes), ``side`` to a row (fewer when there are fewer images) and as many rows as they need:
    (rows (H + gap) - gap, cols (W + gap) - gap) float64, NaN in the gaps and the empty cells."""
    v = np.asarray(vectors, dtype=np.float64)
    H, W = shape
    n = min(len(v), side * side)
    if n == 0:
        return np.full((H, W), np.nan)
    cols = min(side, n)
    rows = -(-n // cols)
    out = np.full((rows * (H + gap) - gap, cols * (W + gap) - gap), np.nan)
    for k in range(n):
        i, j = divmod(k, cols)
        out[i * (H + gap):i * (H + gap) + H, j * (W + gap):j * (W + gap) + W] = v[k].reshape(H, W)
    return out


def target_images(run: dict, count: int) -> np.ndarray | None:
    """Up to ``count`` of the run's target points (count, H W) as the run used them (normalised): its modes
    when the file holds them, else the target rebuilt from its config when its file can still be read;
    None when neither is there."""
    d = np.asarray(run["particles"]).shape[-1]
    if run.get("modes") is not None and np.shape(run["modes"])[-1] == d:
        return np.asarray(run["modes"])[:count]
    from .errors import FastganError
    from .targets import make_target
    try:
        t = make_target(run["config"])
    except (FastganError, OSError):
        return None
    return t.means[:count] if t.dim == d else None


def image_panels(run: dict, shape: tuple, side: int = IMAGE_GRID) -> list:
    """[(title, mosaic)] of an image run: the target's images (when available), the particles at the first
    and at the last snapshot (one panel when there is one snapshot)."""
    panels = []
    target = target_images(run, side * side)
    if target is not None:
        panels.append(("target", image_mosaic(target, shape, side)))
    S = run["particles"].shape[0]
    for i in sorted({0, S - 1}):
        panels.append((f"step {int(run['particles_time'][i])}", image_mosaic(run["particles"][i], shape, side)))
    return panels


def _draw_mosaic(ax, mosaic: np.ndarray, title: str) -> None:
    """A grayscale mosaic stretched to its own 0.5-99.5 percentiles (gaps and empty cells in dark blue)."""
    import matplotlib.pyplot as plt
    finite = mosaic[np.isfinite(mosaic)]
    lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    cmap = plt.get_cmap("gray").with_extremes(bad="#1a2740")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def observable_text(name: str) -> str:
    """An observable's axis text: its symbol (and units where they say something)."""
    from .labels import label
    lab = label(name)
    return lab.symbol + (f" ({lab.units})" if lab.units not in ("", "1") else "")


def plot_run(run: dict, out_png: str, max_panels: int = 6, grid: int | None = None, metric=None,
             log: bool = False, image_grid: int | None = None) -> str:
    """Draw a run (as returned by :func:`fastgan.store.read_run`) to ``out_png``: at most ``max_panels``
    snapshots over the heat-map (lattice side ``grid``, automatic by default), and below them the
    observables ``metric`` (a name or names; default the family's) against time, on a log scale when
    ``log`` (symmetric-log where values reach 0). A diverged run's non-finite values are left out.
    A run of images (:func:`image_shape_of`) shows grids of ``image_grid`` x ``image_grid`` images
    (default ``IMAGE_GRID``) instead of the snapshots (:func:`image_panels`)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _plot_run(run, out_png, max_panels, grid, metric, log, image_grid)


def _observables(run: dict, fam, metric) -> list:
    if metric is None:
        names = [k for k in fam.plot_observables if k in run["observables"]]
        return names or [k for k in COSINE_OBSERVABLES if k in run["observables"]]
    names = [metric] if isinstance(metric, str) else list(metric)
    missing = [n for n in names if n not in run["observables"]]
    if missing:
        from .errors import FastganError
        raise FastganError(f"metric = {', '.join(missing)}: not recorded in this run (recorded: "
                           f"{', '.join(sorted(run['observables'])) or 'none'})")
    return names


def _set_log(ax, values) -> None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size and np.all(v > 0):
        ax.set_yscale("log")
    elif v.size:
        nz = np.abs(v[v != 0])
        ax.set_yscale("symlog", linthresh=float(nz.min()) if nz.size else 1.0)


def _plot_run(run: dict, out_png: str, max_panels: int, grid: int | None, metric=None, log: bool = False,
              image_grid: int | None = None) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cfg = run["config"]
    fam = cfg.resolved.family
    S = run["particles"].shape[0]
    pick = np.unique(np.round(np.linspace(0, S - 1, min(S, max_panels))).astype(int)) if S else np.zeros(0, int)
    shape = image_shape_of(run)
    mosaics = image_panels(run, shape, image_grid or IMAGE_GRID) if shape is not None else None
    if mosaics is not None:
        pick = np.zeros(0, int)                    # images instead of snapshots over a heat-map
    n_obs = _observables(run, fam, metric)
    top, bottom = (len(mosaics) if mosaics is not None else len(pick)), len(n_obs)
    width = 2.5 * max(top, 1.4 * bottom, 1)
    heights = [3.1] * bool(top) + [2.5] * bool(bottom)
    fig = plt.figure(figsize=(width, sum(heights) + 0.4), layout="constrained")
    rows = fig.subfigures(len(heights) or 1, 1, height_ratios=heights or None, squeeze=False)[:, 0]
    x0, x1, y0, y1 = _extent(run) if S else (-1, 1, -1, 1)
    dim = run["particles"].shape[-1] if S else 2
    values = disc_grid(run, pick, (x0, x1, y0, y1), grid) if dim == 2 and top else None
    shows = overlay_label(fam)
    for j, (title, mosaic) in enumerate(mosaics or ()):
        _draw_mosaic(rows[0].add_subplot(1, top, j + 1), mosaic, title)
    for j, i in enumerate(pick):
        ax = rows[0].add_subplot(1, top, j + 1)
        if values is not None and np.isfinite(values[j]).any():
            im = ax.imshow(values[j], origin="lower", extent=(x0, x1, y0, y1), cmap="viridis", aspect="equal",
                           interpolation="bilinear")
            cb = rows[0].colorbar(im, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, aspect=25)
            cb.ax.tick_params(labelsize=6, length=2, pad=1)
            cb.locator = MaxNLocator(4)
            cb.update_ticks()
            cb.set_label(shows, fontsize=7, labelpad=1)
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
        ax = rows[-1].add_subplot(1, bottom, j + 1)
        y = np.asarray(run["observables"][name], dtype=np.float64)
        ax.plot(run["time"], y, lw=1)
        if name == "mode_collapse" and run.get("modes") is not None:
            thr = 0.5 * np.log(len(run["modes"]))
            ax.axhline(thr, color="gray", ls="--", lw=0.8)
            ax.annotate("½ log K", xy=(1, thr), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                        textcoords="offset points", ha="right", va="bottom", fontsize=7, color="gray")
        if log:
            _set_log(ax, y)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_ylabel(observable_text(name), fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.tick_params(labelsize=7)
    g = cfg.resolved.coupling                       # g2/g1 as given, else from the resolved constants
    ratio = cfg.coupling.ratio if cfg.coupling.ratio is not None else g.g2 / g.g1
    div = f", DIVERGED at {run['diverged_at']}" if run["diverged"] else ""
    fig.suptitle(fam.title(cfg.resolved, ratio) + div, fontsize=10)
    try:
        atomic_figure(out_png, fig, dpi=110)
    finally:
        plt.close(fig)
    return out_png
