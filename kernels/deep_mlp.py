"""Deep MLP discriminator ops (Figs. 3-4: 4 hidden ReLU layers of width 512), any array module.

    a_0 = x,  z_l = a_{l-1} W_l + b_l,  a_l = sigma(z_l),  D = a_L . v + c

Matmul-bound, so one implementation serves every backend: ``xp`` is numpy (the reference, also
used by the numba backend, whose BLAS is the fast path here) or cupy (cuBLAS) on the GPU.

Parameters ``p`` is a dict of ensemble arrays: ``W{l}`` (B, fan_in, fan_out), ``b{l}`` (B, fan_out)
for l = 1..L, ``v`` (B, H), ``c`` (B,). Samples are feature-major (B, d, n) like every op.

The loss gradient is ordinary backprop. The regulariser gradient (eq. 28) is reverse-mode over
the forward-mode tangent: with u (B, d, N) the cotangent of grad_x D at the generated points,
Phi = sum_a v . adot_{L,a} where adot_0 = u, zdot_l = adot_{l-1} W_l, adot_l = sigma'(z_l) zdot_l;
its parameter gradient needs sigma'' (zero for ReLU, -2 t (1 - t^2) for tanh). Both passes are
fused into one backward sweep over the concatenated (generated, target) samples.
"""

from __future__ import annotations

import numpy as np

from .optim import adapt


def _act(xp, z, act):
    if act == "relu":
        on = (z > 0).astype(z.dtype)
        return z * on, on, None
    t = xp.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def depth_of(p) -> int:
    return sum(1 for k in p if k.startswith("W"))


def _forward(xp, p, x, act):
    """x (B, n, d) -> lists of (z_l, a_l, sigma'_l, sigma''_l), output D (B, n)."""
    a = x
    layers = []
    for l in range(1, depth_of(p) + 1):
        z = xp.matmul(a, p[f"W{l}"]) + p[f"b{l}"][:, None, :]
        s, d1, d2 = _act(xp, z, act)
        layers.append((a, d1, d2))
        a = s
    out = xp.matmul(a, p["v"][:, :, None])[..., 0] + p["c"][:, None]
    return layers, a, out


def deep_forward(p, x, act, xp=np):
    """D at samples x (B, d, n) -> (B, n)."""
    return _forward(xp, p, xp.swapaxes(x, 1, 2), act)[2]


def deep_grad_x(p, x, act, xp=np):
    """grad_x D at samples x (B, d, n) -> (B, d, n)."""
    layers, _, _ = _forward(xp, p, xp.swapaxes(x, 1, 2), act)
    delta = xp.broadcast_to(p["v"][:, None, :], layers[-1][1].shape)
    for l in range(len(layers), 0, -1):
        dz = delta * layers[l - 1][1]
        delta = xp.matmul(dz, xp.swapaxes(p[f"W{l}"], 1, 2))
    return xp.swapaxes(delta, 1, 2)


def deep_loss_grads(p, xg, xt, l2, u, act, xp=np):
    """Gradients of L_D (+ R via its cotangent u (B, d, N) or None), a dict like ``p``."""
    B, _, n = xg.shape
    m = xt.shape[2]
    dt = p["v"].dtype
    x = xp.concatenate([xp.swapaxes(xg, 1, 2), xp.swapaxes(xt, 1, 2)], axis=1)       # (B, n+m, d)
    eps = xp.concatenate([xp.full(n, 1.0 / n, dtype=dt), xp.full(m, -1.0 / m, dtype=dt)])
    layers, aL, _ = _forward(xp, p, x, act)
    L = len(layers)
    grads = {}
    adj_p = eps[None, :, None] * p["v"][:, None, :]                                    # (B, n+m, H)
    grads["v"] = xp.matmul(eps[None, None, :], aL)[:, 0, :]
    grads["c"] = xp.zeros(B, dtype=dt) + eps.sum()
    if u is not None:
        # forward tangents on the generated samples (zero on the target samples)
        ut = xp.concatenate([xp.swapaxes(u, 1, 2), xp.zeros((B, m, u.shape[1]), dtype=dt)], axis=1)
        tang = [ut]
        zdots = []
        for l in range(1, L + 1):
            zdot = xp.matmul(tang[-1], p[f"W{l}"])
            zdots.append(zdot)
            tang.append(zdot * layers[l - 1][1])
        adj_t = xp.broadcast_to(p["v"][:, None, :], adj_p.shape)
        grads["v"] = grads["v"] + tang[-1].sum(1)
    for l in range(L, 0, -1):
        a_prev, d1, d2 = layers[l - 1]
        W = p[f"W{l}"]
        adj_zp = adj_p * d1
        if u is not None:
            adj_zt = adj_t * d1
            if d2 is not None:
                adj_zp = adj_zp + d2 * zdots[l - 1] * adj_t
            gW = xp.matmul(xp.swapaxes(a_prev, 1, 2), adj_zp) + xp.matmul(xp.swapaxes(tang[l - 1], 1, 2), adj_zt)
            adj_t = xp.matmul(adj_zt, xp.swapaxes(W, 1, 2))
        else:
            gW = xp.matmul(xp.swapaxes(a_prev, 1, 2), adj_zp)
        grads[f"W{l}"] = gW
        grads[f"b{l}"] = adj_zp.sum(1)
        adj_p = xp.matmul(adj_zp, xp.swapaxes(W, 1, 2))
    two_c = (2 * xp.asarray(l2)).astype(dt)
    for k in grads:
        shape = (B,) + (1,) * (p[k].ndim - 1)
        grads[k] = grads[k] + two_c.reshape(shape) * p[k]
    return grads


def deep_disc_step(p, xg, xt, lr, l2, u, act, opt=None, xp=np):
    """One step on L_D, in place; lr (B,) with 0 = skip run: gradient descent, or with ``opt`` (moments
    "m:" + k, "v:" + k of every parameter k and "coef", ``kernels.optim``) the adaptive update."""
    grads = deep_loss_grads(p, xg, xt, l2, u, act, xp)
    lr = xp.asarray(lr).astype(p["v"].dtype)
    if opt is not None:
        coef = xp.asarray(opt["coef"], dtype=lr.dtype)
        for k, g in grads.items():
            adapt(xp, p[k], g, opt["m:" + k], opt["v:" + k], lr, coef)
        return
    for k, g in grads.items():
        shape = (lr.shape[0],) + (1,) * (g.ndim - 1)
        p[k] -= lr.reshape(shape) * g


def deep_loss(p, xg, xt, l2, act, gamma_apply=None, beta=None, xp=np):
    """L_D per run (B,) (for tests), with R = beta/N sum_a G_a . V_a if beta is given."""
    out = deep_forward(p, xg, act, xp).mean(1) - deep_forward(p, xt, act, xp).mean(1)
    out = out + xp.asarray(l2) * sum((p[k] ** 2).reshape(p[k].shape[0], -1).sum(1) for k in p)
    if beta is not None:
        g = deep_grad_x(p, xg, act, xp)
        out = out + beta / xg.shape[2] * (g * gamma_apply(g)).sum((1, 2))
    return out
