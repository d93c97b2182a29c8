"""Numba CPU twins of the in-loop observables (reference: ``observables_numpy``)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .fastmath import FASTMATH
from .launch import CPU_TILE
from .observables_numpy import HQ_STDS


@njit(parallel=True, cache=True)
def _mode_stats(X, modes, logw, stds, counts, hq, nearest, loglik, density):
    B, d, N = X.shape
    K = modes.shape[1]
    for r in prange(B):
        dens = density[r] != 0
        dsum = 0.0
        lsum = 0.0
        for a in range(N):
            best = np.inf
            arg = 0
            m = -np.inf
            s = 0.0
            for k in range(K):
                d2 = 0.0
                for j in range(d):
                    dx = float(X[r, j, a]) - modes[r, k, j]
                    d2 += dx * dx
                if d2 < best or (d2 != d2 and best == best):   # the first NaN wins, as numpy's argmin
                    best = d2
                    arg = k
                if dens:
                    s2 = stds[r, k] * stds[r, k]
                    v = logw[r, k] - 0.5 * d * math.log(2 * math.pi * s2) - d2 / (2 * s2)
                    if v > m:
                        s = s * math.exp(m - v) + 1.0 if m > -np.inf else 1.0
                        m = v
                    elif v > -np.inf:
                        s += math.exp(v - m)
            dist = math.sqrt(best)
            counts[r, arg] += 1
            if dist <= HQ_STDS * stds[r, arg]:
                hq[r, arg] += 1
            dsum += dist
            if dens:
                lsum += m + math.log(s) if best == best else np.nan      # a NaN position has no density
        nearest[r] = dsum / N
        loglik[r] = lsum / N if dens else np.nan


def mode_stats(X, modes, weights, stds):
    """Twin of ``observables_numpy.mode_stats``."""
    B = X.shape[0]
    K = modes.shape[1]
    counts = np.zeros((B, K), dtype=np.int64)
    hq = np.zeros((B, K), dtype=np.int64)
    nearest = np.empty(B)
    loglik = np.empty(B)
    with np.errstate(divide="ignore"):
        logw = np.log(np.asarray(weights, dtype=np.float64))
    stds = np.ascontiguousarray(stds, dtype=np.float64)
    _mode_stats(np.ascontiguousarray(X), np.ascontiguousarray(modes, dtype=np.float64), logw, stds,
                counts, hq, nearest, loglik, np.all(stds > 0, axis=1).astype(np.uint8))
    return counts, hq, nearest, loglik


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _cosine_rows(X, P, xn, pn, tile, arg, best, pair):
    """Per particle a of run r (tasks of ``tile`` particles): the index and cosine of its most similar point,
    and the sum over later particles c > a of |cos(X_a, X_c)|. X (B, N, d), P (B, M, d) float64; norms
    xn (B, N), pn (B, M); cos = 0 where a norm is 0."""
    B, N, d = X.shape
    M = P.shape[1]
    tiles = (N + tile - 1) // tile
    for task in prange(B * tiles):
        r = task // tiles
        a0 = (task % tiles) * tile
        for a in range(a0, min(N, a0 + tile)):
            na = xn[r, a]
            bc = 0.0
            bi = 0
            for i in range(M):
                dot = 0.0
                for j in range(d):
                    dot += X[r, a, j] * P[r, i, j]
                c = 0.0 if (na == 0.0 or pn[r, i] == 0.0) else dot / na / pn[r, i]
                if i == 0 or c > bc or (c != c and bc == bc):   # the first maximum, the first NaN (numpy's argmax)
                    bc = c
                    bi = i
            arg[r, a] = bi
            best[r, a] = bc
            s = 0.0
            for k in range(a + 1, N):
                dot = 0.0
                for j in range(d):
                    dot += X[r, a, j] * X[r, k, j]
                c = 0.0 if (na == 0.0 or xn[r, k] == 0.0) else dot / na / xn[r, k]
                s += abs(c)
            pair[r, a] = s


def cosine_stats(X, points):
    """Twin of ``observables_numpy.cosine_stats``."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64).transpose(0, 2, 1))     # (B, N, d)
    P = np.ascontiguousarray(points, dtype=np.float64)
    B, N, _ = X.shape
    M = P.shape[1]
    xn = np.sqrt((X * X).sum(2))
    pn = np.sqrt((P * P).sum(2))
    arg = np.zeros((B, N), dtype=np.int64)
    best = np.empty((B, N))
    pair = np.empty((B, N))
    _cosine_rows(X, P, xn, pn, max(1, int(CPU_TILE["cosine_rows"])), arg, best, pair)
    counts = np.zeros((B, M), dtype=np.int64)
    for b in range(B):
        counts[b] = np.bincount(arg[b], minlength=M)
    pair_cos = pair.sum(1) / (N * (N - 1) / 2) if N > 1 else np.full(B, np.nan)
    return counts, (1.0 - best).mean(1), pair_cos, xn.max(1)
