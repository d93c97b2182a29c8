"""Neural tangent kernels of one-hidden-layer generators (Durr et al. Section III.A, Fig. 2, App. G).

Network (one output component; with d outputs the NTK is this scalar kernel times the d×d identity)::

    f(x) = sqrt(c / W) · Σ_{i<W} a_i σ(h_i(x)),      a_i ~ N(0, sa2),   c = ``out_scale``

Two parametrisations of the hidden pre-activation h_i (``NTKSetup.param``):

* ``"standard"`` (the paper's Appendix G, ``G(x) = sqrt(2/W) a σ(w x + b)``, c = 2): the trained
  parameters are drawn with the given variances, ``h_i = w_i·x + b_i``, ``w_ik ~ N(0, sw2)``,
  ``b_i ~ N(0, sb2)``; the NTK sums over the raw parameters (a, w, b)::

      Θ(x, x') = c · ( E[σ(u)σ(v)] + sa2 · E[σ'(u)σ'(v)] · (x·x' + 1[train_bias]) )

* ``"ntk"`` (NTK parametrisation, neural-tangents ``stax.Dense(W_std, b_std)`` style): all trained
  parameters are N(0, 1) and the variances sit in multipliers, ``h_i = sqrt(sw2/dim) ω_i·x +
  sqrt(sb2) β_i``, ``a_i = sqrt(sa2) α_i``; the NTK sums over (α, ω, β)::

      Θ(x, x') = c · sa2 · ( E[σ(u)σ(v)] + E[σ'(u)σ'(v)] · (sw2 x·x'/dim + sb2·1[train_bias]) )

In both, (u, v) is a centred Gaussian pair with the covariance of (h(x), h(x')):
``Var u = k_w |x|² + sb2``, ``Cov(u, v) = k_w x·x' + sb2`` with ``k_w = sw2`` (standard) or ``sw2/dim``
(ntk). Closed forms: ReLU via the arc-cosine kernels of order 1 and 0, erf via
``E[erf u erf v] = (2/π) arcsin(2C / sqrt((1+2A)(1+2B)))`` and
``E[erf' u erf' v] = (4/π) / sqrt((1+2A)(1+2B) − 4C²)``.

With the Appendix G setting (standard, c = 2, sw2 = 0.046, sb2 = 0 but biases trained, sa2 = 2.25,
unit sphere in 256 dims) this gives (g1, g2) ≈ (4.55, 1.14) for ReLU and (10.64, 5.25) for erf,
matching the paper's ≈ (4.5, 1.1) and (10.6, 5.2); see ``APPENDIX_G_RELU`` / ``APPENDIX_G_ERF``.

Deep networks (any depth, the μ-parametrisation of Fig. 21) are in :mod:`fastgan.ntk_deep`, the
Appendix G training with its NTK tracked in :mod:`fastgan.ntk_train`; :mod:`fastgan.ntk_gram` builds
the Gram matrices of the named settings (``coupling.gram_arch``, ``fastgan ntk measure``).

numpy/scipy only at import time; torch is imported inside :func:`empirical_ntk_one_hidden`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

ACTIVATIONS = ("relu", "erf")
PARAMETRISATIONS = ("standard", "ntk")


@dataclass(frozen=True)
class NTKSetup:
    """Architecture and initialisation of the one-hidden-layer network (see the module docstring)."""

    act: str = "relu"
    sw2: float = 1.0
    sb2: float = 0.0
    sa2: float = 1.0
    param: str = "standard"
    out_scale: float = 2.0
    train_bias: bool = True

    def __post_init__(self):
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {self.act!r}")
        if self.param not in PARAMETRISATIONS:
            raise ValueError(f"param must be one of {PARAMETRISATIONS}, got {self.param!r}")
        if min(self.sw2, self.sb2, self.sa2) < 0 or self.out_scale <= 0:
            raise ValueError("variances must be >= 0 and out_scale > 0")

    def weight_gain(self, dim: int) -> float:
        """k_w: the factor multiplying x·x' in the pre-activation covariance."""
        return self.sw2 if self.param == "standard" else self.sw2 / dim

    def with_(self, **changes) -> "NTKSetup":
        return replace(self, **changes)

    def kernel(self, cos_angle, norm1=1.0, norm2=None, dim: int = 1):
        """Infinite-width NTK at inputs of norms (norm1, norm2) with cosine ``cos_angle`` (broadcast)."""
        return analytic_ntk_one_hidden(self, cos_angle, norm1, norm2, dim)


