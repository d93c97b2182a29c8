"""Phase diagrams of a sweep (``fastgan plot SWEEP_DIR``): a time-averaged observable over two swept
axes (log axes where the values are geometric), aggregated over replicates (mean, median, min or max),
the boundary where mode collapse crosses ½ log K located along the first axis for every value of the
second, and the better of a power-law and an exponential fit of that boundary, written as the relation
it is (e.g. g2/g1 ∝ n_disc^0.5); by default with the log-likelihood and nearest-mode-distance maps beside
it. Axes and colour bars are named from :mod:`fastgan.labels` by each dimension's config key (its
``config_key`` attribute, else its name)."""

from __future__ import annotations

import json
import warnings

import numpy as np

from . import analysis
from .h5io import atomic_figure

AGGREGATES = ("mean", "median", "min", "max")
DEFAULT_METRICS = ("mode_collapse", "log_likelihood", "nearest_mode_distance")
MAX_TICKS = 8


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


def _window(ds) -> tuple[int, np.ndarray]:
    """(centre, offsets) of a sweep's average: the spec's window, else the paper's T ± 60."""
    w = json.loads(ds.attrs["spec"]).get("window") or {}
    centre, offs = window(ds["time"].values, offsets=w.get("offsets"))
    return (centre if w.get("centre") is None else int(w["centre"])), offs


def _dims(ds) -> list:
    """The swept dimensions (those of a run's status but the replicate)."""
    return [d for d in ds["diverged"].dims if d != "replicate"]


def _reduce(v: np.ndarray, aggregate: str, axis) -> np.ndarray:
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate = {aggregate!r}: choose from {', '.join(AGGREGATES)}")
    with warnings.catch_warnings():                     # all-NaN cells (diverged or missing runs) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(np, "nan" + aggregate)(v, axis=axis)


