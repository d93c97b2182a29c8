"""Numba CPU twins of the one-hidden-layer MLP ops (reference: ``mlp_numpy``).

Fused: every (run, tile of hidden units) task streams the generated and target samples once per
hidden unit, accumulating the handful of per-unit sums the gradient needs; no (B, n, W)
temporary exists. ReLU needs only counts and masked sample sums (sum sigma = w . sum x + b count,
sum sigma' (u . w) = w . sum sigma' u), so its step is ~12 FLOP per (sample, hidden unit); d = 2
has a hand-specialised loop (the paper's case), other d and tanh use a per-task buffer of
pre-activations so every inner loop stays a vectorisable reduction over samples (tanh is the
branch-free ``fastmath.vtanh``, which LLVM vectorises; ``math.tanh`` is a scalar libm call).

``fastmath`` lets LLVM reassociate the reductions into SIMD lanes; per-run results therefore differ
from the reference by float rounding only, and never depend on how runs are packed (each run is
reduced by the same code). NaN/Inf are detected outside the kernels, on the updated state.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .launch import CPU_TILE
from .fastmath import vtanh, wide_vectors
from .optim import one_layer_moments

FASTMATH = True


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relu_sums1(x0s, x1s, w0, w1, bi):
    """Active count and masked sample sums of one ReLU unit over samples (x0s, x1s)."""
    one = x0s.dtype.type(1)
    zero = x0s.dtype.type(0)
    c = zero
    c0 = zero
    c1 = zero
    for n in range(x0s.shape[0]):
        x0 = x0s[n]
        x1 = x1s[n]
        m = one if w0 * x0 + w1 * x1 + bi > 0 else zero
        c += m
        c0 += m * x0
        c1 += m * x1
    return c, c0, c1


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relu_sums4(x0s, x1s, w, b, r, i):
    """``_relu_sums1`` for the four units i..i+3 at once: every sample is loaded once for four units."""
    one = x0s.dtype.type(1)
    zero = x0s.dtype.type(0)
    pa, pb, pc, pd = w[r, 0, i], w[r, 0, i + 1], w[r, 0, i + 2], w[r, 0, i + 3]
    qa, qb, qc, qd = w[r, 1, i], w[r, 1, i + 1], w[r, 1, i + 2], w[r, 1, i + 3]
    ba, bb, bc, bd = b[r, i], b[r, i + 1], b[r, i + 2], b[r, i + 3]
    ca = c0a = c1a = zero
    cb = c0b = c1b = zero
    cc = c0c = c1c = zero
    cd = c0d = c1d = zero
    for n in range(x0s.shape[0]):
        x0 = x0s[n]
        x1 = x1s[n]
        m = one if pa * x0 + qa * x1 + ba > 0 else zero
        ca += m
        c0a += m * x0
        c1a += m * x1
        m = one if pb * x0 + qb * x1 + bb > 0 else zero
        cb += m
        c0b += m * x0
        c1b += m * x1
        m = one if pc * x0 + qc * x1 + bc > 0 else zero
        cc += m
        c0c += m * x0
        c1c += m * x1
        m = one if pd * x0 + qd * x1 + bd > 0 else zero
        cd += m
        c0d += m * x0
        c1d += m * x1
    return ca, c0a, c1a, cb, c0b, c1b, cc, c0c, c1c, cd, c0d, c1d


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _adapt(x, g, m, v, rate, oc, r):
    """The adaptive update of one parameter x with gradient g (``kernels.optim``): (x, m, v) after it."""
    one = oc.dtype.type(1)
    zero = oc.dtype.type(0)
    tiny = np.finfo(oc.dtype).tiny                 # subnormals flush to zero (see kernels.optim)
    b1 = oc[r, 0]
    b2 = oc[r, 1]
    m = b1 * m + (one - b1) * g
    m = zero if abs(m) < tiny else m               # (NaN stays NaN: a blow-up is detected outside)
    v = b2 * v + (one - b2) * (g * g)
    v = zero if v < tiny else v
    x = x - rate * m / (math.sqrt(v) * oc[r, 3] + oc[r, 2])
    return (zero if abs(x) < tiny else x), m, v


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")       # x / 0 is inf, as in the prange kernels
def _adapt_unit(w, b, a, mw, mb, ma, vw, vb, va, oc, r, i, step, ga, gb, gw):
    """The adaptive update of hidden unit i of run r from its gradients ga, gb and gw (d values): a call, not
    inlined, so that the kernels' unrolled unit loops stay small for the compiler."""
    x, m, v = _adapt(a[r, i], ga, ma[r, i], va[r, i], step, oc, r)
    a[r, i] = x
    ma[r, i] = m
    va[r, i] = v
    x, m, v = _adapt(b[r, i], gb, mb[r, i], vb[r, i], step, oc, r)
    b[r, i] = x
    mb[r, i] = m
    vb[r, i] = v
    for j in range(len(gw)):
        x, m, v = _adapt(w[r, j, i], gw[j], mw[r, j, i], vw[r, j, i], step, oc, r)
        w[r, j, i] = x
        mw[r, j, i] = m
        vw[r, j, i] = v


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _relu_update(w, b, a, u, r, i, has_u, gsum, tsum, N, M, s, c2, step, g0, g1, opt_on, mw, mb, ma, vw, vb, va, oc):
    """Update of unit i from its (count, masked sums) on both sides: gradient descent, or (``opt_on``) the
    adaptive update with the moments and coefficients ``st`` = (mw, mb, ma, vw, vb, va, coef)."""
    w0 = w[r, 0, i]
    w1 = w[r, 1, i]
    bi = b[r, i]
    ai = a[r, i]
    k0 = gsum[0] / N - tsum[0] / M                 # <sigma'>_gen - <sigma'>_tgt
    kx0 = gsum[1] / N - tsum[1] / M                # <sigma' x>_gen - <sigma' x>_tgt
    kx1 = gsum[2] / N - tsum[2] / M
    ga = s * (w0 * kx0 + w1 * kx1 + bi * k0)       # sum sigma = w . sum(m x) + b count
    gw0 = s * ai * kx0
    gw1 = s * ai * kx1
    if has_u:                                      # regulariser: sum_gen sigma' u
        one = w.dtype.type(1)
        zero = w.dtype.type(0)
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
    if opt_on:
        _adapt_unit(w, b, a, mw, mb, ma, vw, vb, va, oc, r, i, step, ga + c2 * ai, s * ai * k0 + c2 * bi,
                    (gw0 + c2 * w0, gw1 + c2 * w1))
    else:
        a[r, i] = ai - step * (ga + c2 * ai)
        b[r, i] = bi - step * (s * ai * k0 + c2 * bi)
        w[r, 0, i] = w0 - step * (gw0 + c2 * w0)
        w[r, 1, i] = w1 - step * (gw1 + c2 * w1)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _step_relu_d2(w, b, a, xg, xt, lr, l2, u, has_u, tile, opt_on, st):
    B, d, W = w.shape
    N = xg.shape[2]
    M = xt.shape[2]
    s = math.sqrt(2.0 / W)
    ntile = (W + tile - 1) // tile
    # unpacked here and handed on as arrays: numba 0.68 drops some stores to arrays unpacked from a tuple
    # inside an inline="always" function (measured: the second coordinate's moments were never written)
    mw, mb, ma, vw, vb, va, oc = st
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
        c2 = 2.0 * l2[r]
        step = lr[r]
        i = lo
        while i + 4 <= hi:     # register-blocked: four units per pass over the samples
            gs = _relu_sums4(g0, g1, w, b, r, i)
            ts = _relu_sums4(t0, t1, w, b, r, i)
            _relu_update(w, b, a, u, r, i, has_u, gs[0:3], ts[0:3], N, M, s, c2, step, g0, g1, opt_on, mw, mb, ma, vw, vb, va, oc)
            _relu_update(w, b, a, u, r, i + 1, has_u, gs[3:6], ts[3:6], N, M, s, c2, step, g0, g1, opt_on, mw, mb, ma, vw, vb, va, oc)
            _relu_update(w, b, a, u, r, i + 2, has_u, gs[6:9], ts[6:9], N, M, s, c2, step, g0, g1, opt_on, mw, mb, ma, vw, vb, va, oc)
            _relu_update(w, b, a, u, r, i + 3, has_u, gs[9:12], ts[9:12], N, M, s, c2, step, g0, g1, opt_on, mw, mb, ma, vw, vb, va, oc)
            i += 4
        while i < hi:
            gs = _relu_sums1(g0, g1, w[r, 0, i], w[r, 1, i], b[r, i])
            ts = _relu_sums1(t0, t1, w[r, 0, i], w[r, 1, i], b[r, i])
            _relu_update(w, b, a, u, r, i, has_u, gs, ts, N, M, s, c2, step, g0, g1, opt_on, mw, mb, ma, vw, vb, va, oc)
            i += 1


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
            t = vtanh(hs[k])
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
def _step_generic(w, b, a, xg, xt, lr, l2, u, has_u, tanh, tile, opt_on, st):
    B, d, W = w.shape
    N = xg.shape[2]
    M = xt.shape[2]
    s = math.sqrt(2.0 / W)
    ntile = (W + tile - 1) // tile
    mw, mb, ma, vw, vb, va, oc = st
    for task in prange(B * ntile):
        wide_vectors()
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
            if opt_on:
                for j in range(d):
                    gx[j] += c2 * w[r, j, i]
                _adapt_unit(w, b, a, mw, mb, ma, vw, vb, va, oc, r, i, step, ga + c2 * ai, gb + c2 * bi, gx)
                continue
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
        wide_vectors()
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
                    t = vtanh(hb[i])
                    hb[i] = a[r, i] * (one - t * t)
            else:
                for i in range(W):
                    hb[i] = a[r, i] if hb[i] > 0 else zero
            for j in range(d):
                acc = zero
                for i in range(W):
                    acc += hb[i] * w[r, j, i]
                out[r, j, k] = s * acc


