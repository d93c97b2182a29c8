"""NumPy reference of the coupled generator velocity V = (1/N) Gamma G (Durr et al. eqs. 21, 26).

G is the discriminator gradient at the particles, (B, d, N) feature-major. Three couplings:

coarse   Gamma_ab = g1 delta_ab + g2 (1 - delta_ab)
         V_a = (g1 - g2)/N G_a + g2 <G>                      O(N d), never builds Gamma
gram     an explicit (B, N, N) (or broadcast (1, N, N)) Gram matrix
spatial  Gamma_ab = g1 delta_ab + g2 k(|X_a - X_b| / l) (1 - delta_ab), k = exp(-r^2/2) (rbf)
         or exp(-r) (laplacian): a kernel that moves with the particles ("flocking"); it
         reduces to coarse as l -> infinity.
"""

from __future__ import annotations

import numpy as np


def coupled_velocity_coarse(G, g1, g2):
    """V (B, d, N) for per-run g1, g2 (B,)."""
    n = G.shape[2]
    dt = G.dtype
    kappa = ((np.asarray(g1) - np.asarray(g2)) / n).astype(dt)
    g2 = np.asarray(g2).astype(dt)
    return kappa[:, None, None] * G + g2[:, None, None] * G.mean(axis=2, keepdims=True)


def coupled_velocity_gram(G, gram):
    """V = (1/N) Gamma G for a Gram matrix (B or 1, N, N)."""
    n = G.shape[2]
    gram = np.asarray(gram, dtype=G.dtype)
    return np.matmul(G, np.swapaxes(gram, 1, 2)) / G.dtype.type(n)


def spatial_kernel_matrix(X, length_scale, kernel):
    """k(|X_a - X_b| / l) for X (B, d, N), l (B,) -> (B, N, N) (float64)."""
    X = np.asarray(X, dtype=np.float64)
    diff = X[:, :, :, None] - X[:, :, None, :]
    r2 = (diff ** 2).sum(1) / np.asarray(length_scale, dtype=np.float64)[:, None, None] ** 2
    if kernel == "rbf":
        return np.exp(-0.5 * r2)
    if kernel == "laplacian":
        return np.exp(-np.sqrt(r2))
    raise ValueError(f"unknown spatial kernel {kernel!r}")


def spatial_gram(X, g1, g2, length_scale, kernel):
    """The (B, N, N) Gram matrix of the spatial coupling (float64; for tests and diagnostics)."""
    k = spatial_kernel_matrix(X, length_scale, kernel)
    n = k.shape[1]
    eye = np.eye(n, dtype=bool)
    gram = np.asarray(g2, dtype=np.float64)[:, None, None] * np.where(eye, 0.0, k)
    return gram + np.asarray(g1, dtype=np.float64)[:, None, None] * eye


def coupled_velocity_spatial(G, X, g1, g2, length_scale, kernel):
    """V (B, d, N) for the data-space kernel coupling (O(N^2 d))."""
    gram = spatial_gram(X, g1, g2, length_scale, kernel)
    return (np.matmul(G.astype(np.float64), np.swapaxes(gram, 1, 2)) / G.shape[2]).astype(G.dtype)
