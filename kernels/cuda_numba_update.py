"""Numba-CUDA twin of ``update_numpy.generator_update``: the end of an iteration in two launches and no
host copy.

advance   one thread per entry of X (grid-stride): Xn = X + lr V for a live run (the product through
          ``fmul_rn`` / ``dmul_rn``: not contracted into an FMA, so Xn is bitwise the reference's),
          X for a dead one; the same threads then stride over every parameter array (a tuple of
          (B, n_p) views of one dtype). ``bad[r]`` is set to 1 for a dead run and wherever a run's
          Xn or parameters are not finite (all writers store the same value: no race to order).
settle    one thread per entry of X: a bad run takes X back; the first thread of each run turns a live
          bad run dead (alive 0, diverged = iteration). Only that thread touches alive / diverged,
          which nothing else reads in this launch.

``bad`` starts zeroed (a memset, not a launch); parameters of another dtype than X get one more
``advance``-style launch per dtype (no family has any today).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import cuda

from .cuda_numba_common import array_module, block, blocks, dev, jit_kernel, mul_rn_for, register_kernels, stream


class Kernels(NamedTuple):
    advance: object
    settle: object


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name: str) -> Kernels:
    mul = mul_rn_for(dtype_name)

    @jit_kernel
    def advance(X, V, lr, alive, params, check_x, bad, out):
        B, n = X.shape
        start, step = cuda.grid(1), cuda.gridsize(1)
        if check_x:
            for t in range(start, B * n, step):
                r = t // n
                j = t - r * n
                if alive[r]:
                    y = X[r, j] + mul(lr[r], V[r, j])
                    out[r, j] = y
                    if not math.isfinite(y):
                        bad[r] = 1
                else:
                    out[r, j] = X[r, j]
                    bad[r] = 1
        for q in range(len(params)):
            p = params[q]
            m = p.shape[1]
            for t in range(start, B * m, step):
                r = t // m
                if not math.isfinite(p[r, t - r * m]):
                    bad[r] = 1

    @jit_kernel
    def settle(X, bad, alive, diverged, iteration, out):
        B, n = X.shape
        for t in range(cuda.grid(1), B * n, cuda.gridsize(1)):
            r = t // n
            j = t - r * n
            if bad[r]:
                out[r, j] = X[r, j]
                if j == 0 and alive[r]:
                    alive[r] = False
                    diverged[r] = iteration

    return Kernels(advance, settle)


def generator_update(X, V, lr, alive, diverged, iteration, params):
    """Twin of ``update_numpy.generator_update`` (in place on ``alive``, ``diverged``; returns Xn)."""
    xp = array_module(X, V, lr, alive, diverged)
    B = X.shape[0]
    if X.size == 0:
        return X.copy()
    X2, V2 = X.reshape(B, -1), V.reshape(B, -1)
    out = xp.empty_like(X2)
    bad = xp.zeros(B, dtype=np.uint8)
    dt = np.dtype(X.dtype)
    k = _kernels(dt.name)
    T = block("elementwise")
    groups: dict = {}
    for p in params:
        groups.setdefault(np.dtype(p.dtype).name, []).append(dev(xp, xp.ascontiguousarray(p).reshape(B, -1)))
    mine = tuple(groups.pop(dt.name, ())) or (dev(xp, xp.zeros((B, 0), dtype=dt)),)
    cfg = (blocks(-(-max(X2.size, 1) // T)), T, stream(xp))
    args = (dev(xp, X2), dev(xp, V2), dev(xp, lr), dev(xp, alive))
    k.advance[cfg](*args, mine, True, dev(xp, bad), dev(xp, out))
    for name, arrs in groups.items():       # parameters of another dtype: their own launch
        _kernels(name).advance[cfg](*args, tuple(arrs), False, dev(xp, bad), dev(xp, out))
    k.settle[cfg](dev(xp, X2), dev(xp, bad), dev(xp, alive), dev(xp, diverged), np.int64(iteration), dev(xp, out))
    return out.reshape(X.shape)


def _examples(dn: str, d) -> dict:
    dt = np.dtype(dn)
    a2, f1 = np.zeros((1, 1), dt), np.zeros(1, dt)
    b1, u8, i1 = np.zeros(1, np.bool_), np.zeros(1, np.uint8), np.zeros(1, np.int64)
    return {"advance": (a2, a2, f1, b1, (a2, a2, a2), True, u8, a2),
            "settle": (a2, u8, b1, i1, np.int64(1), a2)}


register_kernels("update", lambda dn, d: _kernels(dn), _examples)
