"""Closed-form optimal-discriminator fields of the fitting-to-collapse paper: Table 2 cases 1-3
(Propositions C.1-C.3 of Appendix C.3) and the cone model of Assumption 4.1.

Setting: p_data = 1/4 Σ_k N(μ_k, s I_2), μ_k = (a, b) ∈ {±1}², s = 0.1, and

    C1 (Prop. C.1):  p_g = N(0, 0.2 I)        C2 (Prop. C.2):  p_g = U([-2, 2]²)
    C3 (Prop. C.3):  p_g = N([1, 1], I)

NSGAN optimal discriminator and particle field (Theorem C.1), with r = p_data / p_g:

    d* = p_data / (p_data + p_g) = r / (1 + r),
    ∇ log d* = ∇d*/d* = ∇r / (r (1 + r)) = (1 − d*) ∇ log r = (1 − d*)(∇ log p_data − ∇ log p_g).

Every case has the closed form (checked term by term against the printed propositions)

    r(x)  = c Σ_k exp(−κ/2 |x − m_k|² + β_k)                    [· 1_{x ∈ [-2,2]²} for C2]
    ∇r(x) = −κ c Σ_k exp(−κ/2 |x − m_k|² + β_k) (x − m_k)

    C1: c = 1/2,  κ = 5,  m_k = 2 μ_k,            β_k = 5a² + 5b²                  (−κc = −5/2)
    C2: c = 20/π, κ = 10, m_k = μ_k,              β_k = 0                          (−κc = −200/π)
    C3: c = 5/2,  κ = 9,  m_k = (10 μ_k − 1)/9,   β_k = 5/9 (a − 1)² + 5/9 (b − 1)²  (−κc = −45/2)

In general (``derive_ratio_form``), for p_g = N(m_g, v I_2): κ = 1/s − 1/v, c = w v/s,
m_k = (μ_k/s − m_g/v)/κ, β_k = κ|m_k|²/2 − |μ_k|²/(2s) + |m_g|²/(2v); for p_g = U(box): c = w |box|/(2πs),
κ = 1/s, m_k = μ_k, β_k = 0. Evaluation is in the log domain: log r = log c + LSE_k(·) and
∇ log r = −κ (x − Σ_k softmax_k m_k), so ∇r = r ∇ log r, d* = sigmoid(log r) and the field is
(1 − d*) ∇ log r — finite everywhere, with the limit d* → 1, field → 0 as r → ∞.

Discrepancies with the printed paper:
- C.1-C.3 as printed are correct (constants, centres, offsets and gradient prefactors).
- Prop. C.2 writes r = (20/π) Σ … · 1_{[-2,2]²}, i.e. r = 0 outside the square. Since there p_g = 0,
  actually r = +∞ and d* = 1 (not 0); the field ∇d*/d* is 0 there. Here ``ratio`` returns +inf and
  ``grad_ratio`` returns 0 outside the closed square (the distributional boundary terms are dropped).
- Prop. C.4 (Case 4, not implemented here): the prefactor is (3/0.1)/4 = 15/2, not the printed 15/4,
  so ∇r carries −145/2, not −145/4 (the derivation of C.4's r drops a factor 2; tested numerically).
  Its closing remark also names the centres of C.1-type modes (27/29, …); with modes at ±3 the
  centres are m_k = (30 μ_k − 3)/29 ∈ {3, −93/29}².
- Theorem C.1's remark "as x decreases from 1 to 0" means r, not x.

Cone model (Assumption 4.1, §4.1): on the ball |x − x_i| < 4σ, d = 1/2 − |x − x_i|/(8σ), so
∇d/d = −(x − x_i)/(|x − x_i| (4σ − |x − x_i|)) (towards the centre) and |∇d/d| = 1/(4σ − r).
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass

import numpy as np

CASES = ("C1", "C2", "C3")

_SIGNS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


@dataclass(frozen=True)
class Case:
    """One Table-2 configuration and its closed-form ratio r = c Σ_k exp(−κ/2 |x − m_k|² + β_k).

    data_means (4, 2), data_var, data_weights (4,): the target mixture (isotropic components).
    gen_kind "gaussian" (gen_mean (2,), gen_var) or "uniform" (gen_box = (lo, hi) per axis).
    r_coef c, r_kappa κ, r_centres m_k (4, 2), r_offsets β_k (4,): the constants as printed.
    """

    name: str
    proposition: str
    data_means: np.ndarray
    data_var: float
    data_weights: np.ndarray
    gen_kind: str
    gen_mean: np.ndarray | None
    gen_var: float | None
    gen_box: tuple[float, float] | None
    r_coef: float
    r_kappa: float
    r_centres: np.ndarray
    r_offsets: np.ndarray


def _make_cases() -> dict[str, Case]:
    mu, w = _SIGNS.copy(), np.full(4, 0.25)
    a, b = mu[:, 0], mu[:, 1]
    common = dict(data_means=mu, data_var=0.1, data_weights=w)
    return {
        "C1": Case("C1", "C.1", **common, gen_kind="gaussian", gen_mean=np.zeros(2), gen_var=0.2, gen_box=None,
                   r_coef=0.5, r_kappa=5.0, r_centres=2.0 * mu, r_offsets=5.0 * a**2 + 5.0 * b**2),
        "C2": Case("C2", "C.2", **common, gen_kind="uniform", gen_mean=None, gen_var=None, gen_box=(-2.0, 2.0),
                   r_coef=20.0 / math.pi, r_kappa=10.0, r_centres=mu.copy(), r_offsets=np.zeros(4)),
        "C3": Case("C3", "C.3", **common, gen_kind="gaussian", gen_mean=np.ones(2), gen_var=1.0, gen_box=None,
                   r_coef=2.5, r_kappa=9.0, r_centres=(10.0 * mu - 1.0) / 9.0,
                   r_offsets=5.0 / 9.0 * (a - 1.0) ** 2 + 5.0 / 9.0 * (b - 1.0) ** 2),
    }


_CASES = _make_cases()


def case(name: str) -> Case:
    """The Table-2 case ``name`` (one of CASES)."""
    try:
        return _CASES[name]
    except KeyError:
        raise ValueError(f"unknown analytic case {name!r}; expected one of {CASES}") from None


def derive_ratio_form(data_means, data_var: float, data_weights, gen_kind: str, gen_mean=None,
                      gen_var: float | None = None, gen_box: tuple[float, float] | None = None):
    """(c, κ, m_k, β_k) of r = p_data/p_g derived from the parameters (equal data weights, 2-D)."""
    mu, s = np.asarray(data_means, np.float64), float(data_var)
    w = np.asarray(data_weights, np.float64)
    if not np.allclose(w, w[0]) or mu.shape[1] != 2:
        raise ValueError("derive_ratio_form: equal weights in 2-D only")
    if gen_kind == "uniform":
        area = (gen_box[1] - gen_box[0]) ** 2
        return w[0] * area / (2 * math.pi * s), 1.0 / s, mu.copy(), np.zeros(len(mu))
    mg, v = np.asarray(gen_mean, np.float64), float(gen_var)
    kappa = 1.0 / s - 1.0 / v
    m = (mu / s - mg / v) / kappa
    beta = 0.5 * kappa * (m**2).sum(1) - (mu**2).sum(1) / (2 * s) + (mg**2).sum() / (2 * v)
    return w[0] * v / s, kappa, m, beta


# ------------------------------------------------------------------------------------- densities
def _points(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {x.shape}")
    return x


def _lse_softmax(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log Σ_k exp(e_k) and softmax_k(e) over the last axis (finite e)."""
    top = e.max(axis=-1, keepdims=True)
    p = np.exp(e - top)
    tot = p.sum(axis=-1, keepdims=True)
    return (top + np.log(tot))[..., 0], p / tot


