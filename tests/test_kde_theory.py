"""The KDE density-ratio models against closed forms and autograd (NumPy reference, float64).

Sinn & Rawat (Kernel GAN): the limits of K_n (eq. 12) and its exact gradient; the fitting-to-collapse
paper: the NSGAN field grad log d* against autograd and against the closed forms of Appendix C (C.1-C.3).
"""

import math

import numpy as np
import pytest

from fastgan import analytic
from fastgan.families.kde_maths import kernel_gan, mixture_log_density, nsgan_field, ratio_field_at
from fastgan.kernels import kde_numpy as REF
from fastgan.kernels.ops import load_ops

OPS = load_ops("numpy")
LOG4 = math.log(4.0)


def _bw(B, sig):
    sig = np.atleast_1d(np.asarray(sig, dtype=np.float64))
    return np.tile(sig, (B, 1)), np.full((B, sig.size), -math.log(sig.size))


def _setup(rng, B=2, d=2, N=7, M=9, spread=1.0):
    Y = spread * rng.normal(size=(B, d, N))
    X = spread * rng.normal(size=(B, d, M)) + 0.3
    logwX = np.full((B, M), -math.log(M))
    return Y, X, logwX


def _K(Y, X, logwX, sig, phi):
    bw, lm = _bw(Y.shape[0], sig)
    return kernel_gan(OPS, Y, X, logwX, bw, lm, np.full(Y.shape[0], phi))


def test_log_density_is_the_direct_sum_and_survives_float32_extremes(rng):
    B, d, n, m = 2, 3, 5, 6
    q, x = rng.normal(size=(B, d, n)), rng.normal(size=(B, d, m))
    logw = np.log(rng.dirichlet(np.ones(m), size=B))
    bw, lm = np.array([[0.5, 2.0]] * B), np.log(np.array([[0.3, 0.7]] * B))
    direct = np.zeros((B, n))
    for s in range(2):
        s2 = bw[0, s] ** 2
        r2 = ((q[:, :, :, None] - x[:, :, None, :]) ** 2).sum(1)
        direct += np.exp(lm[0, s]) * (np.exp(logw)[:, None, :] * np.exp(-r2 / (2 * s2))
                                      / (2 * np.pi * s2) ** (d / 2)).sum(2)
    np.testing.assert_allclose(REF.kde_log_density(q, x, logw, bw, lm), np.log(direct), rtol=1e-12)
    # float32: d = 50, sigma = 0.01 (sigma^-d = 1e100) and a query 100 widths away (exp(-5e3)): finite logs
    q32 = np.zeros((1, 50, 2), dtype=np.float32)
    q32[0, 0, 1] = 1.0
    x32 = np.zeros((1, 50, 1), dtype=np.float32)
    out = REF.kde_log_density(q32, x32, np.zeros((1, 1), np.float32), np.full((1, 1), 0.01, np.float32),
                              np.zeros((1, 1), np.float32))
    want = -25 * math.log(2 * math.pi * 1e-4) - np.array([0.0, 0.5 / 1e-4])
    np.testing.assert_allclose(out[0], want, rtol=1e-6)
    # an empty sample (every weight -inf) has log density -inf, not NaN
    empty = REF.kde_log_density(q, x, np.full((B, m), -np.inf), bw, lm)
    assert np.all(empty == -np.inf)


@pytest.mark.parametrize("phi", [0.0, 0.05])
def test_objective_limits(rng, phi):
    Y, X, logwX = _setup(rng)
    # sigma -> infinity: every density equals k(0), K_n -> 2 log(1/2) = -log 4
    K, _ = _K(Y, X, logwX, 1e5, phi)
    np.testing.assert_allclose(K, -LOG4, atol=1e-8)
    # sigma -> 0 with distinct points: P(X_i) >> Q(X_i), Q(Y_l) >> P(Y_l), K_n -> 0 (phi = 0)
    if phi == 0.0:
        K, _ = _K(Y, X, logwX, 1e-3, 0.0)
        np.testing.assert_allclose(K, 0.0, atol=1e-10)


@pytest.mark.parametrize("sig", [0.01, 0.3, 5.0, [0.2, 1.5]])
@pytest.mark.parametrize("phi", [0.0, 1e-3, 10.0])
def test_objective_is_minus_log4_for_a_permutation_of_the_data(rng, sig, phi):
    B, d, N = 2, 2, 11
    X = rng.normal(size=(B, d, N))
    Y = X[:, :, rng.permutation(N)]
    K, grad = _K(Y, X, np.full((B, N), -math.log(N)), sig, phi)
    np.testing.assert_allclose(K, -LOG4, rtol=0, atol=1e-12)


