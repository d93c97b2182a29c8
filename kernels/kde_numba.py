"""Numba CPU twins of the kernel-density reductions (reference: ``kde_numpy``, whose docstring
defines the semantics and the log-domain conventions).

    kde_log_density(q, x, logw, bandwidths, logmix)        -> (B, n)
    kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix)   -> (B, d, n)

Same signatures, layouts and dtypes as the reference. Both ops are fused pair reductions with the
task structure of ``linear_numba``'s kernel sums: tasks = (run, tile of ``CPU_TILE['kde_rows']``
query points); a task walks the run's centres in blocks of ``CPU_TILE['kde_cols']`` (outer loop:
each block is read from memory once per task and stays in L1 for the task's queries) and every
query reduces over the block through per-task buffers (r^2 and the S log-kernel terms), so
memory is O(n + m) and no (n, m) array exists.

Log domain throughout. The per-bandwidth terms are log k_s(r) = c_s - r^2 h_s with
c_s = logmix_s - (d/2) log(2 pi sigma_s^2) (formed in float64 on the host, rounded once: sigma^-d
never appears) and h_s = 1 / (2 sigma_s^2) (``bandwidth_terms``, shared with the Numba-CUDA twin).

``kde_log_density``  an online log-sum-exp per query: per centre block the S x m exponent terms
    t = logw_i + log k_s go to the buffer with their max (``_fmax``: a vectorised reduction), the
    running sum (float64) is rescaled once by exp(old shift - new shift) and one vectorised pass
    adds exp(t - shift) (a block partial in the state dtype). The result is shift + log(sum) with
    sum >= 1 once any term is finite: it never underflows to log 0 nor overflows, in float32 too
    (d = 50 with sigma = 0.01 gives terms ~ +180; far queries give terms ~ -1e4). Every weight
    -inf gives -inf; a NaN term gives NaN.
``kde_grad_sum``  per pair the weight exp(logw_i + la_i + log k_s) + exp(logw_i + lb_m + log k_s)
    (a term whose array is None is left out: the wrappers pass a dummy array and a flag) times
    1 / sigma_s^2, times the differences x_i - q_m summed directly (no q sum(g) - sum(g x)
    cancellation far from the origin); block partials in the state dtype, totals in float64.
    Exponents below ``CUT`` count as 0 (no subnormal products; e^-60 in float32, e^-600 in float64).
    Both ops form the terms with one non-reassociated helper (``_log_term``), so with
    lb = -kde_log_density the weights are exact softmax weights even for far float32 queries.

d = 2 has fused loops (r^2 and the difference sums in one pass); other d go through the r^2
buffer coordinate by coordinate, so every inner loop is a vectorisable loop over centres of 1-D
views indexed from 0. exp / log are ``linear_numba``'s branch-free vectorisable helpers.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .launch import CPU_TILE
from .fastmath import CUT, FASTMATH, SAFE, vexp, vlog, wide_vectors


# ----------------------------------------------------------------------------- host helpers (CPU and GPU)

def check_args(q, x, logw, la, lb, bandwidths, logmix, grad):
    """Validate shapes / dtype of the KDE ops' arguments; returns the state dtype (that of q)."""
    dt = np.dtype(q.dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"the KDE ops need float32 or float64 queries, got {dt}")
    if grad and la is None and lb is None:
        raise ValueError("kde_grad_sum needs la, lb or both")
    B, d, n = q.shape
    m = x.shape[2] if x.ndim == 3 else -1
    if x.shape[:2] != (B, d) or tuple(logw.shape) != (B, m):
        raise ValueError("KDE ops: centres must be (B, d, m) and logw (B, m) with (B, d) of the queries (B, d, n)")
    if la is not None and tuple(la.shape) != (B, m):
        raise ValueError("kde_grad_sum: la must be (B, m)")
    if lb is not None and tuple(lb.shape) != (B, n):
        raise ValueError("kde_grad_sum: lb must be (B, n)")
    if bandwidths.shape[0] != B or tuple(np.shape(logmix)) != tuple(bandwidths.reshape(B, -1).shape):
        raise ValueError("KDE ops: bandwidths and logmix must be (B, S)")
    return dt


def bandwidth_terms(xp, bandwidths, logmix, d, dtype):
    """(c, h, inv_s2), each (B, S) of ``dtype``: log k_s(r) = c_s - r^2 h_s and 1 / sigma_s^2, with
    c_s = logmix_s - (d/2) log(2 pi sigma_s^2) formed in float64 (sigma_s^2 rounded to the state
    dtype first, as the reference) and rounded once."""
    B = bandwidths.shape[0]
    f64 = np.float64
    sig = xp.asarray(bandwidths).reshape(B, -1).astype(dtype)
    s2 = (sig * sig).astype(f64)
    c = xp.asarray(logmix).reshape(B, -1).astype(dtype).astype(f64) - 0.5 * d * xp.log(2 * math.pi * s2)
    return tuple(xp.ascontiguousarray(v.astype(dtype)) for v in (c, 0.5 / s2, 1.0 / s2))


