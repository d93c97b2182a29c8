"""Analysis of phase diagrams (Durr et al. Figs. 5, 10-15), pure numpy, float64.

time_average       mean of a recorded observable over the iterations centre + offsets
                   (the paper: T ± n·20, n = 0..3, i.e. ``PAPER_OFFSETS``)
default_threshold  (1/2) log K, the mode-collapse threshold for K modes
locate_crossings   first crossing of a threshold from below along a sorted axis, per row
phase_boundary     the crossing along one named axis of a 2-D diagram, for each value of the other
fit_power_law      y = c x^b   as a line in log y vs log x (ReLU boundary, Fig. 5, 14)
fit_exponential    y = c e^{bx} as a line in log y vs x     (tanh boundary, Fig. 13, 15)
compare_fits       both fits on the same points, the better one by AIC (both in log-y space)
bisect_boundary    adaptive bisection of one line x -> metric(x) for the threshold crossing
bisect_boundaries  the same for several lines in lock-step, one batch (ensemble) per round

Conventions: the metric rises through the threshold along the axis (converged below, collapsed
above, as MC against g2/g1); a crossing is where metric[i] < threshold <= metric[i + 1].

xarray: ``time_average``, ``phase_boundary`` and the fits also take DataArrays (``open_sweep``,
``open_run``), their coordinates standing in for the arrays: ``time_average(ds.mode_collapse, centre=T)``
averages along ``time`` and returns a DataArray; ``phase_boundary(mc, along="g2_over_g1", threshold=t)``
takes the axes from a 2-D DataArray (a dimension's name or its ``config_key``); ``fit_power_law(b)`` fits a
1-D DataArray against its coordinate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

PAPER_OFFSETS = 20 * np.arange(-3, 4)      # records at T ± n·20, n = 0..3 (Figs. 5, 10)


def _is_xarray(a) -> bool:
    return type(a).__module__.startswith("xarray.") and hasattr(a, "dims")


def _dim(da, name: str) -> str:
    """The dimension of ``da`` called ``name``, or whose coordinate's ``config_key`` attribute is ``name``."""
    from .xr import dim_of
    d = dim_of(da, name)
    if d is None:
        raise ValueError(f"along: {name!r} is not a dimension of the DataArray {list(da.dims)} (nor a config_key)")
    return d


def time_average(values, times=None, centre: int | None = None, offsets=PAPER_OFFSETS,
                 nan_policy: str = "propagate", dim: str = "time"):
    """Mean of values (..., T) over the records at iterations centre + offsets; shape (...).

    times (T,) are the recorded iterations (unique). nan_policy "propagate" (a NaN record gives
    NaN) or "omit" (NaN records are skipped; NaN only where all are NaN). centre None: the latest
    recorded iteration with the whole window recorded. A DataArray is averaged along its ``dim``
    (its coordinate gives the times; ``time_average(da, T)`` reads T as the centre) and a DataArray
    without that dimension is returned, its attributes kept.
    """
    if _is_xarray(values):
        if times is not None and np.ndim(times) == 0 and centre is None:
            times, centre = None, times
        if times is None:
            times = values[dim].values
        da = values.transpose(..., dim)
        centre = _centre(np.asarray(times), offsets) if centre is None else centre
        out = time_average(da.values, times, centre, offsets, nan_policy)
        res = da.isel({dim: 0}, drop=True).copy(data=out)
        window = f"iterations {centre} + {np.asarray(offsets).tolist()}"
        res.attrs = dict(values.attrs, cell_methods=f"{dim}: mean ({window})")
        return res
    if times is None:
        raise ValueError("times: needed for an array (a DataArray brings its own)")
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times)
    if times.ndim != 1 or values.ndim < 1 or values.shape[-1] != times.shape[0]:
        raise ValueError(f"times: shape {times.shape} does not match the last axis of values {values.shape}")
    if len(np.unique(times)) != len(times):
        raise ValueError("times: recorded iterations must be unique")
    if nan_policy not in ("propagate", "omit"):
        raise ValueError(f"nan_policy: {nan_policy!r} is not 'propagate' or 'omit'")
    if centre is None:
        centre = _centre(times, offsets)
    wanted = np.asarray(centre) + np.atleast_1d(np.asarray(offsets))
    if wanted.ndim != 1 or wanted.size == 0:
        raise ValueError("offsets: need a non-empty 1-D sequence of iteration offsets")
    order = np.argsort(times, kind="stable")
    pos = np.clip(np.searchsorted(times[order], wanted), 0, len(times) - 1)
    idx = order[pos]
    missing = wanted[times[idx] != wanted]
    if missing.size:
        raise ValueError(f"centre/offsets: iteration(s) {missing.tolist()} not recorded "
                         f"(records span {times.min()}..{times.max()})")
    window = values[..., idx]
    if nan_policy == "propagate":
        return window.mean(-1)
    n = np.sum(~np.isnan(window), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.nansum(window, -1) / n, np.nan)


