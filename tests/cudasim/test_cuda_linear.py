"""The Numba-CUDA linear-discriminator kernels (``cuda_numba_linear``) against ``linear_numpy``,
under the CUDA simulator.

Sizes are tiny (the simulator runs each CUDA thread as a Python thread) and deliberately not
multiples of the patched block sizes / tiles (``tiny_launch``), so every grid-stride loop,
partial tile and idle thread is exercised.
"""

import math

import numpy as np
import pytest

from fastgan.kernels import cuda_numba as CN
from fastgan.kernels import cuda_numba_linear as CL
from fastgan.kernels import linear_numpy as REF
from twin_inputs import tol

KERNELS = ("rbf", "laplacian", "rq")


def _trig_inputs(rng, B, d, L, dtype):
    """theta, omega, phase, amp, rate: a mix of sin (-pi/2) and cos (0) / random phases."""
    theta = rng.normal(size=(B, L)).astype(dtype)
    omega = (1.5 * rng.normal(size=(B, d, L))).astype(dtype)
    phase = np.where(rng.random((B, L)) < 0.5, -math.pi / 2, 2 * math.pi * rng.random((B, L))).astype(dtype)
    amp = (0.5 + rng.random((B, L))).astype(dtype)
    rate = (0.1 + rng.random((B, L))).astype(dtype)
    return theta, omega, phase, amp, rate


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_trig_disc_step(rng, tiny_launch, dtype, d):
    B, L, N, M = 3, 13, 11, 7
    tiny_launch(block=5 if d == 2 else 3)
    theta, omega, phase, amp, rate = _trig_inputs(rng, B, d, L, dtype)
    xg = rng.normal(size=(B, d, N)).astype(dtype)
    xt = rng.normal(size=(B, d, M)).astype(dtype)
    wg = (rng.random((B, N)) / N).astype(dtype)
    wt = (rng.random((B, M)) / M).astype(dtype)
    lr = np.array([0.05, 0.0, 0.2])
    lam = np.array([0.01, 0.1, 0.0])
    for lr_, lam_ in ((lr, lam), (lr.astype(dtype), lam.astype(dtype))):   # float64 host or state dtype
        ref = theta.copy()
        got = theta.copy()
        REF.trig_disc_step(ref, omega, phase, amp, rate, xg, wg, xt, wt, lr_, lam_)
        CN.trig_disc_step(got, omega, phase, amp, rate, xg, wg, xt, wt, lr_, lam_)
        assert got.dtype == dtype
        assert not np.array_equal(got[0], theta[0])     # updated in the caller's array
        np.testing.assert_allclose(got, ref, **tol(dtype))
        assert np.array_equal(got[1], theta[1])         # lr = 0: bitwise untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_trig_grad_x_and_forward(rng, tiny_launch, dtype, d):
    B, L, n = 2, 13, 11
    theta, omega, phase, amp, _ = _trig_inputs(rng, B, d, L, dtype)
    x = rng.normal(size=(B, d, n)).astype(dtype)
    g = CN.trig_grad_x(theta, omega, phase, amp, x)
    assert isinstance(g, np.ndarray) and g.shape == (B, d, n) and g.dtype == dtype
    np.testing.assert_allclose(g, REF.trig_grad_x(theta, omega, phase, amp, x), **tol(dtype))
    f = CN.trig_forward(theta, omega, phase, amp, x)
    assert f.shape == (B, n) and f.dtype == dtype
    np.testing.assert_allclose(f, REF.trig_forward(theta, omega, phase, amp, x), **tol(dtype))


def _kernel_inputs(rng, B, d, n, C, S, dtype):
    x = rng.normal(size=(B, d, n)).astype(dtype)
    centres = rng.normal(size=(B, d, C)).astype(dtype)
    centres[0, :, 2] = x[0, :, 5]                       # a centre on a query point: r = 0
    centres[B - 1, :, C - 1] = x[B - 1, :, 0]           # ... in the last (partial) tile too
    weights = rng.normal(size=(B, C)).astype(dtype)
    weights[1, 3] = 0.0                                 # an empty ring-buffer slot
    bandwidths = (0.3 + 1.5 * rng.random((B, S))).astype(dtype)   # different per run
    return x, centres, weights, bandwidths


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("S", [1, 3])
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_sum_and_grad(rng, tiny_launch, dtype, d, S, kernel):
    B, n, C = 3, 8, 7                                   # n, C: not multiples of the block / tile
    tiny_launch(block=5 if d == 2 else 3)
    x, centres, weights, bw = _kernel_inputs(rng, B, d, n, C, S, dtype)
    alpha = 0.7 if kernel == "rq" else 1.0
    f = CN.kernel_sum(x, centres, weights, bw, kernel, alpha)
    assert isinstance(f, np.ndarray) and f.shape == (B, n) and f.dtype == dtype
    np.testing.assert_allclose(f, REF.kernel_sum(x, centres, weights, bw, kernel, alpha), **tol(dtype))
    g = CN.kernel_sum_grad(x, centres, weights, bw, kernel, alpha)
    assert g.shape == (B, d, n) and g.dtype == dtype and np.all(np.isfinite(g))   # laplacian: g = 0 at r = 0
    np.testing.assert_allclose(g, REF.kernel_sum_grad(x, centres, weights, bw, kernel, alpha), **tol(dtype))


