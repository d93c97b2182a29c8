"""NumPy reference of the generator's update with the per-run blow-up check (the end of an iteration).

    Xn = X + lr V                          for a live run (lr (B,) its generator rate, state dtype)
    a live run whose Xn or discriminator parameters are not all finite dies: alive False,
    diverged = iteration, and keeps X (its last finite particles); a dead run keeps X.

In place on ``alive`` (B,) bool and ``diverged`` (B,) int64; returns Xn. The numba backend uses this
function (elementwise NumPy); the cuda backend's twin is ``cuda_numba_update.generator_update``.
"""

from __future__ import annotations

import numpy as np


def finite_runs(X) -> np.ndarray:
    """(B,) bool: every entry of the run is finite."""
    return np.isfinite(X).reshape(X.shape[0], -1).all(axis=1)


def generator_update(X, V, lr, alive, diverged, iteration, params):
    """One generator step of the live runs and their blow-up check; ``params`` a tuple of the
    discriminator's parameter arrays (run axis first)."""
    Xn = X + lr[:, None, None] * V
    ok = alive & finite_runs(Xn)
    for p in params:
        ok &= finite_runs(p)
    diverged[...] = np.where(alive & ~ok, iteration, diverged)
    alive[...] = ok
    if not ok.all():
        Xn = np.where(ok[:, None, None], Xn, X)
    return Xn
