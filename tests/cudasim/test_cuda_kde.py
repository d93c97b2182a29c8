"""The Numba-CUDA KDE kernels (``cuda_numba_kde``) against ``kde_numpy``, under the CUDA simulator.

Sizes are tiny (the simulator runs each CUDA thread as a Python thread) and not multiples of the
patched block size / centre tile, so every grid-stride loop, partial tile and idle thread runs.
"""

import math

import numpy as np
import pytest

from fastgan.kernels import cuda_numba as CN
from fastgan.kernels import cuda_numba_kde as CK
from fastgan.kernels import kde_numpy as REF
from fastgan.kernels import launch
from test_kde_twins import close as _close, kde_inputs as _inputs   # the CPU twin tests' inputs and tolerance


@pytest.fixture
def tiny(tiny_launch, monkeypatch):
    """tiny_launch (blocks of 3 threads, 2 blocks) and centre tiles of 4."""
    monkeypatch.setitem(launch.GPU_TILE, "kde_cols", 4)
    return tiny_launch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("S", [1, 3])
def test_log_density_and_grad_sum(rng, tiny, dtype, d, S):
    B, n, m = 2, 7, 9
    tiny(block=5 if d == 2 else 3)
    q, x, logw, la, lb, bw, lm = _inputs(rng, B, d, n, m, S, dtype)
    ld = CN.kde_log_density(q, x, logw, bw, lm)
    assert isinstance(ld, np.ndarray) and ld.shape == (B, n) and ld.dtype == dtype
    _close(ld, REF.kde_log_density(q, x, logw, bw, lm), dtype)
    for a, b in ((la, lb), (la, None), (None, lb)):
        g = CN.kde_grad_sum(q, x, logw, a, b, bw, lm)
        assert g.shape == (B, d, n) and g.dtype == dtype and np.all(np.isfinite(g))
        _close(g, REF.kde_grad_sum(q, x, logw, a, b, bw, lm), dtype)


@pytest.mark.parametrize("dtype,d", [(np.float64, 19), (np.float32, 35)])
def test_grad_sum_in_coordinate_chunks(rng, tiny, dtype, d):
    """Above GRAD_REG_DIM the gradient runs in launches of GRAD_CHUNK coordinates (the last one partial)."""
    assert CK.grad_chunk(np.dtype(dtype).name, d) < d and d % CK.grad_chunk(np.dtype(dtype).name, d)
    q, x, logw, la, lb, bw, lm = _inputs(rng, 2, d, 5, 7, 2, dtype)
    for a, b in ((la, lb), (None, lb)):
        g = CN.kde_grad_sum(q, x, logw, a, b, bw, lm)
        assert g.shape == (2, d, 5) and g.dtype == dtype and np.all(np.isfinite(g))
        _close(g, REF.kde_grad_sum(q, x, logw, a, b, bw, lm), dtype)


def test_masked_run_nan_and_empty(rng, tiny):
    q, x, logw, la, lb, bw, lm = _inputs(rng, 3, 2, 5, 6, 2, np.float32)
    logw[1] = -np.inf                                   # an empty run: -inf, not NaN; zero gradient
    x[2, 0, 3] = np.nan                                 # NaN centre: NaN everywhere in run 2
    ld = CN.kde_log_density(q, x, logw, bw, lm)
    assert np.all(ld[1] == -np.inf) and np.isnan(ld[2]).all() and np.all(np.isfinite(ld[0]))
    _close(ld[0], REF.kde_log_density(q, x, logw, bw, lm)[0], np.float32)
    g = CN.kde_grad_sum(q, x, logw, la, lb, bw, lm)
    assert np.all(g[1] == 0) and np.isnan(g[2]).all()
    _close(g[0], REF.kde_grad_sum(q, x, logw, la, lb, bw, lm)[0], np.float32)
    assert np.all(CN.kde_log_density(q, x[:, :, :0], logw[:, :0], bw, lm) == -np.inf)
    assert CN.kde_grad_sum(q[:, :, :0], x, logw, None, lb[:, :0], bw, lm).shape == (3, 2, 0)
    with pytest.raises(ValueError, match="la, lb"):
        CN.kde_grad_sum(q, x, logw, None, None, bw, lm)
    d = CK.MAX_DIM + 1               # beyond the Numba-CUDA kernels: the cuda_ops forms (test_cuda_large_d)
    with pytest.raises(ValueError, match="MAX_DIM"):
        CN.check_dim("kde", d)
    ld = CN.kde_log_density(np.zeros((1, d, 2)), np.zeros((1, d, 3)), np.zeros((1, 3)), np.ones((1, 1)),
                            np.zeros((1, 1)))
    np.testing.assert_allclose(ld, math.log(3) - 0.5 * d * math.log(2 * math.pi), rtol=1e-14)


def test_float32_extremes(rng, tiny):
    """float32 against the float64 reference: d = 50 with sigma = 0.01 (terms ~ +180, a shared tile
    of centre_tile(50) = 40 centres) and far queries (terms ~ -1e4, where exp underflows)."""
    tiny(block=4)
    B, n, m = 1, 5, 6
    x = rng.normal(size=(B, 50, m))
    q = x[:, :, :n] + 0.005 * rng.normal(size=(B, 50, n))
    logw = np.full((B, m), -math.log(m))
    bw, lm = np.array([[0.01, 0.02]]), np.log(np.array([[0.5, 0.5]]))
    want = REF.kde_log_density(q, x, logw, bw, lm)
    assert want.min() > 100
    f32 = [a.astype(np.float32) for a in (q, x, logw, bw, lm)]
    got = CN.kde_log_density(*f32)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    x = rng.normal(size=(B, 2, m))
    q = rng.normal(size=(B, 2, n)) + np.array([30.0, -20.0])[None, :, None]
    bw, lm = np.full((B, 1), 0.2), np.zeros((B, 1))
    want = REF.kde_log_density(q, x, logw, bw, lm)
    assert want.max() < -5e3
    f32 = [a.astype(np.float32) for a in (q, x, logw, bw, lm)]
    got = CN.kde_log_density(*f32)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    gwant = REF.kde_grad_sum(q, x, logw, None, -want, bw, lm)
    ggot = CN.kde_grad_sum(f32[0], f32[1], f32[2], None, -got, f32[3], f32[4])
    np.testing.assert_allclose(ggot, gwant, rtol=1e-3, atol=1e-3 * np.abs(gwant).max())


def test_default_launch_parameters(rng):
    """The shipped (large) block and tile sizes also work: one block, most threads idle."""
    q, x, logw, la, lb, bw, lm = _inputs(rng, 2, 3, 6, 5, 2, np.float64)
    _close(CN.kde_log_density(q, x, logw, bw, lm), REF.kde_log_density(q, x, logw, bw, lm), np.float64)
    _close(CN.kde_grad_sum(q, x, logw, la, lb, bw, lm), REF.kde_grad_sum(q, x, logw, la, lb, bw, lm), np.float64)
