"""NumPy reference of the in-loop observables (Durr et al. eq. 22 and companions) for particles X (B, d, N).

mode_stats returns, per run:
    counts      (B, K) particles whose nearest mode is k
    hq_counts   (B, K) of those, the high-quality ones: within 3 std_k of their nearest mode
    nearest     (B,)   mean Euclidean distance to the nearest mode
    loglik      (B,)   mean log p(X_a) under the mixture (log-sum-exp; NaN for a run with a zero std)
Ties in the nearest mode go to the lowest index (identical in every backend).
"""

from __future__ import annotations

import numpy as np

HQ_STDS = 3.0


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
