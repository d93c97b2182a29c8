"""Every numba twin against the NumPy reference on random inputs, sizes not multiples of the tiles."""

import numpy as np
import pytest

from fastgan.kernels import launch, rng as R
from fastgan.kernels.ops import load_ops
from twin_inputs import mlp_inputs as _mlp_inputs, tol

REF = load_ops("numpy")
NB = load_ops("numba")


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    monkeypatch.setitem(launch.CPU_TILE, "mlp_units", 7)
    monkeypatch.setitem(launch.CPU_TILE, "grad_x_samples", 3)
    monkeypatch.setitem(launch.CPU_TILE, "pair_rows", 5)
    monkeypatch.setitem(launch.CPU_TILE, "samples", 11)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("with_u", [False, True])
def test_mlp_disc_step(rng, dtype, act, d, with_u):
    B, W, N, M = 3, 45, 23, 17
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    lr = np.array([0.05, 0.0, 0.2])
    l2 = np.array([1 / W, 0.01, 0.0])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype) if with_u else None
    p_ref = [x.copy() for x in (w, b, a)]
    p_nb = [x.copy() for x in (w, b, a)]
    REF.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act)
    NB.mlp_disc_step(*p_nb, xg, xt, lr, l2, u, act)
    for r_, n_, orig in zip(p_ref, p_nb, (w, b, a)):
        assert r_.dtype == dtype and n_.dtype == dtype
        np.testing.assert_allclose(n_, r_, **tol(dtype))
        assert np.array_equal(n_[1], orig[1])       # lr = 0: untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_mlp_grad_x(rng, dtype, act, d):
    w, b, a, x, _ = _mlp_inputs(rng, 2, d, 37, 19, 1, dtype)
    np.testing.assert_allclose(NB.mlp_grad_x(w, b, a, x, act), REF.mlp_grad_x(w, b, a, x, act), **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sampling_bitwise(rng, dtype):
    B, K, d, m = 3, 5, 3, 41
    means = rng.normal(size=(B, K, d))
    w = rng.random((B, K))
    cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
    cum[:, -1] = 1
    stds = rng.random((B, K))
    cb, nb = R.base_keys([1, 7, 2**40], R.STREAM_TARGET_COMPONENT), R.base_keys([1, 7, 2**40], R.STREAM_TARGET_NOISE)
    a = REF.sample_mixture(cb, nb, 12, 3, means, cum, stds, m, dtype)
    b = NB.sample_mixture(cb, nb, 12, 3, means, cum, stds, m, dtype)
    assert a.shape == (B, d, m) and a.dtype == dtype
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_couplings(rng, dtype):
    B, d, N = 3, 2, 29
    G = rng.normal(size=(B, d, N)).astype(dtype)
    X = rng.normal(size=(B, d, N)).astype(dtype)
    g1, g2 = np.array([5.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.3])
    np.testing.assert_allclose(NB.coupled_velocity_coarse(G, g1, g2), REF.coupled_velocity_coarse(G, g1, g2), **tol(dtype))
    A = rng.normal(size=(B, N, N))
    gram = (A @ A.transpose(0, 2, 1)).astype(dtype)
    np.testing.assert_allclose(NB.coupled_velocity_gram(G, gram), REF.coupled_velocity_gram(G, gram), **tol(dtype))
    np.testing.assert_allclose(NB.coupled_velocity_gram(G, gram[:1]), REF.coupled_velocity_gram(G, gram[:1]), **tol(dtype))
    ell = np.array([0.5, 1.0, 3.0])
    for kern in ("rbf", "laplacian"):
        np.testing.assert_allclose(NB.coupled_velocity_spatial(G, X, g1, g2, ell, kern),
                                   REF.coupled_velocity_spatial(G, X, g1, g2, ell, kern), **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mode_stats(rng, dtype):
    B, d, N, K = 3, 2, 57, 8
    modes = rng.normal(size=(B, K, d))
    X = (modes[:, rng.integers(0, K, N)].transpose(0, 2, 1) + 0.05 * rng.normal(size=(B, d, N))).astype(dtype)
    weights = rng.random((B, K))
    weights /= weights.sum(1, keepdims=True)
    stds = 0.02 + 0.05 * rng.random((B, K))
    ref = REF.mode_stats(X, modes, weights, stds)
    got = NB.mode_stats(X, modes, weights, stds)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-10)
    assert ref[0].sum() == B * N
    # one run with a zero-width mode: only that run has no density (packing-independent)
    mixed = stds.copy()
    mixed[1, 3] = 0.0
    for impl in (REF, NB):
        ll = impl.mode_stats(X, modes, weights, mixed)[3]
        assert np.isnan(ll[1]) and np.allclose(ll[[0, 2]], ref[3][[0, 2]], rtol=1e-10)
    # zero-width components: no density
    got0 = NB.mode_stats(X, modes, weights, np.zeros((B, K)))
    assert np.all(np.isnan(got0[3])) and np.all(np.isnan(REF.mode_stats(X, modes, weights, np.zeros((B, K)))[3]))