# Appendix G / Fig. 20: G(x) = sqrt(2/W) a σ(w x + b), w ~ N(0, .046), b = 0 (trained), a ~ N(0, 2.25).
APPENDIX_G_RELU = NTKSetup("relu", sw2=0.046, sb2=0.0, sa2=2.25, param="standard", out_scale=2.0)
APPENDIX_G_ERF = APPENDIX_G_RELU.with_(act="erf")
# Fig. 2, footnote 28: weight / bias variances 0.42 / 1.17 (ReLU), 1.18 / 11.67 (erf), 100-dim unit
# sphere. The paper states neither the parametrisation nor the read-out. Reading them as the standard
# parametrisation with the read-out weights sharing the weight variance (a ~ N(0, sw2)) and
# f = (1/sqrt(W)) Σ a σ(w·x + b) makes the two networks agree, as Fig. 2 claims:
# (g1, g2) ≈ (1.215, 0.778) ReLU and (1.240, 0.793) erf. Other readings (NTK parametrisation, unit
# read-out, a trained output bias) give clearly different ReLU and erf values. This is our choice.
FIG2_RELU = NTKSetup("relu", sw2=0.42, sb2=1.17, sa2=0.42, param="standard", out_scale=1.0)
FIG2_ERF = NTKSetup("erf", sw2=1.18, sb2=11.67, sa2=1.18, param="standard", out_scale=1.0)


# ----------------------------------------------------------------------------------------------
# Gaussian expectations of the activation and its derivative
# ----------------------------------------------------------------------------------------------

def gaussian_expectations(act: str, var1, var2, cov):
    """(E[σ(u)σ(v)], E[σ'(u)σ'(v)]) for centred Gaussians with Var u = var1, Var v = var2,
    Cov = cov (numpy arrays, broadcast)."""
    var1, var2, cov = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (var1, var2, cov)))
    if act == "relu":
        s = np.sqrt(var1 * var2)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(s > 0, cov / np.where(s > 0, s, 1.0), 1.0)
        theta = np.arccos(np.clip(rho, -1.0, 1.0))
        k1 = s / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))
        k0 = (np.pi - theta) / (2 * np.pi)
        # degenerate pre-activation (identically 0): σ = 0 and σ'(0) = 0 by the H > 0 convention
        k0 = np.where(s > 0, k0, 0.0)
        return k1, k0
    if act == "erf":
        p1, p2 = 1 + 2 * var1, 1 + 2 * var2
        k1 = (2 / np.pi) * np.arcsin(np.clip(2 * cov / np.sqrt(p1 * p2), -1.0, 1.0))
        k0 = (4 / np.pi) / np.sqrt(p1 * p2 - 4 * cov ** 2)
        return k1, k0
    raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")


def analytic_ntk_one_hidden(setup: NTKSetup, cos_angle, norm1=1.0, norm2=None, dim: int = 1):
    """Infinite-width NTK Θ(x, x') of the network in ``setup`` for inputs with norms ``norm1``,
    ``norm2`` (default: equal) and cosine ``cos_angle`` between them, in ``dim`` input dimensions
    (``dim`` matters only for ``param="ntk"``). Vectorised (numpy broadcasting)."""
    norm2 = norm1 if norm2 is None else norm2
    cos_angle = np.clip(np.asarray(cos_angle, dtype=np.float64), -1.0, 1.0)
    n1, n2 = np.asarray(norm1, dtype=np.float64), np.asarray(norm2, dtype=np.float64)
    dot = cos_angle * n1 * n2
    kw = setup.weight_gain(dim)
    e_ss, e_dd = gaussian_expectations(setup.act, kw * n1 ** 2 + setup.sb2, kw * n2 ** 2 + setup.sb2,
                                       kw * dot + setup.sb2)
    bias = 1.0 if setup.train_bias else 0.0
    if setup.param == "standard":
        theta = e_ss + setup.sa2 * e_dd * (dot + bias)
    else:
        theta = setup.sa2 * (e_ss + e_dd * (kw * dot + setup.sb2 * bias))
    return setup.out_scale * theta


class G1G2(NamedTuple):
    g1: float            # Θ at angle 0 (same input)
    g2: float            # Θ at angle π/2 (the typical angle in high dimension)
    g2_mean: float       # E[Θ] over the angle between two independent uniform points on the sphere
    g2_std: float        # its standard deviation over that angle distribution


def analytic_g1_g2(setup, dim: int, radius: float = 1.0, n_quad: int = 64) -> G1G2:
    """(g1, g2) of ``setup`` (an :class:`NTKSetup` or a deep :class:`fastgan.ntk_deep.DeepSetup`) for
    inputs uniform on the sphere of ``radius`` in ``dim`` dimensions, plus the mean and std of Θ over
    the sphere's angle distribution: t = cos φ has density ∝ (1 − t²)^((dim−3)/2), integrated by
    Gauss–Jacobi quadrature."""
    from scipy.special import roots_jacobi

    if dim < 2:
        raise ValueError("dim must be >= 2")
    g1 = float(setup.kernel(1.0, radius, radius, dim))
    g2 = float(setup.kernel(0.0, radius, radius, dim))
    alpha = (dim - 3) / 2.0
    t, w = roots_jacobi(n_quad, alpha, alpha)
    w = w / w.sum()
    vals = setup.kernel(t, radius, radius, dim)
    mean = float(np.dot(w, vals))
    std = float(np.sqrt(max(np.dot(w, (vals - mean) ** 2), 0.0)))
    return G1G2(g1, g2, mean, std)


# ----------------------------------------------------------------------------------------------
# Seeds on the sphere, Gram matrices
# ----------------------------------------------------------------------------------------------