def averaged(ds, name: str, aggregate: str = "mean") -> np.ndarray:
    """The time-averaged observable (swept axes...,) over the spec's window (default T ± 60), aggregated
    over the replicates by ``aggregate`` (mean, median, min or max; NaN runs left out)."""
    centre, offs = _window(ds)
    da = ds[name]
    order = [d for d in _dims(ds) if d in da.dims] + [d for d in ("replicate",) if d in da.dims]
    da = da.transpose(*order, "time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v = analysis.time_average(da.values, ds["time"].values, centre, offs, nan_policy="omit")
    return _reduce(v, aggregate, -1) if "replicate" in da.dims else v


def config_key(ds, dim: str) -> str:
    """The config key a swept dimension stands for: its ``config_key`` attribute, else a key whose
    short name it is, else its own name."""
    from .labels import key_for
    return ds[dim].attrs.get("config_key") or key_for(dim)


def axis_text(ds, dim: str, labels: dict | None = None) -> str:
    """What a swept dimension's axis says: a given label (by dimension or config key), else its symbol."""
    from .labels import symbol
    key = config_key(ds, dim)
    labels = labels or {}
    return labels.get(dim) or labels.get(key) or symbol(key)


def observable_text(name: str, labels: dict | None = None) -> str:
    """What an observable's colour bar says: a given label, else its symbol with its units."""
    from .labels import label
    if labels and name in labels:
        return labels[name]
    lab = label(name)
    return lab.symbol + (f" ({lab.units})" if lab.units not in ("", "1") else "")


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


def _log_axis(values) -> bool:
    """Whether an axis is drawn on a log scale: geometric values, or positive increasing values more
    evenly spaced in log than linearly over at least a factor 4 (e.g. integer log-spaced 1, 2, 3, 5, ..., 16)."""
    if _is_geometric(values):
        return True
    v = _numbers(values)
    if v is None or len(v) < 3 or np.any(v <= 0) or np.any(np.diff(v) <= 0) or v[-1] / v[0] < 4:
        return False
    cv = lambda d: float(np.std(d) / np.mean(d))                       # noqa: E731
    return cv(np.diff(np.log(v))) < cv(np.diff(v))


def _axis(values) -> tuple[np.ndarray, list | None, bool]:
    """(positions, tick labels or None, log) of a swept axis on a plot: its values where they are numbers in
    increasing order, else the positions 0, 1, ... labelled with the values (strings, repeated values)."""
    v = _numbers(values)
    if v is not None and (len(v) == 1 or np.all(np.diff(v) > 0)):
        return v, None, _log_axis(v)
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


def boundary(ds, n_modes: int, aggregate: str = "mean"):
    """(PhaseBoundary along the first axis, FitComparison or None) of the aggregated mode collapse. The fits
    give the second axis as a function of the crossing on the first (for (g2/g1, n_disc) sweeps: n_disc
    against the boundary g2/g1, the orientation of Durr et al.'s laws, n_disc ∝ 1/γ(k) with k ~ g2/g1, and of
    the reproductions; a power law reads the same either way, an exponential n ∝ exp(b r) does not)."""
    dims = _dims(ds)
    if len(dims) != 2 or "mode_collapse" not in ds:
        return None, None
    a, b = dims
    if any(_axis(ds[d].values)[1] is not None or len(ds[d]) < 2 for d in dims):
        return None, None                               # no boundary along strings, repeated or single values
    mc = averaged(ds, "mode_collapse", aggregate)
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
            fits = analysis.compare_fits(pb.boundary[ok], np.asarray(pb.other_values, dtype=np.float64)[ok])
        except ValueError:
            fits = None
    return pb, fits


def _math(text: str) -> str:
    """A label as the inside of a mathtext expression."""
    t = text.strip()
    if len(t) > 1 and t[0] == t[-1] == "$" and t.count("$") == 2:
        return t[1:-1]
    return r"\mathrm{" + "".join("\\" + c if c in "_{}%#&^$" else (r"\ " if c == " " else c) for c in t) + "}"


def relation(fit, along: str, other: str) -> str:
    """The fitted law as the relation it is, the fitted quantity ``along`` against ``other`` (mathtext labels):
    power ``along ∝ other^slope``, exponential ``along ∝ exp(slope · other)``."""
    y, x = _math(along), _math(other)
    if fit.kind == "power":
        base = f"({x})" if any(c in x for c in "/+-*") or x.startswith(r"\mathrm") else x
        return rf"${y} \propto {base}^{{{fit.slope:.2g}}}$"
    return rf"${y} \propto \exp({fit.slope:.3g}\,{x})$"


def _map(ds, name: str, ndim: int, aggregate: str = "mean") -> np.ndarray:
    """The aggregated observable over the first ``ndim`` swept axes (the others averaged)."""
    m = averaged(ds, name, aggregate)
    if m.ndim > ndim:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(m, axis=tuple(range(ndim, m.ndim)))
    return m


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _ticks(ax, which: str, pos, labels, log: bool) -> None:
    """Ticks of a swept axis: at the values (at most ``MAX_TICKS`` of them, evenly picked), labelled with
    them; category labels likewise; a log scale on a log axis."""
    from matplotlib.ticker import MaxNLocator, NullLocator
    if log:
        (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    setticks = ax.set_yticks if which == "y" else ax.set_xticks
    pos = np.asarray(pos, dtype=np.float64)
    shown = np.unique(np.round(np.linspace(0, len(pos) - 1, min(len(pos), MAX_TICKS))).astype(int))
    if labels is not None:
        setticks(pos[shown], [labels[i] for i in shown], minor=False)
    elif log and len(pos) > MAX_TICKS and pos[-1] / pos[0] >= 10:
        pass                                           # many values over decades: matplotlib's decade ticks
    elif log or len(pos) <= MAX_TICKS:
        setticks(pos[shown], [_fmt(v) for v in pos[shown]], minor=False)
    else:
        integer = bool(np.all(pos == np.round(pos)))
        axis.set_major_locator(MaxNLocator(MAX_TICKS, integer=integer))
    axis.set_minor_locator(NullLocator())


def _norm(m: np.ndarray, log: bool):
    """(norm or None, colour-bar extend) of a map: linear, or with ``log`` a log scale (values below a
    thousandth of the largest drawn at its floor) or a symmetric log scale where values are negative."""
    from matplotlib.colors import LogNorm, SymLogNorm
    ok = m[np.isfinite(m)]
    if not log or ok.size == 0:
        return None, "neither"
    top = float(np.abs(ok).max())
    if top == 0:
        return None, "neither"
    if ok.min() < 0:
        return SymLogNorm(linthresh=top * 1e-3, vmin=float(ok.min()), vmax=float(ok.max())), "neither"
    pos = ok[ok > 0]
    lo = max(float(pos.min()), top * 1e-3)
    return LogNorm(vmin=lo, vmax=top), ("min" if ok.min() < lo else "neither")


def _metrics(ds, metric) -> list:
    if metric is None:
        return [n for n in DEFAULT_METRICS if n in ds]
    from .sweep_spec import SweepError
    names = [metric] if isinstance(metric, str) else list(metric)
    have = [v for v in ds.data_vars if "time" in ds[v].dims]
    missing = [n for n in names if n not in have]
    if missing:
        raise SweepError(f"metric = {', '.join(missing)}: not recorded by this sweep (recorded: "
                         f"{', '.join(have) or 'none'})")
    return names


def plot_sweep(ds, out_png: str, metric=None, log: bool = False, aggregate: str = "mean",
               labels: dict | None = None) -> str:
    """The phase diagram of a sweep Dataset (``open_sweep``) as a picture: the observables ``metric`` (a
    name or names; default mode collapse, log-likelihood and nearest-mode distance), time-averaged and
    aggregated over replicates by ``aggregate`` (mean, median, min, max), on a log colour scale when
    ``log``; ``labels`` {dimension, config key or observable: text} replaces the table's names.
    SweepError (one line) when no run is complete yet or a metric was not recorded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects

    from .runconfig import from_dict
    from .sweep_spec import SweepError

    done, total = int(ds.attrs.get("runs_complete", 0)), int(ds.attrs.get("runs_total", 0))
    if done == 0:
        raise SweepError(f"{ds.encoding.get('source', ds.attrs.get('sweep_name', 'sweep'))!r}: no complete run to "
                         f"plot yet (0 of {total}); run or resume the sweep first")
    if aggregate not in AGGREGATES:
        raise SweepError(f"aggregate = {aggregate!r}: choose from {', '.join(AGGREGATES)}")
    dims = _dims(ds)
    try:
        K = from_dict(json.loads(ds.attrs["spec"])["base"], check_files=False).resolved.target.n_modes or 1
    except Exception:  # noqa: BLE001 - only the threshold depends on it
        K = 1
    thr = analysis.default_threshold(K)
    names = _metrics(ds, metric)
    n = max(1, len(names))
    fig, axes = plt.subplots(1, n, figsize=(max(5.6, 4.4 * n), 4.2 + 0.4 * (n == 1)), squeeze=False,
                             layout="constrained")
    rest = f" ({', '.join(axis_text(ds, d, labels) for d in dims[2:])} averaged)" if len(dims) > 2 else ""
    stroke = [patheffects.withStroke(linewidth=2.6, foreground="k")]
    handles = {}
    if len(dims) == 1:
        x, ticklabels, lx = _axis(ds[dims[0]].values)
        for ax, name in zip(axes[0], names):
            ax.plot(x, _map(ds, name, 1, aggregate), "o-")
            if name == "mode_collapse" and K > 1:
                ax.axhline(thr, color="gray", ls="--", lw=0.8)
                ax.annotate("½ log K", xy=(1, thr), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                            textcoords="offset points", ha="right", va="bottom", fontsize=7, color="gray")
            if log:
                from .plots import _set_log
                _set_log(ax, _map(ds, name, 1, aggregate))
            ax.set_xlabel(axis_text(ds, dims[0], labels))
            ax.set_ylabel(observable_text(name, labels))
            _ticks(ax, "x", x, ticklabels, lx)
    else:
        a, b = dims[:2]
        pb, fits = boundary(ds, K, aggregate)
        (pa, labels_a, la), (pbb, labels_b, lb) = _axis(ds[a].values), _axis(ds[b].values)
        ea, eb = _edges(pa, la), _edges(pbb, lb)
        dead = ds["diverged"].transpose(a, b, ...).values.reshape(len(pa), len(pbb), -1).all(axis=-1)
        ya, xb = axis_text(ds, a, labels), axis_text(ds, b, labels)
        for ax, name in zip(axes[0], names):
            m = _map(ds, name, 2, aggregate)
            finite = np.isfinite(m).any()
            norm, extend = _norm(m, log)
            kw = {"norm": norm} if norm is not None else ({} if finite else {"vmin": 0, "vmax": 1})
            im = ax.pcolormesh(eb, ea, m, shading="flat", cmap="viridis", **kw)
            if not finite:
                ax.text(0.5, 0.5, "no finite value\n(diverged or missing runs)", transform=ax.transAxes,
                        ha="center", va="center", fontsize=8)
            if dead.any():                                 # every replicate diverged: marked, not coloured
                ia, ib = np.nonzero(dead)
                handles["diverged"] = ax.plot(pbb[ib], pa[ia], "rx", ms=5, ls="none")[0]
            cb = fig.colorbar(im, ax=ax, shrink=0.9, extend=extend)
            cb.set_label(observable_text(name, labels), fontsize=9)
            cb.ax.tick_params(labelsize=8)
            if name == "mode_collapse" and K > 1:
                _mark_threshold(cb, thr)
            ax.set_xlabel(xb)
            ax.set_ylabel(ya)
            ax.set_title(_title(name, labels) + rest, fontsize=9)
            _ticks(ax, "y", pa, labels_a, la)
            _ticks(ax, "x", pbb, labels_b, lb)
            if pb is not None and name == "mode_collapse":
                handles["boundary: crossing of ½ log K"] = ax.plot(
                    pb.other_values, pb.boundary, "o", ms=4, mfc="w", mec="k", ls="none")[0]
                if fits is not None:                       # the second axis against the crossing
                    f = fits.power if fits.best == "power" else fits.exponential
                    found = pb.boundary[np.isfinite(pb.boundary)]
                    rs = (np.geomspace if la else np.linspace)(np.min(found), np.max(found), 100)
                    line = ax.plot(f(rs), rs, "w--", lw=1.2, path_effects=stroke)[0]
                    handles[f"{f.kind} fit: {relation(f, xb, ya)}  ({'exponent' if f.kind == 'power' else 'rate'} "
                            f"± {f.slope_stderr:.2g}, R² {f.r2:.2f})"] = line
            ax.set_xlim(eb[0], eb[-1])
            ax.set_ylim(ea[0], ea[-1])
    if handles:                                            # below the panels, never over the data
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=1 if n == 1 else min(3, len(handles)), fontsize=8, frameon=False)
    centre, offs = _window(ds)
    reps = int(ds.sizes.get("replicate", 1))
    spread = np.unique(np.abs(np.asarray(offs)))
    win = f"T ± {int(spread.max())}" if len(offs) > 1 else "T"
    fig.suptitle(f"sweep {ds.attrs.get('sweep_name', '')}: {done}/{total} runs;{chr(10) if n == 1 else ' '}{aggregate} "
                 f"over {reps} replicate{'s' if reps != 1 else ''} of the time average over {win} (T = {centre})",
                 fontsize=9)
    try:
        atomic_figure(out_png, fig, dpi=110)
    finally:
        plt.close(fig)
    return out_png


def _title(name: str, labels: dict | None) -> str:
    from .labels import label
    if labels and name in labels:
        return labels[name]
    text = label(name).long_name
    return text[:1].upper() + text[1:]


def _mark_threshold(cb, thr: float) -> None:
    """A line and a tick '½ log K' at the threshold on a vertical colour bar (ticks within 8% of the bar's
    range of it are dropped so they do not collide)."""
    lo, hi = cb.norm.vmin, cb.norm.vmax
    if lo is None or hi is None or not (lo <= thr <= hi):
        return
    cb.ax.axhline(thr, color="r", lw=1.5)
    span = hi - lo
    ticks = [t for t in cb.get_ticks() if lo <= t <= hi and abs(t - thr) > 0.08 * span]
    cb.set_ticks(ticks + [thr], labels=[f"{t:g}" for t in ticks] + ["½ log K"])
