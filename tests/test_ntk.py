"""NTK of one-hidden-layer generators (fastgan.ntk; Durr et al. Section III.A, Fig. 2, Appendix G)."""

import subprocess
import sys

import numpy as np
import pytest

from fastgan import ntk
from fastgan.ntk import (APPENDIX_G_ERF, APPENDIX_G_RELU, FIG2_ERF, FIG2_RELU, NTKSetup,
                         analytic_g1_g2, analytic_gram, analytic_ntk_one_hidden, extract_g1_g2,
                         gaussian_expectations, gram_from_analytic, sample_sphere)

SETUPS = {
    "std-relu": NTKSetup("relu", sw2=0.7, sb2=0.3, sa2=1.5, param="standard", out_scale=2.0),
    "std-erf": NTKSetup("erf", sw2=0.7, sb2=0.3, sa2=1.5, param="standard", out_scale=2.0),
    "ntk-relu": NTKSetup("relu", sw2=1.3, sb2=0.4, sa2=0.8, param="ntk", out_scale=1.0),
    "ntk-erf": NTKSetup("erf", sw2=1.3, sb2=0.4, sa2=0.8, param="ntk", out_scale=1.0),
    "std-relu-nobias": NTKSetup("relu", sw2=0.7, sb2=0.3, sa2=1.5, train_bias=False),
}


def test_import_does_not_pull_torch():
    code = "import sys, fastgan, fastgan.ntk; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- analytic kernels

@pytest.mark.parametrize("act", ["relu", "erf"])
def test_gaussian_expectations_match_monte_carlo(act):
    rng = np.random.default_rng(7)
    m = 1_000_000
    for var1, var2, rho in [(1.0, 1.0, 0.0), (0.5, 2.0, 0.6), (1.3, 0.7, -0.4), (2.0, 2.0, 0.95)]:
        cov = rho * np.sqrt(var1 * var2)
        z1, z2 = rng.standard_normal((2, m))
        u = np.sqrt(var1) * z1
        v = np.sqrt(var2) * (rho * z1 + np.sqrt(1 - rho ** 2) * z2)
        if act == "relu":
            mc_ss = np.mean(np.maximum(u, 0) * np.maximum(v, 0))
            mc_dd = np.mean((u > 0) & (v > 0))
        else:
            from scipy.special import erf
            mc_ss = np.mean(erf(u) * erf(v))
            mc_dd = np.mean(4 / np.pi * np.exp(-u * u - v * v))
        k_ss, k_dd = gaussian_expectations(act, var1, var2, cov)
        scale_ss = np.sqrt(np.mean(np.maximum(u, 0) ** 2) * np.mean(np.maximum(v, 0) ** 2)) \
            if act == "relu" else 1.0
        # 1% relative, or 1% of the natural scale where the expectation itself is near 0
        assert abs(k_ss - mc_ss) <= 0.01 * max(abs(mc_ss), 0.1 * scale_ss), (var1, var2, rho)
        assert abs(k_dd - mc_dd) <= 0.01 * abs(mc_dd), (var1, var2, rho)


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_analytic_kernel_symmetric_and_diagonal(name):
    s = SETUPS[name]
    cos = np.linspace(-1, 1, 41)
    a = analytic_ntk_one_hidden(s, cos, 0.8, 1.7, dim=30)
    b = analytic_ntk_one_hidden(s, cos, 1.7, 0.8, dim=30)
    np.testing.assert_allclose(a, b, rtol=1e-13)
    # angle 0, equal norms r: the diagonal formula
    r, dim = 1.3, 30
    kw = s.weight_gain(dim)
    q = kw * r * r + s.sb2
    if s.act == "relu":
        e_ss, e_dd = q / 2, 0.5
    else:
        e_ss, e_dd = 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)), 4 / np.pi / np.sqrt(1 + 4 * q)
    bias = 1.0 if s.train_bias else 0.0
    if s.param == "standard":
        diag = s.out_scale * (e_ss + s.sa2 * e_dd * (r * r + bias))
    else:
        diag = s.out_scale * s.sa2 * (e_ss + e_dd * (kw * r * r + s.sb2 * bias))
    assert analytic_ntk_one_hidden(s, 1.0, r, r, dim) == pytest.approx(diag, rel=1e-12)
    assert analytic_g1_g2(s, dim, r).g1 == pytest.approx(diag, rel=1e-12)


