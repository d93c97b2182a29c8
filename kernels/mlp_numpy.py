"""NumPy reference (the oracle) of the one-hidden-layer MLP discriminator ops (Durr et al. eq. 23-24, 28-29).

    D(x) = s * sum_i a_i sigma(w_i . x + b_i),   s = sqrt(2 / W)                       (eq. 23)
    L_D  = <D>_gen - <D>_target + c (|w|^2 + |a|^2 + |b|^2) + R                       (eq. 24)
    R    = (beta / N^2) sum_ab grad D(X_a)' Gamma_ab grad D(X_b)                       (eq. 28)

The regulariser enters the step only through its cotangent ``u`` (B, d, N):
dR/dphi = sum_a u_a . dG_a/dphi with G_a = grad_x D(X_a) and u_a = (2 beta / N) V_a, where
V = (1/N) Gamma G is the coupled velocity of the same coupling (engine's job; any coupling works).

Layout (feature-major, every array carries the run axis first):
    w (B, d, W)   b (B, W)   a (B, W)   samples (B, d, n)   lr, l2 (B,)
A run with lr == 0 is left untouched (that is how masked sub-steps are expressed).
Runs are processed in chunks that bound the (runs, n, W) temporaries; every per-run result is
independent of how runs are chunked or packed.
"""

from __future__ import annotations

import numpy as np

from .optim import adapt

TEMP_ELEMENTS = 1 << 22  # bound on a chunk's (runs x samples x W) temporaries


def activation(h, act):
    """sigma, sigma', sigma'' of the hidden pre-activations."""
    if act == "relu":
        on = (h > 0).astype(h.dtype)
        return h * on, on, np.zeros_like(h)
    if act == "tanh":
        t = np.tanh(h)
        d1 = 1 - t * t
        return t, d1, -2 * t * d1
    raise ValueError(f"unknown activation {act!r}")


def _pre(w, b, x):
    """Hidden pre-activations (B, n, W) = sum_j x_j w_j + b (explicit sum: no BLAS, pack-independent)."""
    h = x[:, 0, :, None] * w[:, 0, None, :]
    for j in range(1, w.shape[1]):
        h = h + x[:, j, :, None] * w[:, j, None, :]
    return h + b[:, None, :]


