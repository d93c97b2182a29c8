"""Phase diagrams of a sweep (``fastgan plot SWEEP_DIR``): the time-averaged metric over two swept
axes (log axes where the values are geometric), the boundary where it crosses ½ log K located along
the first axis for every value of the second, and the better of a power-law and an exponential fit
of that boundary; with the log-likelihood and nearest-mode-distance maps beside it."""

from __future__ import annotations

import json
import warnings

import numpy as np

from . import analysis
from .h5io import atomic_figure


def window(times: np.ndarray, every: int = 20, n: int = 3, offsets=None) -> tuple[int, np.ndarray]:
    """(centre, offsets) of the paper's T ± n·every average (or the given ``offsets``), with T the
    latest recorded iteration that has the whole window recorded; else the last 2n + 1 records."""
    times = np.asarray(times)
    offs = every * np.arange(-n, n + 1) if offsets is None else np.asarray(offsets)
    have = set(times.tolist())
    for t in times[::-1]:
        if all(int(t + o) in have for o in offs):
            return int(t), offs
    last = times[-(2 * n + 1):]
    return int(last[-1]), last - last[-1]


def averaged(ds, name: str) -> np.ndarray:
    """The time- and replicate-averaged observable (axes...,) over the spec's window (default T ± 60)."""
    w = json.loads(ds.attrs["spec"]).get("window") or {}
    centre, offs = window(ds["time"].values, offsets=w.get("offsets"))
    if w.get("centre") is not None:
        centre = w["centre"]
    with warnings.catch_warnings():                     # all-NaN cells (diverged or missing runs) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        v = analysis.time_average(ds[name].values, ds["time"].values, centre, offs, nan_policy="omit")
        return np.nanmean(v, axis=-1)


def _is_geometric(values) -> bool:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 3 or np.any(v <= 0):
        return False
    r = v[1:] / v[:-1]
    return bool(np.all(r > 1) and np.allclose(r, r[0], rtol=0.25))


def _edges(values, log: bool) -> np.ndarray:
    """Cell edges around grid values (midpoints, geometric on a log axis) for pcolormesh."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 1:
        return np.array([v[0] * 0.8, v[0] * 1.25]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    u = np.log(v) if log else v
    mid = (u[1:] + u[:-1]) / 2
    e = np.concatenate([[u[0] - (mid[0] - u[0])], mid, [u[-1] + (u[-1] - mid[-1])]])
    return np.exp(e) if log else e


def boundary(ds, n_modes: int):
    """(PhaseBoundary along the first axis, FitComparison or None) of the averaged mode collapse."""
    dims = [d for d in ds["diverged"].dims if d != "replicate"]
    if len(dims) != 2 or "mode_collapse" not in ds:
        return None, None
    mc = averaged(ds, "mode_collapse")
    a, b = dims
    pb = analysis.phase_boundary(mc, {a: ds[a].values, b: ds[b].values}, along=a,
                                 threshold=analysis.default_threshold(n_modes), log_along=_is_geometric(ds[a].values))
    ok = np.isfinite(pb.boundary)
    fits = None
    if ok.sum() >= 3:
        try:
            fits = analysis.compare_fits(np.asarray(pb.other_values, dtype=np.float64)[ok], pb.boundary[ok])
        except ValueError:
            fits = None
    return pb, fits


def plot_sweep(ds, out_png: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .runconfig import from_dict

    dims = [d for d in ds["diverged"].dims if d != "replicate"]
    spec = json.loads(ds.attrs["spec"])
    K = from_dict(spec["base"], check_files=False).resolved.target.n_modes or 1
    names = [n for n in ("mode_collapse", "log_likelihood", "nearest_mode_distance") if n in ds]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.6 * max(1, len(names)), 4.0), squeeze=False)
    if len(dims) != 2:
        x = ds[dims[0]].values
        for ax, n in zip(axes[0], names):
            ax.plot(x, averaged(ds, n), "o-")
            ax.set_xlabel(dims[0])
            ax.set_title(n.replace("_", " "))
            if _is_geometric(x):
                ax.set_xscale("log")
    else:
        a, b = dims
        pb, fits = boundary(ds, K)
        for ax, n in zip(axes[0], names):
            m = averaged(ds, n)
            la, lb = _is_geometric(ds[a].values), _is_geometric(ds[b].values)
            ea, eb = _edges(ds[a].values, la), _edges(ds[b].values, lb)
            im = ax.pcolormesh(eb, ea, m, shading="flat", cmap="viridis")
            dead = ds["diverged"].values.all(axis=-1)
            if dead.any():                                 # every replicate diverged: marked, not coloured
                ia, ib = np.nonzero(dead)
                ax.plot(ds[b].values[ib], ds[a].values[ia], "rx", ms=5, label="diverged")
            fig.colorbar(im, ax=ax, shrink=0.85)
            ax.set_xlabel(b)
            ax.set_ylabel(a)
            ax.set_title(n.replace("_", " ") + (" (boundary: ½ log K)" if n == "mode_collapse" else ""), fontsize=9)
            for log, setscale, setticks, vals in ((la, ax.set_yscale, ax.set_yticks, ds[a].values),
                                                  (lb, ax.set_xscale, ax.set_xticks, ds[b].values)):
                if log:
                    setscale("log")
                if len(vals) <= 10:
                    setticks(vals, [f"{v:.3g}" for v in vals], minor=False)
            ax.minorticks_off()
            if pb is not None and n == "mode_collapse":
                ax.plot(pb.other_values, pb.boundary, "wo", ms=4)
                if fits is not None:
                    f = fits.power if fits.best == "power" else fits.exponential
                    xs = np.linspace(np.min(pb.other_values), np.max(pb.other_values), 100)
                    ax.plot(xs, f(xs), "w--", lw=1,
                            label=f"{f.kind}: slope {f.slope:.3g} ± {f.slope_stderr:.2g} (R² {f.r2:.3f})")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="lower right")
            ax.set_xlim(eb[0], eb[-1])
            ax.set_ylim(ea[0], ea[-1])
    fig.suptitle(f"sweep {ds.attrs.get('sweep_name', '')}: {int(ds.attrs['runs_complete'])}/"
                 f"{int(ds.attrs['runs_total'])} runs, averaged over replicates and the window T ± 60", fontsize=9)
    fig.tight_layout()
    try:
        atomic_figure(out_png, fig, dpi=110)
    finally:
        plt.close(fig)
    return out_png
