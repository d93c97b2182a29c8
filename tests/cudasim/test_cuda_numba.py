"""Every Numba-CUDA twin against the NumPy reference, under the CUDA simulator.

Sizes are tiny (the simulator runs each CUDA thread as a Python thread) and deliberately not
multiples of the patched block sizes / tiles (``tiny_launch``), so every grid-stride loop,
partial tile and idle thread is exercised.
"""

import numpy as np
import pytest

from fastgan.kernels import cuda_numba as CN
from fastgan.kernels import launch, rng as R
from fastgan.kernels.ops import load_ops
from twin_inputs import mlp_inputs as _mlp_inputs, tol

REF = load_ops("numpy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("with_u", [False, True])
def test_mlp_disc_step(rng, tiny_launch, dtype, act, d, with_u):
    B, W, N, M = 3, 13, 11, 7
    tiny_launch(block=5 if d == 2 else 3)
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    lr = np.array([0.05, 0.0, 0.2])
    l2 = np.array([1 / W, 0.01, 0.0])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype) if with_u else None
    p_ref = [x.copy() for x in (w, b, a)]
    p_cu = [x.copy() for x in (w, b, a)]
    REF.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act)
    CN.mlp_disc_step(*p_cu, xg, xt, lr.astype(dtype), l2.astype(dtype), u, act)
    for r_, c_, orig in zip(p_ref, p_cu, (w, b, a)):
        assert c_.dtype == dtype
        assert not np.array_equal(c_[0], orig[0])   # updated in the caller's array
        np.testing.assert_allclose(c_, r_, **tol(dtype))
        assert np.array_equal(c_[1], orig[1])       # lr = 0: untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_mlp_grad_x_and_forward(rng, tiny_launch, dtype, act, d):
    w, b, a, x, _ = _mlp_inputs(rng, 2, d, 13, 11, 1, dtype)
    g = CN.mlp_grad_x(w, b, a, x, act)
    assert isinstance(g, np.ndarray) and g.shape == (2, d, 11) and g.dtype == dtype
    np.testing.assert_allclose(g, REF.mlp_grad_x(w, b, a, x, act), **tol(dtype))
    f = CN.mlp_forward(w, b, a, x, act)
    assert f.shape == (2, 11) and f.dtype == dtype
    np.testing.assert_allclose(f, REF.mlp_forward(w, b, a, x, act), **tol(dtype))


@pytest.mark.parametrize("dtype,d", [(np.float64, 9), (np.float64, 17), (np.float32, 17), (np.float32, 64),
                                     (np.float64, 784)])
def test_mlp_routed_beyond_the_register_kernels(rng, tiny_launch, dtype, d):
    """d beyond the kernels' limits (the float64 step above 8, everything above MAX_DIM) is served by the
    GEMM path (cuda_ops), to rounding of the reference; lr = 0 runs stay bitwise untouched."""
    from fastgan.kernels import cuda_numba_mlp
    assert not cuda_numba_mlp.numba_dim("step", np.dtype(dtype).name, d)
    B, W, N, M = 3, 13, 11, 7
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype)
    lr, l2 = np.array([0.05, 0.0, 0.2]), np.array([1 / W, 0.01, 0.0])
    p_ref, p_cu = [x.copy() for x in (w, b, a)], [x.copy() for x in (w, b, a)]
    REF.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, "tanh")
    CN.mlp_disc_step(*p_cu, xg, xt, lr.astype(dtype), l2.astype(dtype), u, "tanh")
    for r_, c_, orig in zip(p_ref, p_cu, (w, b, a)):
        np.testing.assert_allclose(c_, r_, **tol(dtype))
        assert np.array_equal(c_[1], orig[1])
    for act in ("relu", "tanh"):
        np.testing.assert_allclose(CN.mlp_grad_x(w, b, a, xg, act), REF.mlp_grad_x(w, b, a, xg, act), **tol(dtype))
        np.testing.assert_allclose(CN.mlp_forward(w, b, a, xg, act), REF.mlp_forward(w, b, a, xg, act), **tol(dtype))


