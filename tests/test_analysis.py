"""Phase-diagram analysis (fastgan.analysis; Durr et al. Figs. 5-6): time averages, threshold crossings,
power-law / exponential boundary fits and adaptive bisection, on synthetic data with known answers."""

import math
import warnings

import numpy as np
import pytest

from fastgan.analysis import (PAPER_OFFSETS, bisect_boundaries, bisect_boundary, compare_fits, default_threshold,
                              fit_exponential, fit_power_law, locate_crossings, phase_boundary, time_average)

THR = default_threshold(8)


def _step(r, b, width=0.4):
    """A smooth MC-like step in log r from 0 to log 8, crossing (1/2) log 8 exactly at r = b."""
    return math.log(8) * 0.5 * (1 + np.tanh((np.log(r) - np.log(b)) / width))


# --- time_average ------------------------------------------------------------------------------

def test_time_average_window_and_missing_iteration():
    times = np.arange(0, 5101, 20)
    values = np.stack([times * 1.0, times ** 2 * 1.0])           # (2, T)
    avg = time_average(values, times, 5000)                      # 5000 ± n·20, n = 0..3
    np.testing.assert_allclose(avg, [5000.0, np.mean((5000 + PAPER_OFFSETS) ** 2.0)])
    np.testing.assert_allclose(time_average(values[0], times, 100, offsets=[0]), 100.0)
    with pytest.raises(ValueError, match=r"\[5120\] not recorded"):
        time_average(values, times, 5060)
    with pytest.raises(ValueError, match="not recorded"):
        time_average(values, times, 5000, offsets=[-10, 0, 10])
    with pytest.raises(ValueError, match="times"):
        time_average(values, times[:-1], 5000)
    with pytest.raises(ValueError, match="nan_policy"):
        time_average(values, times, 5000, nan_policy="drop")


