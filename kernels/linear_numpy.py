"""NumPy reference (the oracle) of the discriminators that are linear in their parameters.

Trigonometric features (Fourier discriminator of Durr et al. App. C, random Fourier features of the
isolated points model, Becker et al.): one form serves both,

    f(x) = sum_l theta_l amp_l cos(omega_l . x + phase_l)

Fourier (eq. C1-C2): a frequency k gives two features, (k, -pi/2) = sin(k.x) and (k, 0) = cos(k.x),
amp 1, rate gamma(|k|). RFF: amp sqrt(2/D); cos features (Omega_l, b_l), or [cos, sin] pairs
(Omega_l, 0), (Omega_l, -pi/2); multi-scale kernels are concatenated blocks (Becker et al. eq. 27-28).

The discriminator step descends L = sum_j wg_j f(xg_j) - sum_i wt_i f(xt_i) + (lam/2) |theta|^2
with a per-feature rate:

    theta_l <- theta_l - lr * rate_l * ( amp_l [sum_j wg_j cos(.xg_j) - sum_i wt_i cos(.xt_i)] + lam theta_l )

which is Algorithm 2 (wg = 1/N, wt = 1/M, rate = gamma) and Becker et al. eq. 4-5 (wg = p~_j, wt = p_i,
rate 1, lr = eta_d).

Kernel sums (exact kernel discriminator, dual form, Becker et al. eq. 9): f(x) = sum_c w_c K(x, y_c)
with K a sum over bandwidths sigma_s of rbf exp(-r^2 / 2 sigma^2), laplacian exp(-r / sigma) or
rational quadratic (1 + r^2 / (2 alpha sigma^2))^-alpha. The centres hold the true points and the
ring buffer of past generated positions; weights carry masses, decay and sign.

Layout (feature-major, run axis first):
    theta, phase, amp, rate (B, L)   omega (B, d, L)   samples (B, d, n)   sample weights (B, n)
    centres (B, d, C)   centre weights (B, C)   bandwidths (B, S)   lr, lam (B,)
A run with lr == 0 is untouched by a step.
"""

from __future__ import annotations

import numpy as np

KERNELS = ("rbf", "laplacian", "rq")
TEMP_ELEMENTS = 1 << 22  # bound on a chunk's (samples x features) temporaries


def _phases(omega, phase, x):
    """omega_l . x_j + phase_l for one run: (n, L)."""
    return np.einsum("dn,dl->nl", x, omega, optimize=False) + phase[None, :]


def _rows(n, per_row):
    step = max(1, TEMP_ELEMENTS // max(1, per_row))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def trig_forward(theta, omega, phase, amp, x):
    """f(x) for samples x (B, d, n) -> (B, n)."""
    B, _, n = x.shape
    out = np.empty((B, n), dtype=theta.dtype)
    for b in range(B):
        c = theta[b] * amp[b]
        for r in _rows(n, theta.shape[1]):
            out[b, r] = np.cos(_phases(omega[b], phase[b], x[b][:, r])) @ c
    return out


def trig_grad_x(theta, omega, phase, amp, x):
    """grad_x f at samples x (B, d, n) -> (B, d, n):  -sum_l theta_l amp_l sin(.) omega_l."""
    B, d, n = x.shape
    out = np.empty((B, d, n), dtype=theta.dtype)
    for b in range(B):
        c = theta[b] * amp[b]
        for r in _rows(n, theta.shape[1]):
            s = np.sin(_phases(omega[b], phase[b], x[b][:, r])) * c[None, :]       # (n, L)
            out[b][:, r] = -(omega[b] @ s.T)
    return out


def trig_disc_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam):
    """One descent step of the linear trigonometric discriminator, in place on theta (B, L)."""
    for b in range(theta.shape[0]):
        if lr[b] == 0:
            continue
        feat = np.zeros(theta.shape[1], dtype=np.float64)
        for x, w, sign in ((xg, wg, 1.0), (xt, wt, -1.0)):
            for r in _rows(x.shape[2], theta.shape[1]):
                feat += sign * (w[b, r].astype(np.float64) @ np.cos(_phases(omega[b], phase[b], x[b][:, r])))
        grad = amp[b] * feat.astype(theta.dtype) + lam[b] * theta[b]
        theta[b] -= lr[b] * rate[b] * grad


# --------------------------------------------------------------------------- kernel sums

def kernel_profile(r2, sigma, kernel, alpha=1.0):
    """K(r) and g(r) = -(1/r) dK/dr, so that grad_x K(x, y) = -g (x - y).  r2 = |x - y|^2."""
    if kernel == "rbf":
        k = np.exp(-r2 / (2 * sigma * sigma))
        return k, k / (sigma * sigma)
    if kernel == "laplacian":
        r = np.sqrt(r2)
        k = np.exp(-r / sigma)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(r > 0, k / (sigma * np.where(r > 0, r, 1)), 0)   # subgradient 0 at r = 0
        return k, g.astype(k.dtype)
    if kernel == "rq":
        base = 1 + r2 / (2 * alpha * sigma * sigma)
        k = base ** (-alpha)
        return k, k / (base * sigma * sigma)
    raise ValueError(f"unknown kernel {kernel!r}")


def _pair_r2(x, y):
    """|x_j - y_c|^2 for one run: x (d, n), y (d, C) -> (n, C), summed coordinate by coordinate."""
    diff = x[0][:, None] - y[0][None, :]
    r2 = diff * diff
    for j in range(1, x.shape[0]):
        diff = x[j][:, None] - y[j][None, :]
        r2 += diff * diff
    return r2


def kernel_sum(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """f(x_j) = sum_c w_c sum_s K_s(x_j, y_c):  x (B, d, n) -> (B, n)."""
    B, d, n = x.shape
    out = np.zeros((B, n), dtype=x.dtype)
    for b in range(B):
        for r in _rows(n, centres.shape[2]):
            r2 = _pair_r2(x[b][:, r], centres[b])
            for sigma in bandwidths[b]:
                out[b, r] += kernel_profile(r2, sigma, kernel, alpha)[0] @ weights[b]
    return out


def kernel_sum_grad(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """grad_x f(x_j) = -sum_c w_c sum_s g_s(r_jc) (x_j - y_c):  x (B, d, n) -> (B, d, n)."""
    B, d, n = x.shape
    out = np.zeros((B, d, n), dtype=x.dtype)
    for b in range(B):
        for r in _rows(n, centres.shape[2]):
            xb = x[b][:, r]
            r2 = _pair_r2(xb, centres[b])
            gw = np.zeros_like(r2)
            for sigma in bandwidths[b]:
                gw += kernel_profile(r2, sigma, kernel, alpha)[1]
            gw *= weights[b][None, :]                                   # (n, C)
            for j in range(d):                   # differences, not x sum(gw) - gw @ y: no cancellation
                out[b, j, r] = -((xb[j][:, None] - centres[b, j][None, :]) * gw).sum(1)
    return out
