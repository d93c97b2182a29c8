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
import os
import threading

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


def mlp_disc_step(w, b, a, xg, xt, lr, l2, u, act, opt=None, tile=None, gemm_min_d=None):
    """Twin of ``mlp_numpy.mlp_disc_step`` (in place): the fused kernels below ``gemm_min_d`` dimensions
    (default :data:`GEMM_MIN_D`), the GEMM form from there on."""
    tile = tile or CPU_TILE["mlp_units"]
    lr = np.ascontiguousarray(lr, dtype=w.dtype)
    l2 = np.ascontiguousarray(l2, dtype=w.dtype)
    if w.shape[1] >= (GEMM_MIN_D if gemm_min_d is None else gemm_min_d):
        _step_gemm(w, b, a, xg, xt, lr, l2, u, act, opt)
        return
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


def mlp_grad_x(w, b, a, x, act, chunk=None, gemm_min_d=None):
    """Twin of ``mlp_numpy.mlp_grad_x`` (the GEMM form from ``gemm_min_d`` dimensions on, as the step)."""
    out = np.empty(x.shape, dtype=w.dtype)
    x = np.ascontiguousarray(x, dtype=w.dtype)
    if w.shape[1] >= (GEMM_MIN_D if gemm_min_d is None else gemm_min_d):
        _grad_x_gemm(w, b, a, x, act, out)
        return out
    chunk = chunk or CPU_TILE["grad_x_samples"]
    if act == "relu" and w.shape[1] == 2:
        _grad_x_relu_d2(w, b, a, x, out, chunk)
    else:
        _grad_x(w, b, a, x, act == "tanh", out, chunk)
    return out


# --------------------------------------------------------------------------- large d: GEMMs + one map
# From GEMM_MIN_D dimensions on, the step is two matrix products per run (BLAS through NumPy's matmul, one
# call per run on contiguous slices, multi-threaded by BLAS) around one elementwise pass:
#     H = [xg xt]' w                                          (N + M, W)      GEMM, K = d
#     UW = u' w                                               (N, W)          GEMM, K = d (regulariser only)
#     map: h = H + b -> C = c_k sigma'(h) (+ sigma''(h) UW for generated rows), c_k = 1/N or -1/M, and
#          sigma'(h_n) in place of UW
#     G = [xg xt u; 1 1 0] [C; sigma'(H_g)]                   (d + 1, W)      GEMM, K = N + M (+ N)
# Row d of G (the ones row) is sum_k C_k = the data sum of sigma' plus the regulariser's sum of sigma'' (u . w):
# gb = s a G_d. For ReLU (sigma = h sigma'), sum_k c_k sigma(h_k) = w . G_data + b G_d and the regulariser's
# sum_n sigma'(h_n)(u_n . w) = w . G_u, so ga = s (w . G[:d] + b G_d) needs no reduction in the map (which
# is then a pure select); tanh accumulates sum_k c_k sigma(h_k) + sum_n sigma'(h_n)(u_n . w) there.
# Then gw = s a G[:d] + 2 l2 w and the update, in one pass. The map and the update run on the calling thread:
# between multi-threaded BLAS calls a parallel numba region and BLAS's waiting threads spin against each
# other (measured 2x slower at d = 64 on 2 cores), and both passes are memory-bound. Sums are matmul-
# ordered, so results agree with the reference to rounding. Temporaries (reused per thread) are bounded per
# chunk of runs by GEMM_TEMP elements.

GEMM_MIN_D = 8           # from here on the GEMM form is faster (ReLU from d = 6, tanh from 8: benchmarks/README.md)
GEMM_TEMP = 1 << 23      # elements of one chunk's temporaries

_WORK = threading.local()