def test_large_bandwidth_gradient_is_mean_matching(rng):
    Y, X, logwX = _setup(rng, N=6, M=8)
    sig = 300.0
    _, g = _K(Y, X, logwX, sig, 0.0)
    lhs = sig ** 2 * Y.shape[2] * g
    rhs = -(X.mean(2) - Y.mean(2))[:, :, None] * np.ones_like(Y)
    np.testing.assert_allclose(lhs, rhs, rtol=2e-3, atol=2e-4)


def _torch_K(Y, X, wX, sigmas, mix, phi):
    import torch
    d = Y.shape[0]

    def kde(q, c, w):
        r2 = ((q[:, :, None] - c[:, None, :]) ** 2).sum(0)
        out = 0
        for s, pi in zip(sigmas, mix):
            out = out + pi * (w[None, :] * torch.exp(-r2 / (2 * s * s)) / (2 * math.pi * s * s) ** (d / 2)).sum(1)
        return out
    N = Y.shape[1]
    wY = torch.full((N,), 1.0 / N, dtype=torch.float64)
    PX, QX, PY, QY = kde(X, X, wX), kde(X, Y, wY), kde(Y, X, wX), kde(Y, Y, wY)
    return (wX * torch.log((PX + phi) / (PX + QX + 2 * phi))).sum() + torch.log((QY + phi) / (PY + QY + 2 * phi)).mean()


