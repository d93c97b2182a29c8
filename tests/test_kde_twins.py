"""The numba twins of the KDE reductions (``kde_numba``) against the NumPy reference (``kde_numpy``)."""

import math

import numpy as np
import pytest

from fastgan.kernels import kde_numba as KN, kde_numpy as REF, launch
from twin_inputs import tol

DTYPES = [np.float32, np.float64]
SHIPPED = dict(launch.CPU_TILE)        # the default tiles, before the fixture patches them


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    monkeypatch.setitem(launch.CPU_TILE, "kde_rows", 5)
    monkeypatch.setitem(launch.CPU_TILE, "kde_cols", 7)


def kde_inputs(rng, B, d, n, m, S, dtype, spread=1.0):
    """q (B, d, n), x (B, d, m), logw (B, m) (two masked centres, one in the last partial block),
    la (B, m), lb (B, n), bandwidths and log mixture weights (B, S) differing per run.
    Query 0 of run 0 coincides with centre 1 (r = 0)."""
    q = spread * rng.normal(size=(B, d, n))
    x = spread * rng.normal(size=(B, d, m))
    x[0, :, 1] = q[0, :, 0]
    logw = rng.normal(size=(B, m)) - math.log(m)
    logw[0, 2] = -np.inf
    logw[B - 1, m - 1] = -np.inf
    la = rng.normal(size=(B, m))
    lb = rng.normal(size=(B, n))
    bw = 0.3 + rng.random((B, S))
    logmix = np.log(rng.dirichlet(np.ones(S), size=B))
    return tuple(a.astype(dtype) for a in (q, x, logw, la, lb, bw, logmix))


def close(got, want, dtype, scale=None):
    """Agreement within the dtype's rounding, the absolute part relative to the result's magnitude."""
    t = tol(dtype)
    scale = float(np.abs(want).max()) if scale is None else scale
    np.testing.assert_allclose(got, want, rtol=t["rtol"], atol=t["atol"] * max(1.0, scale))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("S", [1, 3])
def test_log_density(rng, dtype, d, S):
    B, n, m = 3, 17, 26                                  # not multiples of the patched tiles (5, 7)
    q, x, logw, _, _, bw, lm = kde_inputs(rng, B, d, n, m, S, dtype)
    got = KN.kde_log_density(q, x, logw, bw, lm)
    want = REF.kde_log_density(q, x, logw, bw, lm)
    assert got.shape == (B, n) and got.dtype == dtype and np.all(np.isfinite(got))
    close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("terms", ["la", "lb", "both"])
def test_grad_sum(rng, dtype, d, S, terms):
    B, n, m = 3, 17, 26
    q, x, logw, la, lb, bw, lm = kde_inputs(rng, B, d, n, m, S, dtype)
    la = None if terms == "lb" else la
    lb = None if terms == "la" else lb
    got = KN.kde_grad_sum(q, x, logw, la, lb, bw, lm)
    want = REF.kde_grad_sum(q, x, logw, la, lb, bw, lm)
    assert got.shape == (B, d, n) and got.dtype == dtype and np.all(np.isfinite(got))
    close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_centres_and_empty_run(rng, dtype):
    """-inf weights contribute nothing (same as dropping the centres); an all-masked run gives a log
    density of -inf (not NaN) and a zero gradient; a masked la / lb entry drops its term only."""
    B, d, n, m = 3, 2, 9, 12
    q, x, logw, la, lb, bw, lm = kde_inputs(rng, B, d, n, m, 2, dtype)
    logw[1] = -np.inf
    keep = np.ones(m, bool)
    keep[[0, 5, 11]] = False
    logw[2, ~keep] = -np.inf
    la[0, 3] = -np.inf
    lb[2, 4] = -np.inf
    ld = KN.kde_log_density(q, x, logw, bw, lm)
    assert np.all(ld[1] == -np.inf) and not np.any(np.isnan(ld))
    close(ld[[0, 2]], REF.kde_log_density(q, x, logw, bw, lm)[[0, 2]], dtype)
    close(ld[2], KN.kde_log_density(q[2:], x[2:, :, keep], logw[2:, keep], bw[2:], lm[2:])[0], dtype)
    g = KN.kde_grad_sum(q, x, logw, la, lb, bw, lm)
    assert np.all(g[1] == 0) and np.all(np.isfinite(g))
    close(g, REF.kde_grad_sum(q, x, logw, la, lb, bw, lm), dtype)
    # the nsgan form lb = -log p: in the empty run logw + lb = -inf + inf is NaN, as in the reference
    g = KN.kde_grad_sum(q, x, logw, None, -ld, bw, lm)
    with np.errstate(invalid="ignore"):
        ref = REF.kde_grad_sum(q, x, logw, None, -ld, bw, lm)
    assert np.isnan(g[1]).all() and np.isnan(ref[1]).all()
    close(g[[0, 2]], ref[[0, 2]], dtype)