def _in_box(c: Case, x: np.ndarray) -> np.ndarray:
    lo, hi = c.gen_box
    return np.all((x >= lo) & (x <= hi), axis=-1)


def log_p_data(x) -> np.ndarray:
    """log p_data(x), shape x.shape[:-1] (log-sum-exp over the 4 modes)."""
    x, c = _points(x), _CASES["C1"]
    e = np.log(c.data_weights) - ((x[..., None, :] - c.data_means) ** 2).sum(-1) / (2 * c.data_var)
    return _lse_softmax(e)[0] - math.log(2 * math.pi * c.data_var)


def grad_log_p_data(x) -> np.ndarray:
    """∇ log p_data(x) = −(x − Σ_k softmax_k μ_k)/s, shape x.shape."""
    x, c = _points(x), _CASES["C1"]
    e = np.log(c.data_weights) - ((x[..., None, :] - c.data_means) ** 2).sum(-1) / (2 * c.data_var)
    resp = _lse_softmax(e)[1]
    return -(x - resp @ c.data_means) / c.data_var


def log_p_g(name: str, x) -> np.ndarray:
    """log p_g(x): isotropic Gaussian, or −log 16 inside [-2, 2]² and −inf outside (C2)."""
    c, x = case(name), _points(x)
    if c.gen_kind == "uniform":
        lo, hi = c.gen_box
        return np.where(_in_box(c, x), -2.0 * math.log(hi - lo), -np.inf)
    return -((x - c.gen_mean) ** 2).sum(-1) / (2 * c.gen_var) - math.log(2 * math.pi * c.gen_var)


def grad_log_p_g(name: str, x) -> np.ndarray:
    """∇ log p_g(x): −(x − m_g)/v, or 0 for the uniform (constant inside; −inf, taken as 0, outside)."""
    c, x = case(name), _points(x)
    if c.gen_kind == "uniform":
        return np.zeros_like(x)
    return -(x - c.gen_mean) / c.gen_var


