"""The numba linear-discriminator twins (trig features, kernel sums) against the NumPy reference."""

import numpy as np
import pytest

from fastgan.kernels import launch, linear_numba as LN, linear_numpy as REF
from fastgan.kernels.ops import load_ops
from twin_inputs import tol

DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    monkeypatch.setitem(launch.CPU_TILE, "trig_features", 7)
    monkeypatch.setitem(launch.CPU_TILE, "trig_chunk", 4)
    monkeypatch.setitem(launch.CPU_TILE, "trig_x_samples", 3)
    monkeypatch.setitem(launch.CPU_TILE, "kernel_rows", 5)
    monkeypatch.setitem(launch.CPU_TILE, "kernel_cols", 11)


def trig_inputs(rng, B, d, L, dtype):
    """theta (B, L), omega (B, d, L), phase, amp, rate (B, L): mixed cos / sin features, per-run amplitudes."""
    theta = rng.normal(size=(B, L)).astype(dtype)
    omega = (2 * rng.normal(size=(B, d, L))).astype(dtype)
    phase = np.where(rng.random((B, L)) < 0.5, -np.pi / 2, 2 * np.pi * rng.random((B, L))).astype(dtype)
    amp = (np.sqrt(2.0 / L) * (1 + rng.random((B, L)))).astype(dtype)
    rate = (0.5 + rng.random((B, L))).astype(dtype)
    return theta, omega, phase, amp, rate


