"""Shared inputs and tolerances of the twin-versus-reference tests (CPU, simulator and CUDA C shim)."""

import numpy as np


def tol(dtype):
    """Agreement expected between a twin and the reference: float32 rounding, or ~1e-10 in float64."""
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def mlp_inputs(rng, B, d, W, N, M, dtype):
    """Random one-hidden-layer parameters w (B, d, W), b, a (B, W) and samples xg (B, d, N), xt (B, d, M)."""
    w = rng.normal(size=(B, d, W)).astype(dtype)
    b = (3 * rng.normal(size=(B, W))).astype(dtype)
    a = rng.normal(size=(B, W)).astype(dtype)
    xg = rng.normal(size=(B, d, N)).astype(dtype)
    xt = rng.normal(size=(B, d, M)).astype(dtype)
    return w, b, a, xg, xt


def adaptive_state(rng, params, dtype):
    """An adaptive optimiser's state for parameter arrays (w, b, a) (``kernels.registry.adaptive_example``)."""
    from fastgan.kernels.registry import adaptive_example
    return adaptive_example(rng, dict(zip("wba", params)), dtype)
