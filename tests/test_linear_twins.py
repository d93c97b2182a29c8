"""The numba linear-discriminator twins (trig features, kernel sums) against the NumPy reference."""

import numpy as np
import pytest

from fastgan.kernels import fastmath, fourier_grid, fourier_grid_numba as FGN, launch, linear_numba as LN, linear_numpy as REF
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
    monkeypatch.setitem(launch.CPU_TILE, "fgrid_chunk", 4)
    monkeypatch.setitem(launch.CPU_TILE, "fgrid_samples", 3)


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


@pytest.mark.parametrize("d", [1, 2])
def test_float32_cos_sin_accuracy_inside_the_kernels(d):
    """The float32 single-polynomial cos / sin as compiled inside the (reassociating) kernels: the
    phase is exactly the sample (omega = e_1, phase 0), so f = cos x and grad f = -sin x e_1 with an
    absolute error <= 3e-7 up to |x| = 2000 (a folded two-piece 2 pi would be off by ~1e-4 there)."""
    x0 = np.concatenate([np.linspace(-2000, 2000, 20001), np.arange(-64, 65) * np.pi / 4]).astype(np.float32)
    x = np.zeros((1, d, x0.size), dtype=np.float32)
    x[0, 0] = x0
    omega = np.zeros((1, d, 1), dtype=np.float32)
    omega[0, 0, 0] = 1
    one, zero = np.ones((1, 1), dtype=np.float32), np.zeros((1, 1), dtype=np.float32)
    exact = x0.astype(np.float64)
    f = LN.trig_forward(one, omega, zero, one, x)[0]
    g = LN.trig_grad_x(one, omega, zero, one, x)[0]
    assert np.abs(f - np.cos(exact)).max() <= 3e-7
    assert np.abs(g[0] + np.sin(exact)).max() <= 3e-7
    assert not g[1:].any()


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


@pytest.mark.parametrize("dtype", DTYPES)
def test_fourier_grid_numba_matches_the_generic_reference(rng, dtype):
    """The separable d = 2 Fourier twin against the generic trig reference on the expanded grid
    (odd grid and sample sizes, tiny tiles, Fourier-sized frequencies, a run with lr = 0)."""
    B, K1, K2, N, M = 3, 7, 5, 11, 9
    w1, w2 = (0.1 * rng.normal(size=(2, B, K1, K2))).astype(dtype)
    u, v = (8 * rng.normal(size=(B, K1))).astype(dtype), (8 * rng.normal(size=(B, K2))).astype(dtype)
    rate = rng.uniform(0.5, 1.5, size=(B, K1, K2)).astype(dtype)
    xg, xt = rng.normal(size=(B, 2, N)).astype(dtype), rng.normal(size=(B, 2, M)).astype(dtype)
    wg, wt = rng.dirichlet(np.ones(N), size=B).astype(dtype), np.full((B, M), 1 / M, dtype=dtype)
    lr, lam = np.array([0.5, 0.0, 0.3]), np.array([0.1, 0.2, 1.0])
    theta, omega, phase, amp, rt = fourier_grid.expand(w1, w2, u, v, rate)
    np.testing.assert_allclose(FGN.fourier_grid_grad_x(w1, w2, u, v, xg),
                               REF.trig_grad_x(theta, omega, phase, amp, xg), **tol(dtype))
    np.testing.assert_allclose(FGN.fourier_grid_forward(w1, w2, u, v, xg),
                               REF.trig_forward(theta, omega, phase, amp, xg), **tol(dtype))
    a1, a2 = w1.copy(), w2.copy()
    FGN.fourier_grid_disc_step(a1, a2, u, v, rate, xg, wg, xt, wt, lr, lam)
    REF.trig_disc_step(theta, omega, phase, amp, rt, xg, wg, xt, wt, lr, lam)
    b1, b2 = fourier_grid.collapse(theta, K1, K2)
    np.testing.assert_allclose(a1, b1, **tol(dtype))
    np.testing.assert_allclose(a2, b2, **tol(dtype))
    assert np.array_equal(a1[1], w1[1]) and np.array_equal(a2[1], w2[1])
    assert load_ops("numba").fourier_grid_disc_step is FGN.fourier_grid_disc_step


def test_wide_vectors_marks_the_kernel_for_512_bit_code():
    """``wide_vectors()`` in a prange body puts "prefer-vector-width"="512" on the function LLVM
    vectorises; on an AVX-512 host (numba targeting it) its loops then use zmm registers."""
    import os

    import llvmlite.binding as llvm
    from numba import njit, prange

    def make(wide):
        @njit(parallel=True, fastmath=fastmath.FASTMATH)
        def f(x, out):
            for t in prange(x.shape[0]):
                if wide:
                    fastmath.wide_vectors()
                acc = np.float32(0)
                row = x[t]
                for i in range(row.shape[0]):
                    acc += row[i] * row[i]
                out[t] = acc
        return f

    x, out = np.ones((3, 1001), np.float32), np.zeros(3, np.float32)
    wide = make(True)
    wide(x, out)
    assert np.all(out == 1001)
    assert '"prefer-vector-width"="512"' in "".join(wide.inspect_llvm().values())
    if llvm.get_host_cpu_features().get("avx512f") and not os.environ.get("NUMBA_CPU_NAME"):
        assert "zmm" in "".join(wide.inspect_asm().values())


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 2), (np.float64, 3)])
def test_vectorisable_tanh(dtype, ulps):
    """The branch-free tanh of the numba MLP kernels (series below 0.55 / 0.3, exp form above) against
    float64 libm: within a few ulps from 1e-30 to the saturated tails, odd, NaN in NaN out."""
    from numba import njit

    @njit(fastmath=True)
    def f(x, out):
        for i in range(x.size):
            out[i] = fastmath.vtanh(x[i])

    g = np.geomspace(1e-30, 40, 200001)
    x = np.concatenate([-g[::-1], [0.0], g, [0.3, 0.55, 9.0, 19.0, np.inf, -np.inf]]).astype(dtype)
    out = np.empty_like(x)
    f(x, out)
    ref = np.tanh(x.astype(np.float64))
    assert np.all(np.abs(out - ref) <= ulps * np.finfo(dtype).eps * np.abs(ref))
    assert np.array_equal(out[: g.size], -out[g.size + 1: 2 * g.size + 1][::-1])
    nan = np.full(1, np.nan, dtype=dtype)
    f(nan, nan)
    assert np.isnan(nan[0])
