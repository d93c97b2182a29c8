"""Numba CPU twins of the coupled velocity V = (1/N) Gamma G (reference: ``coupling_numpy``)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .launch import CPU_TILE


@njit(parallel=True, cache=True)
def _coarse(G, g1, g2, out):
    B, d, N = G.shape
    for task in prange(B * d):
        r = task // d
        j = task % d
        row = G[r, j]
        acc = 0.0
        for a in range(N):
            acc += row[a]
        mean = acc / N
        kappa = (g1[r] - g2[r]) / N
        for a in range(N):
            out[r, j, a] = kappa * row[a] + g2[r] * mean


@njit(parallel=True, cache=True, fastmath={"nsz", "arcp", "contract", "reassoc"})
def _gram(G, gram, out, rows):
    """Row dot products over 1-D views with reassociation allowed, so they vectorise; sums in the
    state dtype, as the reference's BLAS matmul."""
    B, d, N = G.shape
    shared = gram.shape[0] == 1
    nchunk = (N + rows - 1) // rows
    for task in prange(B * nchunk):
        r = task // nchunk
        gr = 0 if shared else r
        lo = (task % nchunk) * rows
        zero = G.dtype.type(0)
        for a in range(lo, min(N, lo + rows)):
            ga = gram[gr, a]
            for j in range(d):
                gj = G[r, j]
                acc = zero
                for c in range(N):
                    acc += ga[c] * gj[c]
                out[r, j, a] = acc / N


@njit(parallel=True, cache=True)
def _spatial(G, X, g1, g2, ell, laplacian, out, rows):
    B, d, N = G.shape
    nchunk = (N + rows - 1) // rows
    for task in prange(B * nchunk):
        r = task // nchunk
        lo = (task % nchunk) * rows
        inv = 1.0 / (ell[r] * ell[r])
        acc = np.empty(d)
        for a in range(lo, min(N, lo + rows)):
            for j in range(d):
                acc[j] = 0.0
            for c in range(N):
                if c == a:
                    continue
                r2 = 0.0
                for j in range(d):
                    dx = float(X[r, j, a]) - float(X[r, j, c])
                    r2 += dx * dx
                r2 *= inv
                k = math.exp(-math.sqrt(r2)) if laplacian else math.exp(-0.5 * r2)
                for j in range(d):
                    acc[j] += k * G[r, j, c]
            for j in range(d):
                out[r, j, a] = (g1[r] * G[r, j, a] + g2[r] * acc[j]) / N


def coupled_velocity_coarse(G, g1, g2):
    out = np.empty_like(G)
    _coarse(G, np.asarray(g1, dtype=np.float64), np.asarray(g2, dtype=np.float64), out)
    return out


def coupled_velocity_gram(G, gram):
    out = np.empty_like(G)
    _gram(G, np.ascontiguousarray(gram, dtype=G.dtype), out, CPU_TILE["pair_rows"])
    return out


def coupled_velocity_spatial(G, X, g1, g2, length_scale, kernel):
    out = np.empty_like(G)
    _spatial(G, np.ascontiguousarray(X), np.asarray(g1, dtype=np.float64), np.asarray(g2, dtype=np.float64),
             np.asarray(length_scale, dtype=np.float64), kernel == "laplacian", out, CPU_TILE["pair_rows"])
    return out