def test_grad_of_log_density(rng):
    """la = None, lb = -log p: the grad sum is grad log p (central differences, float64)."""
    q, x, logw, _, _, bw, lm = kde_inputs(rng, 2, 3, 6, 11, 3, np.float64)
    lp = KN.kde_log_density(q, x, logw, bw, lm)
    g = KN.kde_grad_sum(q, x, logw, None, -lp, bw, lm)
    h = 1e-6
    for j in range(3):
        e = np.zeros_like(q)
        e[:, j] = h
        fd = (KN.kde_log_density(q + e, x, logw, bw, lm) - KN.kde_log_density(q - e, x, logw, bw, lm)) / (2 * h)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-6, atol=1e-7)


def test_float32_high_dimension_small_bandwidth(rng):
    """d = 50, sigma = 0.01 / 0.02: log-kernel terms ~ +180 (sigma^-d ~ 1e100 would overflow float32);
    the float32 twin matches the float64 reference within float32 rounding."""
    B, d, n, m = 2, 50, 7, 13
    x = rng.normal(size=(B, d, m))
    q = x[:, :, :n] + 0.005 * rng.normal(size=(B, d, n))
    logw = np.full((B, m), -math.log(m))
    bw = np.array([[0.01, 0.02]] * B)
    lm = np.log(np.full((B, 2), 0.5))
    want = REF.kde_log_density(q, x, logw, bw, lm)
    assert want.min() > 100
    f32 = [a.astype(np.float32) for a in (q, x, logw, bw, lm)]
    got = KN.kde_log_density(*f32)
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=2e-6)
    gwant = REF.kde_grad_sum(q, x, logw, None, -want, bw, lm)
    ggot = KN.kde_grad_sum(f32[0], f32[1], f32[2], None, -got, f32[3], f32[4])
    assert np.all(np.isfinite(ggot))
    np.testing.assert_allclose(ggot, gwant, rtol=1e-3, atol=2e-4 * np.abs(gwant).max())


