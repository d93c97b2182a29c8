"""Numba CPU twins of ``fourier_grid`` (the d = 2 Fourier discriminator in separable form).

Same signatures, layouts and in-place semantics as ``fourier_grid``; the reference is the generic
trigonometric form of ``linear_numpy`` on the expanded grid (tests compare all three).

``fourier_grid_disc_step``  two passes in one parallel region:
    1. tasks = (run, grid row or column): the factor rows cos(u_a x1_j), sin(u_a x1_j) and w_j cos(v_b x2_j),
       w_j sin(v_b x2_j) over the run's generated then target samples, one sample axis of
       n = N + M with signed weights (+wg, -wt): 4 (K, n) rows per run, (K1 + K2) n sines and
       cosines in all (the vectorised ``linear_numba`` cos / sin).
    2. tasks = (run, row a): for every column b the four dot products over samples give
       sum_j w_j cos(u_a x1_j + v_b x2_j) and sum_j w_j sin(.) by angle addition (partials over
       ``CPU_TILE['fgrid_chunk']`` samples in the state dtype, totals in float64 as the reference's
       feature sums), then the update of w1[a, b] (sin) and w2[a, b] (cos), formed in float64 and
       rounded once. A task writes only its own row: race-free, in place. Runs with lr == 0 are
       skipped (bitwise untouched).
``fourier_grid_grad_x`` / ``fourier_grid_forward``  tasks = (run, tile of ``CPU_TILE['fgrid_samples']``
    samples); per sample the K1 + K2 sines and cosines, then one pass over the K1 x K2 weights:
    T_ab = w1_ab cos(a + b) - w2_ab sin(a + b) (angle addition), dD/dx1 = sum_a u_a sum_b T_ab,
    dD/dx2 = sum_ab v_b T_ab.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .launch import CPU_TILE
from .fastmath import FASTMATH, vcos, vsin, wide_vectors


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _step(w1, w2, u, v, rate, x, w, lr, lam, chunk, c1, s1, c2, s2):
    B, K1, K2 = w1.shape
    n = x.shape[2]
    for task in prange(B * (K1 + K2)):                 # pass 1: factor rows (1-D views: vectorised)
        wide_vectors()
        r = task // (K1 + K2)
        if lr[r] == 0:
            continue
        a = task % (K1 + K2)
        wr = w[r]
        if a < K1:
            f = u[r, a]
            xr = x[r, 0]
            cr = c1[r, a]
            sr = s1[r, a]
            for j in range(n):
                ph = f * xr[j]
                cr[j] = vcos(ph)
                sr[j] = vsin(ph)
        else:
            f = v[r, a - K1]
            xr = x[r, 1]
            cr = c2[r, a - K1]
            sr = s2[r, a - K1]
            for j in range(n):
                ph = f * xr[j]
                cr[j] = wr[j] * vcos(ph)
                sr[j] = wr[j] * vsin(ph)
    for task in prange(B * K1):                         # pass 2: one grid row per task
        wide_vectors()
        r = task // K1
        if lr[r] == 0:
            continue
        a = task % K1
        ca = c1[r, a]
        sa = s1[r, a]
        zero = w1.dtype.type(0)
        step = lr[r]
        l2 = lam[r]
        for b in range(K2):
            cb = c2[r, b]
            sb = s2[r, b]
            cos_sum = 0.0
            sin_sum = 0.0
            for j0 in range(0, n, chunk):
                j1 = min(n, j0 + chunk)
                cav = ca[j0:j1]                         # views indexed from 0: the loop vectorises
                sav = sa[j0:j1]
                cbv = cb[j0:j1]
                sbv = sb[j0:j1]
                pc = zero
                ps = zero
                for j in range(j1 - j0):
                    pc += cav[j] * cbv[j] - sav[j] * sbv[j]
                    ps += sav[j] * cbv[j] + cav[j] * sbv[j]
                cos_sum += np.float64(pc)
                sin_sum += np.float64(ps)
            rt = step * np.float64(rate[r, a, b])
            t1 = np.float64(w1[r, a, b])
            t2 = np.float64(w2[r, a, b])
            # feature sums rounded to the state dtype first, as the reference does
            w1[r, a, b] = t1 - rt * (np.float64(w1.dtype.type(sin_sum)) + l2 * t1)
            w2[r, a, b] = t2 - rt * (np.float64(w1.dtype.type(cos_sum)) + l2 * t2)


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _per_sample(w1, w2, u, v, x, grad, out, tile):
    """grad: out (B, 2, n) = grad_x D; else out (B, 1, n) = D."""
    B, K1, K2 = w1.shape
    n = x.shape[2]
    ntile = (n + tile - 1) // tile
    for task in prange(B * ntile):
        wide_vectors()
        r = task // ntile
        lo = (task % ntile) * tile
        hi = min(n, lo + tile)
        zero = w1.dtype.type(0)
        c1 = np.empty(K1, dtype=w1.dtype)
        s1 = np.empty(K1, dtype=w1.dtype)
        c2 = np.empty(K2, dtype=w1.dtype)
        s2 = np.empty(K2, dtype=w1.dtype)
        ur = u[r]
        vr = v[r]
        for k in range(lo, hi):
            x1 = x[r, 0, k]
            x2 = x[r, 1, k]
            for a in range(K1):
                c1[a] = vcos(ur[a] * x1)
                s1[a] = vsin(ur[a] * x1)
            for b in range(K2):
                c2[b] = vcos(vr[b] * x2)
                s2[b] = vsin(vr[b] * x2)
            g1 = zero
            g2 = zero
            for a in range(K1):
                ca = c1[a]
                sa = s1[a]
                wa = w1[r, a]
                za = w2[r, a]
                row = zero
                if grad:
                    col = zero
                    for b in range(K2):
                        t = wa[b] * (ca * c2[b] - sa * s2[b]) - za[b] * (sa * c2[b] + ca * s2[b])
                        row += t
                        col += vr[b] * t
                    g1 += ur[a] * row
                    g2 += col
                else:
                    for b in range(K2):
                        row += wa[b] * (sa * c2[b] + ca * s2[b]) + za[b] * (ca * c2[b] - sa * s2[b])
                    g1 += row
            out[r, 0, k] = g1
            if grad:
                out[r, 1, k] = g2


_SCRATCH = threading.local()


def _scratch(B, K1, K2, n, dt):
    """The step's factor rows c1, s1 (B, K1, n) and c2, s2 (B, K2, n), kept per thread between calls:
    fresh multi-MB arrays every step would cost more in page faults than the step itself."""
    key = (B, K1, K2, n, np.dtype(dt).str)
    if getattr(_SCRATCH, "key", None) != key:
        _SCRATCH.key = key
        _SCRATCH.bufs = (np.empty((2, B, K1, n), dtype=dt), np.empty((2, B, K2, n), dtype=dt))
    return _SCRATCH.bufs


def _cast(dt, *arrays):
    return [np.ascontiguousarray(a, dtype=dt) for a in arrays]


def _check(w1):
    if w1.dtype not in (np.float32, np.float64):
        raise TypeError(f"fourier grid ops need float32 or float64 weights, got {w1.dtype}")


def fourier_grid_disc_step(w1, w2, u, v, rate, xg, wg, xt, wt, lr, lam):
    """Twin of ``fourier_grid.fourier_grid_disc_step``: one step for the whole ensemble, in place."""
    _check(w1)
    dt = w1.dtype
    B, K1, K2 = w1.shape
    u, v, rate = _cast(dt, u, v, rate)
    x = np.concatenate([np.asarray(xg, dtype=dt), np.asarray(xt, dtype=dt)], axis=2)
    w = np.concatenate([np.asarray(wg, dtype=dt), -np.asarray(wt, dtype=dt)], axis=1)
    n = x.shape[2]
    (c1, s1), (c2, s2) = _scratch(B, K1, K2, n, dt)
    lr = np.ascontiguousarray(lr, dtype=np.float64).reshape(-1)
    lam = np.ascontiguousarray(lam, dtype=np.float64).reshape(-1)
    _step(w1, w2, u, v, rate, x, w, lr, lam, max(1, int(CPU_TILE["fgrid_chunk"])), c1, s1, c2, s2)


def fourier_grid_grad_x(w1, w2, u, v, x):
    """Twin of ``fourier_grid.fourier_grid_grad_x``: grad_x D at x (B, 2, n) -> (B, 2, n)."""
    _check(w1)
    dt = w1.dtype
    w1, w2, u, v, x = _cast(dt, w1, w2, u, v, x)
    out = np.empty(x.shape, dtype=dt)
    _per_sample(w1, w2, u, v, x, True, out, max(1, int(CPU_TILE["fgrid_samples"])))
    return out


def fourier_grid_forward(w1, w2, u, v, x):
    """Twin of ``fourier_grid.fourier_grid_forward``: D at x (B, 2, n) -> (B, n)."""
    _check(w1)
    dt = w1.dtype
    w1, w2, u, v, x = _cast(dt, w1, w2, u, v, x)
    out = np.empty((x.shape[0], 1, x.shape[2]), dtype=dt)
    _per_sample(w1, w2, u, v, x, False, out, max(1, int(CPU_TILE["fgrid_samples"])))
    return out[:, 0]