def _centre(times: np.ndarray, offsets) -> int:
    """The latest recorded iteration T with every T + offset recorded."""
    have = set(times.ravel().tolist())
    offs = np.atleast_1d(np.asarray(offsets)).tolist()
    for t in sorted(have, reverse=True):
        if all(t + o in have for o in offs):
            return int(t)
    raise ValueError(f"centre: no recorded iteration has the whole window {offs} recorded")


def default_threshold(n_modes: int) -> float:
    """(1/2) log K: the paper's mode-collapse threshold for K modes (Fig. 5: K = 8)."""
    if n_modes < 1:
        raise ValueError(f"n_modes: need at least one mode, got {n_modes}")
    return 0.5 * math.log(n_modes)


def _interp(x0, x1, m0, m1, threshold, log: bool):
    """x where the line (in x, or in log x) through (x0, m0), (x1, m1) meets threshold."""
    t = (threshold - m0) / (m1 - m0)
    if log:
        return np.exp(np.log(x0) + t * (np.log(x1) - np.log(x0)))
    return x0 + t * (x1 - x0)


def _axis(x, name: str, log: bool) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise ValueError(f"{name}: need a 1-D, finite, strictly increasing axis of >= 2 values")
    if log and np.any(x <= 0):
        raise ValueError(f"{name}: a log axis needs positive values")
    return x