def test_g2_sphere_average():
    # In high dim the angle concentrates at π/2: g2_mean ≈ g2, small spread; in dim 3 it does not.
    hi = analytic_g1_g2(APPENDIX_G_RELU, 256)
    assert hi.g2_mean == pytest.approx(hi.g2, rel=0.01) and hi.g2_std < 0.15 * hi.g2
    # Monte-Carlo over pairs of points on the sphere in 5 dims
    s = SETUPS["std-erf"]
    lo = analytic_g1_g2(s, 5, 1.0)
    X, Y = sample_sphere(200_000, 5, 1.0, 1), sample_sphere(200_000, 5, 1.0, 2)
    vals = analytic_ntk_one_hidden(s, np.sum(X * Y, axis=1), 1.0, 1.0, 5)
    assert lo.g2_mean == pytest.approx(vals.mean(), rel=3e-3)
    assert lo.g2_std == pytest.approx(vals.std(), rel=2e-2)


def test_appendix_g_numbers_match_paper():
    # Fig. 20 / Appendix G: (g1, g2) ≈ (4.5, 1.1) ReLU and (10.6, 5.2) erf
    r = analytic_g1_g2(APPENDIX_G_RELU, 256)
    e = analytic_g1_g2(APPENDIX_G_ERF, 256)
    assert r.g1 == pytest.approx(4.5, abs=0.1) and r.g2 == pytest.approx(1.1, abs=0.1)
    assert e.g1 == pytest.approx(10.6, abs=0.1) and e.g2 == pytest.approx(5.2, abs=0.1)


def test_fig2_universality_analytic():
    r, e = analytic_g1_g2(FIG2_RELU, 100), analytic_g1_g2(FIG2_ERF, 100)
    assert r.g1 == pytest.approx(e.g1, rel=0.05) and r.g2 == pytest.approx(e.g2, rel=0.05)


# ---------------------------------------------------------------- Gram matrices

@pytest.mark.parametrize("setup", [FIG2_RELU, FIG2_ERF, APPENDIX_G_RELU], ids=["f2relu", "f2erf", "grelu"])
def test_gram_from_analytic_psd(setup):
    g = gram_from_analytic(setup, 60, 20, 1.0, seed=3)
    assert g.shape == (60, 60)
    np.testing.assert_array_equal(g, g.T)
    ev = np.linalg.eigvalsh(g)
    assert ev.min() >= -1e-10 * ev.max()
    np.testing.assert_allclose(np.diag(g), analytic_g1_g2(setup, 20).g1, rtol=1e-12)
    st = extract_g1_g2(g)
    assert st.g1_std < 1e-12 and st.g2_std > 0


def test_extract_g1_g2():
    n, g1, g2 = 7, 3.0, 0.5
    g = g2 * np.ones((n, n)) + (g1 - g2) * np.eye(n)
    st = extract_g1_g2(g)
    assert (st.g1, st.g2, st.g1_std, st.g2_std) == pytest.approx((g1, g2, 0.0, 0.0))


# ---------------------------------------------------------------- empirical NTK (torch)

