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


def _numbers(values) -> np.ndarray | None:
    """The values as floats when they are all finite real numbers (not booleans or strings), else None."""
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in np.asarray(values, dtype=object).ravel()):
        return None
    v = np.asarray(values, dtype=np.float64)
    return v if np.all(np.isfinite(v)) else None


def _is_geometric(values) -> bool:
    v = _numbers(values)
    if v is None or len(v) < 3 or np.any(v <= 0):
        return False
    r = v[1:] / v[:-1]
    return bool(np.all(r > 1) and np.allclose(r, r[0], rtol=0.25))


def _axis(values) -> tuple[np.ndarray, list | None, bool]:
    """(positions, tick labels or None, log) of a swept axis on a plot: its values where they are numbers in
    increasing order, else the positions 0, 1, ... labelled with the values (strings, repeated values)."""
    v = _numbers(values)
    if v is not None and (len(v) == 1 or np.all(np.diff(v) > 0)):
        return v, None, _is_geometric(v)
    return np.arange(len(values), dtype=np.float64), [str(x) for x in np.asarray(values).tolist()], False


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
    a, b = dims
    if any(_axis(ds[d].values)[1] is not None or len(ds[d]) < 2 for d in dims):
        return None, None                               # no boundary along strings, repeated or single values
    mc = averaged(ds, "mode_collapse")
    try:
        pb = analysis.phase_boundary(mc, {a: ds[a].values, b: ds[b].values}, along=a,
                                     threshold=analysis.default_threshold(n_modes),
                                     log_along=_is_geometric(ds[a].values))
    except ValueError:
        return None, None
    ok = np.isfinite(pb.boundary)
    fits = None
    if ok.sum() >= 3:
        try:
            fits = analysis.compare_fits(np.asarray(pb.other_values, dtype=np.float64)[ok], pb.boundary[ok])
        except ValueError:
            fits = None
    return pb, fits


def _map(ds, name: str, ndim: int) -> np.ndarray:
    """The averaged observable over the first ``ndim`` swept axes (the others averaged too)."""
    m = averaged(ds, name)
    if m.ndim > ndim:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(m, axis=tuple(range(ndim, m.ndim)))
    return m


def _ticks(ax, which: str, pos, labels, log: bool) -> None:
    if log:
        (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    setticks = ax.set_yticks if which == "y" else ax.set_xticks
    if labels is not None:
        setticks(pos, labels, minor=False)
    elif len(pos) <= 10:
        setticks(pos, [f"{v:.3g}" for v in pos], minor=False)


def plot_sweep(ds, out_png: str) -> str:
    """The phase diagram of a sweep Dataset (``open_sweep``) as a picture; SweepError (one line) when no run
    is complete yet."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .runconfig import from_dict
    from .sweep_spec import SweepError

    done, total = int(ds.attrs.get("runs_complete", 0)), int(ds.attrs.get("runs_total", 0))
    if done == 0:
        raise SweepError(f"{ds.encoding.get('source', ds.attrs.get('sweep_name', 'sweep'))!r}: no complete run to "
                         f"plot yet (0 of {total}); run or resume the sweep first")
    dims = [d for d in ds["diverged"].dims if d != "replicate"]
    try:
        K = from_dict(json.loads(ds.attrs["spec"])["base"], check_files=False).resolved.target.n_modes or 1
    except Exception:  # noqa: BLE001 - only the threshold depends on it
        K = 1
    names = [n for n in ("mode_collapse", "log_likelihood", "nearest_mode_distance") if n in ds]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.6 * max(1, len(names)), 4.0), squeeze=False)
    rest = f" (averaged over {', '.join(dims[2:])})" if len(dims) > 2 else ""
    if len(dims) == 1:
        x, labels, log = _axis(ds[dims[0]].values)
        for ax, n in zip(axes[0], names):
            ax.plot(x, _map(ds, n, 1), "o-")
            ax.set_xlabel(dims[0])
            ax.set_title(n.replace("_", " "))
            _ticks(ax, "x", x, labels, log)
    else:
        a, b = dims[:2]
        pb, fits = boundary(ds, K)
        (pa, labels_a, la), (pbb, labels_b, lb) = _axis(ds[a].values), _axis(ds[b].values)
        ea, eb = _edges(pa, la), _edges(pbb, lb)
        dead = ds["diverged"].values.reshape(len(pa), len(pbb), -1).all(axis=-1)
        for ax, n in zip(axes[0], names):
            m = _map(ds, n, 2)
            finite = np.isfinite(m).any()
            im = ax.pcolormesh(eb, ea, m, shading="flat", cmap="viridis", **({} if finite else {"vmin": 0, "vmax": 1}))
            if not finite:
                ax.text(0.5, 0.5, "no finite value\n(diverged or missing runs)", transform=ax.transAxes,
                        ha="center", va="center", fontsize=8)
            if dead.any():                                 # every replicate diverged: marked, not coloured
                ia, ib = np.nonzero(dead)
                ax.plot(pbb[ib], pa[ia], "rx", ms=5, label="diverged")
            fig.colorbar(im, ax=ax, shrink=0.85)
            ax.set_xlabel(b)
            ax.set_ylabel(a)
            ax.set_title(n.replace("_", " ") + (" (boundary: ½ log K)" if n == "mode_collapse" else "") + rest,
                         fontsize=9)
            _ticks(ax, "y", pa, labels_a, la)
            _ticks(ax, "x", pbb, labels_b, lb)
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
    fig.suptitle(f"sweep {ds.attrs.get('sweep_name', '')}: {done}/{total} runs, averaged over replicates and the "
                 "window T ± 60", fontsize=9)
    fig.tight_layout()
    try:
        atomic_figure(out_png, fig, dpi=110)
    finally:
        plt.close(fig)
    return out_png