def locate_crossings(x, metric, threshold: float, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """First upward crossing of threshold along x (n,) for metric (..., n).

    Returns (crossing (...), bracketed (...) bool): crossing interpolated linearly in x (in log x
    when log=True) between the two samples that bracket it; NaN and False where no pair of samples
    has metric[i] < threshold <= metric[i + 1] (all below, all above, or NaN).
    """
    x = _axis(x, "x", log)
    metric = np.asarray(metric, dtype=np.float64)
    if metric.ndim < 1 or metric.shape[-1] != x.size:
        raise ValueError(f"metric: last axis {metric.shape} does not match x ({x.size},)")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold: must be finite, got {threshold}")
    up = (metric[..., :-1] < threshold) & (metric[..., 1:] >= threshold)
    bracketed = up.any(-1)
    i = np.argmax(up, -1)[..., None]
    m0 = np.take_along_axis(metric, i, -1)[..., 0]
    m1 = np.take_along_axis(metric, i + 1, -1)[..., 0]
    with np.errstate(all="ignore"):                      # rows without a crossing are masked below
        cross = _interp(x[i[..., 0]], x[i[..., 0] + 1], m0, m1, threshold, log)
    return np.where(bracketed, cross, np.nan), bracketed


@dataclass(frozen=True)
class PhaseBoundary:
    """The boundary along ``along`` for each value of ``other``: boundary (n_other,), NaN where
    a row does not cross; bracketed (n_other,) bool."""

    along: str
    other: str
    other_values: np.ndarray
    boundary: np.ndarray
    bracketed: np.ndarray

    def to_dataarray(self):
        """The boundary as a DataArray over ``other`` (``bracketed`` a coordinate beside it)."""
        import xarray as xr
        return xr.DataArray(self.boundary, dims=[self.other], name=f"{self.along}_boundary",
                            coords={self.other: self.other_values, "bracketed": (self.other, self.bracketed)},
                            attrs={"long_name": f"phase boundary along {self.along}",
                                   "description": f"first upward threshold crossing along {self.along} "
                                                  f"(NaN: none in range)"})


def phase_boundary(metric, axes: Mapping[str, Sequence[float]] | None = None, along: str | None = None,
                   threshold: float | None = None, log_along: bool = False) -> PhaseBoundary:
    """Boundary of a 2-D diagram metric (len(A), len(B)) with axes {A: values, B: values} (in the
    order of metric's axes), located along the axis named ``along`` (e.g. "ratio" for g2/g1).
    A 2-D DataArray brings its axes: ``phase_boundary(da, along="g2_over_g1", threshold=t)`` (``along``
    a dimension or its coordinate's ``config_key``; ``phase_boundary(da, along, threshold)`` too)."""
    if _is_xarray(metric):
        if isinstance(axes, str):                       # phase_boundary(da, "n_disc", threshold)
            axes, along, threshold = None, axes, along
        if axes is not None:
            raise ValueError("axes: a DataArray brings its own (give along= and threshold=)")
        if metric.ndim != 2:
            raise ValueError(f"metric: need a 2-D DataArray, got dimensions {list(metric.dims)} (average or "
                             "select the others first)")
        if along is None:
            raise ValueError("along: name the dimension to locate the boundary along")
        along = _dim(metric, along)
        axes = {d: metric[d].values if d in metric.coords else np.arange(metric.sizes[d]) for d in metric.dims}
        metric = metric.values
    if along is None or threshold is None:
        raise ValueError("along, threshold: both are needed")
    names = list(axes)
    if len(names) != 2:
        raise ValueError(f"axes: need exactly two named axes, got {names}")
    if along not in names:
        raise ValueError(f"along: {along!r} is not one of the axes {names}")
    metric = np.asarray(metric, dtype=np.float64)
    shape = tuple(len(axes[n]) for n in names)
    if metric.shape != shape:
        raise ValueError(f"metric: shape {metric.shape} does not match the axes {dict(zip(names, shape))}")
    other = names[1 - names.index(along)]
    rows = metric if names[1] == along else metric.T
    boundary, bracketed = locate_crossings(_axis(axes[along], f"axes[{along!r}]", log_along), rows,
                                           threshold, log=log_along)
    return PhaseBoundary(along, other, np.asarray(axes[other], dtype=np.float64), boundary, bracketed)


@dataclass(frozen=True)
class Fit:
    """y = prefactor * x^slope (kind "power") or prefactor * exp(slope x) ("exponential"),
    fitted as a line in log y. Standard errors: from sigma when given (absolute), else from the
    residual scatter. chi2_dof: weighted residual chi² per degree of freedom in log y (the residual
    variance when unweighted); aic: in log-y space, comparable between kinds on the same points."""

    kind: str
    slope: float
    slope_stderr: float
    prefactor: float
    log_prefactor_stderr: float
    r2: float
    chi2_dof: float
    aic: float
    n: int

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float64)
        return self.prefactor * (x ** self.slope if self.kind == "power" else np.exp(self.slope * x))


def _fit_points(x, y, sigma, power: bool):
    if y is None and _is_xarray(x):                     # a 1-D DataArray against its coordinate
        if x.ndim != 1:
            raise ValueError(f"x: need a 1-D DataArray, got dimensions {list(x.dims)}")
        x, y = x[x.dims[0]].values, x.values
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x, y: need 1-D arrays of one shape, got {x.shape} and {y.shape}")
    s = np.ones_like(y) if sigma is None else np.broadcast_to(np.asarray(sigma, dtype=np.float64), y.shape)
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0) & np.isfinite(s) & (s > 0)
    if power:
        ok &= x > 0
    return x[ok], y[ok], (None if sigma is None else s[ok])