def test_kernel_sum_rq_alpha_and_default(rng, tiny_launch):
    """rq with alpha != 1 differs from alpha = 1 (the default), and both match the reference."""
    x, centres, weights, bw = _kernel_inputs(rng, 2, 2, 7, 6, 2, np.float64)
    a = CN.kernel_sum_grad(x, centres, weights, bw, "rq", 2.5)
    b = CN.kernel_sum_grad(x, centres, weights, bw, "rq")
    np.testing.assert_allclose(a, REF.kernel_sum_grad(x, centres, weights, bw, "rq", 2.5), **tol(np.float64))
    np.testing.assert_allclose(b, REF.kernel_sum_grad(x, centres, weights, bw, "rq"), **tol(np.float64))
    assert not np.allclose(a, b)


def test_laplacian_zero_distance(tiny_launch):
    """A single centre on the query point: K = w sum_s 1, and the subgradient 0."""
    x = np.array([[[0.3, 1.0]]])                        # (1, 1, 2)
    centres = np.array([[[0.3]]])
    weights, bw = np.array([[2.0]]), np.array([[0.5, 1.0]])
    np.testing.assert_allclose(CN.kernel_sum(x, centres, weights, bw, "laplacian")[0, 0], 4.0, rtol=1e-15)
    g = CN.kernel_sum_grad(x, centres, weights, bw, "laplacian")
    assert g[0, 0, 0] == 0.0
    np.testing.assert_allclose(g, REF.kernel_sum_grad(x, centres, weights, bw, "laplacian"), rtol=1e-12)


def test_edge_cases_and_errors(rng, tiny_launch):
    x, centres, weights, bw = _kernel_inputs(rng, 2, 2, 7, 4, 1, np.float64)
    with pytest.raises(ValueError, match="kernel"):
        CN.kernel_sum(x, centres, weights, bw, "cosine")
    # no centres: f = 0, grad = 0
    np.testing.assert_array_equal(CN.kernel_sum(x, centres[:, :, :0], weights[:, :0], bw, "rbf"), 0.0)
    np.testing.assert_array_equal(CN.kernel_sum_grad(x, centres[:, :, :0], weights[:, :0], bw, "rbf"), 0.0)
    assert CN.kernel_sum(x[:, :, :0], centres, weights, bw, "rbf").shape == (2, 0)
    d = CL.MAX_DIM + 1               # beyond the register kernels: the cuda_ops forms (test_cuda_large_d)
    with pytest.raises(ValueError, match="MAX_DIM"):
        CN.check_dim("linear", d)
    np.testing.assert_array_equal(
        CN.kernel_sum(np.zeros((1, d, 2)), np.zeros((1, d, 3)), np.ones((1, 3)), np.ones((1, 1)), "rbf"), 3.0)
    np.testing.assert_array_equal(
        CN.trig_forward(np.ones((1, 3)), np.zeros((1, d, 3)), np.zeros((1, 3)), np.ones((1, 3)),
                        np.zeros((1, d, 2))), 3.0)
    # all runs at lr = 0: nothing moves
    theta, omega, phase, amp, rate = _trig_inputs(rng, 2, 2, 5, np.float32)
    t = theta.copy()
    xg = rng.normal(size=(2, 2, 3)).astype(np.float32)
    w = np.full((2, 3), 1 / 3, dtype=np.float32)
    CN.trig_disc_step(t, omega, phase, amp, rate, xg, w, xg, w, np.zeros(2), np.ones(2))
    assert np.array_equal(t, theta)


def test_default_launch_parameters(rng):
    """The shipped (large) block and tile sizes also work: one block, most threads idle."""
    theta, omega, phase, amp, rate = _trig_inputs(rng, 2, 3, 6, np.float64)
    xg, xt = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 4))
    wg, wt = np.full((2, 5), 0.2), np.full((2, 4), 0.25)
    ref, got = theta.copy(), theta.copy()
    REF.trig_disc_step(ref, omega, phase, amp, rate, xg, wg, xt, wt, np.array([0.1, 0.3]), np.array([0.01, 0.0]))
    CN.trig_disc_step(got, omega, phase, amp, rate, xg, wg, xt, wt, np.array([0.1, 0.3]), np.array([0.01, 0.0]))
    np.testing.assert_allclose(got, ref, **tol(np.float64))
    x, centres, weights, bw = _kernel_inputs(rng, 2, 3, 7, 4, 2, np.float64)
    np.testing.assert_allclose(CN.kernel_sum_grad(x, centres, weights, bw, "rbf"),
                               REF.kernel_sum_grad(x, centres, weights, bw, "rbf"), **tol(np.float64))


def test_cuda_op_table_serves_the_kernels():
    from fastgan.kernels import cuda_ops
    from fastgan.kernels.ops import load_ops
    ops = load_ops("cuda")
    for name in ("trig_disc_step", "trig_grad_x", "trig_forward", "kernel_sum", "kernel_sum_grad"):
        assert getattr(ops, name) is getattr(CL, name)
        assert cuda_ops.CHOSEN[name] == f"cuda_numba.{name}"
