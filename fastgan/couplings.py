"""Generator couplings (Durr et al. Appendix A, eq. 21): how the NTK mixes discriminator gradients across particles.

    X_a <- X_a + alpha_G V_a,   V = (1/N) Gamma grad D(X)                               (eq. 21)

``Coupling`` holds the per-run constants of an ensemble and applies the backend's op:
coarse (g1, g2) in O(N d), an explicit Gram matrix in O(N^2 d), or a data-space kernel that moves
with the particles (O(N^2 d)). ``gram_eigenvalues`` gives the closed-form spectrum of the coarse
Gram matrix under the paper's normalisation (Appendix A).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrayfile import array_shapes, read_arrays
from .config import GRAM_SPEC_KEYS
from .errors import ConfigError


def ratio_to_g(ratio: float, n: int) -> tuple[float, float]:
    """(g1, g2) for r = g2/g1 with g1 + g2 (N - 1) = N."""
    g1 = n / (1.0 + ratio * (n - 1))
    return g1, ratio * g1


def coarse_gram(g1: float, g2: float, n: int) -> np.ndarray:
    """The explicit N x N coarse Gram matrix (for tests and for saving)."""
    return np.full((n, n), g2) + (g1 - g2) * np.eye(n)


def gram_eigenvalues(ratio: float, n: int) -> tuple[float, float]:
    """(constant-mode eigenvalue, the other N-1 eigenvalues) of the normalised coarse Gram matrix.

    The constant mode is N; the rest equal g1 - g2 = (N/(N-1)) (N/((N-1) r + 1) - 1) (Appendix A).
    """
    return float(n), n / (n - 1) * (n / ((n - 1) * ratio + 1) - 1)


def load_gram(path: str, n: int, key: str = "coupling.gram") -> np.ndarray:
    """Read and check an N x N Gram matrix (.npy, .npz/.h5 dataset 'gram', or text)."""
    shape = array_shapes(path, key, default="gram").get("gram")
    if shape is not None and tuple(shape) != (n, n):               # known from the header: nothing read
        raise ConfigError(key, path, f"expected an {n} x {n} matrix (generator.n_particles = {n}), got shape {shape}")
    arrays = read_arrays(path, key, default="gram")
    if "gram" not in arrays:
        raise ConfigError(key, path, f"a Gram file needs an array named 'gram' (found {', '.join(arrays) or 'none'})")
    g = arrays["gram"]
    if g.shape != (n, n):
        raise ConfigError(key, path, f"expected an {n} x {n} matrix (generator.n_particles = {n}), got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ConfigError(key, path, "matrix holds NaN or Inf")
    scale = max(1e-300, float(np.abs(g).max()))
    asym = float(np.abs(g - g.T).max())
    if asym > 1e-8 * scale:
        raise ConfigError(key, path, f"matrix is not symmetric (max |G - G'| = {asym:.3g})")
    if n <= 4096:
        low = float(np.linalg.eigvalsh(0.5 * (g + g.T))[0])
        if low < -1e-8 * scale * n:
            raise ConfigError(key, path, f"matrix is not positive semi-definite (smallest eigenvalue {low:.3g})")
    return 0.5 * (g + g.T)


def normalise_gram(g: np.ndarray) -> np.ndarray:
    """Rescale so that 1' G 1 / N = N, the constant-mode normalisation of Appendix A."""
    n = g.shape[0]
    return g * (n * n / g.sum())




def _gram_source(r) -> tuple:
    """What a run's Gram matrix depends on (runs that share it share one matrix); ``r`` resolved."""
    c = r.coupling
    if c.gram_arch is None:
        return ("file", c.gram, c.normalize)
    return ("analytic", tuple(sorted((k, getattr(c, k)) for k in ("gram_arch",) + GRAM_SPEC_KEYS)), r.generator.n_particles,
            r.training.seed, c.normalize)


def _gram_matrix(r) -> np.ndarray:
    """A run's N x N Gram matrix: from coupling.gram, or the analytic NTK of coupling.gram_arch at N seeds
    drawn from training.seed (fastgan.ntk_gram.spec_gram); ``r`` resolved."""
    c = r.coupling
    if c.gram_arch is None:
        return load_gram(c.gram, r.generator.n_particles)
    from .ntk_gram import spec_gram
    extra = {} if c.gram_setting != "deep" else {"depth": c.gram_depth, "mu": c.gram_mu}
    return spec_gram(c.gram_arch, c.gram_setting, r.generator.n_particles, c.gram_dim, r.training.seed, **extra)


@dataclass
class Coupling:
    """Per-run coupling constants of an ensemble of B runs (same kind and N)."""

    kind: str
    g1: np.ndarray            # (B,)
    g2: np.ndarray            # (B,)
    gram: np.ndarray | None   # (B, N, N) or (1, N, N), kind == gram
    length_scale: np.ndarray  # (B,)
    kernel: str

    @classmethod
    def from_configs(cls, configs) -> "Coupling":
        """From the runs' resolved configs (``Resolved``, or ``Config`` whose ``resolved`` is used)."""
        configs = [getattr(c, "resolved", c) for c in configs]
        kinds = {c.coupling.kind for c in configs}
        if len(kinds) != 1:
            raise ValueError("an ensemble needs one coupling kind")
        kind = kinds.pop()
        g = np.array([(c.coupling.g1, c.coupling.g2) for c in configs], dtype=np.float64)
        gram = None
        if kind == "gram":
            mats = {}
            keys = [_gram_source(c) for c in configs]
            for c, k in zip(configs, keys):
                if k not in mats:
                    m = _gram_matrix(c)
                    mats[k] = normalise_gram(m) if c.coupling.normalize else m
            gram = mats[keys[0]][None] if len(mats) == 1 else np.stack([mats[k] for k in keys])
        kernels = {c.coupling.spatial_kernel for c in configs}
        if kind == "spatial" and len(kernels) != 1:
            raise ValueError("an ensemble needs one spatial kernel")
        return cls(kind, g[:, 0].copy(), g[:, 1].copy(), gram,
                   np.array([c.coupling.length_scale for c in configs], dtype=np.float64), kernels.pop())

    def bind(self, ops, dtype):
        """A function V = velocity(G, X) closed over device copies of the constants."""
        xp = ops.xp
        g1, g2 = xp.asarray(self.g1), xp.asarray(self.g2)
        if self.kind == "coarse":
            return lambda G, X: ops.coupled_velocity_coarse(G, g1, g2)
        if self.kind == "gram":
            gram = xp.asarray(self.gram, dtype=dtype)
            return lambda G, X: ops.coupled_velocity_gram(G, gram)
        ell, kern = xp.asarray(self.length_scale), self.kernel
        return lambda G, X: ops.coupled_velocity_spatial(G, X, g1, g2, ell, kern)

    def explicit(self, X: np.ndarray | None = None) -> np.ndarray:
        """The (B, N, N) Gram matrices (float64) at particle positions X (B, d, N) (for tests, eq. 28)."""
        from .kernels.coupling_numpy import spatial_gram
        B = self.g1.shape[0]
        if self.kind == "coarse":
            n = X.shape[2]
            return np.stack([coarse_gram(self.g1[b], self.g2[b], n) for b in range(B)])
        if self.kind == "gram":
            return np.broadcast_to(self.gram, (B,) + self.gram.shape[1:]).copy()
        return spatial_gram(X, self.g1, self.g2, self.length_scale, self.kernel)
