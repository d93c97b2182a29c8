"""Closed-form optimal-discriminator fields of the fitting-to-collapse paper, Appendix C (fastgan.analytic) against an
independent scipy evaluation of p_data/p_g, finite differences, torch autograd and the cone model."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fastgan import analytic as an

MODES = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
GEN = {"C1": ("gaussian", [0.0, 0.0], 0.2), "C2": ("uniform", None, None), "C3": ("gaussian", [1.0, 1.0], 1.0)}


def _points(n: int = 400) -> np.ndarray:
    return np.random.default_rng(20240604).uniform(-3.0, 3.0, size=(n, 2))


def _p_data(x, modes=MODES, var=0.1):
    return sum(0.25 * multivariate_normal(m, var * np.eye(2)).pdf(x) for m in modes)


def _p_g(name, x):
    kind, mean, var = GEN[name]
    if kind == "uniform":
        return np.where(np.all(np.abs(x) <= 2.0, axis=-1), 1.0 / 16.0, 0.0)
    return multivariate_normal(mean, var * np.eye(2)).pdf(x)


def _log_d_star(name, x):
    """Independent log d* = log p_data − log(p_data + p_g) (scipy densities)."""
    pd, pg = _p_data(x), _p_g(name, x)
    return np.log(pd) - np.log(pd + pg)


def _fd_grad(f, x, h=1e-5):
    g = np.empty_like(x)
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        g[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _inside(x):
    return np.all(np.abs(x) < 2.0 - 1e-3, axis=-1)  # away from the uniform's edge for differences


def test_cases_and_unknown_name():
    assert an.CASES == ("C1", "C2", "C3")
    for name in an.CASES:
        c = an.case(name)
        np.testing.assert_array_equal(np.sort(c.data_means, axis=0), np.sort(MODES, axis=0))
        assert c.data_var == 0.1 and np.allclose(c.data_weights, 0.25)
    assert an.case("C2").gen_kind == "uniform" and an.case("C3").gen_var == 1.0
    with pytest.raises(ValueError, match="C9"):
        an.case("C9")


@pytest.mark.parametrize("name", an.CASES)
def test_printed_constants_match_derivation(name):
    c = an.case(name)
    coef, kappa, centres, offsets = an.derive_ratio_form(c.data_means, c.data_var, c.data_weights, c.gen_kind,
                                                         c.gen_mean, c.gen_var, c.gen_box)
    assert coef == pytest.approx(c.r_coef, rel=1e-14) and kappa == pytest.approx(c.r_kappa, rel=1e-14)
    np.testing.assert_allclose(centres, c.r_centres, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(offsets, c.r_offsets, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", an.CASES)
def test_ratio_and_densities_match_scipy(name):
    x = _points()
    pd, pg = _p_data(x), _p_g(name, x)
    with np.errstate(divide="ignore"):
        expected = np.where(pg > 0, pd / np.where(pg > 0, pg, 1.0), np.inf)
    r = an.ratio(name, x)
    inside = np.isfinite(expected)
    np.testing.assert_allclose(r[inside], expected[inside], rtol=1e-10)
    assert np.all(np.isinf(r[~inside])) and (name == "C2") == bool((~inside).any())
    np.testing.assert_allclose(np.exp(an.log_p_data(x)), pd, rtol=1e-10)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(an.log_p_g(name, x), np.log(pg), rtol=1e-12)


@pytest.mark.parametrize("name", an.CASES)
def test_gradients_match_finite_differences(name):
    x = _points()
    x = x[_inside(x)] if name == "C2" else x
    ref_field = _fd_grad(lambda y: _log_d_star(name, y), x)
    d_star, field = an.optimal_field(name, x)
    pd, pg = _p_data(x), _p_g(name, x)
    np.testing.assert_allclose(d_star, pd / (pd + pg), rtol=1e-10)
    scale = np.linalg.norm(ref_field, axis=1, keepdims=True) + 1e-3
    assert np.max(np.abs(field - ref_field) / scale) < 1e-6
    ref_grad_r = _fd_grad(lambda y: _p_data(y) / _p_g(name, y), x)
    grad_r = an.grad_ratio(name, x)
    scale = np.linalg.norm(ref_grad_r, axis=1, keepdims=True) + 1e-6 * an.ratio(name, x)[:, None]
    assert np.max(np.abs(grad_r - ref_grad_r) / scale) < 1e-6
    # Theorem C.1: ∇ log d* = ∇r / (r (1 + r))
    r = an.ratio(name, x)[:, None]
    np.testing.assert_allclose(field, grad_r / (r * (1 + r)), rtol=1e-10, atol=1e-12)
    ref_glpd = _fd_grad(lambda y: np.log(_p_data(y)), x)
    assert np.max(np.abs(an.grad_log_p_data(x) - ref_glpd) / (np.abs(ref_glpd).max(1, keepdims=True) + 1e-3)) < 1e-6


@pytest.mark.parametrize("name", an.CASES)
def test_field_matches_torch_autograd(name):
    torch = pytest.importorskip("torch")
    x = _points(200)
    x = x[_inside(x)] if name == "C2" else x
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    mu = torch.tensor(MODES)
    log_pd = torch.logsumexp(-((t[:, None, :] - mu) ** 2).sum(-1) / 0.2, dim=1) + math.log(0.25 / (0.2 * math.pi))
    kind, mean, var = GEN[name]
    if kind == "uniform":
        log_pg = torch.full_like(log_pd, -math.log(16.0))
    else:
        log_pg = -((t - torch.tensor(mean)) ** 2).sum(-1) / (2 * var) - math.log(2 * math.pi * var)
    log_d = log_pd - torch.logaddexp(log_pd, log_pg)
    (g,) = torch.autograd.grad(log_d.sum(), t)
    np.testing.assert_allclose(an.optimal_field(name, x)[1], g.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", an.CASES)
def test_field_identity(name):
    x = _points()
    d_star, field = an.optimal_field(name, x)
    ident = (1 - d_star)[:, None] * (an.grad_log_p_data(x) - an.grad_log_p_g(name, x))
    np.testing.assert_allclose(field, ident, rtol=1e-9, atol=1e-12)


def test_uniform_outside_square_and_far_field_stability():
    x_out = np.array([[2.5, 0.0], [0.0, -2.1], [-3.0, 3.0], [50.0, 0.0], [0.0, -50.0], [35.36, 35.36]])
    d_star, field = an.optimal_field("C2", x_out)
    assert np.all(d_star == 1.0) and np.all(field == 0.0)
    assert np.all(np.isinf(an.ratio("C2", x_out))) and np.all(an.grad_ratio("C2", x_out) == 0.0)
    far = np.array([[50.0, 0.0], [0.0, 50.0], [-35.36, 35.36], [-50.0, -0.5], [1.0, 1.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        for name in an.CASES:
            d_star, field = an.optimal_field(name, far)
            outs = [d_star, field, an.ratio(name, far), an.grad_ratio(name, far), an.log_p_data(far),
                    an.grad_log_p_data(far), an.grad_log_p_g(name, far)]
            assert all(np.all(np.isfinite(o)) for o in outs if not (name == "C2" and o is outs[2]))
            assert np.all((d_star >= 0) & (d_star <= 1))
    # far from the modes p_g dominates for the Gaussian cases: field -> ∇ log r = −κ (x − nearest centre)
    c = an.case("C1")
    d_star, field = an.optimal_field("C1", np.array([[50.0, 0.0]]))
    assert d_star[0] == 0.0
    np.testing.assert_allclose(field[0], -c.r_kappa * (np.array([50.0, 0.0]) - 0.5 * (c.r_centres[0] + c.r_centres[1])),
                               rtol=1e-12)


def test_printed_c4_prefactor_is_off_by_two():
    """Prop. C.4 as printed (prefactor 15/4) is half the true p_data/p_g; the derived form is 15/2."""
    modes3 = 3.0 * MODES
    x = np.random.default_rng(7).uniform(-4.0, 4.0, size=(200, 2))
    true = _p_data(x, modes3) / multivariate_normal([3.0, 3.0], 3.0 * np.eye(2)).pdf(x)
    m = (30.0 * modes3 - 3.0) / 29.0
    terms = np.exp(-29.0 / 6.0 * ((x[:, None, :] - m) ** 2).sum(-1) + 5.0 / 29.0 * ((modes3 - 3.0) ** 2).sum(-1))
    printed = 15.0 / 4.0 * terms.sum(1)
    np.testing.assert_allclose(true / printed, 2.0, rtol=1e-10)
    coef, kappa, centres, offsets = an.derive_ratio_form(modes3, 0.1, np.full(4, 0.25), "gaussian", [3.0, 3.0], 3.0)
    assert coef == pytest.approx(7.5) and kappa == pytest.approx(29.0 / 3.0)
    np.testing.assert_allclose(centres, m, rtol=1e-13)
    np.testing.assert_allclose(offsets, 5.0 / 29.0 * ((modes3 - 3.0) ** 2).sum(-1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.05, 0.3])
def test_cone_model(sigma):
    rng = np.random.default_rng(99)
    centre = np.array([1.0, -1.0])
    rho = rng.uniform(0.02, 3.95, size=300) * sigma
    ang = rng.uniform(0, 2 * np.pi, size=300)
    u = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    x = centre + rho[:, None] * u
    field = an.cone_field(x, centre, sigma)
    np.testing.assert_allclose(np.linalg.norm(field, axis=1), 1.0 / (4 * sigma - rho), rtol=1e-12)
    np.testing.assert_allclose(an.cone_field_magnitude(rho, sigma), 1.0 / (4 * sigma - rho), rtol=1e-14)
    np.testing.assert_allclose(np.einsum("ij,ij->i", field, -u), np.linalg.norm(field, axis=1), rtol=1e-12)
    np.testing.assert_allclose(an.cone_d(x, centre, sigma), 0.5 - rho / (8 * sigma), rtol=1e-12)
    h = 1e-6 * sigma
    fd = _fd_grad(lambda y: np.log(an.cone_d(y, centre, sigma)), x, h=h)
    assert np.max(np.abs(field - fd) / np.linalg.norm(fd, axis=1, keepdims=True)) < 1e-6
    outside = centre + np.array([[4.001 * sigma, 0.0], [0.0, -5.0 * sigma]])
    assert np.all(np.isnan(an.cone_d(outside, centre, sigma))) and np.all(np.isnan(an.cone_field(outside, centre, sigma)))
    assert np.isnan(an.cone_field_magnitude(4.0 * sigma, sigma))
    np.testing.assert_array_equal(an.cone_field(centre[None], centre, sigma), [[0.0, 0.0]])
