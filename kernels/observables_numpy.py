"""NumPy reference of the in-loop observables (Durr et al. eq. 22 and companions) for particles X (B, d, N).

mode_stats returns, per run:
    counts      (B, K) particles whose nearest mode is k
    hq_counts   (B, K) of those, the high-quality ones: within 3 std_k of their nearest mode
    nearest     (B,)   mean Euclidean distance to the nearest mode
    loglik      (B,)   mean log p(X_a) under the mixture (log-sum-exp; NaN for a run with a zero std)
Ties in the nearest mode go to the lowest index (identical in every backend).

cosine_stats (the high-dimensional observables of Durr et al.'s MNIST experiments) returns, per run, for
the target's points P (B, M, d), with cos(x, y) = x.y / (|x| |y|) and cos = 0 when either vector is 0:
    counts      (B, M) particles whose most cosine-similar point is i (ties: the lowest index)
    cos_dist    (B,)   mean over particles of min_i (1 - cos(X_a, P_i))
    pair_cos    (B,)   mean over pairs a < b of |cos(X_a, X_b)| (NaN for N = 1: no pair)
    max_norm    (B,)   largest particle norm |X_a|
It is written over the array module of X (NumPy here; CuPy and cuBLAS on a GPU, where it serves the cuda
backend) and bounds its temporaries to about COSINE_BLOCK numbers: O(N (M + N) d) work, O(N + M) memory
beyond the blocks.
"""

from __future__ import annotations

import numpy as np

HQ_STDS = 3.0
COSINE_BLOCK = 1 << 22          # numbers in one block of cosines (rows x columns) of cosine_stats


def mode_stats(X, modes, weights, stds):
    """X (B, d, N); modes (B, K, d); weights, stds (B, K). All statistics in float64."""
    X = np.asarray(X, dtype=np.float64)
    B, d, N = X.shape
    K = modes.shape[1]
    diff = X[:, None, :, :] - modes[:, :, :, None]          # (B, K, d, N)
    d2 = (diff * diff).sum(2)                               # (B, K, N)
    idx = d2.argmin(1)                                      # (B, N), first minimum
    dmin2 = np.take_along_axis(d2, idx[:, None, :], 1)[:, 0]
    dmin = np.sqrt(dmin2)
    counts = np.zeros((B, K), dtype=np.int64)
    hq = np.zeros((B, K), dtype=np.int64)
    std_near = np.take_along_axis(stds, idx, 1)
    good = dmin <= HQ_STDS * std_near
    for b in range(B):
        counts[b] = np.bincount(idx[b], minlength=K)
        hq[b] = np.bincount(idx[b][good[b]], minlength=K)
    dens = np.all(stds > 0, axis=1)                        # per run: a zero-width mode has no density
    loglik = np.full(B, np.nan)
    if dens.any():
        s2 = np.where(dens[:, None], stds, 1.0)[:, :, None] ** 2
        with np.errstate(divide="ignore"):
            logc = np.log(weights)[:, :, None] - 0.5 * d * np.log(2 * np.pi * s2) - d2 / (2 * s2)
        mx = logc.max(1, keepdims=True)
        ll = (mx + np.log(np.exp(logc - mx).sum(1, keepdims=True)))[:, 0]   # (B, N)
        loglik[dens] = ll.mean(1)[dens]
    return counts, hq, dmin.mean(1), loglik


def _module(x):
    return np if isinstance(x, np.ndarray) else __import__("cupy")


def _host(a):
    return a if isinstance(a, np.ndarray) else a.get()


def _unit(xp, v, axis):
    """v / |v| along ``axis`` in float64, a zero vector left 0 (so its cosine with anything is 0); and |v|."""
    norm = xp.sqrt((v * v).sum(axis))
    return v / xp.expand_dims(xp.where(norm > 0, norm, 1.0), axis), norm


def cosine_stats(X, points):
    """X (B, d, N); points (B, M, d). Host (counts (B, M) int64, cos_dist, pair_cos, max_norm (B,) float64);
    every statistic in float64."""
    xp = _module(X)
    X = xp.asarray(X, dtype=xp.float64)
    P = xp.asarray(points, dtype=xp.float64)
    B, d, N = X.shape
    M = P.shape[1]
    U, norm = _unit(xp, X, 1)                                   # (B, d, N), (B, N)
    Q, _ = _unit(xp, P, 2)                                      # (B, M, d)
    rows = max(1, COSINE_BLOCK // max(1, M, N))
    counts = np.zeros((B, M), dtype=np.int64)
    cos_dist = np.empty(B)
    pair_cos = np.full(B, np.nan)
    for b in range(B):
        dist = 0.0
        pairs = 0.0
        for s in range(0, N, rows):
            e = min(N, s + rows)
            C = Q[b] @ U[b, :, s:e]                             # (M, rows): cos(P_i, X_a)
            idx = C.argmax(0)                                   # the first maximum (the first NaN, as numpy)
            counts[b] += _host(xp.bincount(idx, minlength=M))
            dist += float((1.0 - C.max(0)).sum())
            G = U[b, :, s:e].T @ U[b]                           # (rows, N): cos(X_a, X_c)
            pairs += float(xp.abs(xp.triu(G, s + 1)).sum())     # c > a only
        cos_dist[b] = dist / N
        if N > 1:
            pair_cos[b] = pairs / (N * (N - 1) / 2)
    return counts, cos_dist, pair_cos, _host(norm.max(1))
