"""NumPy reference (the oracle) of the kernel-density reductions of Sinn & Rawat (Kernel GAN) and
of the fitting-to-collapse paper (optimal-discriminator field).

Kernel: a mixture over S Gaussian bandwidths sigma_s with log mixture weights logmix_s,

    k(q, x) = sum_s exp(logmix_s) N(q; x, sigma_s^2 I),
    log k_s(r) = logmix_s - (d/2) log(2 pi sigma_s^2) - r^2 / (2 sigma_s^2).

Everything stays in the log domain: sigma^-d never appears as a factor (it is the term
-(d/2) log(2 pi sigma^2)), densities are log-sum-exps that never underflow to log 0, and every
weight enters the reductions as an exponent, so a product like k / p (bounded) is exp(log k - log p)
even where k and p themselves would under- or overflow in float32.

    kde_log_density(q, x, logw, bandwidths, logmix)        -> (B, n)
        log sum_i sum_s exp(logw_i + log k_s(|q_m - x_i|))
        (-inf when every logw_i is -inf: an empty sample)

    kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix)   -> (B, d, n)
        sum_i sum_s [exp(logw_i + la_i + log k_s) + exp(logw_i + lb_m + log k_s)] (x_i - q_m) / sigma_s^2
        la (B, m) per centre, lb (B, n) per query; either may be None (its term is left out).
        With la = None and lb = -log p(q): grad log p(q) for p = sum_i exp(logw_i) k(., x_i).

Layout: queries q (B, d, n), centres x (B, d, m), logw / la (B, m), lb (B, n), bandwidths and
logmix (B, S). The centre sums are chunked over queries so that temporaries stay below
``TEMP_ELEMENTS`` elements (O(n + m) memory beyond that bound).
"""

from __future__ import annotations

import math

import numpy as np

from .linear_numpy import _pair_r2 as _r2   # |q_j - x_i|^2 coordinate by coordinate: (n, m)

TEMP_ELEMENTS = 1 << 22


def _chunks(n, m, S):
    step = max(1, TEMP_ELEMENTS // max(1, m * S))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def log_kernel_terms(r2, bandwidths, logmix, d):
    """(S, ...) log k_s(r) for r2 (...), one run's bandwidths and log mixture weights."""
    dt = r2.dtype.type
    out = []
    for sig, lm in zip(bandwidths, logmix):
        s2 = dt(sig) * dt(sig)
        out.append(dt(lm) - dt(0.5 * d * math.log(2 * math.pi * float(s2))) - r2 / (dt(2) * s2))
    return np.stack(out)


def _logsumexp(t, axis):
    """Stable log-sum-exp over ``axis`` (tuple allowed); -inf where every term is -inf."""
    m = np.max(t, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(t - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)


def kde_log_density(q, x, logw, bandwidths, logmix):
    """log of the weighted Gaussian-mixture KDE of centres x at queries q: (B, n)."""
    B, d, n = q.shape
    out = np.empty((B, n), dtype=q.dtype)
    for b in range(B):
        for rows in _chunks(n, x.shape[2], len(bandwidths[b])):
            lk = log_kernel_terms(_r2(q[b][:, rows], x[b]), bandwidths[b], logmix[b], d)   # (S, n_c, m)
            out[b, rows] = _logsumexp(lk + logw[b][None, None, :], axis=(0, 2))
    return out


def kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix):
    """Softmax-weighted mean-shift sums (see the module docstring): (B, d, n)."""
    if la is None and lb is None:
        raise ValueError("kde_grad_sum needs la, lb or both")
    B, d, n = q.shape
    out = np.zeros((B, d, n), dtype=q.dtype)
    for b in range(B):
        inv_s2 = np.array([1.0 / (s * s) for s in bandwidths[b]], dtype=q.dtype)[:, None, None]
        for rows in _chunks(n, x.shape[2], len(bandwidths[b])):
            qb = q[b][:, rows]
            lk = log_kernel_terms(_r2(qb, x[b]), bandwidths[b], logmix[b], d) + logw[b][None, None, :]
            wgt = np.zeros(lk.shape, dtype=q.dtype)
            if la is not None:
                wgt += np.exp(lk + la[b][None, None, :])
            if lb is not None:
                wgt += np.exp(lk + lb[b][rows][None, :, None])
            g = (wgt * inv_s2).sum(0)                                            # (n_c, m)
            for j in range(d):          # differences, not q sum(g) - g @ x: no cancellation far from 0
                out[b, j, rows] = ((x[b, j][None, :] - qb[j][:, None]) * g).sum(1)
    return out
