"""NTK of deep fully connected generators in the NTK parametrisation (Durr et al. Appendix G, Fig. 21).

Network with L hidden layers of widths n_1..n_L, inputs α⁰ = z in n_0 dimensions, scalar output
(with d outputs the NTK is this kernel times the d×d identity)::

    h^{l+1} = sqrt(sw2 / n_l) W^l α^l + sqrt(sb2) b^l,   α^l = σ(h^l),   f(z) = h^{L+1}(z),

every W^l, b^l ~ N(0, 1) and trained. The μ-parametrisation of Fig. 21 (Jacot et al., "Freeze and
chaos") is sw2 = 1 − μ², sb2 = μ² (:meth:`DeepSetup.mu_param`), with inputs on the sphere of radius
sqrt(n_0): μ → 1 is the ordered phase (g2/g1 → 1), small μ the chaotic one.

Infinite width (the recursion of Jacot et al. 2018), with Σ¹(x, x') = sw2 x·x'/n_0 + sb2, Θ¹ = Σ¹::

    Σ^{l+1} = sw2 E[σ(u)σ(v)] + sb2,   Σ̇^{l+1} = sw2 E[σ'(u)σ'(v)],   Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1},

(u, v) centred Gaussian with the covariance Σ^l at (x, x'); Θ = Θ^{L+1}. The Gaussian expectations
are the closed forms of :func:`fastgan.ntk.gaussian_expectations` (ReLU arc-cosine, erf arcsin).

The empirical NTK of one finite network needs no Jacobian: with δ^l(x) = ∂f/∂h^l (one backward pass
for the whole batch) the parameter sum factorises layer by layer::

    Θ(x, x') = Σ_{l=0..L} (δ^{l+1}(x)·δ^{l+1}(x')) · (sw2 α^l(x)·α^l(x') / n_l + sb2).

numpy only at import time; torch is imported inside the empirical functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ntk import ACTIVATIONS, _torch_act, gaussian_expectations


@dataclass(frozen=True)
class DeepSetup:
    """Activation, number of hidden layers and the weight / bias multipliers (module docstring)."""

    act: str = "relu"
    depth: int = 6
    sw2: float = 1.0
    sb2: float = 0.0

    def __post_init__(self):
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {ACTIVATIONS}, got {self.act!r}")
        if self.depth < 1:
            raise ValueError("depth must be >= 1")
        if self.sw2 < 0 or self.sb2 < 0:
            raise ValueError("sw2 and sb2 must be >= 0")

    @classmethod
    def mu_param(cls, mu: float, depth: int = 6, act: str = "relu") -> "DeepSetup":
        """Fig. 21: pre-activations μ b + sqrt((1 − μ²)/n) W α, 0 <= μ <= 1."""
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f"mu must lie in [0, 1], got {mu}")
        return cls(act, depth, 1.0 - mu * mu, mu * mu)

    def kernel(self, cos_angle, norm1=1.0, norm2=None, dim: int = 1):
        """Infinite-width NTK at inputs of norms (norm1, norm2) with cosine ``cos_angle`` (broadcast)."""
        return analytic_ntk_deep(self, cos_angle, norm1, norm2, dim)


def analytic_ntk_deep(setup: DeepSetup, cos_angle, norm1=1.0, norm2=None, dim: int = 1):
    """Θ(x, x') of the infinite-width network in ``setup`` for inputs in ``dim`` dimensions with
    norms ``norm1``, ``norm2`` (default equal) and cosine ``cos_angle`` (numpy broadcasting)."""
    norm2 = norm1 if norm2 is None else norm2
    cos_angle = np.clip(np.asarray(cos_angle, dtype=np.float64), -1.0, 1.0)
    n1, n2 = np.asarray(norm1, dtype=np.float64), np.asarray(norm2, dtype=np.float64)
    sw2, sb2 = setup.sw2, setup.sb2
    q1 = sw2 * n1 * n1 / dim + sb2
    q2 = sw2 * n2 * n2 / dim + sb2
    c = sw2 * cos_angle * n1 * n2 / dim + sb2
    theta = c
    for _ in range(setup.depth):
        e_ss, e_dd = gaussian_expectations(setup.act, q1, q2, c)
        q1 = sw2 * gaussian_expectations(setup.act, q1, q1, q1)[0] + sb2
        q2 = sw2 * gaussian_expectations(setup.act, q2, q2, q2)[0] + sb2
        c = sw2 * e_ss + sb2
        theta = theta * (sw2 * e_dd) + c
    return theta


# ----------------------------------------------------------------------------------------------
# Empirical NTK of one finite network (torch)
# ----------------------------------------------------------------------------------------------

def init_deep(width: int, dim: int, depth: int, seed=0, dtype=None, out_dim: int = 1):
    """Raw N(0, 1) parameters [(W⁰, b⁰), ..., (W^L, b^L)] of a network with ``depth`` hidden layers of
    ``width``: W⁰ (width, dim), W^l (width, width), W^L (out_dim, width); b^l of the layer's output
    size. They do not depend on (sw2, sb2), so one draw serves every μ."""
    import torch

    dtype = torch.float32 if dtype is None else dtype
    gen = torch.Generator().manual_seed(int(seed))
    sizes = [dim] + [width] * depth + [out_dim]
    return [(torch.randn(sizes[l + 1], sizes[l], generator=gen, dtype=dtype),
             torch.randn(sizes[l + 1], generator=gen, dtype=dtype)) for l in range(depth + 1)]


def deep_forward(X, setup: DeepSetup, params):
    """Forward pass: (outputs f (n, out_dim), hidden activations [α⁰..α^L], pre-activations [h¹..h^L])."""
    import torch

    alpha = torch.as_tensor(np.asarray(X), dtype=params[0][0].dtype)
    alphas, pre = [alpha], []
    sw, sb = float(np.sqrt(setup.sw2)), float(np.sqrt(setup.sb2))
    for l, (W, b) in enumerate(params):
        h = (sw / np.sqrt(W.shape[1])) * (alpha @ W.T) + sb * b
        if l == len(params) - 1:
            return h, alphas, pre
        pre.append(h)
        alpha = _torch_act(setup.act, torch, h)[0]
        alphas.append(alpha)
    raise ValueError("params is empty")


def empirical_ntk_deep(X, setup: DeepSetup, params=None, width: int | None = None, seed=0, dtype=None):
    """Exact NTK Gram matrix (n × n, numpy float64) of one network at the inputs X (n, dim), over every
    W^l and b^l, from the layer-wise factorisation in the module docstring (one forward and one hand
    backward pass; no per-parameter Jacobian). Pass ``params`` from :func:`init_deep` (scalar output),
    or ``width`` and ``seed`` to draw them. Memory O(n · width · depth + width² · depth)."""
    import torch

    if params is None:
        if width is None:
            raise ValueError("give params or width")
        params = init_deep(width, np.asarray(X).shape[1], setup.depth, seed, dtype)
    if len(params) != setup.depth + 1 or params[-1][0].shape[0] != 1:
        raise ValueError("params must hold depth + 1 layers with a scalar output")
    _, alphas, pre = deep_forward(X, setup, params)
    sw = float(np.sqrt(setup.sw2))
    n = alphas[0].shape[0]
    theta = torch.zeros(n, n, dtype=torch.float64)
    delta = torch.ones(n, 1, dtype=alphas[0].dtype)            # ∂f/∂h^{L+1}
    for l in range(setup.depth, -1, -1):
        W = params[l][0]
        feat = (setup.sw2 / W.shape[1]) * (alphas[l] @ alphas[l].T) + setup.sb2
        theta += ((delta @ delta.T) * feat).to(torch.float64)
        if l > 0:                                              # δ^l = (δ^{l+1} W̃^l) ∘ σ'(h^l)
            delta = ((sw / np.sqrt(W.shape[1])) * (delta @ W)) * _torch_act(setup.act, torch, pre[l - 1])[1]
    theta = 0.5 * (theta + theta.T)
    return theta.numpy()
