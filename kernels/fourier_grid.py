"""The Fourier discriminator of Durr et al. App. C on a d = 2 product grid, in separable form.

    D(x) = sum_ab  w1_ab sin(u_a x1 + v_b x2) + w2_ab cos(u_a x1 + v_b x2)        (eq. C1-C2)

With C1 = cos(u_a x1_j), S1 = sin(u_a x1_j) (K1, n) and C2, S2 likewise (K2, n), the angle-addition
formulas turn every sum over samples or over the grid into small matrix products:

    sum_j w_j cos(.) = C1 diag(w) C2' - S1 diag(w) S2'      sum_j w_j sin(.) = S1 diag(w) C2' + C1 diag(w) S2'
    dD/dx1_j = sum_a u_a [C1 P - S1 Q]_aj,   P = w1 C2 - w2 S2,   Q = w1 S2 + w2 C2
    dD/dx2_j = sum_b v_b [C2 P' - S2 Q']_bj, P' = w1' C1 - w2' S1, Q' = w1' S1 + w2' C1

so a step costs (K1 + K2) n trigonometric evaluations and O(K1 K2 n) multiply-adds in BLAS
(NumPy, or cuBLAS through CuPy: the code is written once over the array module ``xp``) instead of
K1 K2 n sines and cosines. The reference is the generic trigonometric form of ``linear_numpy`` on
the expanded grid (``expand``); tests compare the two.

Layout: w1, w2, rate (B, K1, K2); axis values u (B, K1), v (B, K2); samples (B, 2, n); sample
weights (B, n); lr, lam (B,). A run with lr == 0 is untouched.
"""

from __future__ import annotations

import math

import numpy as np


def _module(x):
    return np if isinstance(x, np.ndarray) else __import__("cupy")


def _factors(xp, u, v, x):
    a = u[:, :, None] * x[:, 0:1, :]                  # (B, K1, n)
    b = v[:, :, None] * x[:, 1:2, :]                  # (B, K2, n)
    return xp.cos(a), xp.sin(a), xp.cos(b), xp.sin(b)


def _feature_sums(xp, u, v, x, w):
    """(sum_j w_j cos(k.x_j), sum_j w_j sin(k.x_j)) over the grid: two (B, K1, K2) arrays."""
    c1, s1, c2, s2 = _factors(xp, u, v, x)
    wc2 = (c2 * w[:, None, :]).swapaxes(1, 2)         # (B, n, K2)
    ws2 = (s2 * w[:, None, :]).swapaxes(1, 2)
    cos_sum = xp.matmul(c1, wc2) - xp.matmul(s1, ws2)
    sin_sum = xp.matmul(s1, wc2) + xp.matmul(c1, ws2)
    return cos_sum, sin_sum


def fourier_grid_disc_step(w1, w2, u, v, rate, xg, wg, xt, wt, lr, lam):
    """theta <- theta - lr rate (d/dtheta [sum wg D(xg) - sum wt D(xt)] + lam theta), in place."""
    xp = _module(w1)
    dt = w1.dtype
    cg, sg = _feature_sums(xp, u, v, xg, wg)
    ct, st = _feature_sums(xp, u, v, xt, wt)
    lr = xp.asarray(lr, dtype=dt)[:, None, None]
    lam = xp.asarray(lam, dtype=dt)[:, None, None]
    step = lr * rate
    w1 -= step * (sg - st + lam * w1)          # dD/dw1 = sin(k.x)
    w2 -= step * (cg - ct + lam * w2)          # dD/dw2 = cos(k.x)


def fourier_grid_grad_x(w1, w2, u, v, x):
    """grad_x D at samples x (B, 2, n) -> (B, 2, n)."""
    xp = _module(w1)
    c1, s1, c2, s2 = _factors(xp, u, v, x)
    p = xp.matmul(w1, c2) - xp.matmul(w2, s2)          # (B, K1, n)
    q = xp.matmul(w1, s2) + xp.matmul(w2, c2)
    w1t, w2t = w1.swapaxes(1, 2), w2.swapaxes(1, 2)
    pp = xp.matmul(w1t, c1) - xp.matmul(w2t, s1)       # (B, K2, n)
    qq = xp.matmul(w1t, s1) + xp.matmul(w2t, c1)
    g1 = (u[:, :, None] * (c1 * p - s1 * q)).sum(1)
    g2 = (v[:, :, None] * (c2 * pp - s2 * qq)).sum(1)
    return xp.stack([g1, g2], axis=1)


def fourier_grid_forward(w1, w2, u, v, x):
    """D at samples x (B, 2, n) -> (B, n)."""
    xp = _module(w1)
    c1, s1, c2, s2 = _factors(xp, u, v, x)
    a = xp.matmul(w1, c2)
    b = xp.matmul(w1, s2)
    c = xp.matmul(w2, c2)
    e = xp.matmul(w2, s2)
    return (s1 * a + c1 * b + c1 * c - s1 * e).sum(1)


def expand(w1, w2, u, v, rate=None):
    """The generic trigonometric form (theta, omega, phase, amp[, rate]) of ``linear_numpy`` on the
    expanded grid: L = 2 K1 K2 features, sin block (phase -pi/2) then cos block (phase 0)."""
    B, K1, K2 = w1.shape
    dt = w1.dtype
    kx = np.repeat(u[:, :, None], K2, axis=2).reshape(B, K1 * K2)
    ky = np.repeat(v[:, None, :], K1, axis=1).reshape(B, K1 * K2)
    omega = np.stack([np.concatenate([kx, kx], 1), np.concatenate([ky, ky], 1)], axis=1).astype(dt)
    phase = np.concatenate([np.full((B, K1 * K2), -math.pi / 2), np.zeros((B, K1 * K2))], 1).astype(dt)
    theta = np.concatenate([w1.reshape(B, -1), w2.reshape(B, -1)], 1).astype(dt)
    amp = np.ones_like(theta)
    out = (theta, omega, phase, amp)
    if rate is not None:
        out += (np.concatenate([rate.reshape(B, -1)] * 2, 1).astype(dt),)
    return out


def collapse(theta, K1, K2):
    """Inverse of ``expand`` for the weights: (w1, w2) from theta (B, 2 K1 K2)."""
    B = theta.shape[0]
    return theta[:, : K1 * K2].reshape(B, K1, K2), theta[:, K1 * K2:].reshape(B, K1, K2)