def test_mlp_activation_checked():
    w, b, a, x = np.zeros((1, 2, 3)), np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 2, 2))
    with pytest.raises(ValueError, match="activation"):
        CN.mlp_forward(w, b, a, x, "gelu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampling_bitwise(rng, tiny_launch, dtype):
    B, K, d, m = 3, 5, 3, 7
    means = rng.normal(size=(B, K, d))
    w = rng.random((B, K))
    w[1, 2] = 0.0                                   # an empty component (equal cumulative weights)
    cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
    cum[:, -1] = 1
    stds = rng.random((B, K))
    seeds = [1, 7, 2**40]
    cb, nb = R.base_keys(seeds, R.STREAM_TARGET_COMPONENT), R.base_keys(seeds, R.STREAM_TARGET_NOISE)
    for it, sub in ((0, 0), (12, 3)):
        a = REF.sample_mixture(cb, nb, it, sub, means, cum, stds, m, dtype)
        b = CN.sample_mixture(cb, nb, it, sub, means, cum, stds, m, dtype)
        assert isinstance(b, np.ndarray) and b.shape == (B, d, m) and b.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_couplings(rng, tiny_launch, dtype, d):
    B, N = 2, 11
    G = rng.normal(size=(B, d, N)).astype(dtype)
    X = rng.normal(size=(B, d, N)).astype(dtype)
    g1, g2 = np.array([5.0, 2.0]), np.array([0.0, 0.3])
    got = CN.coupled_velocity_coarse(G, g1, g2)
    assert got.dtype == dtype and got.shape == G.shape
    np.testing.assert_allclose(got, REF.coupled_velocity_coarse(G, g1, g2), **tol(dtype))
    A = rng.normal(size=(B, N, N))
    gram = (A @ A.transpose(0, 2, 1)).astype(dtype)
    np.testing.assert_allclose(CN.coupled_velocity_gram(G, gram), REF.coupled_velocity_gram(G, gram), **tol(dtype))
    np.testing.assert_allclose(CN.coupled_velocity_gram(G, gram[:1]), REF.coupled_velocity_gram(G, gram[:1]),
                               **tol(dtype))
    ell = np.array([0.7, 3.0])
    for kern in ("rbf", "laplacian"):
        got = CN.coupled_velocity_spatial(G, X, g1, g2, ell, kern)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, REF.coupled_velocity_spatial(G, X, g1, g2, ell, kern), **tol(dtype))
    with pytest.raises(ValueError):
        CN.coupled_velocity_spatial(G, X, g1, g2, ell, "cosine")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mode_stats(rng, tiny_launch, dtype):
    B, d, N, K = 2, 2, 13, 5
    modes = rng.normal(size=(B, K, d))
    X = (modes[:, rng.integers(0, K, N)].transpose(0, 2, 1) + 0.05 * rng.normal(size=(B, d, N))).astype(dtype)
    X[0, :, 3] = modes[0, 2]                        # a particle exactly on a mode
    modes[1, 4] = modes[1, 1]                       # duplicated mode: the tie goes to index 1
    X[1, :, 5] = modes[1, 1] + 0.01
    weights = rng.random((B, K))
    weights /= weights.sum(1, keepdims=True)
    stds = 0.02 + 0.05 * rng.random((B, K))
    ref = REF.mode_stats(X, modes, weights, stds)
    got = CN.mode_stats(X, modes, weights, stds)
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64 and got[2].dtype == np.float64
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[0][1, 4] == 0 and got[0].sum() == B * N
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-10)
    # one run with a zero-width mode: only that run loses its density (packing-independent)
    mixed = stds.copy()
    mixed[1, 2] = 0.0
    llm = CN.mode_stats(X, modes, weights, mixed)[3]
    assert np.isnan(llm[1]) and np.allclose(llm[0], ref[3][0], rtol=1e-10)
    # zero-width components: no density (NaN log-likelihood), counts unchanged
    got0 = CN.mode_stats(X, modes, weights, np.zeros((B, K)))
    assert np.all(np.isnan(got0[3]))
    np.testing.assert_array_equal(got0[0], ref[0])
    # a zero weight is fine (log 0 = -inf inside the log-sum-exp)
    w0 = weights.copy()
    w0[:, 0] = 0.0
    np.testing.assert_allclose(CN.mode_stats(X, modes, w0, stds)[3], REF.mode_stats(X, modes, w0, stds)[3],
                               rtol=1e-10)


def test_default_launch_parameters(rng):
    """The shipped (large) block sizes also work: one block, most threads idle."""
    assert launch.GPU_BLOCK["mlp_units"] >= 32
    w, b, a, xg, xt = _mlp_inputs(rng, 1, 2, 5, 4, 3, np.float64)
    p = [x.copy() for x in (w, b, a)]
    REF.mlp_disc_step(w, b, a, xg, xt, np.array([0.1]), np.array([0.01]), None, "relu")
    CN.mlp_disc_step(*p, xg, xt, np.array([0.1]), np.array([0.01]), None, "relu")
    for got, want in zip(p, (w, b, a)):
        np.testing.assert_allclose(got, want, **tol(np.float64))
