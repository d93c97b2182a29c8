"""Numba-CUDA twins of the kernel-density reductions (reference: ``kde_numpy``; CPU twin ``kde_numba``).

    kde_log_density(q, x, logw, bandwidths, logmix)        -> (B, n)
    kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix)   -> (B, d, n)

Same signatures, layouts and dtypes as the reference; arrays are CuPy arrays on a GPU and NumPy
arrays under the simulator (``cuda_numba_common``). Each op is one launch for the whole ensemble.

Design: the tiled N-body pair reduction of the kernel sums (``cuda_numba_linear``): one block per
(run, chunk of query points), one thread per query (block = ``launch.GPU_BLOCK['kde']``), a
grid-stride loop over the (run, chunk) tasks. The run's centres, their log weights and (gradient
with la) the per-centre log weights la are staged cooperatively through shared memory in tiles
of ``launch.GPU_TILE['kde_cols']`` (clamped to ``centre_tile(d)``); every thread then reads the
same address (broadcast). Per pair, r^2 is summed coordinate by coordinate and the S log-kernel
terms are c_s - r^2 h_s + logw_i with the per-run constants of ``kde_numba.bandwidth_terms``
(c_s = logmix_s - (d/2) log(2 pi sigma_s^2) formed on the host in float64: sigma^-d never
appears), uniform global reads.

``kde_log_density``  an online log-sum-exp per thread: a running max and the sum of
    exp(term - max), rescaled by exp(old max - new max) whenever a term exceeds the max (one exp
    per term either way); a tile's partial sum is in the state dtype, the total in float64.
    The result max + log(sum) never underflows to log 0 nor overflows; every weight -inf gives
    -inf, a NaN term NaN.
``kde_grad_sum``  per pair the weight sum_s [exp(term + la_i) + exp(term + lb_m)] / sigma_s^2
    (a term whose array is None is skipped: a dummy array and a flag, uniform branches) times the
    differences x_i - q_m in registers (no q sum(g) - sum(g x) cancellation); tile partials in the
    state dtype, totals in float64, deterministic (no atomics).

Global traffic O(B (n + m) d), arithmetic O(B n m S d). Kernels are specialised per (state dtype,
d) like the other twins (register accumulators, compile-time shared sizes); d <= ``MAX_DIM``, the
shared tile shrinks with d (``centre_tile``) to keep (d + 2) x tile values under ~24 KiB.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda, float64

from . import launch
from .cuda_numba_common import array_module, as_xp, block, blocks, dev, stream
from .kde_numba import bandwidth_terms, check_args

MAX_DIM = 64          # largest data dimension d (register accumulators, shared tile)


def centre_tile(d: int) -> int:
    """Shared-memory capacity of the KDE kernels, in centres, for dimension d (compile-time)."""
    return max(1, min(128, 2048 // d))


def check_dim(d: int) -> None:
    if not 1 <= d <= MAX_DIM:
        raise ValueError(f"the Numba-CUDA KDE kernels support 1 <= d <= MAX_DIM = {MAX_DIM}, got d = {d}")


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name: str, D: int):
    """(log density, grad sum) kernels for state dtype ``dtype_name`` and dimension ``D``."""
    npdt = np.dtype(dtype_name)
    DT = numba.from_dtype(npdt)
    ZERO = npdt.type(0)
    ONE = npdt.type(1)
    NINF = npdt.type(-np.inf)
    CT = centre_tile(D)
    YS = D * CT

    @cuda.jit(device=True)
    def stage(x, logw, la, use_la, r, c0, tile, tid, T, ys, lws, las):
        """Cooperatively copy centres [c0, c0 + cnt) of run r and their log weights (and la) to shared
        memory, between barriers (the previous tile is consumed; this one is complete); returns cnt."""
        cnt = x.shape[2] - c0
        if cnt > tile:
            cnt = tile
        cuda.syncthreads()
        for e in range(tid, cnt, T):
            lws[e] = logw[r, c0 + e]
            if use_la:
                las[e] = la[r, c0 + e]
        for e in range(tid, D * cnt, T):
            j = e // cnt
            i = e - j * cnt
            ys[j * CT + i] = x[r, j, c0 + i]
        cuda.syncthreads()
        return cnt

    @cuda.jit(device=True)
    def sq_dist(qk, ys, i):
        dx = qk[0] - ys[i]
        r2 = dx * dx
        for j in range(1, D):
            dx = qk[j] - ys[j * CT + i]
            r2 += dx * dx
        return r2

    @cuda.jit(device=True)
    def log_term(c, r2, h, lw):
        """logw + log k_s, the same expression (hence rounding) in both kernels."""
        return (c - r2 * h) + lw

    @cuda.jit(device=True)
    def load_query(q, r, k, active, qk):
        for j in range(D):
            qk[j] = q[r, j, k] if active else ZERO

    @cuda.jit
    def log_density(q, x, logw, cs, hs, tile, out):
        B = q.shape[0]
        n = q.shape[2]
        M = x.shape[2]
        S = cs.shape[1]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        ys = cuda.shared.array(YS, DT)
        lws = cuda.shared.array(CT, DT)
        qk = cuda.local.array(D, DT)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            load_query(q, r, k, active, qk)
            mx = NINF                          # running max of the terms
            tot = float64(0.0)                 # sum exp(term - mx)
            for c0 in range(0, M, tile):
                cnt = stage(x, logw, logw, False, r, c0, tile, tid, T, ys, lws, lws)
                if active:
                    part = ZERO
                    for i in range(cnt):
                        r2 = sq_dist(qk, ys, i)
                        for s in range(S):
                            v = log_term(cs[r, s], r2, hs[r, s], lws[i])
                            if v > mx:         # new max: rescale (exp(-inf) = 0 the first time)
                                sc = math.exp(mx - v)
                                part = part * sc + ONE
                                tot = tot * sc
                                mx = v
                            elif v != NINF:    # a NaN term lands here and makes the sum NaN
                                part += math.exp(v - mx)
                    tot += part
            if active:
                if tot > 0.0:
                    out[r, k] = mx + math.log(tot)
                elif tot == 0.0:
                    out[r, k] = NINF           # no centre with a finite weight
                else:
                    out[r, k] = math.nan

    @cuda.jit
    def grad_sum(q, x, logw, la, lb, use_la, use_lb, cs, hs, is2, tile, out):
        B = q.shape[0]
        n = q.shape[2]
        M = x.shape[2]
        S = cs.shape[1]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        ys = cuda.shared.array(YS, DT)
        lws = cuda.shared.array(CT, DT)
        las = cuda.shared.array(CT, DT)
        qk = cuda.local.array(D, DT)
        pacc = cuda.local.array(D, DT)
        acc = cuda.local.array(D, float64)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            load_query(q, r, k, active, qk)
            for j in range(D):
                acc[j] = 0.0
            lbk = lb[r, k] if (use_lb and active) else ZERO
            for c0 in range(0, M, tile):
                cnt = stage(x, logw, la, use_la, r, c0, tile, tid, T, ys, lws, las)
                if active:
                    for j in range(D):
                        pacc[j] = ZERO
                    for i in range(cnt):
                        r2 = sq_dist(qk, ys, i)
                        gw = ZERO
                        for s in range(S):
                            e = log_term(cs[r, s], r2, hs[r, s], lws[i])
                            w = ZERO
                            if use_la:
                                w += math.exp(e + las[i])
                            if use_lb:
                                w += math.exp(e + lbk)
                            gw += w * is2[r, s]
                        for j in range(D):
                            pacc[j] += (ys[j * CT + i] - qk[j]) * gw
                    for j in range(D):
                        acc[j] += pacc[j]
            if active:
                for j in range(D):
                    out[r, j, k] = acc[j]

    return log_density, grad_sum


def _tile(d: int) -> int:
    return max(1, min(centre_tile(d), int(launch.GPU_TILE["kde_cols"])))


# ----------------------------------------------------------------------------- host wrappers

def _launch(grad, q, x, logw, la, lb, bandwidths, logmix):
    xp = array_module(q, x, logw, la, lb, bandwidths, logmix)
    dt = check_args(q, x, logw, la, lb, bandwidths, logmix, grad)
    B, d, n = q.shape
    check_dim(d)
    out = xp.empty((B, d, n) if grad else (B, n), dtype=dt)
    if out.size == 0:
        return out
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    cs, hs, is2 = (dev(xp, v) for v in bandwidth_terms(xp, bandwidths, logmix, d, dt))
    kern = _kernels(dt.name, d)[int(grad)]
    T = block("kde")
    launch_ = kern[blocks(B * -(-n // T)), T, stream(xp)]
    if grad:
        dummy = xp.zeros((1, 1), dtype=dt)
        launch_(c(q), c(x), c(logw), c(dummy if la is None else la), c(dummy if lb is None else lb),
                la is not None, lb is not None, cs, hs, is2, _tile(d), dev(xp, out))
    else:
        launch_(c(q), c(x), c(logw), cs, hs, _tile(d), dev(xp, out))
    return out


def kde_log_density(q, x, logw, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_log_density``: log sum_i sum_s exp(logw_i + log k_s(|q_m - x_i|)) -> (B, n)."""
    return _launch(False, q, x, logw, None, None, bandwidths, logmix)


def kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_grad_sum``: sum_i sum_s [exp(logw_i + la_i + log k_s) + exp(logw_i + lb_m + log k_s)]
    (x_i - q_m) / sigma_s^2 -> (B, d, n); la (B, m) or lb (B, n) may be None (that term left out)."""
    return _launch(True, q, x, logw, la, lb, bandwidths, logmix)


def ptx_targets(dtypes=("float32", "float64"), dims=(1, 2, 3)):
    """(name, python function, signature) of every KDE kernel, for compile-only checks."""
    from numba import types
    out = []
    for dn in dtypes:
        ty = numba.from_dtype(np.dtype(dn))
        a2, a3 = (types.Array(ty, k, "C") for k in (2, 3))
        for d in dims:
            ld, gs = _kernels(dn, d)
            out.append((f"kde_log_density[{dn},d={d}]", ld.py_func, (a3, a3, a2, a2, a2, types.int64, a2)))
            out.append((f"kde_grad_sum[{dn},d={d}]", gs.py_func,
                        (a3, a3, a2, a2, a2, types.boolean, types.boolean, a2, a2, a2, types.int64, a3)))
    return out