def opt_arrays(w, opt):
    """(opt_on, (mw, mb, ma, vw, vb, va, coef)) for the kernels: the state of ``opt`` (``kernels.optim``),
    or empty stand-ins of the same types when there is none."""
    dt = w.dtype
    if opt is None:
        e3, e2 = np.empty((0, 0, 0), dtype=dt), np.empty((0, 0), dtype=dt)
        return False, (e3, e2, e2, e3, e2, e2, np.empty((0, 4), dtype=dt))
    st = one_layer_moments(w, opt)
    if not all(x.flags.c_contiguous for x in st):
        raise ValueError("opt: the moments must be contiguous (they are updated in place)")
    return True, st + (np.ascontiguousarray(opt["coef"], dtype=dt),)


def mlp_disc_step(w, b, a, xg, xt, lr, l2, u, act, opt=None, tile=None):
    """Twin of ``mlp_numpy.mlp_disc_step`` (in place)."""
    tile = tile or CPU_TILE["mlp_units"]
    lr = np.ascontiguousarray(lr, dtype=w.dtype)
    l2 = np.ascontiguousarray(l2, dtype=w.dtype)
    has_u = u is not None
    if not has_u:
        u = np.empty((w.shape[0], w.shape[1], 0), dtype=w.dtype)
    opt_on, st = opt_arrays(w, opt)
    if act == "relu" and w.shape[1] == 2:
        _step_relu_d2(w, b, a, xg, xt, lr, l2, u, has_u, tile, opt_on, st)
    else:
        _step_generic(w, b, a, xg, xt, lr, l2, u, has_u, act == "tanh", tile, opt_on, st)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _grad_x_relu_d2(w, b, a, x, out, chunk):
    """ReLU, d = 2: four samples per pass over the hidden units (unit parameters loaded once for four)."""
    B, d, W = w.shape
    n = x.shape[2]
    s = math.sqrt(2.0 / W)
    nchunk = (n + chunk - 1) // chunk
    for task in prange(B * nchunk):
        r = task // nchunk
        lo = (task % nchunk) * chunk
        hi = min(n, lo + chunk)
        w0s = w[r, 0]
        w1s = w[r, 1]
        bs = b[r]
        aw0 = a[r] * w0s
        aw1 = a[r] * w1s
        zero = w.dtype.type(0)
        k = lo
        while k < hi:
            # the last block of a chunk may overlap the previous one (recomputing a sample is harmless)
            k0 = min(k, hi - 4) if hi - lo >= 4 else k
            ka, kb, kc, kd = k0, min(k0 + 1, hi - 1), min(k0 + 2, hi - 1), min(k0 + 3, hi - 1)
            xa0, xa1 = x[r, 0, ka], x[r, 1, ka]
            xb0, xb1 = x[r, 0, kb], x[r, 1, kb]
            xc0, xc1 = x[r, 0, kc], x[r, 1, kc]
            xd0, xd1 = x[r, 0, kd], x[r, 1, kd]
            ga0 = ga1 = gb0 = gb1 = gc0 = gc1 = gd0 = gd1 = zero
            for i in range(W):
                p = w0s[i]
                q = w1s[i]
                c = bs[i]
                e0 = aw0[i]
                e1 = aw1[i]
                if p * xa0 + q * xa1 + c > 0:
                    ga0 += e0
                    ga1 += e1
                if p * xb0 + q * xb1 + c > 0:
                    gb0 += e0
                    gb1 += e1
                if p * xc0 + q * xc1 + c > 0:
                    gc0 += e0
                    gc1 += e1
                if p * xd0 + q * xd1 + c > 0:
                    gd0 += e0
                    gd1 += e1
            out[r, 0, ka] = s * ga0
            out[r, 1, ka] = s * ga1
            out[r, 0, kb] = s * gb0
            out[r, 1, kb] = s * gb1
            out[r, 0, kc] = s * gc0
            out[r, 1, kc] = s * gc1
            out[r, 0, kd] = s * gd0
            out[r, 1, kd] = s * gd1
            k = k0 + 4


def mlp_grad_x(w, b, a, x, act, chunk=None):
    """Twin of ``mlp_numpy.mlp_grad_x``."""
    out = np.empty(x.shape, dtype=w.dtype)
    x = np.ascontiguousarray(x, dtype=w.dtype)
    chunk = chunk or CPU_TILE["grad_x_samples"]
    if act == "relu" and w.shape[1] == 2:
        _grad_x_relu_d2(w, b, a, x, out, chunk)
    else:
        _grad_x(w, b, a, x, act == "tanh", out, chunk)
    return out