def _chunks(n_runs, per_run):
    step = max(1, TEMP_ELEMENTS // max(1, per_run))
    for start in range(0, n_runs, step):
        yield slice(start, min(n_runs, start + step))


def mlp_forward(w, b, a, x, act):
    """D(x) for samples x (B, d, n) -> (B, n)."""
    s = np.sqrt(2.0 / w.shape[2]).astype(w.dtype)
    out = np.empty((x.shape[0], x.shape[2]), dtype=w.dtype)
    for c in _chunks(w.shape[0], x.shape[2] * w.shape[2]):
        sig = activation(_pre(w[c], b[c], x[c]), act)[0]
        out[c] = s * (sig * a[c][:, None, :]).sum(-1)
    return out


def mlp_grad_x(w, b, a, x, act):
    """grad_x D at samples x (B, d, n) -> (B, d, n): s sum_i a_i sigma'(h_i) w_i."""
    s = np.sqrt(2.0 / w.shape[2]).astype(w.dtype)
    out = np.empty(x.shape, dtype=w.dtype)
    for c in _chunks(w.shape[0], x.shape[2] * w.shape[2]):
        d1 = activation(_pre(w[c], b[c], x[c]), act)[1]
        ad1 = d1 * a[c][:, None, :]
        for j in range(w.shape[1]):
            out[c, j] = s * (ad1 * w[c, j][:, None, :]).sum(-1)
    return out


def mlp_loss_grads(w, b, a, xg, xt, l2, u, act):
    """Gradients (gw (B,d,W), gb (B,W), ga (B,W)) of L_D (+ R through its cotangent u (B,d,N) or None)."""
    dt = w.dtype
    n, m = xg.shape[2], xt.shape[2]
    s = np.sqrt(2.0 / w.shape[2]).astype(dt)
    gw = np.empty_like(w)
    gb = np.empty_like(b)
    ga = np.empty_like(a)
    for c in _chunks(w.shape[0], (n + m) * w.shape[2]):
        wc, bc, ac = w[c], b[c], a[c]
        sg, d1g, d2g = activation(_pre(wc, bc, xg[c]), act)
        st, d1t, _ = activation(_pre(wc, bc, xt[c]), act)
        ga_c = s * (sg.sum(1) / dt.type(n) - st.sum(1) / dt.type(m))
        gb_c = s * ac * (d1g.sum(1) / dt.type(n) - d1t.sum(1) / dt.type(m))
        gw_c = np.empty_like(wc)
        for j in range(w.shape[1]):
            gw_c[:, j] = s * ac * ((d1g * xg[c, j][:, :, None]).sum(1) / dt.type(n)
                                   - (d1t * xt[c, j][:, :, None]).sum(1) / dt.type(m))
        if u is not None:
            uc = u[c]
            uw = uc[:, 0, :, None] * wc[:, 0, None, :]          # u_a . w_i  (B, N, W)
            for j in range(1, w.shape[1]):
                uw = uw + uc[:, j, :, None] * wc[:, j, None, :]
            ga_c = ga_c + s * (d1g * uw).sum(1)
            gb_c = gb_c + s * ac * (d2g * uw).sum(1)
            for j in range(w.shape[1]):
                gw_c[:, j] += s * ac * ((d2g * uw * xg[c, j][:, :, None]).sum(1) + (d1g * uc[:, j][:, :, None]).sum(1))
        two_c = (2 * l2[c]).astype(dt)
        ga[c] = ga_c + two_c[:, None] * ac
        gb[c] = gb_c + two_c[:, None] * bc
        gw[c] = gw_c + two_c[:, None, None] * wc
    return gw, gb, ga


def mlp_disc_step(w, b, a, xg, xt, lr, l2, u, act, opt=None):
    """One step on L_D for the whole ensemble, in place. lr (B,) (0 = skip run): gradient descent, or
    with ``opt`` (moments "m:w" ... "v:a" and "coef", see ``kernels.optim``) the adaptive update."""
    lr = np.asarray(lr, dtype=w.dtype)
    live = np.nonzero(lr != 0)[0]
    if live.size == 0:
        return
    gw, gb, ga = mlp_loss_grads(w[live], b[live], a[live], xg[live], xt[live], np.asarray(l2)[live],
                                None if u is None else u[live], act)
    if opt is not None:
        coef = np.asarray(opt["coef"], dtype=w.dtype)[live]
        for k, x, g in (("w", w, gw), ("b", b, gb), ("a", a, ga)):
            xs, ms, vs = x[live], opt["m:" + k][live], opt["v:" + k][live]
            adapt(np, xs, g, ms, vs, lr[live], coef)
            x[live], opt["m:" + k][live], opt["v:" + k][live] = xs, ms, vs
        return
    w[live] -= lr[live, None, None] * gw
    b[live] -= lr[live, None] * gb
    a[live] -= lr[live, None] * ga


def mlp_loss(w, b, a, xg, xt, l2, act, gamma_apply=None, beta=None):
    """L_D per run (B,) in float64, for tests: <D>_gen - <D>_tgt + c |phi|^2 (+ R if beta given).

    ``gamma_apply(G)`` returns V = (1/N) Gamma G for G (B, d, N); R = beta/N * sum_a G_a . V_a.
    """
    dg = mlp_forward(w, b, a, xg, act).mean(1)
    dtg = mlp_forward(w, b, a, xt, act).mean(1)
    reg = l2 * ((w ** 2).sum((1, 2)) + (b ** 2).sum(1) + (a ** 2).sum(1))
    out = dg - dtg + reg
    if beta is not None:
        g = mlp_grad_x(w, b, a, xg, act)
        n = xg.shape[2]
        out = out + beta / n * (g * gamma_apply(g)).sum((1, 2))
    return out