def _fit_line(kind: str, u, y, sigma) -> Fit:
    """Weighted least squares of log y = a + b u (sigma: absolute errors of y, sigma/y in log y)."""
    n = u.size
    if n < 3:
        raise ValueError(f"x, y: a {kind} fit needs >= 3 finite, positive points, got {n}")
    if np.ptp(u) == 0:
        raise ValueError(f"x: a {kind} fit needs at least two distinct x values")
    v = np.log(y)
    w = np.ones(n) if sigma is None else (y / sigma) ** 2
    design = np.stack([np.ones(n), u], -1) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(design, v * np.sqrt(w), rcond=None)
    resid = v - coef[0] - coef[1] * u
    chi2 = float(np.sum(w * resid ** 2))
    vbar = np.sum(w * v) / np.sum(w)
    tss = float(np.sum(w * (v - vbar) ** 2))
    dof = n - 2
    cov = np.linalg.inv(design.T @ design) * (chi2 / dof if sigma is None else 1.0)
    aic = (n * math.log(max(chi2, 1e-300) / n) if sigma is None else chi2) + 2 * 2
    return Fit(kind, float(coef[1]), float(math.sqrt(cov[1, 1])), float(math.exp(coef[0])),
               float(math.sqrt(cov[0, 0])), 1.0 - chi2 / tss if tss > 0 else 1.0, chi2 / dof, aic, n)


def fit_power_law(x, y=None, sigma=None) -> Fit:
    """y = c x^b from x (n,), y (n,), optional sigma (n,) absolute errors of y; uses the finite
    points with x > 0, y > 0 (>= 3 needed). ``fit_power_law(da)``: a 1-D DataArray against its coordinate."""
    x, y, s = _fit_points(x, y, sigma, power=True)
    return _fit_line("power", np.log(x), y, s)


def fit_exponential(x, y=None, sigma=None) -> Fit:
    """y = c exp(b x) from x (n,), y (n,), optional sigma (n,) absolute errors of y; uses the
    finite points with y > 0 (>= 3 needed)."""
    x, y, s = _fit_points(x, y, sigma, power=False)
    return _fit_line("exponential", x, y, s)


@dataclass(frozen=True)
class FitComparison:
    """Both fits on the same points; best = the kind with the lower AIC, delta_aic = |difference|."""

    power: Fit
    exponential: Fit
    best: str
    delta_aic: float


def compare_fits(x, y=None, sigma=None) -> FitComparison:
    """Power law vs exponential on the points both can use (finite, x > 0, y > 0)."""
    x, y, s = _fit_points(x, y, sigma, power=True)
    p, e = _fit_line("power", np.log(x), y, s), _fit_line("exponential", x, y, s)
    return FitComparison(p, e, "power" if p.aic <= e.aic else "exponential", abs(p.aic - e.aic))


class Bisection(NamedTuple):
    """estimate: the crossing interpolated in the final bracket (in log x when log); bracket
    (lo, hi) with metric(lo) < threshold <= metric(hi); points [(x, metric)] in evaluation order;
    converged: the bracket reached tol within max_evals. status: "bracketed"; or, for a line given up
    (``unbracketed="skip"``, estimate NaN, not converged): "above" (metric >= threshold already at lo:
    the crossing lies below the range), "below" (metric < threshold still at hi: above the range),
    "nan" (a metric was NaN, e.g. a diverged run; the bracket is the last one before it)."""

    estimate: float
    bracket: tuple[float, float]
    points: list
    converged: bool
    status: str = "bracketed"


