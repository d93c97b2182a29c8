"""Numba CPU twin of the in-loop observables (reference: ``observables_numpy``)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

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