# ----------------------------------------------------------------------------- kernels

@intrinsic
def _fmax(typingctx, a, b):
    """max(a, b) propagating NaN (``llvm.maximum``): unlike a compare-and-select, a reduction of it
    vectorises without a no-NaN assumption (~15x the throughput of the scalar loop)."""
    if a != b or a not in (types.float32, types.float64):
        return None

    def codegen(context, builder, sig, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maximum", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)
    return a(a, b), codegen


@njit(cache=True, fastmath=SAFE, inline="never")
def _log_term(c, r2, h, lw):
    """logw + log k_s = (c - r^2 h) + logw, compiled without reassociation (LLVM still inlines and
    vectorises it): the log density and the gradient weights round these terms identically, so
    a weight exp(term + lb) with lb = -log p (from ``kde_log_density``) is exact to float rounding
    even where the terms are ~ -1e4 (far queries) and their own rounding is ~1e-3."""
    return (c - r2 * h) + lw


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _sq_dist(qk, xr, c0, m, r2):
    """r2[c] = |qk - x_(c0 + c)|^2 for c < m, coordinate by coordinate (as the reference)."""
    d = qk.shape[0]
    q0 = qk[0]
    y0 = xr[0, c0:c0 + m]                               # 1-D C views indexed from 0: vectorisable
    if d == 2:
        q1 = qk[1]
        y1 = xr[1, c0:c0 + m]
        for c in range(m):
            u = q0 - y0[c]
            v = q1 - y1[c]
            r2[c] = u * u + v * v
        return
    for c in range(m):
        u = q0 - y0[c]
        r2[c] = u * u
    for j in range(1, d):
        qj = qk[j]
        yj = xr[j, c0:c0 + m]
        for c in range(m):
            u = qj - yj[c]
            r2[c] += u * u


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _log_density(q, x, logw, cs, hs, cut, out, rows, cols):
    B, d, n = q.shape
    M = x.shape[2]
    S = cs.shape[1]
    dt = q.dtype
    ntile = (n + rows - 1) // rows
    for task in prange(B * ntile):
        wide_vectors()
        r = task // ntile
        lo = (task % ntile) * rows
        hi = min(n, lo + rows)
        ninf = dt.type(-np.inf)
        zero = dt.type(0)
        r2 = np.empty(cols, dtype=dt)
        t = np.empty((S, cols), dtype=dt)
        qk = np.empty(d, dtype=dt)
        shift = np.full(hi - lo, -np.inf)              # per query: running max (a state-dtype value)
        tot = np.zeros(hi - lo)                         # ... and sum exp(t - shift), float64
        xr = x[r]
        c_r = cs[r]
        h_r = hs[r]
        for c0 in range(0, M, cols):                    # centre block outer: read once per task, L1-resident
            m = min(cols, M - c0)
            lw = logw[r, c0:c0 + m]
            for k in range(lo, hi):
                for j in range(d):
                    qk[j] = q[r, j, k]
                _sq_dist(qk, xr, c0, m, r2)
                bm = ninf
                for s in range(S):
                    ts = t[s]
                    cc = c_r[s]
                    hh = h_r[s]
                    for c in range(m):
                        v = _log_term(cc, r2[c], hh, lw[c])
                        ts[c] = v
                        bm = _fmax(bm, v)
                i = k - lo
                sh = shift[i]
                if bm > sh:                             # rescale once per block (exp(-inf) = 0); a NaN max
                    tot[i] *= vexp(sh - np.float64(bm))     # leaves the shift, the sum carries the NaN
                    sh = np.float64(bm)
                    shift[i] = sh
                z0 = dt.type(sh) if abs(sh) < np.inf else zero
                part = zero
                for s in range(S):
                    ts = t[s]
                    for c in range(m):
                        z = ts[c] - z0
                        part += zero if z < cut else vexp(z)
                tot[i] += np.float64(part)
        for k in range(lo, hi):
            sh = shift[k - lo]
            v = tot[k - lo]
            if not (v == v):
                out[r, k] = np.nan
            elif v > 0.0:                               # v >= 1 when the shift is finite
                out[r, k] = sh + vlog(v) if abs(sh) < np.inf else sh
            else:
                out[r, k] = -np.inf                     # no centre with a finite weight


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _grad_sum(q, x, logw, la, lb, use_la, use_lb, cs, hs, is2, cut, out, rows, cols):
    B, d, n = q.shape
    M = x.shape[2]
    S = cs.shape[1]
    dt = q.dtype
    ntile = (n + rows - 1) // rows
    for task in prange(B * ntile):
        wide_vectors()
        r = task // ntile
        lo = (task % ntile) * rows
        hi = min(n, lo + rows)
        zero = dt.type(0)
        r2 = np.empty(cols, dtype=dt)
        g = np.empty(cols, dtype=dt)
        qk = np.empty(d, dtype=dt)
        acc = np.zeros((hi - lo, d))                    # per query, float64 totals of the block partials
        xr = x[r]
        c_r = cs[r]
        h_r = hs[r]
        i_r = is2[r]
        for c0 in range(0, M, cols):                    # centre block outer: read once per task, L1-resident
            m = min(cols, M - c0)
            lw = logw[r, c0:c0 + m]
            lav = la[r, c0:c0 + m] if use_la else lw
            for k in range(lo, hi):
                for j in range(d):
                    qk[j] = q[r, j, k]
                lbk = lb[r, k] if use_lb else zero
                _sq_dist(qk, xr, c0, m, r2)
                for c in range(m):
                    g[c] = zero
                for s in range(S):
                    cc = c_r[s]
                    hh = h_r[s]
                    ii = i_r[s]
                    if use_la and use_lb:
                        for c in range(m):
                            e = _log_term(cc, r2[c], hh, lw[c])
                            za = e + lav[c]
                            zb = e + lbk
                            g[c] += ((zero if za < cut else vexp(za)) + (zero if zb < cut else vexp(zb))) * ii
                    elif use_la:
                        for c in range(m):
                            za = _log_term(cc, r2[c], hh, lw[c]) + lav[c]
                            g[c] += zero if za < cut else vexp(za) * ii
                    else:
                        for c in range(m):
                            zb = _log_term(cc, r2[c], hh, lw[c]) + lbk
                            g[c] += zero if zb < cut else vexp(zb) * ii
                a_k = acc[k - lo]
                if d == 2:
                    q0 = qk[0]
                    q1 = qk[1]
                    y0 = xr[0, c0:c0 + m]
                    y1 = xr[1, c0:c0 + m]
                    a0 = zero
                    a1 = zero
                    for c in range(m):
                        a0 += (y0[c] - q0) * g[c]
                        a1 += (y1[c] - q1) * g[c]
                    a_k[0] += a0
                    a_k[1] += a1
                else:
                    for j in range(d):
                        qj = qk[j]
                        yj = xr[j, c0:c0 + m]
                        a = zero
                        for c in range(m):
                            a += (yj[c] - qj) * g[c]
                        a_k[j] += a
        for k in range(lo, hi):
            for j in range(d):
                out[r, j, k] = acc[k - lo, j]


# ----------------------------------------------------------------------------- host wrappers

def _tiles():
    return max(1, int(CPU_TILE["kde_rows"])), max(1, int(CPU_TILE["kde_cols"]))


def kde_log_density(q, x, logw, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_log_density``: log sum_i sum_s exp(logw_i + log k_s(|q_m - x_i|)) -> (B, n)."""
    dt = check_args(q, x, logw, None, None, bandwidths, logmix, False)
    B, d, n = q.shape
    c = lambda v: np.ascontiguousarray(v, dtype=dt)            # noqa: E731
    cs, hs, _ = bandwidth_terms(np, bandwidths, logmix, d, dt)
    out = np.empty((B, n), dtype=dt)
    _log_density(c(q), c(x), c(logw), cs, hs, dt.type(CUT[dt.name]), out, *_tiles())
    return out


def kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_grad_sum``: sum_i sum_s [exp(logw_i + la_i + log k_s) + exp(logw_i + lb_m + log k_s)]
    (x_i - q_m) / sigma_s^2 -> (B, d, n); la (B, m) or lb (B, n) may be None (that term left out)."""
    dt = check_args(q, x, logw, la, lb, bandwidths, logmix, True)
    B, d, n = q.shape
    c = lambda v: np.ascontiguousarray(v, dtype=dt)            # noqa: E731
    cs, hs, is2 = bandwidth_terms(np, bandwidths, logmix, d, dt)
    dummy = np.zeros((1, 1), dtype=dt)
    out = np.empty((B, d, n), dtype=dt)
    _grad_sum(c(q), c(x), c(logw), dummy if la is None else c(la), dummy if lb is None else c(lb),
              la is not None, lb is not None, cs, hs, is2, dt.type(CUT[dt.name]), out, *_tiles())
    return out