def _autograd_ntk(setup, X, W, seed, chunk):
    """J Jᵀ by autograd over all parameters (the same draws as empirical_ntk_one_hidden)."""
    torch = pytest.importorskip("torch")
    Xt = torch.as_tensor(X, dtype=torch.float64)
    n, dim = Xt.shape
    w, b, a = (torch.cat(p) for p in zip(*ntk.init_params(setup, W, dim, seed, torch.float64, chunk)))
    c = setup.out_scale
    if setup.param == "standard":
        params = [a.clone().requires_grad_(), w.clone().requires_grad_()]
        if setup.train_bias:
            params.append(b.clone().requires_grad_())

        def f(x):
            bb = params[2] if setup.train_bias else b
            return np.sqrt(c / W) * torch.sum(params[0] * act(x @ params[1].T + bb))
    else:
        kw, sb, sa = np.sqrt(setup.weight_gain(dim)), np.sqrt(setup.sb2), np.sqrt(setup.sa2)
        params = [(a / sa).clone().requires_grad_(), (w / kw).clone().requires_grad_(),
                  (b / sb).clone().requires_grad_()]

        def f(x):
            h = kw * (x @ params[1].T) + sb * params[2]
            return np.sqrt(c / W) * sa * torch.sum(params[0] * act(h))
    act = torch.relu if setup.act == "relu" else torch.erf
    rows = []
    for i in range(n):
        grads = torch.autograd.grad(f(Xt[i:i + 1]), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    J = torch.stack(rows)
    return (J @ J.T).numpy()


@pytest.mark.parametrize("chunk", [7, 3], ids=["one-chunk", "ragged-chunks"])
@pytest.mark.parametrize("name", sorted(SETUPS))
def test_closed_form_equals_autograd(name, chunk):
    pytest.importorskip("torch")
    s = SETUPS[name]
    X = np.random.default_rng(0).standard_normal((5, 4))
    emp = ntk.empirical_ntk_one_hidden(X, 7, s, seed=11, chunk=chunk)
    ref = _autograd_ntk(s, X, 7, seed=11, chunk=chunk)
    assert np.abs(emp - ref).max() <= 1e-10 * np.abs(ref).max()
    np.testing.assert_array_equal(emp, emp.T)


def test_empirical_deterministic():
    pytest.importorskip("torch")
    X = sample_sphere(6, 10, 1.0, 0)
    g1 = ntk.empirical_ntk_one_hidden(X, 100, FIG2_ERF, seed=5, chunk=16)
    g2 = ntk.empirical_ntk_one_hidden(X, 100, FIG2_ERF, seed=5, chunk=16)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("setup", [FIG2_RELU, FIG2_ERF, APPENDIX_G_RELU, APPENDIX_G_ERF],
                         ids=["fig2-relu", "fig2-erf", "appG-relu", "appG-erf"])
def test_empirical_matches_analytic_wide(setup):
    pytest.importorskip("torch")
    dim = 100
    X = sample_sphere(50, dim, 1.0, 4)
    gram = ntk.empirical_ntk_one_hidden(X, 2 ** 15, setup, seed=9)
    emp, ana = extract_g1_g2(gram), analytic_g1_g2(setup, dim)
    assert emp.g1 == pytest.approx(ana.g1, rel=0.05)
    assert emp.g2 == pytest.approx(ana.g2_mean, rel=0.05)
    # entrywise too, against the analytic kernel at the actual angles (finite-width noise on single
    # entries is a few % at this width, from the a² Bernoulli-like terms of ReLU)
    np.testing.assert_allclose(gram, analytic_gram(setup, X), rtol=0.12)


@pytest.mark.parametrize("setup", [FIG2_RELU, FIG2_ERF], ids=["relu", "erf"])
def test_fig2_concentration(setup):
    """Fig. 2: 50 inputs on the unit sphere in 100 dims, width 2048: the diagonal and the
    off-diagonal NTK values concentrate on two numbers close to the analytic g1, g2."""
    pytest.importorskip("torch")
    X = sample_sphere(50, 100, 1.0, 0)
    st = extract_g1_g2(ntk.empirical_ntk_one_hidden(X, 2048, setup, seed=1))
    ana = analytic_g1_g2(setup, 100)
    assert st.g1_std / st.g1 < 0.05 and st.g2_std / st.g2 < 0.1
    assert st.g1 == pytest.approx(ana.g1, rel=0.05)
    assert st.g2 == pytest.approx(ana.g2_mean, rel=0.05)