def test_float32_far_queries(rng):
    """Queries ~ 35 sigma-widths away: r^2 / (2 sigma^2) ~ 1e4, where exp underflows to 0 in any float.
    The log density stays finite and matches the float64 reference to float32 rounding of ~1e4;
    the gradient with lb = -log p (from the twin's own log density) is the softmax-weighted mean shift,
    exact to float32 rounding because both ops round the log-kernel terms identically."""
    B, d, n, m = 2, 2, 7, 13
    x = rng.normal(size=(B, d, m))
    q = rng.normal(size=(B, d, n)) + np.array([30.0, -20.0])[None, :, None]
    logw = np.full((B, m), -math.log(m))
    bw, lm = np.full((B, 1), 0.2), np.zeros((B, 1))
    want = REF.kde_log_density(q, x, logw, bw, lm)
    assert want.max() < -5e3
    f32 = [a.astype(np.float32) for a in (q, x, logw, bw, lm)]
    got = KN.kde_log_density(*f32)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    gwant = REF.kde_grad_sum(q, x, logw, None, -want, bw, lm)
    ggot = KN.kde_grad_sum(f32[0], f32[1], f32[2], None, -got, f32[3], f32[4])
    np.testing.assert_allclose(ggot, gwant, rtol=1e-5, atol=1e-5 * np.abs(gwant).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_default_tiles(rng, dtype, monkeypatch):
    """The shipped (large) tiles: one partial block per query, most of a row tile idle."""
    for key in ("kde_rows", "kde_cols"):
        monkeypatch.setitem(launch.CPU_TILE, key, SHIPPED[key])
    q, x, logw, la, lb, bw, lm = kde_inputs(rng, 2, 2, 11, 600, 2, dtype)
    close(KN.kde_log_density(q, x, logw, bw, lm), REF.kde_log_density(q, x, logw, bw, lm), dtype)
    close(KN.kde_grad_sum(q, x, logw, la, lb, bw, lm), REF.kde_grad_sum(q, x, logw, la, lb, bw, lm), dtype)


def test_nan_propagates(rng):
    """A NaN query, centre or weight gives NaN where the reference has it (no finite-math assumption)."""
    q, x, logw, la, lb, bw, lm = kde_inputs(rng, 3, 2, 9, 12, 2, np.float32)
    x[0, 1, 3] = np.nan                 # every query of run 0
    q[1, 0, 4] = np.nan                 # one query of run 1
    la[2, 5] = np.nan                   # the la term of run 2
    ld, ref = KN.kde_log_density(q, x, logw, bw, lm), REF.kde_log_density(q, x, logw, bw, lm)
    assert np.array_equal(np.isnan(ld), np.isnan(ref)) and np.isnan(ld[0]).all() and np.isnan(ld[1, 4])
    g, ref = KN.kde_grad_sum(q, x, logw, la, lb, bw, lm), REF.kde_grad_sum(q, x, logw, la, lb, bw, lm)
    assert np.array_equal(np.isnan(g), np.isnan(ref)) and np.isnan(g[2]).all()
    g = KN.kde_grad_sum(q, x, logw, None, lb, bw, lm)
    assert not np.isnan(g[2]).any()


def test_edge_cases_and_errors(rng):
    q, x, logw, la, lb, bw, lm = kde_inputs(rng, 2, 2, 5, 4, 1, np.float64)
    assert KN.kde_log_density(q[:, :, :0], x, logw, bw, lm).shape == (2, 0)
    assert np.all(KN.kde_log_density(q, x[:, :, :0], logw[:, :0], bw, lm) == -np.inf)
    assert np.array_equal(KN.kde_grad_sum(q, x[:, :, :0], logw[:, :0], la[:, :0], lb, bw, lm), np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match="la, lb"):
        KN.kde_grad_sum(q, x, logw, None, None, bw, lm)
    with pytest.raises(ValueError):
        KN.kde_log_density(q, x, logw[:, :3], bw, lm)
    with pytest.raises(TypeError):
        KN.kde_log_density(q.astype(np.int64), x, logw, bw, lm)


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_float32_agrees_with_float64_on_unit_scale_data(backend, sigma):
    """Issue 5 acceptance: on unit-scale data, bandwidths down to 0.01, the float32 log-density and the
    float32 grad log p agree with the float64 reference to 1e-4 relative (densities: |d log p| <= 1e-4;
    gradients: per query |g32 - g64| <= 1e-4 |g64|)."""
    from fastgan.kernels.ops import load_ops
    g = np.random.default_rng(7)
    q, x = g.random((2, 2, 300)), g.random((2, 2, 400))
    logw = np.log(g.dirichlet(np.ones(400), size=2))
    bw, lm = np.full((2, 1), sigma), np.zeros((2, 1))
    lp64 = REF.kde_log_density(q, x, logw, bw, lm)
    g64 = REF.kde_grad_sum(q, x, logw, None, -lp64, bw, lm)
    ops = load_ops(backend)
    f32 = [a.astype(np.float32) for a in (q, x, logw, bw, lm)]
    lp32 = ops.kde_log_density(*f32)
    g32 = ops.kde_grad_sum(f32[0], f32[1], f32[2], None, -lp32, f32[3], f32[4])
    assert lp32.dtype == g32.dtype == np.float32
    assert np.abs(lp32 - lp64).max() <= 1e-4
    rel = np.linalg.norm(g32 - g64, axis=1) / np.linalg.norm(g64, axis=1)
    assert rel.max() <= 1e-4, rel.max()
