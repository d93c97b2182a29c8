"""Helpers of the Sinn & Rawat and fitting-to-collapse reproductions (kgan-*, grad-*): the objective's two terms, the
steepness estimate of Algorithm 2, the crossover finder and the cone-model profile."""

import math

import numpy as np
import pytest

from fastgan.families.kde_maths import kernel_gan
from fastgan.kernels.ops import load_ops
from fastgan.reproduce.gradfields import _gaussian_profile, mean_steepness
from fastgan.reproduce.kgan import _first_crossing, _montage, _objective_terms

OPS = load_ops("numpy")


def test_objective_terms_add_up_to_the_engine_objective():
    rng = np.random.default_rng(0)
    R, n, d = 3, 12, 5
    X, Y = rng.normal(size=(R, n, d)), rng.normal(size=(R, n, d)) + 0.5
    for sigma in (0.3, 1.0, 4.0):
        t1, t2 = _objective_terms(OPS, X, Y, sigma)
        yt, xt = (np.ascontiguousarray(a.transpose(0, 2, 1)) for a in (Y, X))
        K, _ = kernel_gan(OPS, yt, xt, np.full((R, n), -math.log(n)), np.full((R, 1), sigma), np.zeros((R, 1)),
                          np.zeros(R), grad=False)
        np.testing.assert_allclose(t1 + t2, K, rtol=1e-12, atol=1e-12)
    # a permutation of the data: both terms are exactly -log 2 (Sinn & Rawat: K_n = -log 4)
    t1, t2 = _objective_terms(OPS, X, X[:, ::-1], 0.7)
    np.testing.assert_allclose(np.r_[t1, t2], -math.log(2), rtol=1e-12)


def test_mean_steepness_of_a_linear_map_is_its_spectral_norm():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(300, 3))
    A = np.array([[2.0, 0.3, 0.0], [0.0, 0.5, 0.1], [0.4, 0.0, 1.0]])
    assert mean_steepness(Z, Z @ A.T) == pytest.approx(np.linalg.norm(A, 2), rel=1e-10)
    # a map that sends half the seeds to a far mode is steep along the fold, flat elsewhere
    X = np.where(Z[:, :1] > 0, 1.0, -1.0) + 0.01 * Z
    assert mean_steepness(Z, X) > 1.0 > mean_steepness(Z, 0.01 * Z)


def test_first_crossing_and_montage():
    x = np.geomspace(0.1, 10, 5)
    assert _first_crossing(x, np.array([1.0, 1.0, -1.0, -1.0, 1.0])) == pytest.approx(math.sqrt(x[1] * x[2]))
    assert math.isnan(_first_crossing(x, np.ones(5)))
    m = _montage(np.zeros((7, 64)), ncol=5)
    assert m.shape == (19, 46) and np.isnan(m[0]).all() and np.isfinite(m[1:9, 1:9]).all()


def test_gaussian_profile_limits():
    """p_g as wide as p_data: d* = 1/2 and no field; wider: d* falls, the field points inwards and grows
    linearly (no pole at 4 sigma, unlike the cone of Assumption 4.1)."""
    r = np.linspace(0, 1, 11)
    d, f = _gaussian_profile(r, 0.1, 0.01)
    np.testing.assert_allclose(d, 0.5)
    np.testing.assert_allclose(f, 0.0, atol=1e-12)
    d, f = _gaussian_profile(r, 0.1, 0.04)
    assert d[0] == pytest.approx(0.8) and np.all(np.diff(d) < 0) and np.all(np.isfinite(f))