def kernel_inputs(rng, B, d, n, C, S, dtype, centre=0.0, spread=1.0):
    """x (B, d, n), centres (B, d, C), signed weights (B, C), bandwidths (B, S) differing per run.
    Centre 0 of every run coincides exactly with query point 0 (r = 0)."""
    x = centre + spread * rng.normal(size=(B, d, n))
    y = centre + spread * rng.normal(size=(B, d, C))
    y[:, :, 0] = x[:, :, 0]
    w = rng.normal(size=(B, C)) / C
    bw = 0.3 + 2 * rng.random((B, S))
    return tuple(a.astype(dtype) for a in (x, y, w, bw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_trig_disc_step(rng, dtype, d):
    B, L, N, M = 4, 45, 23, 17
    theta, omega, phase, amp, rate = trig_inputs(rng, B, d, L, dtype)
    xg = rng.normal(size=(B, d, N)).astype(dtype)
    xt = rng.normal(size=(B, d, M)).astype(dtype)
    wg = (rng.random((B, N)) / N).astype(dtype)
    wt = np.full((B, M), 1.0 / M, dtype=dtype)
    lr = np.array([0.05, 0.0, 0.3, 1.0])                     # float64 even for float32 state
    lam = np.array([0.01, 0.1, 0.0, 0.5])
    ref, got = theta.copy(), theta.copy()
    REF.trig_disc_step(ref, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam)
    LN.trig_disc_step(got, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, ref, **tol(dtype))
    assert np.array_equal(got[1], theta[1])                  # lr = 0: bitwise untouched
    assert not np.array_equal(got[0], theta[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_trig_grad_x_forward(rng, dtype, d):
    B, L, n = 3, 41, 19
    theta, omega, phase, amp, _ = trig_inputs(rng, B, d, L, dtype)
    x = rng.normal(size=(B, d, n)).astype(dtype)
    g = LN.trig_grad_x(theta, omega, phase, amp, x)
    f = LN.trig_forward(theta, omega, phase, amp, x)
    assert g.shape == (B, d, n) and g.dtype == dtype and f.shape == (B, n) and f.dtype == dtype
    np.testing.assert_allclose(g, REF.trig_grad_x(theta, omega, phase, amp, x), **tol(dtype))
    np.testing.assert_allclose(f, REF.trig_forward(theta, omega, phase, amp, x), **tol(dtype))


def test_trig_large_phases(rng):
    """Range reduction: Fourier-sized frequencies at |x| ~ 5 give phases of hundreds of radians."""
    B, d, L, n = 2, 2, 30, 13
    theta, _, phase, amp, _ = trig_inputs(rng, B, d, L, np.float64)
    omega = rng.integers(-40, 41, size=(B, d, L)).astype(np.float64)
    x = 5 * rng.normal(size=(B, d, n))
    np.testing.assert_allclose(LN.trig_grad_x(theta, omega, phase, amp, x),
                               REF.trig_grad_x(theta, omega, phase, amp, x), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(LN.trig_forward(theta, omega, phase, amp, x),
                               REF.trig_forward(theta, omega, phase, amp, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("kernel,alpha", [("rbf", 1.0), ("laplacian", 1.0), ("rq", 1.0), ("rq", 2.5)])
@pytest.mark.parametrize("S", [1, 3])
def test_kernel_sums(rng, dtype, d, kernel, alpha, S):
    B, n, C = 3, 17, 26
    x, y, w, bw = kernel_inputs(rng, B, d, n, C, S, dtype)
    for twin, ref in ((LN.kernel_sum, REF.kernel_sum), (LN.kernel_sum_grad, REF.kernel_sum_grad)):
        got = twin(x, y, w, bw, kernel, alpha)
        want = ref(x, y, w, bw, kernel, alpha)
        assert got.shape == want.shape and got.dtype == dtype
        assert np.all(np.isfinite(got))                      # r = 0 pair: finite (laplacian subgradient 0)
        np.testing.assert_allclose(got, want, **tol(dtype))


@pytest.mark.parametrize("kernel,alpha", [("rbf", 1.0), ("laplacian", 1.0), ("rq", 0.7)])
def test_kernel_sum_grad_far_from_origin(rng, kernel, alpha):
    """float32 at x ~ 50: the differences x - y stay exact (no x sum g - sum g y cancellation)."""
    x, y, w, bw = kernel_inputs(rng, 3, 2, 15, 40, 2, np.float32, centre=50.0, spread=0.5)
    got = LN.kernel_sum_grad(x, y, w, bw, kernel, alpha)
    want = REF.kernel_sum_grad(x, y, w, bw, kernel, alpha)
    np.testing.assert_allclose(got, want, **tol(np.float32))
    exact = REF.kernel_sum_grad(*(a.astype(np.float64) for a in (x, y, w, bw)), kernel, alpha)
    np.testing.assert_allclose(got, exact, rtol=1e-3, atol=1e-4)


def test_kernel_underflow_and_empty(rng):
    """Far centres (exp underflow) give exact zeros; no centres / no samples give empty or zero sums."""
    x, y, w, bw = kernel_inputs(rng, 2, 2, 5, 7, 1, np.float32)
    y = y + 1e3
    for kernel in ("rbf", "laplacian"):
        assert np.array_equal(LN.kernel_sum(x, y, w, bw, kernel), np.zeros((2, 5), np.float32))
        assert np.array_equal(LN.kernel_sum_grad(x, y, w, bw, kernel), np.zeros((2, 2, 5), np.float32))
    assert np.array_equal(LN.kernel_sum(x, y[:, :, :0], w[:, :0], bw, "rbf"), np.zeros((2, 5), np.float32))
    assert LN.kernel_sum_grad(x[:, :, :0], y, w, bw, "rq", 2.0).shape == (2, 2, 0)
    with pytest.raises(ValueError):
        LN.kernel_sum(x, y, w, bw, "gaussian")


def test_numba_op_table_serves_linear_numba():
    ops = load_ops("numba")
    for name in ("trig_disc_step", "trig_grad_x", "trig_forward", "kernel_sum", "kernel_sum_grad"):
        assert getattr(ops, name) is getattr(LN, name)


def test_nan_propagates(rng):
    """A NaN sample or centre gives NaN outputs where the reference has them (no finite-math assumption)."""
    x, y, w, bw = kernel_inputs(rng, 2, 2, 5, 7, 2, np.float32)
    y[0, 1, 3] = np.nan
    for kernel in ("rbf", "laplacian", "rq"):
        assert np.array_equal(np.isnan(LN.kernel_sum(x, y, w, bw, kernel)), np.isnan(REF.kernel_sum(x, y, w, bw, kernel)))
        assert np.all(np.isnan(LN.kernel_sum_grad(x, y, w, bw, kernel)[0]))
    theta, omega, phase, amp, rate = trig_inputs(rng, 2, 2, 9, np.float32)
    x[1, 0, 2] = np.nan
    assert np.array_equal(np.isnan(LN.trig_grad_x(theta, omega, phase, amp, x)),
                          np.isnan(REF.trig_grad_x(theta, omega, phase, amp, x)))
    got = theta.copy()
    LN.trig_disc_step(got, omega, phase, amp, rate, x, w[:, :5], x, w[:, :5], np.ones(2), np.zeros(2))
    assert np.all(np.isnan(got[1])) and not np.any(np.isnan(got[0]))