def bisect_boundaries(F: Callable[[list], Sequence[float]], lines: Mapping[Hashable, tuple], threshold: float,
                      tol: float, log: bool = False, max_evals: int = 64,
                      unbracketed: str = "raise") -> tuple[dict, int]:
    """Bisect several lines in lock-step. lines {line: (lo, hi)} or {line: (lo, hi, metric(lo),
    metric(hi))} when the endpoint values are known (e.g. from a coarse grid); F([(line, x), ...])
    returns their metrics as one batch. Each line needs metric(lo) < threshold <= metric(hi) and
    stops when hi - lo <= tol (hi / lo - 1 <= tol when log) or after max_evals evaluations of it.
    A line without that bracket, or with a NaN metric, raises ValueError (``unbracketed="raise"``) or
    is given up with its reason in ``Bisection.status`` while the others go on (``"skip"``).
    Returns ({line: Bisection}, total number of evaluations)."""
    if unbracketed not in ("raise", "skip"):
        raise ValueError(f"unbracketed: 'raise' or 'skip', got {unbracketed!r}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol: must be positive and finite, got {tol}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold: must be finite, got {threshold}")
    if max_evals < 2:
        raise ValueError(f"max_evals: need at least 2 (the endpoints), got {max_evals}")
    state = {}
    for line, spec in lines.items():
        if len(spec) not in (2, 4):
            raise ValueError(f"lines[{line!r}]: need (lo, hi) or (lo, hi, metric_lo, metric_hi), got {spec!r}")
        lo, hi = float(spec[0]), float(spec[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi) or (log and lo <= 0):
            raise ValueError(f"lo, hi: line {line!r} needs finite lo < hi{' and lo > 0 for log' if log else ''}, "
                             f"got ({lo}, {hi})")
        state[line] = {"lo": lo, "hi": hi, "points": [(lo, float(spec[2])), (hi, float(spec[3]))] if len(spec) == 4
                       else [], "evals": 0, "status": "bracketed"}

    def give_up(line, status, message):
        if unbracketed == "raise":
            raise ValueError(message)
        state[line]["status"] = status

    def evaluate(pending):
        if not pending:
            return 0
        got = [float(m) for m in F(list(pending))]
        if len(got) != len(pending):
            raise ValueError(f"F: returned {len(got)} metrics for {len(pending)} points")
        for (line, x), m in zip(pending, got):
            state[line]["points"].append((x, m))
            state[line]["evals"] += 1
        return len(pending)

    total = evaluate([(line, x) for line, s in state.items() if not s["points"] for x in (s["lo"], s["hi"])])
    for line, s in state.items():
        (lo, m_lo), (hi, m_hi) = s["points"][:2]
        if math.isnan(m_lo) or math.isnan(m_hi):
            give_up(line, "nan", f"F: metric is NaN at x={lo if math.isnan(m_lo) else hi} on line {line!r}")
        elif not m_lo < threshold:
            give_up(line, "above", f"lo: metric({lo}) = {m_lo} on line {line!r} is not below threshold {threshold}")
        elif not m_hi >= threshold:
            give_up(line, "below", f"hi: metric({hi}) = {m_hi} on line {line!r} is below threshold {threshold}")
        s.update(m_lo=m_lo, m_hi=m_hi)

    def narrow(s):
        return (s["hi"] / s["lo"] - 1 if log else s["hi"] - s["lo"]) <= tol

    while True:
        active = [(line, math.sqrt(s["lo"] * s["hi"]) if log else 0.5 * (s["lo"] + s["hi"]))
                  for line, s in state.items() if s["status"] == "bracketed" and not narrow(s)
                  and s["evals"] < max_evals]
        if not active:
            break
        total += evaluate(active)
        for line, x in active:
            s = state[line]
            m = s["points"][-1][1]
            if math.isnan(m):
                give_up(line, "nan", f"F: metric is NaN at x={x} on line {line!r}")
            elif m < threshold:
                s.update(lo=x, m_lo=m)
            else:
                s.update(hi=x, m_hi=m)
    results = {}
    for line, s in state.items():
        ok = s["status"] == "bracketed"
        est = float(_interp(s["lo"], s["hi"], s["m_lo"], s["m_hi"], threshold, log)) if ok else math.nan
        results[line] = Bisection(est, (s["lo"], s["hi"]), s["points"], ok and narrow(s), s["status"])
    return results, total


def bisect_boundary(f: Callable[[float], float], lo: float, hi: float, threshold: float, tol: float,
                    log: bool = False, max_evals: int = 64) -> Bisection:
    """Bisect one line (geometric midpoints when log) for the crossing f(x) = threshold, given
    f(lo) < threshold <= f(hi); returns (estimate, bracket, points, converged)."""
    results, _ = bisect_boundaries(lambda pts: [f(x) for _, x in pts], {0: (lo, hi)}, threshold, tol,
                                   log=log, max_evals=max_evals)
    return results[0]


# --------------------------------------------------------------------------- critical regularisation
# The rigid-cloud mode of the regularised dynamics. With the particles offset by theta from the data and
# v = <grad_x D> at the cloud, one discriminator sub-step is, to first order in the offsets,
#     v <- (1 - alpha_D (l2 + 2 beta K)) v - alpha_D K theta,     K = (1/N^2) sum_ab J_b' J_a,  J_a = d grad_x D(X_a) / d phi
# (the regulariser eq. 29 of a rigid cloud is beta |v|^2 after the coupling's normalisation g1 + (N - 1) g2 = N),
# (l2, the discriminator's weight decay, damps v too: at rate alpha_D l2 in this model, 2 alpha_D l2 for the
# bilinear one-layer gradient; 1/W at the defaults, negligible),
# and the generator's step theta <- theta + alpha_G c v (c the coupling's rigid factor, 1 for the coarse and
# normalised couplings). Per eigenvalue k of K and per iteration (n_disc sub-steps, then the generator) this is
# the linear map M = [[1 - alpha_G c b S, alpha_G c q], [-b S, q]] with a = alpha_D (l2 + 2 beta k),
# b = alpha_D k, q = (1 - a)^n, S = sum_{j<n} (1 - a)^j; its eigenvalues are complex (an oscillation damped by
# sqrt(q) per iteration) below the critical beta*, where (1 + q - alpha_G c b S)^2 = 4 q, and real above, one of
# them tending to 1 (slow, over-damped). In the continuous limit beta* = sqrt(alpha_G c / (n_disc alpha_D k)),
# Appendix E's beta = 2 with the Dirac-GAN's rates. The explicit sub-step is stable while a < 2.

@dataclass(frozen=True)
class RigidCloud:
    """The rigid-cloud prediction of a config (see :func:`rigid_cloud`).

    K (d, d): the discriminator's gradient kernel at initialisation, pair-averaged over the initial
    particles; k_mean, k_max: its mean and largest eigenvalue; c: the coupling's rigid factor;
    beta_star: critical damping of the rigid mode at k_mean (the fastest-settling beta of the linear
    model; NaN if not reached in the monotone range a <= 1); beta_continuous: sqrt(alpha_G c / (n alpha_D k));
    beta_monotone: the largest beta whose sub-step does not overshoot (a = 1 at k_max); beta_max: the
    explicit step's stability limit (a = 2 at k_max)."""

    K: np.ndarray
    k_mean: float
    k_max: float
    c: float
    n_disc: int
    lr_disc: float
    lr_gen: float
    l2: float
    beta_star: float
    beta_continuous: float
    beta_monotone: float
    beta_max: float

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["K"] = np.asarray(self.K).tolist()
        return out


def _rigid_terms(beta: float, k: float, n_disc: int, lr_disc: float, l2: float) -> tuple:
    """(b, q, S) of the rigid-cloud map: b = alpha_D k, q = (1 - a)^n, S = sum_{j<n} (1 - a)^j with
    a = alpha_D (l2 + 2 beta k)."""
    a = lr_disc * (l2 + 2.0 * beta * k)
    return lr_disc * k, (1.0 - a) ** n_disc, float(sum((1.0 - a) ** j for j in range(n_disc)))


def rigid_map_radius(beta: float, k: float, n_disc: int, lr_disc: float, lr_gen: float, l2: float = 0.0,
                     c: float = 1.0) -> float:
    """Spectral radius of the rigid-cloud map of one iteration at eigenvalue k (the per-iteration decay factor
    of the rigid mode; >= 1: it does not decay)."""
    b, q, S = _rigid_terms(beta, k, n_disc, lr_disc, l2)
    M = np.array([[1.0 - lr_gen * c * b * S, lr_gen * c * q], [-b * S, q]])
    return float(np.abs(np.linalg.eigvals(M)).max())


def critical_beta(k: float, n_disc: int, lr_disc: float, lr_gen: float, l2: float = 0.0, c: float = 1.0) -> float:
    """beta* of the rigid-cloud map at eigenvalue k: where its eigenvalues meet on the real axis,
    (1 + q - alpha_G c b S)^2 = 4 q, found by bisection in the monotone range a <= 1; NaN where the
    damping l2 alone already makes it over-damped or the root lies beyond a = 1."""
    def f(beta):
        b, q, S = _rigid_terms(beta, k, n_disc, lr_disc, l2)
        return (1.0 - np.sqrt(q)) ** 2 - lr_gen * c * b * S
    hi = (1.0 / lr_disc - l2) / (2.0 * k)
    if not (k > 0 and hi > 0) or f(0.0) >= 0 or f(hi) < 0:
        return float("nan")
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def refined_minimum(x, y) -> float:
    """The minimiser of y over a geometric grid x (e.g. settling times over beta), refined by the parabola
    through log y at the grid minimum and its two neighbours in log x; the grid value at an edge, where a
    neighbour is not finite, or where the three points do not curve upwards."""
    x, y = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    i = int(np.argmin(y))
    if i == 0 or i == len(y) - 1 or not np.all(np.isfinite(y[i - 1:i + 2])):
        return float(np.exp(x[i]))
    curv = y[i - 1] - 2 * y[i] + y[i + 1]
    return float(np.exp(x[i] + (x[i + 1] - x[i]) * (y[i - 1] - y[i + 1]) / (2 * curv))) if curv > 0 else float(np.exp(x[i]))


def rigid_settling_time(beta: float, k: float, n_disc: int, lr_disc: float, lr_gen: float, l2: float = 0.0,
                        c: float = 1.0, band: float = 0.1, max_iter: int = 200_000) -> float:
    """Iterations until the rigid offset, started at theta = 1 with v = 0 (a displaced cloud, an untrained
    discriminator), stays within ``band`` under the rigid-cloud map (inf if it does not within max_iter)."""
    b, q, S = _rigid_terms(beta, k, n_disc, lr_disc, l2)
    M = np.array([[1.0 - lr_gen * c * b * S, lr_gen * c * q], [-b * S, q]])
    rho = float(np.abs(np.linalg.eigvals(M)).max())
    if not rho < 1.0:
        return float("inf")
    # past this many iterations even the slowest mode, with a generous constant, is far inside the band
    horizon = min(max_iter, int(np.ceil(np.log(band * 1e-4) / np.log(rho))) + 10)
    t = np.arange(1, horizon + 1)
    lam, V = np.linalg.eig(M)
    if abs(lam[0] - lam[1]) > 1e-6 * max(1.0, abs(lam[0])):          # theta_t = sum_i a_i lambda_i^t (z_0 = (1, 0))
        a = np.linalg.solve(V, np.array([1.0, 0.0], dtype=complex))
        theta = np.real((V[0] * a)[None, :] * lam[None, :] ** t[:, None]).sum(1)
    else:                                                            # (nearly) repeated: iterate
        theta, z = np.empty(horizon), np.array([1.0, 0.0])
        for i in range(horizon):
            z = M @ z
            theta[i] = z[0]
    out = np.nonzero(np.abs(theta) >= band)[0]
    last = int(t[out[-1]]) if out.size else 0
    return float(last + 1) if last < horizon else float("inf")


def fastest_settling_beta(k: float, n_disc: int, lr_disc: float, lr_gen: float, l2: float = 0.0, c: float = 1.0,
                          band: float = 0.1, points: int = 400) -> float:
    """The beta at which the rigid-cloud map settles into ``band`` fastest (:func:`rigid_settling_time`, on a
    log grid up to the explicit sub-step's monotone limit): the linear model's prediction of a measured
    settling optimum, below beta* as a second-order system's (damping ratio ~0.6-0.7 for a 10 % band)."""
    star = critical_beta(k, n_disc, lr_disc, lr_gen, l2, c)
    top = (1.0 / lr_disc - l2) / (2.0 * k)
    ref = star if np.isfinite(star) else float(np.sqrt(lr_gen * c / (n_disc * lr_disc * k)))
    grid = np.geomspace(ref / 20, min(top, 20 * ref), points)
    times = [rigid_settling_time(bt, k, n_disc, lr_disc, lr_gen, l2, c, band) for bt in grid]
    return float(grid[int(np.argmin(times))]) if np.isfinite(times).any() else float("nan")


def rigid_cloud(config, eps: float = 1e-6, at: str = "init") -> RigidCloud:
    """The rigid-cloud prediction for ``config`` (a fastgan Config): K measured from the discriminator at
    initialisation through its own regularised step (the gradient of sum_a u_a . grad_x D(X_a) with u_a = e_j / N,
    with the data term cancelled by taking the particles as the target batch, applied with a step eps: the change
    of <grad_x D> is -eps K e_j), then :func:`critical_beta` and the explicit step's limits. ``at``: where the
    particles X_a are, "init" (the initial cloud) or "target" (N samples of the target: the linearisation about
    the converged cloud, the fixed point whose approach a settling time measures). Runs on the NumPy reference in
    float64; the family must support the regulariser (beta > 0)."""
    if at not in ("init", "target"):
        raise ValueError(f"at = {at!r}: expected 'init' or 'target'")
    from .engine import Ensemble, _LoopState
    from .runconfig import from_dict
    d = config.to_dict()
    d["precision"], d["backend"] = "float64", "numpy"
    cfg = from_dict(d)
    ens = Ensemble([cfg], "numpy")
    r0 = ens.resolved[0]
    if (r0.training.optimizer_disc or "sgd") != "sgd":
        raise ValueError(f"training.optimizer_disc = {r0.training.optimizer_disc}: the rigid-cloud map is the "
                         "gradient-descent dynamics (an adaptive step rescales every parameter by its own history)")
    st = _LoopState(ens)
    X = st.X
    _, dim, N = X.shape
    if at == "target":
        if not hasattr(ens.targets[0], "sample"):
            raise ValueError(f"at = 'target': target.kind = {r0.target.kind!r} cannot be sampled")
        X = ens.targets[0].sample(N, seed=int(r0.training.seed)).T[None].astype(np.float64)
    G0 = ens.disc.grad_x(st.p, X).mean(2)
    lr, zero = np.full(1, eps), np.zeros(1)
    K = np.zeros((dim, dim))
    for j in range(dim):
        p = {k: v.copy() for k, v in st.p.items()}
        u = np.zeros_like(X)
        u[:, j, :] = 1.0 / N
        ens.disc.step(p, X, X, lr, zero, u)
        K[:, j] = -(ens.disc.grad_x(p, X).mean(2) - G0)[0] / eps
    if not np.any(K):
        raise ValueError(f"discriminator.kind = {r0.discriminator.kind!r}: its step has no gradient regulariser "
                         "(beta), so the rigid-cloud model does not apply")
    Ks = 0.5 * (K + K.T)
    ev = np.linalg.eigvalsh(Ks)
    k_mean, k_max = float(ev.mean()), float(ev.max())
    ones = np.ones_like(X)
    V = np.asarray(ens.velocity(ones, X))
    c = float(V.mean()) * (1.0 if ens.env.gen_mass is None else float(np.asarray(ens.env.gen_mass).mean() * N))
    r = ens.resolved[0]
    n, a_d, a_g = int(r.training.n_disc), float(r.training.lr_disc), float(r.training.lr_gen)
    l2 = float(np.asarray(ens.l2)[0])
    return RigidCloud(K=K, k_mean=k_mean, k_max=k_max, c=c, n_disc=n, lr_disc=a_d, lr_gen=a_g, l2=l2,
                      beta_star=critical_beta(k_mean, n, a_d, a_g, l2, c),
                      beta_continuous=float(np.sqrt(a_g * c / (n * a_d * k_mean))),
                      beta_monotone=(1.0 / a_d - l2) / (2.0 * k_max), beta_max=(2.0 / a_d - l2) / (2.0 * k_max))
