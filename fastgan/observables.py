"""Observables of a particle cloud against a target with modes (Durr et al. eq. 22 and companions).

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

For targets of dimension d > 2 (:func:`records_cosine`; images, spheres, high-dimensional mixtures) the
high-dimensional observables of Durr et al.'s MNIST experiments are recorded too, against the target's
points P_i (i = 1..M: the component centres, i.e. a mixture's modes, a point set's points, an empirical
target's samples or images), from the backend's ``cosine_stats`` op, with cos(x, y) = x.y / (|x| |y|) and
cos = 0 when either vector is 0 (a zero particle is as far from every point as an orthogonal one):

cosine_mode_collapse   log M + sum_i P_i log P_i, P_i = fraction of particles whose most cosine-similar point
                       is P_i (ties: the lowest i) (0: even spread over the points, log M: all on one)
cosine_distance        mean over particles of min_i (1 - cos(X_a, P_i)) (0: every particle on a point's ray)
particle_cosine        mean over pairs a < b of |cos(X_a, X_b)| (1: every particle on one line, ~0: spread
                       over orthogonal directions; a collapse signal that needs no data; NaN for N = 1)
runaway                1.0 when the largest particle norm exceeds RUNAWAY_FACTOR times the largest norm of the
                       target's points, else 0.0

Their cost per recording is O(N (M + N) d) (particles x points x d, and particle pairs x d). Runs in d = 1
or 2 do not record them (their outputs are what they were), and where they are recorded every other
observable is bitwise what it was without them.
"""

from __future__ import annotations

import numpy as np

SCALARS = ("mode_collapse", "log_likelihood", "nearest_mode_distance", "modes_covered",
           "high_quality_fraction", "kl_uniform")
HISTOGRAMS = ("nearest_mode", "high_quality")
COSINE_SCALARS = ("cosine_mode_collapse", "cosine_distance", "particle_cosine", "runaway")
RUNAWAY_FACTOR = 10.0           # runaway: the largest particle norm beyond this many times the largest point norm
COSINE_MIN_DIM = 3              # the cosine observables are recorded for targets of at least this dimension


def records_cosine(dim) -> bool:
    """Whether runs on a target of dimension ``dim`` record :data:`COSINE_SCALARS` (None: a file target not
    loaded yet, which may)."""
    return dim is None or dim >= COSINE_MIN_DIM


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


def from_cosine_stats(counts, cos_dist, pair_cos, max_norm, point_norm) -> dict:
    """The cosine observables (B,) from the cosine_stats op's outputs and the largest norm of each run's
    target points ``point_norm`` (B,)."""
    max_norm = np.asarray(max_norm, dtype=np.float64)
    return {
        "cosine_mode_collapse": mode_collapse_metric(counts),
        "cosine_distance": np.asarray(cos_dist, dtype=np.float64),
        "particle_cosine": np.asarray(pair_cos, dtype=np.float64),
        "runaway": (max_norm > RUNAWAY_FACTOR * np.asarray(point_norm, dtype=np.float64)).astype(np.float64),
    }


def time_average(times: np.ndarray, values: np.ndarray, center: int, step: int = 20, n: int = 3) -> np.ndarray:
    """Mean of values (..., T) over the recorded times center + k*step, k = -n..n, that exist (Fig. 5)."""
    want = center + step * np.arange(-n, n + 1)
    idx = np.nonzero(np.isin(times, want))[0]
    if idx.size == 0:
        raise ValueError(f"no recorded time in {center} +- {n}*{step}")
    return np.asarray(values)[..., idx].mean(-1)
