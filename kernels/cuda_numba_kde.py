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
d) like the other twins (register accumulators, compile-time shared sizes) up to ``MAX_DIM``, the
shared tile shrinks with d (``centre_tile``) to keep (d + 2) x tile values under ~24 KiB. Beyond
``MAX_DIM`` (:func:`numba_dim`) both ops are their ``cuda_ops`` forms over ``xp``
(``kde_log_density_xp``, ``kde_grad_sum_xp``: blocks of (runs, queries), r^2 and the gradient from
differences over coordinate chunks, the log-sum-exp shifted by its max), so every d runs.

Routing of ``kde_grad_sum`` (:func:`grad_chunk`): its register kernel keeps the query (d + 1), the
tile partials (d) and float64 totals (d) per thread and spills beyond d = 32 (float32) / 16
(float64) (ptxas sm_90: float64 d = 24 spills 8 B, d = 64 2 KB). Above, the gradient is computed in
launches of ``GRAD_CHUNK[dtype]`` output coordinates each (:func:`_grad_chunk`: the full query
for r^2, then only that chunk's differences, summed straight into float64 totals): the weights are
recomputed once per chunk (ceil(d / chunk) x the exp work), no register array exceeds ~d + 2 chunk
words, and nothing spills up to ``MAX_DIM``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import cuda

from . import cuda_numba_tiled as tiled
from . import cuda_ops, launch
from .cuda_numba_common import array_module, as_xp, block, blocks, check_dim, dev, register_kernels, stream
from .kde_numba import bandwidth_terms, check_args

MAX_DIM = 64          # largest data dimension d of the Numba-CUDA kernels (register accumulators, shared tile)
GRAD_REG_DIM = {"float32": 32, "float64": 16}   # largest d of the one-launch kde_grad_sum kernel
GRAD_CHUNK = {"float32": 16, "float64": 8}     # output coordinates per launch above it


def numba_dim(kernel: str, dtype_name: str, d: int) -> bool:
    """Whether the router sends the op of ``kernel`` ('log_density', 'grad_sum') at (dtype, d) to the
    Numba-CUDA kernels (the gradient: one launch or :func:`grad_chunk` chunks; else ``cuda_ops``)."""
    return 1 <= d <= MAX_DIM


def grad_chunk(dtype_name: str, d: int) -> int:
    """Coordinates per kde_grad_sum launch for (dtype, d): d (one launch) or ``GRAD_CHUNK[dtype]``."""
    return d if d <= GRAD_REG_DIM[dtype_name] else GRAD_CHUNK[dtype_name]


def centre_tile(d: int) -> int:
    """Shared-memory capacity of the KDE kernels, in centres, for dimension d (compile-time)."""
    return max(1, min(128, 2048 // d))


class Kernels(NamedTuple):
    log_density: object
    grad_sum: object


def _stager(D: int, CT: int):
    """The device function staging a tile of centres: sh[j * CT + i] (j < D), their log weights
    sh[D * CT + i] and (gradient with la) la sh[(D + 1) * CT + i]; src = (x, logw, la)."""
    stage_x, stage_w, stage_la = tiled.stage_points(D, CT), tiled.stage_row(CT, D), tiled.stage_row(CT, D + 1)

    @cuda.jit(device=True)
    def stage(src, par, r, c0, cnt, tid, T, sh):
        stage_w(src[1], r, c0, cnt, tid, T, sh)
        if par[0]:
            stage_la(src[2], r, c0, cnt, tid, T, sh)
        stage_x(src[0], r, c0, cnt, tid, T, sh)
    return stage


def _gradient_parts(D: int, CT: int, ZERO):
    """(load_query_lb, pair_weight) of the gradient kernels: the query's coordinates and lb_k in
    qv[D]; the pair weight sum_s [exp(term + la_i) + exp(term + lb_k)] / sigma_s^2 with
    term = logw_i + log k_s (the log density's expression, hence its rounding);
    par = (use_la, cs, hs, lb, use_lb, is2)."""
    sq_dist = tiled.sq_dist(D, CT)

    @cuda.jit(device=True)
    def load_query_lb(x, par, r, k, active, qv):
        for j in range(D):
            qv[j] = x[r, j, k] if active else ZERO
        qv[D] = par[3][r, k] if (par[4] and active) else ZERO

    @cuda.jit(device=True)
    def pair_weight(qv, sh, i, r, par):
        use_la, cs, hs, use_lb, is2 = par[0], par[1], par[2], par[4], par[5]
        r2 = sq_dist(qv, sh, i)
        gw = ZERO
        for s in range(cs.shape[1]):
            e = (cs[r, s] - r2 * hs[r, s]) + sh[D * CT + i]
            w = ZERO
            if use_la:
                w += math.exp(e + sh[(D + 1) * CT + i])
            if use_lb:
                w += math.exp(e + qv[D])
            gw += w * is2[r, s]
        return gw
    return load_query_lb, pair_weight


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name: str, D: int):
    """(log density, grad sum) kernels for state dtype ``dtype_name`` and dimension ``D``."""
    npdt = np.dtype(dtype_name)
    DT = numba.from_dtype(npdt)
    ZERO = npdt.type(0)
    ONE = npdt.type(1)
    NINF = npdt.type(-np.inf)
    CT = centre_tile(D)

    stage = _stager(D, CT)             # the per-run constants of bandwidth_terms in par
    sq_dist = tiled.sq_dist(D, CT)

    @cuda.jit(device=True)
    def log_term(c, r2, h, lw):
        """logw + log k_s, the expression (hence the rounding) of the gradient's pair weight too."""
        return (c - r2 * h) + lw

    # log density: an online log-sum-exp per thread: part = (sum exp(term - max) of the tile, the running
    # max), acc[0] = the total; par = (False, cs, hs)
    @cuda.jit(device=True)
    def init_lse(part, acc):
        part[1] = NINF                         # running max of the terms
        acc[0] = 0.0                           # sum exp(term - max)

    @cuda.jit(device=True)
    def begin_lse(part, acc):
        part[0] = ZERO

    @cuda.jit(device=True)
    def pair_lse(qv, sh, i, c, k, r, par, part, acc):
        cs, hs = par[1], par[2]
        r2 = sq_dist(qv, sh, i)
        for s in range(cs.shape[1]):
            v = log_term(cs[r, s], r2, hs[r, s], sh[D * CT + i])
            if v > part[1]:                    # new max: rescale (exp(-inf) = 0 the first time)
                sc = math.exp(part[1] - v)
                part[0] = part[0] * sc + ONE
                acc[0] = acc[0] * sc
                part[1] = v
            elif v != NINF:                    # a NaN term lands here and makes the sum NaN
                part[0] += math.exp(v - part[1])

    @cuda.jit(device=True)
    def end_lse(part, acc):
        acc[0] += part[0]

    @cuda.jit(device=True)
    def finish_lse(qv, part, acc, src, par, r, k, out):
        tot = acc[0]
        if tot > 0.0:
            out[r, k] = part[1] + math.log(tot)
        elif tot == 0.0:
            out[r, k] = NINF                   # no centre with a finite weight
        else:
            out[r, k] = math.nan

    # gradient: per pair the weight (see _gradient_parts) times the differences x_i - q_k
    load_query_lb, pair_weight = _gradient_parts(D, CT, ZERO)

    @cuda.jit(device=True)
    def pair_grad(qv, sh, i, c, k, r, par, part, acc):
        gw = pair_weight(qv, sh, i, r, par)
        for j in range(D):
            part[j] += (sh[j * CT + i] - qv[j]) * gw

    @cuda.jit(device=True)
    def finish_grad(qv, part, acc, src, par, r, k, out):
        for j in range(D):
            out[r, j, k] = acc[j]

    density = tiled.query_reduction(
        tiled.Reduction(tiled.coordinates(D, ZERO), init_lse, stage, begin_lse, pair_lse, end_lse, finish_lse),
        sdt=DT, n_shared=D + 2, cap=CT, qdt=DT, n_query=D, pdt=DT, n_part=2, n_acc=1)
    grad = tiled.summed(D, DT, ZERO, stage, pair_grad, finish_grad, n_shared=D + 2, cap=CT, n=D, load=load_query_lb)
    return Kernels(density, grad)


@functools.lru_cache(maxsize=None)
def _grad_chunk(dtype_name: str, D: int, J0: int, NJ: int):
    """kde_grad_sum for output coordinates [J0, J0 + NJ) only (same arguments as the one-launch
    kernel; the other rows of ``out`` are left alone): the weights from the full query, the chunk's
    differences summed straight into float64 totals (no state-dtype tile partials: fewer registers)."""
    npdt = np.dtype(dtype_name)
    DT = numba.from_dtype(npdt)
    ZERO = npdt.type(0)
    CT = centre_tile(D)
    stage = _stager(D, CT)
    load_query_lb, pair_weight = _gradient_parts(D, CT, ZERO)

    @cuda.jit(device=True)
    def pair(qv, sh, i, c, k, r, par, part, acc):
        gw = pair_weight(qv, sh, i, r, par)
        for j in range(NJ):
            acc[j] += (sh[(J0 + j) * CT + i] - qv[J0 + j]) * gw

    @cuda.jit(device=True)
    def finish(qv, part, acc, src, par, r, k, out):
        for j in range(NJ):
            out[r, J0 + j, k] = acc[j]

    fns = tiled.Reduction(load_query_lb, tiled.zero_acc(NJ), stage, tiled.nothing, pair, tiled.nothing, finish)
    return tiled.query_reduction(fns, sdt=DT, n_shared=D + 2, cap=CT, qdt=DT, n_query=D + 1, pdt=DT, n_part=1,
                                 n_acc=NJ)


def _grad_launches(dtype_name: str, d: int) -> list:
    """The kde_grad_sum kernels the router launches for (dtype, d), in order."""
    dc = grad_chunk(dtype_name, d)
    if dc >= d:
        return [_kernels(dtype_name, d).grad_sum]
    return [_grad_chunk(dtype_name, d, j0, min(dc, d - j0)) for j0 in range(0, d, dc)]


def _tile(d: int) -> int:
    return max(1, min(centre_tile(d), int(launch.GPU_TILE["kde_cols"])))


# ----------------------------------------------------------------------------- host wrappers

def _launch(grad, q, x, logw, la, lb, bandwidths, logmix):
    xp = array_module(q, x, logw, la, lb, bandwidths, logmix)
    dt = check_args(q, x, logw, la, lb, bandwidths, logmix, grad)
    B, d, n = q.shape
    if not numba_dim("grad_sum" if grad else "log_density", dt.name, d):
        if grad:
            return cuda_ops.kde_grad_sum_xp(q, x, logw, la, lb, bandwidths, logmix)
        return cuda_ops.kde_log_density_xp(q, x, logw, bandwidths, logmix)
    check_dim("kde", d)
    out = xp.empty((B, d, n) if grad else (B, n), dtype=dt)
    if out.size == 0:
        return out
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    cs, hs, is2 = (dev(xp, v) for v in bandwidth_terms(xp, bandwidths, logmix, d, dt))
    T = block("kde")
    cfg = (blocks(B * -(-n // T)), T, stream(xp))
    if grad:
        dummy = xp.zeros((1, 1), dtype=dt)
        args = (c(q), (c(x), c(logw), c(dummy if la is None else la)),
                (la is not None, cs, hs, c(dummy if lb is None else lb), lb is not None, is2), x.shape[2], _tile(d),
                dev(xp, out))
        for kern in _grad_launches(dt.name, d):       # one launch, or one per chunk of coordinates
            kern[cfg](*args)
    else:
        _kernels(dt.name, d).log_density[cfg](c(q), (c(x), c(logw), c(logw)), (False, cs, hs), x.shape[2], _tile(d),
                                              dev(xp, out))
    return out


def kde_log_density(q, x, logw, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_log_density``: log sum_i sum_s exp(logw_i + log k_s(|q_m - x_i|)) -> (B, n)."""
    return _launch(False, q, x, logw, None, None, bandwidths, logmix)


def kde_grad_sum(q, x, logw, la, lb, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_grad_sum``: sum_i sum_s [exp(logw_i + la_i + log k_s) + exp(logw_i + lb_m + log k_s)]
    (x_i - q_m) / sigma_s^2 -> (B, d, n); la (B, m) or lb (B, n) may be None (that term left out)."""
    return _launch(True, q, x, logw, la, lb, bandwidths, logmix)


def _examples(dn: str, d: int) -> dict:
    """Example arguments of every kernel (their numba types are the compiled signatures)."""
    dt = np.dtype(dn)
    a2, a3 = np.zeros((1, 1), dt), np.zeros((1, d, 1), dt)
    return {"log_density": (a3, (a3, a2, a2), (False, a2, a2), 1, 1, a2),
            "grad_sum": (a3, (a3, a2, a2), (True, a2, a2, a2, True, a2), 1, 1, a3)}


def _routed(kname: str, dn: str, d: int) -> bool:
    """Whether the router launches the kernel ``kname`` itself at (dtype, d) (the gradient's chunks: ``_variants``)."""
    return numba_dim(kname, dn, d) and (kname != "grad_sum" or grad_chunk(dn, d) >= d)


def _variants(dn: str, d: int) -> dict:
    """The chunked kde_grad_sum kernels the router launches at (dtype, d) (none where one launch serves)."""
    if not numba_dim("grad_sum", dn, d) or grad_chunk(dn, d) >= d:
        return {}
    ex = _examples(dn, d)["grad_sum"]
    dc = grad_chunk(dn, d)
    return {f"grad_sum_chunk{j0}": (_grad_chunk(dn, d, j0, min(dc, d - j0)), ex) for j0 in range(0, d, dc)}


register_kernels("kde", _kernels, _examples, MAX_DIM, routed=_routed, variants=_variants)