def sample_sphere(n: int, dim: int, radius: float = 1.0, seed=None) -> np.ndarray:
    """n points uniform on the sphere of ``radius`` in ``dim`` dimensions, shape (n, dim)."""
    z = np.random.default_rng(seed).standard_normal((n, dim))
    return radius * z / np.linalg.norm(z, axis=1, keepdims=True)


def analytic_gram(setup, X) -> np.ndarray:
    """Infinite-width NTK Gram matrix of ``setup`` (one hidden layer or deep) at the inputs X (n, dim),
    at their actual norms and angles."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    cos = (X @ X.T) / np.outer(safe, safe)
    np.fill_diagonal(cos, 1.0)
    gram = setup.kernel(cos, norms[:, None], norms[None, :], X.shape[1])
    return 0.5 * (gram + gram.T)


def gram_from_analytic(setup, n: int, dim: int, radius: float = 1.0, seed=None) -> np.ndarray:
    """(n, n) coupling Γ_ab from the infinite-width NTK at n seeds drawn uniformly on the sphere:
    diagonal = g1 exactly, off-diagonal spread around g2 as finite ``dim`` gives. Symmetric PSD."""
    return analytic_gram(setup, sample_sphere(n, dim, radius, seed))


class GramStats(NamedTuple):
    g1: float       # mean of the diagonal
    g2: float       # mean of the off-diagonal
    g1_std: float
    g2_std: float


def extract_g1_g2(gram) -> GramStats:
    """Means and standard deviations of the diagonal and off-diagonal entries of a Gram matrix."""
    gram = np.asarray(gram, dtype=np.float64)
    n = gram.shape[0]
    if gram.ndim != 2 or gram.shape[1] != n or n < 2:
        raise ValueError("gram must be a square matrix with n >= 2")
    diag = np.diag(gram)
    off = gram[~np.eye(n, dtype=bool)]
    return GramStats(float(diag.mean()), float(off.mean()), float(diag.std()), float(off.std()))


# ----------------------------------------------------------------------------------------------
# Empirical NTK of one finite network (torch, closed form in the features)
# ----------------------------------------------------------------------------------------------

def _torch_act(act: str, torch, h):
    """(σ(h), σ'(h)) in torch."""
    if act == "relu":
        return torch.clamp(h, min=0), (h > 0).to(h.dtype)
    if act == "erf":
        return torch.erf(h), (2.0 / np.sqrt(np.pi)) * torch.exp(-h * h)
    raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")


def init_params(setup: NTKSetup, W: int, dim: int, seed=0, dtype=None, chunk: int = 4096):
    """Yield the network's parameters chunk by chunk as (w, b, a) in the *effective* form used by
    the forward pass (h = X @ w.T + b, f = sqrt(c/W) Σ a σ(h)), drawn from one torch generator so
    the result depends only on (seed, W, dim, chunk)."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    gen = torch.Generator().manual_seed(int(seed))
    kw = setup.weight_gain(dim)
    for start in range(0, W, chunk):
        k = min(chunk, W - start)
        w = torch.randn(k, dim, generator=gen, dtype=dtype) * float(np.sqrt(kw))
        b = torch.randn(k, generator=gen, dtype=dtype) * float(np.sqrt(setup.sb2))
        a = torch.randn(k, generator=gen, dtype=dtype) * float(np.sqrt(setup.sa2))
        yield w, b, a


def empirical_ntk_one_hidden(X, W: int, setup: NTKSetup, seed=0, dtype=None, chunk: int = 4096):
    """Exact NTK Gram matrix (n × n, numpy float64) of one randomly initialised network of width W
    at the inputs X (n, dim), from the closed form in the hidden features (no autograd)::

        standard: Θ = c/W [ Σ_i σ_i σ_i' + Σ_i a_i² σ'_i σ'_i' (x·x' + 1[train_bias]) ]
        ntk:      Θ = c/W [ sa2 Σ_i σ_i σ_i' + Σ_i a_i² σ'_i σ'_i' (sw2 x·x'/dim + sb2·1[train_bias]) ]

    Hidden units are processed ``chunk`` at a time: memory O(n·chunk + chunk·dim)."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    Xt = torch.as_tensor(np.asarray(X), dtype=dtype)
    n, dim = Xt.shape
    A = torch.zeros(n, n, dtype=dtype)
    B = torch.zeros(n, n, dtype=dtype)
    for w, b, a in init_params(setup, W, dim, seed, dtype, chunk):
        s, ds = _torch_act(setup.act, torch, Xt @ w.T + b)
        A += s @ s.T
        da = ds * a
        B += da @ da.T
    bias = 1.0 if setup.train_bias else 0.0
    dot = Xt @ Xt.T
    if setup.param == "standard":
        theta = A + B * (dot + bias)
    else:
        theta = setup.sa2 * A + B * (setup.weight_gain(dim) * dot + setup.sb2 * bias)
    theta = theta * (setup.out_scale / W)
    theta = 0.5 * (theta + theta.T)
    return theta.cpu().numpy().astype(np.float64)