# ----------------------------------------------------------------------- closed-form ratio / field
def _log_ratio(c: Case, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log r and ∇ log r from the closed form (log r = +inf, ∇ log r = 0 where p_g = 0)."""
    diff = x[..., None, :] - c.r_centres
    lse, resp = _lse_softmax(c.r_offsets - 0.5 * c.r_kappa * (diff**2).sum(-1))
    log_r = math.log(c.r_coef) + lse
    g = -c.r_kappa * (resp[..., None] * diff).sum(-2)
    if c.gen_kind == "uniform":
        inside = _in_box(c, x)
        log_r = np.where(inside, log_r, np.inf)
        g = np.where(inside[..., None], g, 0.0)
    return log_r, g


def ratio(name: str, x) -> np.ndarray:
    """r = p_data/p_g = c Σ_k exp(−κ/2 |x − m_k|² + β_k) (Props. C.1-C.3); +inf where p_g = 0."""
    log_r, _ = _log_ratio(case(name), _points(x))
    with np.errstate(over="ignore"):
        return np.exp(log_r)


def grad_ratio(name: str, x) -> np.ndarray:
    """∇r = −κ c Σ_k exp(−κ/2 |x − m_k|² + β_k)(x − m_k) = r ∇ log r; 0 where p_g = 0 (C2)."""
    log_r, g = _log_ratio(case(name), _points(x))
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.exp(log_r)[..., None] * g
    return np.where(np.isinf(log_r)[..., None], 0.0, out)


def smoothed_case(name: str, h: float) -> Case:
    """The case with p_g replaced by p_g * N(0, h² I), the expectation of a Gaussian KDE of bandwidth h
    of samples from p_g: for a Gaussian p_g the same closed form with variance v + h² (exact); the
    uniform case is returned unchanged (exact further than ~4h inside the square)."""
    c = case(name)
    if c.gen_kind == "uniform":
        return c
    coef, kappa, centres, offsets = derive_ratio_form(c.data_means, c.data_var, c.data_weights, "gaussian",
                                                      c.gen_mean, c.gen_var + h * h)
    return dataclasses.replace(c, gen_var=c.gen_var + h * h, r_coef=coef, r_kappa=kappa, r_centres=centres,
                               r_offsets=offsets)


def optimal_field(name, x) -> tuple[np.ndarray, np.ndarray]:
    """(d*, ∇ log d*) with d* = r/(1 + r) = sigmoid(log r) and ∇ log d* = ∇r/(r(1 + r)) = (1 − d*) ∇ log r.
    ``name``: a case name or a :class:`Case` (e.g. from :func:`smoothed_case`).

    Computed in the log domain: finite for all x; d* = 1, field = 0 where p_g = 0 (r = ∞).
    """
    log_r, g = _log_ratio(name if isinstance(name, Case) else case(name), _points(x))
    d_star = np.exp(-np.logaddexp(0.0, -log_r))
    one_minus = np.exp(-np.logaddexp(0.0, log_r))
    return d_star, one_minus[..., None] * g


# ------------------------------------------------------------------------------------ cone model
def cone_d(x, centre, sigma: float) -> np.ndarray:
    """Assumption 4.1: d = 1/2 − |x − centre|/(8σ) for |x − centre| < 4σ, NaN outside the ball."""
    x = np.asarray(x, np.float64)
    rho = np.linalg.norm(x - np.asarray(centre, np.float64), axis=-1)
    return np.where(rho < 4 * sigma, 0.5 - rho / (8 * sigma), np.nan)


def cone_field(x, centre, sigma: float) -> np.ndarray:
    """∇d/d = −(x − centre)/(ρ (4σ − ρ)), ρ = |x − centre| < 4σ (towards the centre); NaN outside.

    At the tip (ρ = 0) the direction is undefined and 0 is returned.
    """
    x = np.asarray(x, np.float64)
    delta = x - np.asarray(centre, np.float64)
    rho = np.linalg.norm(delta, axis=-1)
    inside = rho < 4 * sigma
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(inside, -1.0 / (np.where(rho > 0, rho, 1.0) * (4 * sigma - rho)), np.nan)
    return np.where((rho > 0)[..., None], scale[..., None] * delta, np.where(inside[..., None], 0.0, np.nan))


def cone_field_magnitude(r, sigma: float) -> np.ndarray:
    """|∇d/d| = 1/(4σ − r) for 0 <= r < 4σ (§4.1 below Assumption 4.1); NaN for r >= 4σ."""
    r = np.asarray(r, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(r < 4 * sigma, 1.0 / np.where(r < 4 * sigma, 4 * sigma - r, 1.0), np.nan)