@pytest.mark.parametrize("sig", [0.7, [0.4, 1.3]])
@pytest.mark.parametrize("phi", [0.0, 0.02])
def test_gradient_matches_autograd(rng, sig, phi):
    torch = pytest.importorskip("torch")
    Y, X, _ = _setup(rng, B=2, N=6, M=5)
    wX = rng.dirichlet(np.ones(5), size=2)                 # weighted data (point masses)
    K, g = _K(Y, X, np.log(wX), sig, phi)
    sigmas = list(np.atleast_1d(sig))
    mix = [1.0 / len(sigmas)] * len(sigmas)
    for b in range(2):
        Yt = torch.tensor(Y[b], requires_grad=True)
        Kt = _torch_K(Yt, torch.tensor(X[b]), torch.tensor(wX[b]), sigmas, mix, phi)
        Kt.backward()
        np.testing.assert_allclose(K[b], Kt.item(), rtol=1e-12)
        np.testing.assert_allclose(g[b], Yt.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_gradient_matches_central_differences(rng):
    Y, X, logwX = _setup(rng, B=1, d=3, N=5, M=4)
    _, g = _K(Y, X, logwX, [0.5, 1.0], 0.01)
    h = 1e-6
    num = np.zeros_like(Y)
    for j in range(3):
        for m in range(5):
            Yp, Ym = Y.copy(), Y.copy()
            Yp[0, j, m] += h
            Ym[0, j, m] -= h
            num[0, j, m] = (_K(Yp, X, logwX, [0.5, 1.0], 0.01)[0][0] - _K(Ym, X, logwX, [0.5, 1.0], 0.01)[0][0]) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("exact", [True, False])
def test_nsgan_field_matches_autograd_of_log_dstar(rng, exact):
    torch = pytest.importorskip("torch")
    B, d, N, M = 1, 2, 6, 5
    Z = rng.normal(size=(B, d, N))
    sig = 0.6
    bw, lm = _bw(B, sig)
    means, logw, stds = rng.normal(size=(B, 3, d)), np.log(np.array([[0.2, 0.3, 0.5]])), np.array([[0.3, 0.5, 0.8]])
    X = rng.normal(size=(B, d, M))
    logwX = np.full((B, M), -math.log(M))
    dstar, field = nsgan_field(OPS, Z, bw, lm, data=(X, logwX), exact=(means, logw, stds) if exact else None)
    # autograd of log d*(z) = log p_data(z) - log(p_data(z) + p_g(z)) with p_g the (fixed) particles' KDE
    Zc = torch.tensor(Z[0])
    z = torch.tensor(Z[0], requires_grad=True)

    def gauss(q, c, s, w):
        r2 = ((q[:, :, None] - c[:, None, :]) ** 2).sum(0)
        return (w[None, :] * torch.exp(-r2 / (2 * s[None, :] ** 2)) / (2 * math.pi * s[None, :] ** 2) ** (d / 2)).sum(1)
    pg = gauss(z, Zc, torch.full((N,), sig, dtype=torch.float64), torch.full((N,), 1.0 / N, dtype=torch.float64))
    if exact:
        pd = gauss(z, torch.tensor(means[0].T), torch.tensor(stds[0]), torch.tensor(np.exp(logw[0])))
    else:
        pd = gauss(z, torch.tensor(X[0]), torch.full((M,), sig, dtype=torch.float64), torch.full((M,), 1.0 / M, dtype=torch.float64))
    logd = torch.log(pd) - torch.log(pd + pg)
    logd.sum().backward()
    np.testing.assert_allclose(dstar[0], (pd / (pd + pg)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(field[0], z.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_mixture_log_density_matches_the_target():
    from fastgan.targets import make_target
    import fastgan
    t = make_target(fastgan.default_config())
    z = np.random.default_rng(3).normal(size=(1, 2, 50)) * 2
    lp, g = mixture_log_density(np, z, t.means[None], np.log(t.weights)[None], t.stds[None])
    np.testing.assert_allclose(lp[0], t.log_density(z[0].T), rtol=1e-12)
    h = 1e-6
    e = np.array([h, 0.0])[None, :, None]
    num = (t.log_density((z + e)[0].T) - t.log_density((z - e)[0].T)) / (2 * h)
    np.testing.assert_allclose(g[0, 0], num, rtol=1e-5, atol=1e-6)


def _sample_pg(name, n, rng):
    if name == "C1":
        return rng.normal(scale=math.sqrt(0.2), size=(n, 2))
    if name == "C2":
        return rng.uniform(-2, 2, size=(n, 2))
    return 1.0 + rng.normal(size=(n, 2))


@pytest.mark.parametrize("name", analytic.CASES)
def test_simulated_field_matches_appendix_c(name):
    """p_g is the KDE (bandwidth h = 0.15) of 200 000 samples of the case's generator density, p_data
    the exact mixture; the reference is the Appendix C closed form for the smoothed generator density
    p_g * N(0, h^2) (the KDE's expectation: variance v + h^2 for C1 and C3, unchanged inside the square
    for C2). Where p_g is well sampled the simulated field agrees within the KDE's sampling error
    (|grad log p_g| noise ~ (8 pi p_g n h^4)^-1/2 <= 0.1)."""
    rng = np.random.default_rng(11)
    h = 0.15
    Z = _sample_pg(name, 200_000, rng).T[None].copy()
    c = analytic.case(name)
    exact = (np.asarray(c.data_means, dtype=np.float64)[None], np.log(np.asarray(c.data_weights))[None],
             np.full((1, 4), math.sqrt(c.data_var)))
    centre = np.array([1.0, 1.0]) if name == "C3" else np.zeros(2)
    q = centre + rng.uniform(-1.2, 1.2, size=(80, 2))
    lpg = analytic.log_p_g(name, q)
    q = q[lpg > lpg.max() + math.log(0.4)]                   # well inside p_g's bulk
    assert len(q) >= 15
    bw, lm = _bw(1, h)
    dstar, field = ratio_field_at(OPS, q.T[None].copy(), Z, bw, lm, exact=exact)
    d_ref, f_ref = analytic.optimal_field(analytic.smoothed_case(name, h), q)
    np.testing.assert_allclose(dstar[0], d_ref, atol=0.02)
    err = np.linalg.norm(field[0].T - f_ref, axis=1) / np.maximum(np.linalg.norm(f_ref, axis=1), 1.0)
    assert np.median(err) < 0.05 and np.max(err) < 0.15, (np.median(err), np.max(err))
    # and the smoothing is a small correction: the unsmoothed closed form is close too
    d0, _ = analytic.optimal_field(name, q)
    np.testing.assert_allclose(dstar[0], d0, atol=0.1)


def test_cone_model_field():
    """Fitting to collapse, Assumption 4.1: near a mode the discriminator is a cone,
    |grad d / d| = 1 / (4 sigma - r)."""
    sigma, centre = 0.1, np.array([1.0, -1.0])
    r = np.array([0.0, 0.05, 0.2, 0.39])
    x = centre + r[:, None] * np.array([[0.6, 0.8]])
    f = analytic.cone_field(x[1:], centre, sigma)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1 / (4 * sigma - r[1:]), rtol=1e-12)
    np.testing.assert_allclose(analytic.cone_field_magnitude(r, sigma), 1 / (4 * sigma - r))