def test_time_average_nan_policy():
    times = np.array([40, 0, 20, 60])                            # unsorted records are fine
    values = np.array([[3.0, 0.0, np.nan, 5.0], [np.nan, 1.0, np.nan, np.nan]])
    assert np.all(np.isnan(time_average(values, times, 20, offsets=[-20, 0, 20])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                            # no "mean of empty slice"
        out = time_average(values, times, 20, offsets=[-20, 0, 20, 40], nan_policy="omit")
    np.testing.assert_allclose(out, [(0 + 3 + 5) / 3, 1.0])
    assert np.isnan(time_average(values[1], times, 40, offsets=[-20, 0], nan_policy="omit"))


# --- crossings and the phase boundary ----------------------------------------------------------

def test_locate_crossings_linear_and_log():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    rows = np.array([[0.0, 0.5, 1.5, 2.0],         # crosses 1.0 between 2 and 4
                     [0.0, 0.2, 0.3, 0.4],         # never reaches it
                     [1.2, 1.5, 2.0, 3.0],         # already above at the start: no upward crossing
                     [0.0, 1.0, 0.0, 2.0],         # touches exactly at x = 2 (first crossing)
                     [0.0, np.nan, 2.0, 2.0]])     # a NaN next to the jump hides it
    c, ok = locate_crossings(x, rows, 1.0)
    np.testing.assert_allclose(c, [3.0, np.nan, np.nan, 2.0, np.nan])
    np.testing.assert_array_equal(ok, [True, False, False, True, False])
    c_log, _ = locate_crossings(x, rows[0], 1.0, log=True)
    np.testing.assert_allclose(c_log, 2.0 * 2.0 ** 0.5)          # halfway in log x
    c_hi, _ = locate_crossings(x, rows[:1], 1.75)                 # between 4 and 8
    np.testing.assert_allclose(c_hi, [6.0])
    with pytest.raises(ValueError, match="x"):
        locate_crossings([1.0, 3.0, 2.0, 4.0], rows, 1.0)
    with pytest.raises(ValueError, match="x"):
        locate_crossings([0.0, 1.0, 2.0, 3.0], rows, 1.0, log=True)
    with pytest.raises(ValueError, match="metric"):
        locate_crossings(x, rows[:, :3], 1.0)


@pytest.mark.parametrize("transpose", [False, True])
def test_phase_boundary_recovers_power_law(transpose):
    n_disc = np.arange(1, 11, dtype=float)
    ratio = np.geomspace(1e-3, 1.0, 61)
    truth = 0.02 * n_disc ** 1.5
    metric = _step(ratio[None, :], truth[:, None])                # (n_disc, ratio)
    axes = {"n_disc": n_disc, "ratio": ratio}
    if transpose:
        metric, axes = metric.T, {"ratio": ratio, "n_disc": n_disc}
    pb = phase_boundary(metric, axes, along="ratio", threshold=THR, log_along=True)
    assert (pb.along, pb.other) == ("ratio", "n_disc")
    np.testing.assert_array_equal(pb.other_values, n_disc)
    assert pb.bracketed.all()
    np.testing.assert_allclose(pb.boundary, truth, rtol=0.01)
    fit = fit_power_law(pb.other_values, pb.boundary)
    assert abs(fit.slope - 1.5) < 0.01 and abs(fit.prefactor - 0.02) < 0.001


def test_phase_boundary_unbracketed_rows_and_errors():
    ratio = np.geomspace(1e-2, 1.0, 21)
    n_disc = np.array([1.0, 2.0, 3.0])
    metric = _step(ratio[None, :], np.array([[1e-4], [0.1], [10.0]]))
    pb = phase_boundary(metric, {"n_disc": n_disc, "ratio": ratio}, "ratio", THR, log_along=True)
    np.testing.assert_array_equal(pb.bracketed, [False, True, False])
    assert np.isnan(pb.boundary[[0, 2]]).all() and abs(pb.boundary[1] - 0.1) < 2e-3
    with pytest.raises(ValueError, match="along"):
        phase_boundary(metric, {"n_disc": n_disc, "ratio": ratio}, "alpha_d", THR)
    with pytest.raises(ValueError, match="metric"):
        phase_boundary(metric.T, {"n_disc": n_disc, "ratio": ratio}, "ratio", THR)
    with pytest.raises(ValueError, match="axes"):
        phase_boundary(metric, {"ratio": ratio}, "ratio", THR)
    with pytest.raises(ValueError, match="n_modes"):
        default_threshold(0)


# --- fits --------------------------------------------------------------------------------------

def test_fits_exact_and_noisy():
    n = np.arange(1, 9, dtype=float)
    rng = np.random.default_rng(1234)
    noise = np.exp(0.03 * rng.standard_normal(n.size))
    power = 0.02 * n ** 4.90                                      # Fig. 14's slope
    expo = 0.01 * np.exp(1.86 * n)                                # Fig. 15's slope
    p, e = fit_power_law(n, power), fit_exponential(n, expo)
    assert abs(p.slope - 4.90) < 1e-9 and abs(p.prefactor - 0.02) < 1e-12 and p.r2 == pytest.approx(1.0)
    assert abs(e.slope - 1.86) < 1e-9 and abs(e.prefactor - 0.01) < 1e-12 and p.n == e.n == 8
    np.testing.assert_allclose(p(n), power)
    np.testing.assert_allclose(e(n), expo)
    p, e = fit_power_law(n, power * noise), fit_exponential(n, expo * noise)
    assert abs(p.slope / 4.90 - 1) < 0.05 and abs(e.slope / 1.86 - 1) < 0.05
    assert 0 < p.slope_stderr < 0.2 and 0 < e.slope_stderr < 0.1 and p.r2 > 0.99 and e.r2 > 0.99
    assert abs(p.slope - 4.90) < 4 * p.slope_stderr and abs(e.slope - 1.86) < 4 * e.slope_stderr
    assert compare_fits(n, power * noise).best == "power"
    assert compare_fits(n, expo * noise).best == "exponential"
    cmp = compare_fits(n, 0.02 * n ** 1.5 * noise)               # the shallow boundary of Fig. 5-like data
    assert cmp.best == "power" and cmp.delta_aic > 5 and cmp.power.aic < cmp.exponential.aic


def test_fit_sigma_weights_and_stderr_shrinks():
    rng = np.random.default_rng(7)

    def slope_err(m, reps=20):                                    # mean over realisations: ~ 1/sqrt(m)
        x = np.geomspace(1, 10, m)
        return np.mean([fit_power_law(x, 0.02 * x ** 1.5 * np.exp(0.05 * rng.standard_normal(m))).slope_stderr
                        for _ in range(reps)])

    assert slope_err(64) < 0.6 * slope_err(8)
    x = np.arange(1, 9, dtype=float)
    y = 0.02 * x ** 1.5
    y_bad = y.copy()
    y_bad[-1] *= 3                                                # an outlier with a large error bar
    sigma = 0.01 * y
    sigma[-1] = 100 * y_bad[-1]
    weighted = fit_power_law(x, y_bad, sigma=sigma)
    assert abs(weighted.slope - 1.5) < 0.01 < abs(fit_power_law(x, y_bad).slope - 1.5)
    # absolute sigma: stderr scales with sigma; chi2/dof ~ 0 for exact data
    exact = fit_power_law(x, y, sigma=0.01 * y)
    assert exact.chi2_dof < 1e-20
    assert fit_power_law(x, y, sigma=0.02 * y).slope_stderr == pytest.approx(2 * exact.slope_stderr)


def test_fit_point_selection_and_errors():
    x = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 5.0])
    y = np.array([1.0, 4.0, 9.0, 16.0, 1.0, np.nan])             # x = 0 dropped (power), NaN dropped
    assert fit_power_law(x, y).n == 4 and fit_exponential(x, y).n == 5
    assert compare_fits(x, y).exponential.n == 4                   # the same points for both
    with pytest.raises(ValueError, match="x, y.*3"):
        fit_power_law([1.0, 2.0, 3.0], [1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="x, y"):
        fit_exponential([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="x"):
        fit_exponential([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])


# --- bisection ---------------------------------------------------------------------------------

@pytest.mark.parametrize("log", [False, True])
def test_bisect_boundary_finds_crossing_cheaply(log):
    b, lo, hi, tol = 0.0637, 1e-3, 1.0, 1e-3
    calls = []

    def f(r):
        calls.append(r)
        return float(_step(r, b))

    res = bisect_boundary(f, lo, hi, THR, tol, log=log)
    est, (blo, bhi), points, converged, status = res
    assert status == "bracketed"
    assert converged and blo < b <= bhi and len(points) == len(calls)
    if log:
        assert bhi / blo - 1 <= tol and abs(est / b - 1) <= tol
        bound = math.ceil(math.log2(math.log(hi / lo) / math.log1p(tol))) + 2
    else:
        assert bhi - blo <= tol and abs(est - b) <= tol
        bound = math.ceil(math.log2((hi - lo) / tol)) + 2
    assert len(calls) <= bound and len(calls) < (hi - lo) / tol / 50     # vs a grid at resolution tol
    short = bisect_boundary(f, lo, hi, THR, tol, log=log, max_evals=5)
    assert not short.converged and len(short.points) == 5 and short.bracket[0] < b <= short.bracket[1]


def test_bisect_lockstep_matches_independent():
    truth = {n: 0.02 * n ** 1.5 for n in (1, 2, 4, 6, 8)}
    batches = []

    def F(points):
        batches.append(len(points))
        return [float(_step(x, truth[line])) for line, x in points]

    lines = {n: (1e-3, 1.0) for n in truth}
    lines[8] = (0.1, 1.0, float(_step(0.1, truth[8])), float(_step(1.0, truth[8])))   # known endpoints
    res, total = bisect_boundaries(F, lines, THR, 1e-3, log=True)
    assert total == sum(batches) == sum(len(r.points) for r in res.values()) - 2
    assert len(batches) == max(len(r.points) for r in res.values()) - 1        # endpoints in one batch
    for n, (lo, hi, *_) in lines.items():
        single = bisect_boundary(lambda r, n=n: float(_step(r, truth[n])), lo, hi, THR, 1e-3, log=True)
        assert res[n].estimate == single.estimate and res[n].bracket == single.bracket
        assert abs(res[n].estimate / truth[n] - 1) < 1e-3


def test_bisect_bad_arguments():
    def f(r):
        return float(_step(r, 0.1))

    with pytest.raises(ValueError, match="lo: metric"):
        bisect_boundary(f, 0.2, 1.0, THR, 1e-3)
    with pytest.raises(ValueError, match="hi: metric"):
        bisect_boundary(f, 1e-3, 0.05, THR, 1e-3)
    with pytest.raises(ValueError, match="lo, hi"):
        bisect_boundary(f, 1.0, 1e-3, THR, 1e-3)
    with pytest.raises(ValueError, match="lo, hi"):
        bisect_boundary(f, 0.0, 1.0, THR, 1e-3, log=True)
    with pytest.raises(ValueError, match="tol"):
        bisect_boundary(f, 1e-3, 1.0, THR, 0.0)
    with pytest.raises(ValueError, match="max_evals"):
        bisect_boundary(f, 1e-3, 1.0, THR, 1e-3, max_evals=1)
    with pytest.raises(ValueError, match="F: returned"):
        bisect_boundaries(lambda pts: [0.0], {0: (1e-3, 1.0), 1: (1e-3, 1.0)}, THR, 1e-3)
    with pytest.raises(ValueError, match="F: metric is NaN"):
        bisect_boundary(lambda r: float("nan") if 0.3 < r < 0.7 else f(r), 1e-3, 1.0, THR, 1e-3)
    with pytest.raises(ValueError, match=r"lines\[0\]"):
        bisect_boundaries(lambda pts: [], {0: (1.0,)}, THR, 1e-3)


def test_bisect_skip_gives_up_unbracketed_lines_and_goes_on():
    """unbracketed="skip": a line already above the threshold at lo, one still below at hi and one
    whose metric turns NaN mid-way are given up with their reason; the others bisect as usual."""
    truth = {"ok": 0.05, "above": 1e-4, "below": 5.0, "nan": 0.2}

    def F(points):
        return [math.nan if line == "nan" and 0.1 < x < 0.5 else float(_step(x, truth[line])) for line, x in points]

    res, total = bisect_boundaries(F, {k: (1e-3, 1.0) for k in truth}, THR, 1e-3, log=True, unbracketed="skip")
    assert res["ok"].status == "bracketed" and res["ok"].converged and abs(res["ok"].estimate / 0.05 - 1) < 1e-3
    assert res["above"].status == "above" and res["below"].status == "below" and res["nan"].status == "nan"
    for k in ("above", "below", "nan"):
        assert math.isnan(res[k].estimate) and not res[k].converged
    assert len(res["above"].points) == len(res["below"].points) == 2            # no evaluation wasted on them
    lo, hi = res["nan"].bracket
    assert lo < 0.2 <= hi and math.isnan(res["nan"].points[-1][1])
    assert total == sum(len(r.points) for r in res.values())
    with pytest.raises(ValueError, match="unbracketed"):
        bisect_boundaries(F, {"ok": (1e-3, 1.0)}, THR, 1e-3, unbracketed="ignore")


# --------------------------------------------------------------------------- the rigid-cloud prediction

def test_rigid_cloud_kernel_is_the_relu_closed_form():
    """K measured through the discriminator's own regularised step equals, for the one-hidden-layer ReLU
    network, s^2 sum_i m_i^2 (w_i w_i' + a_i^2 I) with m_i the fraction of particles where unit i is active
    (d grad_x D / d a_i = s sigma' w_i, d grad_x D / d w_i = s a_i sigma' I, d / d b_i = 0)."""
    import fastgan
    from fastgan import analysis
    from fastgan.engine import Ensemble, _LoopState
    cfg = fastgan.default_config(**{"discriminator.width": 64, "generator.n_particles": 31, "precision": "float64",
                                    "coupling.ratio": 0.2, "training.seed": 4})
    rc = analysis.rigid_cloud(cfg, eps=1e-7)
    st = _LoopState(Ensemble([cfg], "numpy"))
    w, b, a = (np.asarray(st.p[k][0], dtype=np.float64) for k in ("w", "b", "a"))
    X = np.asarray(st.X[0])
    m = ((X.T @ w + b) > 0).mean(0)                                   # (W,)
    s2 = 2.0 / w.shape[1]
    K = s2 * ((w * m ** 2) @ w.T + (m ** 2 * a ** 2).sum() * np.eye(2))
    np.testing.assert_allclose(rc.K, K, rtol=1e-5, atol=1e-7)
    assert rc.c == pytest.approx(1.0) and rc.k_max >= rc.k_mean > 0


def test_critical_beta_of_the_rigid_cloud_map():
    """beta* is where the map's eigenvalues meet (the spectral radius is smallest there), tends to the
    continuous critical damping sqrt(alpha_G / (n alpha_D k)) for small rates (Appendix E's beta = 2 with our
    regulariser's beta |v|^2: beta = 1 at equal rates, k = 1), scales as sqrt(alpha_G); weight decay damps too."""
    from fastgan import analysis
    kw = dict(k=1.85, n_disc=5, lr_disc=0.25, lr_gen=0.01)
    b = analysis.critical_beta(**kw)
    r = lambda beta: analysis.rigid_map_radius(beta, **kw)            # noqa: E731
    assert r(b) < min(r(0.7 * b), r(1.4 * b)) and r(0.0) == pytest.approx(1.0, abs=1e-3)
    assert b == pytest.approx(np.sqrt(0.01 / (5 * 0.25 * 1.85)), rel=0.03)
    assert analysis.critical_beta(1.0, 1, 1e-5, 1e-5) == pytest.approx(1.0, rel=1e-3)
    assert analysis.critical_beta(**{**kw, "lr_gen": 0.04}) == pytest.approx(2 * b, rel=0.05)
    assert analysis.critical_beta(**kw, l2=0.1) < b
    assert np.isnan(analysis.critical_beta(**{**kw, "lr_gen": 10.0}))     # beyond the monotone range a <= 1


def test_refined_minimum_of_a_grid():
    """The parabola in log-log through the grid minimum and its neighbours finds a power-law valley's
    minimiser between grid points; edges and non-finite neighbours keep the grid value."""
    from fastgan import analysis
    x = np.geomspace(0.01, 1.0, 9)
    y = np.exp((np.log(x) - np.log(0.07)) ** 2)            # a parabola in log-log with its minimum at 0.07
    assert analysis.refined_minimum(x, y) == pytest.approx(0.07, rel=1e-9)
    assert analysis.refined_minimum(x, 1 / x) == pytest.approx(1.0)                     # at the edge
    y2 = y.copy()
    y2[np.argmin(y) + 1] = np.inf
    assert analysis.refined_minimum(x, y2) == pytest.approx(x[np.argmin(y)])


def test_fastest_band_settling_of_the_rigid_cloud_map():
    """From a displaced cloud and an untrained discriminator, the map settles into a band fastest below
    critical damping, at the damping ratios of a second-order system's classic band-settling optimum in the
    continuous limit (0.59 for 10 %, 0.69 for 5 %, 0.78 for 2 %); at the defaults 0.6 beta* too; the settling
    time is finite past beta* (over-damped) and infinite where the map does not decay."""
    from fastgan import analysis
    for band, zeta in ((0.1, 0.59), (0.05, 0.69), (0.02, 0.78)):
        b = analysis.fastest_settling_beta(1.0, 1, 1e-2, 1e-2, band=band)
        assert b / analysis.critical_beta(1.0, 1, 1e-2, 1e-2) == pytest.approx(zeta, abs=0.02)
    kw = dict(k=1.45, n_disc=5, lr_disc=0.25, lr_gen=0.01)
    star = analysis.critical_beta(**kw)
    assert analysis.fastest_settling_beta(**kw) / star == pytest.approx(0.6, abs=0.03)
    t = lambda beta: analysis.rigid_settling_time(beta, **kw)             # noqa: E731
    assert t(0.6 * star) < t(star) < t(3 * star) < np.inf and t(0.0) == np.inf


def _on_the_data(delta: float):
    """200 particles on samples of the Appendix A ring, their centroid moved to delta (1, 1) / sqrt 2: a rigid
    offset from the fixed point (the rigid-cloud model's own domain)."""
    import fastgan
    from fastgan.targets import make_target
    pts = make_target(fastgan.default_config().resolved).sample(200, seed=123)
    return (pts - pts.mean(0) + delta / np.sqrt(2)).tolist()


@pytest.mark.slow
def test_rigid_cloud_beta_star_in_its_linear_domain():
    """Where the model is a linearisation (the cloud on the data, offset rigidly by 0.5), the fastest settling
    of the centroid to 10 % of the offset (refined between grid points) against the map's own prediction
    (fastest_settling_beta: 0.6 beta*) with alpha_G, alpha_D and n_disc each moved from the defaults: within
    the issue's factor 1.5 (scripts/critical_beta_check.py --linear 0.5, four seeds, five settings:
    1.10-1.33), and below beta*."""
    import fastgan
    from fastgan import analysis
    from fastgan.reproduce.egan_dynamics import settle_time
    betas = np.geomspace(0.03, 0.24, 10)
    pts = _on_the_data(0.5)
    for keys in ({"training.lr_gen": 0.04}, {"training.n_disc": 2}, {"training.lr_disc": 0.1}):
        base = {"coupling.ratio": 0.275, "training.n_iterations": 300, "record.every": 50, "generator.init_points": pts,
                "record.snapshots": list(range(0, 301, 2)), "record.discriminator": False, **keys}
        runs = fastgan.simulate_ensemble([fastgan.default_config(**base, **{"training.beta": float(b)})
                                          for b in betas], backend="numba")
        settle = [settle_time(r.particles_time, np.linalg.norm(r.particles.mean(1), axis=-1), 0.05) for r in runs]
        measured = analysis.refined_minimum(betas, settle)
        rc = analysis.rigid_cloud(fastgan.default_config(**{"coupling.ratio": 0.275, **keys}), at="target")
        predicted = analysis.fastest_settling_beta(rc.k_mean, rc.n_disc, rc.lr_disc, rc.lr_gen, rc.l2, rc.c)
        assert 1 / 1.5 <= measured / predicted <= 1.5 and measured < rc.beta_star, (keys, measured, predicted, settle)


@pytest.mark.slow
def test_rigid_cloud_beta_star_against_simulated_settling_optima():
    """The rigid-cloud beta* (K at the target: the fixed point the settling approaches) against the
    fastest-settling beta of simulated runs from the paper's collapsed start (Fig. 9's setting, 600 iterations
    recorded every 2, one seed, beta on a grid of ratio 1.26): within 1.5 at the defaults (n_disc alpha_D =
    1.25), within 2 at n_disc = 2 (n_disc alpha_D = 0.5, where scripts/critical_beta_check.py measures 1.7: the
    under-damped side there is slower than the rigid mode's oscillation; alpha_G x 4: 1.06); the optimum moves
    up for fewer sub-steps, as the estimate does; K at the target is below K at the initial cloud; an adaptive
    discriminator is refused (the map is the gradient-descent dynamics)."""
    import fastgan
    from fastgan import analysis
    from fastgan.reproduce.egan_dynamics import settle_time
    betas = np.geomspace(0.05, 0.4, 10)
    measured, stars = {}, {}
    for name, keys, tol in (("default", {}, 1.5), ("n_disc = 2", {"training.n_disc": 2}, 2.0)):
        base = {"coupling.ratio": 0.275, "training.n_iterations": 600, "record.every": 2, "record.snapshots": 0,
                "record.discriminator": False, **keys}
        runs = fastgan.simulate_ensemble([fastgan.default_config(**base, **{"training.beta": float(b)})
                                          for b in betas], backend="numba")
        settle = [settle_time(r.time, r.observables["mode_collapse"], 0.2) for r in runs]
        assert np.isfinite(settle).any()
        measured[name] = betas[int(np.argmin(settle))]
        cfg = fastgan.default_config(**base)
        stars[name] = analysis.rigid_cloud(cfg, at="target").beta_star
        assert 1 / tol <= measured[name] / stars[name] <= tol, (name, measured[name], stars[name], settle)
        assert analysis.rigid_cloud(cfg, at="target").k_mean < analysis.rigid_cloud(cfg).k_mean
    assert measured["n_disc = 2"] > measured["default"] and stars["n_disc = 2"] > stars["default"]
    with pytest.raises(ValueError, match="gradient-descent dynamics"):
        analysis.rigid_cloud(fastgan.default_config(**{"training.optimizer_disc": "adam"}))
    with pytest.raises(ValueError, match="at = 'data'"):
        analysis.rigid_cloud(fastgan.default_config(), at="data")