def _workspace(name, shape, dtype):
    """A reused scratch array (per thread): a fresh multi-MB allocation per step costs more than the step's
    GEMMs (the kernel zeroes every new page: measured 3 ms per run-step at d = 64)."""
    cache = _WORK.__dict__.setdefault("arrays", {})
    key = (name, np.dtype(dtype).str)
    buf = cache.get(key)
    size = int(np.prod(shape))
    if buf is None or buf.size < size:
        buf = cache[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _gemm_runs(live, per_run):
    step = max(1, GEMM_TEMP // max(1, per_run))
    return [live[i:i + step] for i in range(0, len(live), step)]


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def _gemm_map(H, UW, b, runs, N, M, tanh, has_u, sa):
    """The pass between the GEMMs for the runs ``runs`` (row q of H, UW, sa is run runs[q]): H (R, N + M, W)
    pre-activations without the bias (ReLU) or tanh(h) already (tanh: NumPy's SIMD tanh is ~10x faster than a
    scalar loop here) -> GEMM coefficients in place; UW (R, N, W) u . w -> sigma'(h_n) in place (has_u);
    sa (R, W) <- sum_k c_k sigma(h_k) + sum_n sigma'(h_n)(u_n . w) (tanh only; ReLU gets it from G)."""
    R, K, W = H.shape
    one = H.dtype.type(1)
    two = H.dtype.type(2)
    zero = H.dtype.type(0)
    acc = np.zeros(W if tanh else 0, dtype=H.dtype)
    for q in range(R):
        bq = b[runs[q]]
        for i in range(len(acc)):
            acc[i] = zero
        for k in range(K):
            c = one / N if k < N else -one / M
            hk = H[q, k]
            if tanh and has_u and k < N:
                uk = UW[q, k]
                for i in range(W):
                    t = hk[i]
                    d1 = one - t * t
                    uw = uk[i]
                    acc[i] += c * t + d1 * uw
                    hk[i] = c * d1 - two * t * d1 * uw
                    uk[i] = d1
            elif tanh:
                for i in range(W):
                    t = hk[i]
                    acc[i] += c * t
                    hk[i] = c * (one - t * t)
            elif has_u and k < N:
                uk = UW[q, k]
                for i in range(W):
                    on = hk[i] + bq[i] > zero
                    hk[i] = c if on else zero
                    uk[i] = one if on else zero
            else:
                for i in range(W):
                    hk[i] = c if hk[i] + bq[i] > zero else zero
        for i in range(len(acc)):
            sa[q, i] = acc[i]


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def _gemm_update(w, b, a, G, sa, runs, lr, l2, s, tanh, gw_out, ga_out, gb_out):
    """From G (R, d + 1, W): gw = s a G[:d], gb = s a G[d], ga = s (w . G[:d] + b G[d]) (ReLU) or s sa (tanh),
    each + 2 l2 x; gradient descent on the runs ``runs`` with lr, or (gw_out non-empty) the gradients written
    out instead (the adaptive update follows outside)."""
    R = len(runs)
    d = w.shape[1]
    W = w.shape[2]
    write = gw_out.shape[0] > 0
    for q in range(R):
        r = runs[q]
        step = lr[r]
        c2 = 2 * l2[r]
        gd = G[q, d]
        sar = np.empty(W, dtype=w.dtype)
        ga = np.empty(W, dtype=w.dtype)
        for i in range(W):
            sar[i] = s * a[r, i]
            ga[i] = sa[q, i] if tanh else b[r, i] * gd[i]
        for j in range(d):                           # one pass over w and G: ga's w . G (old w), then w
            wj = w[r, j]
            gj = G[q, j]
            if write:
                for i in range(W):
                    wji = wj[i]
                    ga[i] += _zero_if(tanh, wji * gj[i])
                    gw_out[q, j, i] = sar[i] * gj[i] + c2 * wji
            elif tanh:
                for i in range(W):
                    wji = wj[i]
                    wj[i] = wji - step * (sar[i] * gj[i] + c2 * wji)
            else:
                for i in range(W):
                    wji = wj[i]
                    ga[i] += wji * gj[i]
                    wj[i] = wji - step * (sar[i] * gj[i] + c2 * wji)
        for i in range(W):                           # a and b after their use above
            ai = a[r, i]
            bi = b[r, i]
            gai = s * ga[i] + c2 * ai
            gbi = sar[i] * gd[i] + c2 * bi
            if write:
                ga_out[q, i] = gai
                gb_out[q, i] = gbi
            else:
                a[r, i] = ai - step * gai
                b[r, i] = bi - step * gbi


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _zero_if(cond, x):
    return x * 0 if cond else x


def _in_parallel(fn, items) -> None:
    """fn(group) for contiguous groups of ``items`` (run indices), one per worker thread, with BLAS limited to
    one thread meanwhile (each worker's GEMMs then run on its own core; the numba passes release the GIL); one
    group (one run, or one worker) runs on the calling thread with BLAS's own threads."""
    workers = min(len(items), _n_workers())
    if workers <= 1:
        fn(items)
        return
    groups = np.array_split(items, workers)
    with _blas_controller().limit(limits=1, user_api="blas"):
        for _ in _pool().map(fn, groups):          # re-raises a worker's exception here
            pass


_POOL: dict = {}


def _n_workers() -> int:
    import numba
    return max(1, int(numba.get_num_threads()))


def _pool():
    """The worker threads of the GEMM form (as many as numba's threads), made once per process: a forked
    child (which inherits the pool object but none of its threads) makes its own."""
    n = _n_workers()
    if _POOL.get("n") != n or _POOL.get("pid") != os.getpid():
        from concurrent.futures import ThreadPoolExecutor
        if "pool" in _POOL and _POOL.get("pid") == os.getpid():
            _POOL["pool"].shutdown(wait=True)
        _POOL["pool"] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="fastgan-gemm")
        _POOL["n"], _POOL["pid"] = n, os.getpid()
    return _POOL["pool"]


def _blas_controller():
    if "blas" not in _POOL:
        from threadpoolctl import ThreadpoolController
        _POOL["blas"] = ThreadpoolController()
    return _POOL["blas"]


def _step_gemm(w, b, a, xg, xt, lr, l2, u, act, opt):
    """One step on L_D (+ R through u) of every run with lr != 0, as GEMMs; in place (runs split over the
    worker threads: each run's arrays are touched by one thread only)."""
    live = np.nonzero(lr != 0)[0]
    if live.size == 0 or w.shape[2] == 0:
        return
    _in_parallel(lambda runs: _step_gemm_runs(runs, w, b, a, xg, xt, lr, l2, u, act, opt), live)


def _step_gemm_runs(live, w, b, a, xg, xt, lr, l2, u, act, opt):
    B, d, W = w.shape
    N, M = xg.shape[2], xt.shape[2]
    dt = w.dtype
    s = dt.type(np.sqrt(2.0 / W))
    has_u = u is not None
    tanh = act == "tanh"
    K = 2 * N + M if has_u else N + M
    for runs in _gemm_runs(live, K * W + (K + W) * (d + 1)):
        R = len(runs)
        C = _workspace("C", (R, K, W), dt)            # H, then the coefficients; rows N + M.. : UW, then sigma'
        X = _workspace("X", (R, d + 1, K), dt)        # [xg xt u; 1 1 0]
        X[:, d, :N + M] = 1
        X[:, d, N + M:] = 0
        for q, r in enumerate(runs):
            X[q, :d, :N] = xg[r]
            X[q, :d, N:N + M] = xt[r]
            if has_u:
                X[q, :d, N + M:] = u[r]
            np.matmul(X[q, :d, :N + M].T, w[r], out=C[q, :N + M])
            if has_u:
                np.matmul(X[q, :d, N + M:].T, w[r], out=C[q, N + M:])
            if tanh:
                np.add(C[q, :N + M], b[r], out=C[q, :N + M])
                np.tanh(C[q, :N + M], out=C[q, :N + M])
        sa = _workspace("sa", (R if tanh else 0, W), dt)
        runs64 = np.ascontiguousarray(runs, dtype=np.int64)
        _gemm_map(C[:, :N + M], C[:, N + M:], b, runs64, N, M, tanh, has_u, sa)
        G = np.matmul(X, C, out=_workspace("G", (R, d + 1, W), dt))
        if opt is None:
            e3, e2 = np.empty((0, 0, 0), dtype=dt), np.empty((0, 0), dtype=dt)
            _gemm_update(w, b, a, G, sa, runs64, lr, l2, s, tanh, e3, e2, e2)
            continue
        grads = np.empty((R, d, W), dtype=dt), np.empty((R, W), dtype=dt), np.empty((R, W), dtype=dt)
        _gemm_update(w, b, a, G, sa, runs64, lr, l2, s, tanh, *grads)
        _gemm_adapt(w, b, a, grads, runs, lr, opt)


def _gemm_adapt(w, b, a, grads, runs, lr, opt):
    """The adaptive update (``kernels.optim``) of the runs ``runs`` from the GEMM form's gradients (gw, ga, gb,
    the L2 term included)."""
    from .optim import adapt
    gw, ga, gb = grads
    coef = np.asarray(opt["coef"], dtype=w.dtype)[runs]
    for k, x, g in (("w", w, gw), ("b", b, gb), ("a", a, ga)):
        xs, ms, vs = x[runs], opt["m:" + k][runs], opt["v:" + k][runs]
        adapt(np, xs, g, ms, vs, lr[runs], coef)
        x[runs], opt["m:" + k][runs], opt["v:" + k][runs] = xs, ms, vs


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def _act1(H, a, b, runs, tanh):
    """In place: H (R, n, W) pre-activations without the bias (ReLU) or tanh(h) (tanh) -> a_i sigma'(h)
    (row q: run runs[q])."""
    R, n, W = H.shape
    one = H.dtype.type(1)
    zero = H.dtype.type(0)
    for q in range(R):
        r = runs[q]
        ar = a[r]
        br = b[r]
        for k in range(n):
            hk = H[q, k]
            if tanh:
                for i in range(W):
                    t = hk[i]
                    hk[i] = ar[i] * (one - t * t)
            else:
                for i in range(W):
                    hk[i] = ar[i] if hk[i] + br[i] > zero else zero


def _grad_x_gemm(w, b, a, x, act, out):
    """out (B, d, n) = s w (a sigma'(x' w + b))' per run: two GEMMs around one map (runs over the workers)."""
    B, d, W = w.shape
    n = x.shape[2]
    if B == 0 or n == 0 or W == 0:
        out[...] = 0
        return
    _in_parallel(lambda runs: _grad_x_gemm_runs(runs, w, b, a, x, act, out), np.arange(B))


def _grad_x_gemm_runs(items, w, b, a, x, act, out):
    n, W = x.shape[2], w.shape[2]
    s = w.dtype.type(np.sqrt(2.0 / W))
    for runs in _gemm_runs(items, n * W):
        H = _workspace("H", (len(runs), n, W), w.dtype)
        for q, r in enumerate(runs):
            np.matmul(x[r].T, w[r], out=H[q])
            if act == "tanh":
                np.add(H[q], b[r], out=H[q])
                np.tanh(H[q], out=H[q])
        _act1(H, a, b, np.ascontiguousarray(runs, dtype=np.int64), act == "tanh")
        for q, r in enumerate(runs):
            np.matmul(w[r], H[q].T, out=out[r])
            out[r] *= s
