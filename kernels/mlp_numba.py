"""Numba CPU twins of the one-hidden-layer MLP ops (reference: ``mlp_numpy``).

Fused: every (run, tile of hidden units) task streams the generated and target samples once per
hidden unit, accumulating the handful of per-unit sums the gradient needs; no (B, n, W)
temporary exists. ReLU needs only counts and masked sample sums (sum sigma = w . sum x + b count,
sum sigma' (u . w) = w . sum sigma' u), so its step is ~12 FLOP per (sample, hidden unit); d = 2
has a hand-specialised loop (the paper's case), other d and tanh use a per-task buffer of
pre-activations so every inner loop stays a vectorisable reduction over samples.

``fastmath`` lets LLVM reassociate the reductions into SIMD lanes; per-run results therefore differ
from the reference by float rounding only, and never depend on how runs are packed (each run is
reduced by the same code). NaN/Inf are detected outside the kernels, on the updated state.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .launch import CPU_TILE

FASTMATH = True


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _step_relu_d2(w, b, a, xg, xt, lr, l2, u, has_u, tile):
    B, d, W = w.shape
    N = xg.shape[2]
    M = xt.shape[2]
    s = math.sqrt(2.0 / W)
    ntile = (W + tile - 1) // tile
    for task in prange(B * ntile):
        r = task // ntile
        if lr[r] == 0:
            continue
        lo = (task % ntile) * tile
        hi = min(W, lo + tile)
        g0 = xg[r, 0]
        g1 = xg[r, 1]
        t0 = xt[r, 0]
        t1 = xt[r, 1]
        one = w.dtype.type(1)
        zero = w.dtype.type(0)
        for i in range(lo, hi):
            w0 = w[r, 0, i]
            w1 = w[r, 1, i]
            bi = b[r, i]
            ai = a[r, i]
            c0 = zero
            cx0 = zero
            cx1 = zero
            for n in range(N):
                x0 = g0[n]
                x1 = g1[n]
                m = one if w0 * x0 + w1 * x1 + bi > 0 else zero
                c0 += m
                cx0 += m * x0
                cx1 += m * x1
            e0 = zero
            ex0 = zero
            ex1 = zero
            for n in range(M):
                x0 = t0[n]
                x1 = t1[n]
                m = one if w0 * x0 + w1 * x1 + bi > 0 else zero
                e0 += m
                ex0 += m * x0
                ex1 += m * x1
            k0 = c0 / N - e0 / M                 # <sigma'>_gen - <sigma'>_tgt
            kx0 = cx0 / N - ex0 / M              # <sigma' x>_gen - <sigma' x>_tgt
            kx1 = cx1 / N - ex1 / M
            ga = s * (w0 * kx0 + w1 * kx1 + bi * k0)
            gw0 = s * ai * kx0
            gw1 = s * ai * kx1
            if has_u:
                uu0 = zero
                uu1 = zero
                u0 = u[r, 0]
                u1 = u[r, 1]
                for n in range(N):
                    m = one if w0 * g0[n] + w1 * g1[n] + bi > 0 else zero
                    uu0 += m * u0[n]
                    uu1 += m * u1[n]
                ga += s * (w0 * uu0 + w1 * uu1)
                gw0 += s * ai * uu0
                gw1 += s * ai * uu1
            c2 = 2 * l2[r]
            step = lr[r]
            a[r, i] = ai - step * (ga + c2 * ai)
            b[r, i] = bi - step * (s * ai * k0 + c2 * bi)
            w[r, 0, i] = w0 - step * (gw0 + c2 * w0)
            w[r, 1, i] = w1 - step * (gw1 + c2 * w1)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _hidden(w, b, r, i, x, n, tanh, hs, h1, h2):
    """Fill sigma, sigma', sigma'' of unit i at the first n samples x (d, n) into the buffers."""
    d = w.shape[1]
    bi = b[r, i]
    for k in range(n):
        hs[k] = bi
    for j in range(d):
        wj = w[r, j, i]
        xj = x[j]
        for k in range(n):
            hs[k] += wj * xj[k]
    one = w.dtype.type(1)
    zero = w.dtype.type(0)
    if tanh:
        for k in range(n):
            t = math.tanh(hs[k])
            hs[k] = t
            h1[k] = one - t * t
            h2[k] = -(t + t) * (one - t * t)
    else:
        for k in range(n):
            m = one if hs[k] > 0 else zero
            hs[k] = hs[k] * m
            h1[k] = m
            h2[k] = zero


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _step_generic(w, b, a, xg, xt, lr, l2, u, has_u, tanh, tile):
    B, d, W = w.shape
    N = xg.shape[2]
    M = xt.shape[2]
    s = math.sqrt(2.0 / W)
    ntile = (W + tile - 1) // tile
    for task in prange(B * ntile):
        r = task // ntile
        if lr[r] == 0:
            continue
        lo = (task % ntile) * tile
        hi = min(W, lo + tile)
        nb = max(N, M)
        hs = np.empty(nb, dtype=w.dtype)
        h1 = np.empty(nb, dtype=w.dtype)
        h2 = np.empty(nb, dtype=w.dtype)
        uw = np.empty(N, dtype=w.dtype)
        gx = np.empty(d, dtype=w.dtype)
        zero = w.dtype.type(0)
        for i in range(lo, hi):
            ai = a[r, i]
            bi = b[r, i]
            # target side first (its sums are subtracted)
            _hidden(w, b, r, i, xt[r], M, tanh, hs, h1, h2)
            ts = zero
            t1 = zero
            for k in range(M):
                ts += hs[k]
                t1 += h1[k]
            for j in range(d):
                acc = zero
                xj = xt[r, j]
                for k in range(M):
                    acc += h1[k] * xj[k]
                gx[j] = -acc / M
            _hidden(w, b, r, i, xg[r], N, tanh, hs, h1, h2)
            gs = zero
            g1 = zero
            for k in range(N):
                gs += hs[k]
                g1 += h1[k]
            for j in range(d):
                acc = zero
                xj = xg[r, j]
                for k in range(N):
                    acc += h1[k] * xj[k]
                gx[j] = s * ai * (gx[j] + acc / N)
            ga = s * (gs / N - ts / M)
            gb = s * ai * (g1 / N - t1 / M)
            if has_u:
                for k in range(N):
                    uw[k] = zero
                for j in range(d):
                    wj = w[r, j, i]
                    uj = u[r, j]
                    for k in range(N):
                        uw[k] += uj[k] * wj
                p1 = zero
                p2 = zero
                for k in range(N):
                    p1 += h1[k] * uw[k]
                    p2 += h2[k] * uw[k]
                ga += s * p1
                gb += s * ai * p2
                for j in range(d):
                    uj = u[r, j]
                    xj = xg[r, j]
                    acc = zero
                    for k in range(N):
                        acc += h2[k] * uw[k] * xj[k] + h1[k] * uj[k]
                    gx[j] += s * ai * acc
            c2 = 2 * l2[r]
            step = lr[r]
            a[r, i] = ai - step * (ga + c2 * ai)
            b[r, i] = bi - step * (gb + c2 * bi)
            for j in range(d):
                wj = w[r, j, i]
                w[r, j, i] = wj - step * (gx[j] + c2 * wj)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _grad_x(w, b, a, x, tanh, out, chunk):
    """out (B, d, n) = s sum_i a_i sigma'(h_i) w_i at samples x (B, d, n); tasks = (run, chunk of samples)."""
    B, d, W = w.shape
    n = x.shape[2]
    s = math.sqrt(2.0 / W)
    nchunk = (n + chunk - 1) // chunk
    for task in prange(B * nchunk):
        r = task // nchunk
        lo = (task % nchunk) * chunk
        hi = min(n, lo + chunk)
        hb = np.empty(W, dtype=w.dtype)
        one = w.dtype.type(1)
        zero = w.dtype.type(0)
        for k in range(lo, hi):
            for i in range(W):
                hb[i] = b[r, i]
            for j in range(d):
                xj = x[r, j, k]
                for i in range(W):
                    hb[i] += w[r, j, i] * xj
            if tanh:
                for i in range(W):
                    t = math.tanh(hb[i])
                    hb[i] = a[r, i] * (one - t * t)
            else:
                for i in range(W):
                    hb[i] = a[r, i] if hb[i] > 0 else zero
            for j in range(d):
                acc = zero
                for i in range(W):
                    acc += hb[i] * w[r, j, i]
                out[r, j, k] = s * acc


def mlp_disc_step(w, b, a, xg, xt, lr, l2, u, act, tile=None):
    """Twin of ``mlp_numpy.mlp_disc_step`` (in place)."""
    tile = tile or CPU_TILE["mlp_units"]
    lr = np.ascontiguousarray(lr, dtype=w.dtype)
    l2 = np.ascontiguousarray(l2, dtype=w.dtype)
    has_u = u is not None
    if not has_u:
        u = np.empty((w.shape[0], w.shape[1], 0), dtype=w.dtype)
    if act == "relu" and w.shape[1] == 2:
        _step_relu_d2(w, b, a, xg, xt, lr, l2, u, has_u, tile)
    else:
        _step_generic(w, b, a, xg, xt, lr, l2, u, has_u, act == "tanh", tile)


def mlp_grad_x(w, b, a, x, act, chunk=None):
    """Twin of ``mlp_numpy.mlp_grad_x``."""
    out = np.empty(x.shape, dtype=w.dtype)
    _grad_x(w, b, a, np.ascontiguousarray(x, dtype=w.dtype), act == "tanh", out, chunk or CPU_TILE["grad_x_samples"])
    return out
