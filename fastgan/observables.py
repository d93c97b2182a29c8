"""Observables of a particle cloud against a target with modes (SPEC §1.4).

From the backend's ``mode_stats`` op (per-mode counts, high-quality counts, mean nearest-mode
distance, mean log-likelihood) this module derives, per run:

mode_collapse          MC = log K + sum_i P_i log P_i, P_i = fraction nearest to mode i     (eq. 22)
                       (0: even coverage; log K: everything on one mode; targets with unequal
                       weights use the same formula, as in the paper)
log_likelihood         (1/N) sum_a log p(X_a), stable log-sum-exp (NaN when a mode has std 0)
nearest_mode_distance  mean Euclidean distance to the nearest mode (Fig. 17)
modes_covered          modes with >= 1 high-quality particle (within 3 std of its nearest mode)
high_quality_fraction  fraction of particles that are high-quality
kl_uniform             KL(P_hq || w) of the high-quality particles' mode histogram to the target
                       weights (uniform for the ring and grid: VEEGAN/PacGAN convention); with no
                       high-quality particle it takes its largest possible value, log(1 / min w)

The raw histograms are kept too (``histograms/nearest_mode`` and ``histograms/high_quality``) so
any variant of these metrics can be recomputed.
"""

from __future__ import annotations

import numpy as np

SCALARS = ("mode_collapse", "log_likelihood", "nearest_mode_distance", "modes_covered",
           "high_quality_fraction", "kl_uniform")
HISTOGRAMS = ("nearest_mode", "high_quality")


def _xlogx(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def mode_collapse_metric(counts: np.ndarray) -> np.ndarray:
    """MC = log K + sum_i P_i log P_i for counts (..., K)."""
    counts = np.asarray(counts, dtype=np.float64)
    k = counts.shape[-1]
    p = counts / counts.sum(-1, keepdims=True)
    return np.log(k) + _xlogx(p).sum(-1)


def kl_to_weights(hq_counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """KL(P_hq || w) per run; log(1/min w) when there is no high-quality particle."""
    hq = np.asarray(hq_counts, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    tot = hq.sum(-1, keepdims=True)
    p = hq / np.where(tot > 0, tot, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (_xlogx(p) - np.where(p > 0, p * np.log(np.where(w > 0, w, 1.0)), 0.0)).sum(-1)
    worst = np.log(1.0 / w[..., :].min(-1, initial=np.inf, where=w > 0))
    return np.where(tot[..., 0] > 0, kl, worst)


def from_stats(counts, hq, nearest, loglik, weights, n_particles) -> dict:
    """The scalar observables (B,) from the mode_stats op's outputs."""
    return {
        "mode_collapse": mode_collapse_metric(counts),
        "log_likelihood": np.asarray(loglik, dtype=np.float64),
        "nearest_mode_distance": np.asarray(nearest, dtype=np.float64),
        "modes_covered": (np.asarray(hq) > 0).sum(-1).astype(np.float64),
        "high_quality_fraction": np.asarray(hq).sum(-1) / float(n_particles),
        "kl_uniform": kl_to_weights(hq, weights),
    }


def time_average(times: np.ndarray, values: np.ndarray, center: int, step: int = 20, n: int = 3) -> np.ndarray:
    """Mean of values (..., T) over the recorded times center + k*step, k = -n..n, that exist (Fig. 5)."""
    want = center + step * np.arange(-n, n + 1)
    idx = np.nonzero(np.isin(times, want))[0]
    if idx.size == 0:
        raise ValueError(f"no recorded time in {center} +- {n}*{step}")
    return np.asarray(values)[..., idx].mean(-1)


# --------------------------------------------------------------------------- isolated points model

IPM_SCALARS = ("w2", "escaped_fraction")
IPM_HISTOGRAMS = ("excess_mass",)


def wasserstein2(x, p, y, q) -> float:
    """W2 between the discrete measures sum_j p_j delta(x_j) and sum_i q_i delta(y_i) (masses
    normalised to probabilities): an exact assignment when the counts are equal and the masses
    uniform, else the exact transport linear programme (papers/000 Fig. 3a)."""
    from scipy.optimize import linear_sum_assignment, linprog
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    n, k = cost.shape
    if n == k and np.allclose(p, 1.0 / n, rtol=1e-12, atol=0) and np.allclose(q, 1.0 / k, rtol=1e-12, atol=0):
        rows, cols = linear_sum_assignment(cost)
        return float(np.sqrt(cost[rows, cols].mean()))
    a_eq = np.zeros((n + k, n * k))
    for j in range(n):
        a_eq[j, j * k:(j + 1) * k] = 1.0
    for i in range(k):
        a_eq[n + i, i::k] = 1.0
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=np.concatenate([p, q]), bounds=(0, None), method="highs")
    if not res.success:  # pragma: no cover - the LP is always feasible
        raise RuntimeError(f"transport LP failed: {res.message}")
    return float(np.sqrt(max(res.fun, 0.0)))


def excess_mass(x, p, y, q) -> np.ndarray:
    """Delta_i = q_i - sum_{j in N_i} p_j (papers/000 eq. 15; q: true masses, p: generated masses).
    The isolated region V_i is the ball around y_i of radius half the smallest distance between
    true points (disjoint balls, like the circles of papers/000 Fig. 1; the whole space for a single
    true point): a generated point outside every ball counts for no region."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    near = d2.argmin(1)
    if y.shape[0] > 1:
        gaps = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        radius2 = gaps[~np.eye(y.shape[0], dtype=bool)].min() / 4
        inside = d2[np.arange(x.shape[0]), near] < radius2
    else:
        inside = np.ones(x.shape[0], dtype=bool)
    w = np.where(inside, np.asarray(p, dtype=np.float64), 0.0)
    return np.asarray(q, dtype=np.float64) - np.bincount(near, weights=w, minlength=y.shape[0])


def ipm_observables(X, gen_masses, points, masses, radius) -> tuple[dict, dict]:
    """Per-run IPM observables from host arrays X (B, N, d), gen_masses (B, N), points (B, K, d),
    masses (B, K): scalars w2 and escaped_fraction (|x| > radius, Fig. 3b), histogram excess_mass."""
    B = X.shape[0]
    w2 = np.array([wasserstein2(X[b], gen_masses[b], points[b], masses[b]) for b in range(B)])
    esc = (np.sqrt((X.astype(np.float64) ** 2).sum(-1)) > np.asarray(radius)[:, None]).mean(1)
    exc = np.stack([excess_mass(X[b], gen_masses[b], points[b], masses[b]) for b in range(B)])
    return {"w2": w2, "escaped_fraction": esc}, {"excess_mass": exc}
