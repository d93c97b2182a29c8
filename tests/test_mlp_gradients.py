"""MLP loss gradients and grad_x D against central differences (float64, 1e-7 relative), eq. 29 vs eq. 28."""

import numpy as np
import pytest

from fastgan.couplings import coarse_gram
from fastgan.kernels import deep_mlp
from fastgan.kernels import mlp_numpy as M
from fastgan.kernels.coupling_numpy import coupled_velocity_coarse, coupled_velocity_gram


def _params(rng, B=2, d=2, W=13):
    w = rng.normal(size=(B, d, W))
    b = rng.normal(scale=1.5, size=(B, W))
    a = rng.normal(size=(B, W))
    return w, b, a


def _fd(f, arr, idx, eps=1e-6):
    old = arr[idx]
    arr[idx] = old + eps
    fp = f()
    arr[idx] = old - eps
    fm = f()
    arr[idx] = old
    return (fp - fm) / (2 * eps)


def _check(analytic, numeric, rtol=1e-7):
    scale = max(1.0, np.abs(numeric).max())
    assert np.abs(analytic - numeric).max() <= rtol * scale, (analytic, numeric)


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_mlp_loss_gradient_central_differences(rng, act, d, beta):
    B, N, Mm = 2, 7, 5
    w, b, a = _params(rng, B, d)
    xg = rng.normal(size=(B, d, N))
    xt = rng.normal(size=(B, d, Mm))
    l2 = np.array([0.03, 0.1])
    g1, g2 = np.array([3.0, 2.0]), np.array([0.5, 1.5])
    gam = lambda G: coupled_velocity_coarse(G, g1, g2)  # noqa: E731
    u = None
    if beta:
        u = 2 * beta / N * gam(M.mlp_grad_x(w, b, a, xg, act))
    gw, gb, ga = M.mlp_loss_grads(w, b, a, xg, xt, l2, u, act)
    loss = lambda: M.mlp_loss(w, b, a, xg, xt, l2, act, gam, beta if beta else None).sum()  # noqa: E731
    for arr, g in ((w, gw), (b, gb), (a, ga)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            num[idx] = _fd(loss, arr, idx)
        _check(g, num)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_grad_x_central_differences(rng, act):
    w, b, a = _params(rng, 2, 3)
    x = rng.normal(size=(2, 3, 6))
    g = M.mlp_grad_x(w, b, a, x, act)
    f = lambda: M.mlp_forward(w, b, a, x, act).sum()  # noqa: E731
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        num[idx] = _fd(f, x, idx)
    _check(g, num)


def test_eq29_equals_eq28_with_explicit_gram(rng):
    B, d, N = 3, 2, 9
    w, b, a = _params(rng, B, d)
    X = rng.normal(size=(B, d, N))
    G = M.mlp_grad_x(w, b, a, X, "relu")
    ratio = np.array([0.0, 0.2, 1.0])
    g1 = N / (1 + ratio * (N - 1))
    g2 = ratio * g1
    beta = 2.5
    for r in range(B):
        gam = coarse_gram(g1[r], g2[r], N)
        eq28 = beta / N ** 2 * np.einsum("ja,ab,jb->", G[r], gam, G[r])
        mean = G[r].mean(1)
        eq29 = beta * (g2[r] * mean @ mean + (g1[r] - g2[r]) / N * (G[r] ** 2).sum(0).mean())
        assert eq28 == pytest.approx(eq29, rel=1e-12)
        # and the engine's form beta/N sum_a G_a . V_a with V from the coupling op
        V = coupled_velocity_coarse(G[r:r + 1], g1[r:r + 1], g2[r:r + 1])[0]
        assert beta / N * (G[r] * V).sum() == pytest.approx(eq28, rel=1e-12)
        V2 = coupled_velocity_gram(G[r:r + 1], gam[None])[0]
        np.testing.assert_allclose(V2, V, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_deep_mlp_gradients(rng, act, beta):
    B, d, H, L, N, Mm = 2, 2, 5, 3, 6, 4
    p = {}
    fans = [d] + [H] * L
    for l in range(1, L + 1):
        p[f"W{l}"] = rng.normal(scale=0.8, size=(B, fans[l - 1], fans[l]))
        p[f"b{l}"] = rng.normal(scale=0.5, size=(B, fans[l]))
    p["v"] = rng.normal(size=(B, H))
    p["c"] = rng.normal(size=B)
    xg = rng.normal(size=(B, d, N))
    xt = rng.normal(size=(B, d, Mm))
    l2 = np.array([0.01, 0.05])
    g1, g2 = np.array([2.0, 3.0]), np.array([0.4, 1.0])
    gam = lambda G: coupled_velocity_coarse(G, g1, g2)  # noqa: E731
    u = 2 * beta / N * gam(deep_mlp.deep_grad_x(p, xg, act)) if beta else None
    grads = deep_mlp.deep_loss_grads(p, xg, xt, l2, u, act)
    loss = lambda: deep_mlp.deep_loss(p, xg, xt, l2, act, gam, beta if beta else None).sum()  # noqa: E731
    for k, arr in p.items():
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            num[idx] = _fd(loss, arr, idx)
        _check(grads[k], num)
    # grad_x
    x = rng.normal(size=(B, d, 3))
    gx = deep_mlp.deep_grad_x(p, x, act)
    f = lambda: deep_mlp.deep_forward(p, x, act).sum()  # noqa: E731
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        num[idx] = _fd(f, x, idx)
    _check(gx, num)


def test_step_is_gradient_descent_and_lr_zero_skips(rng):
    w, b, a = _params(rng, 2, 2)
    xg, xt = rng.normal(size=(2, 2, 5)), rng.normal(size=(2, 2, 4))
    l2 = np.array([0.1, 0.1])
    gw, gb, ga = M.mlp_loss_grads(w, b, a, xg, xt, l2, None, "relu")
    w0, b0, a0 = w.copy(), b.copy(), a.copy()
    M.mlp_disc_step(w, b, a, xg, xt, np.array([0.3, 0.0]), l2, None, "relu")
    np.testing.assert_allclose(w[0], w0[0] - 0.3 * gw[0])
    np.testing.assert_allclose(a[0], a0[0] - 0.3 * ga[0])
    np.testing.assert_allclose(b[0], b0[0] - 0.3 * gb[0])
    assert np.array_equal(w[1], w0[1]) and np.array_equal(a[1], a0[1]) and np.array_equal(b[1], b0[1])




@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_against_torch_autograd(rng, act):
    torch = pytest.importorskip("torch")
    B, d, W, N, Mm = 1, 2, 11, 6, 5
    w, b, a = _params(rng, B, d, W)
    xg, xt = rng.normal(size=(B, d, N)), rng.normal(size=(B, d, Mm))
    l2 = np.array([0.02])
    g1, g2, beta = 4.0, 1.0, 1.3
    gam_np = coarse_gram(g1, g2, N)
    u = 2 * beta / N * coupled_velocity_coarse(M.mlp_grad_x(w, b, a, xg, act), np.array([g1]), np.array([g2]))
    gw, gb, ga = M.mlp_loss_grads(w, b, a, xg, xt, l2, u, act)

    tw = torch.tensor(w[0], requires_grad=True)
    tb = torch.tensor(b[0], requires_grad=True)
    ta = torch.tensor(a[0], requires_grad=True)
    s = (2.0 / W) ** 0.5
    sig = torch.relu if act == "relu" else torch.tanh

    def D(x):  # x (n, d)
        return s * (sig(x @ tw + tb) * ta).sum(-1)

    Xg = torch.tensor(xg[0].T, requires_grad=True)
    Xt = torch.tensor(xt[0].T)
    L = D(Xg).mean() - D(Xt).mean() + l2[0] * ((tw ** 2).sum() + (tb ** 2).sum() + (ta ** 2).sum())
    G = torch.autograd.grad(D(Xg).sum(), Xg, create_graph=True)[0]          # (N, d)
    R = beta / N ** 2 * torch.einsum("aj,ab,bj->", G, torch.tensor(gam_np), G)
    (L + R).backward()
    np.testing.assert_allclose(gw[0], tw.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gb[0], tb.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ga[0], ta.grad.numpy(), rtol=1e-9, atol=1e-12)
