"""The tiled per-query reduction of the Numba-CUDA twins, written once.

Most GPU ops reduce, for every query point (a sample, a particle), over all "sources" of its run
(hidden units, features, kernel centres, data points, partner particles): the N-body pattern.
:func:`query_reduction` builds that kernel from a few device functions closed over by the caller:

    kernel(x, src, par, n_src, tile, out)

* one thread per query k of run r: a block of T threads takes a chunk of T queries of one run, and a
  grid-stride loop walks the B * ceil(n / T) (run, chunk) tasks, so any (grid, block) is correct;
* the run's sources [0, n_src) are staged cooperatively through one shared array ``sh`` of
  ``n_shared * cap`` values (``sdt``) in tiles of ``tile <= cap`` sources, between barriers (every
  thread of a block reaches every barrier: threads past n only skip the arithmetic), and every
  thread then reads the same address (broadcast, no bank conflicts);
* per thread: the query's values ``qv`` (``n_query``, ``qdt``), a tile partial ``part`` (``n_part``,
  ``pdt``) and the totals ``acc`` (``n_acc`` float64) in registers / local memory: deterministic,
  no atomics.

The device functions (a :class:`Reduction`), every one of them inlined by NVVM:

    load_query(x, par, r, k, active, qv)            the query's values (zeros when not active)
    init(part, acc)                                 before the first tile
    stage(src, par, r, c0, cnt, tid, T, sh)         sources [c0, c0 + cnt) of run r into sh
    tile_begin(part, acc)                           before each tile's pairs
    pair(qv, sh, i, c, k, r, par, part, acc)        one (query, source) pair: i in the tile, c = c0 + i
    tile_end(part, acc)                             after each tile's pairs
    finish(qv, part, acc, src, par, r, k, out)      write the query's result

``src`` and ``par`` are tuples (of arrays and scalars), so every kernel has the same six arguments.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from numba import cuda, float64

from .cuda_numba_common import jit_kernel


class Reduction(NamedTuple):
    load_query: Callable
    init: Callable
    stage: Callable
    tile_begin: Callable
    pair: Callable
    tile_end: Callable
    finish: Callable


def query_reduction(fns: Reduction, *, sdt, n_shared: int, cap: int, qdt, n_query: int, pdt, n_part: int,
                    n_acc: int):
    """The kernel of a tiled per-query reduction (see the module docstring); shapes are compile-time."""
    SH = n_shared * cap
    load_query, init, stage, tile_begin, pair, tile_end, finish = fns

    @jit_kernel
    def kernel(x, src, par, n_src, tile, out):
        B = x.shape[0]
        n = x.shape[2]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        sh = cuda.shared.array(SH, sdt)
        qv = cuda.local.array(n_query, qdt)
        part = cuda.local.array(n_part, pdt)
        acc = cuda.local.array(n_acc, float64)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            load_query(x, par, r, k, active, qv)
            init(part, acc)
            for c0 in range(0, n_src, tile):
                cnt = n_src - c0
                if cnt > tile:
                    cnt = tile
                cuda.syncthreads()             # the previous tile is consumed
                stage(src, par, r, c0, cnt, tid, T, sh)
                cuda.syncthreads()             # this one is complete
                if active:
                    tile_begin(part, acc)
                    for i in range(cnt):
                        pair(qv, sh, i, c0 + i, k, r, par, part, acc)
                    tile_end(part, acc)
            if active:
                finish(qv, part, acc, src, par, r, k, out)

    return kernel


def summed(D: int, dt, zero, stage, pair, finish, *, n_shared: int, cap: int, n: int, load=None):
    """The common case: a query point of D coordinates (``load``: another loader of ``D + 1`` values),
    each tile's n partial sums in the state dtype ``dt``, added into float64 totals."""
    fns = Reduction(load or coordinates(D, zero), zero_acc(n), stage, zero_part(n, zero), pair, add_part(n), finish)
    return query_reduction(fns, sdt=dt, n_shared=n_shared, cap=cap, qdt=dt, n_query=D + (load is not None),
                           pdt=dt, n_part=n, n_acc=n)


# --------------------------------------------------------------------------- common pieces

def coordinates(D: int, zero):
    """load_query for a query point with D coordinates x[r, :, k] (zeros when not active)."""
    @cuda.jit(device=True)
    def load(x, par, r, k, active, qv):
        for j in range(D):
            qv[j] = x[r, j, k] if active else zero
    return load


def stage_points(D: int, cap: int, slot: int = 0):
    """Copy columns [c0, c0 + cnt) of a (B, D, n) array of run r into sh[(slot + j) * cap + i] (cooperative,
    coalesced reads)."""
    off = slot * cap

    @cuda.jit(device=True)
    def stage(a, r, c0, cnt, tid, T, sh):
        for e in range(tid, D * cnt, T):
            j = e // cnt
            i = e - j * cnt
            sh[off + j * cap + i] = a[r, j, c0 + i]
    return stage


def stage_row(cap: int, slot: int):
    """Copy entries [c0, c0 + cnt) of a (B, n) array of run r into sh[slot * cap + i] (cooperative)."""
    off = slot * cap

    @cuda.jit(device=True)
    def stage(a, r, c0, cnt, tid, T, sh):
        for e in range(tid, cnt, T):
            sh[off + e] = a[r, c0 + e]
    return stage


def zero_part(n_part: int, zero):
    @cuda.jit(device=True)
    def begin(part, acc):
        for j in range(n_part):
            part[j] = zero
    return begin


def zero_acc(n_acc: int):
    @cuda.jit(device=True)
    def init(part, acc):
        for j in range(n_acc):
            acc[j] = 0.0
    return init


def add_part(n: int):
    """tile_end: the tile's partials (state dtype) into the float64 totals."""
    @cuda.jit(device=True)
    def end(part, acc):
        for j in range(n):
            acc[j] += part[j]
    return end


def affine(D: int, cap: int):
    """qv[:D] . (sh[j * cap + i])_j + sh[D * cap + i]: a staged source's pre-activation or phase at the
    query point (products summed coordinate by coordinate, then the offset)."""
    @cuda.jit(device=True)
    def value(qv, sh, i):
        h = qv[0] * sh[i]
        for j in range(1, D):
            h += qv[j] * sh[j * cap + i]
        return h + sh[D * cap + i]
    return value


def sq_dist(D: int, cap: int):
    """|q - y_i|^2 of the query point qv[:D] and the staged point i (sh[j * cap + i]), coordinate by
    coordinate."""
    @cuda.jit(device=True)
    def dist(qv, sh, i):
        dx = qv[0] - sh[i]
        r2 = dx * dx
        for j in range(1, D):
            dx = qv[j] - sh[j * cap + i]
            r2 += dx * dx
        return r2
    return dist


@cuda.jit(device=True)
def nothing(part, acc):
    pass
