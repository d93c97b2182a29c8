"""The ``fourier`` family: Algorithm 2 of Durr et al., Effective Dynamics of GANs (Appendix C),
D(x) = sum_k w1_k sin(k.x) + w2_k cos(k.x) on a product grid of frequencies (per axis: ``freq_count``
log-spaced values in [freq_min, freq_max] and, with ``freq_signs = both``, their negatives), each
weight updated at the rate alpha_D gamma(|k|); init w = 0. The generator step is the NTK-coupled
step of eq. 21.

params: w1, w2 (B, K1, K2) in d = 2 (the separable ``fourier_grid_*`` ops); theta (B, 2K) otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import POS, Field, ge
from ..errors import ConfigError
from .base import Family, host, rates
from .common import LAM
from .trig import TrigBound, lam_penalty, trig_overlay

LR_DISC = 1e-3    # Algorithm 2 rates (not stated in the paper; calibrated, see README)
LR_GEN = 1e-3
LAM_DEFAULT = 1.0
MAX_FREQUENCIES = 200_000

KEYS = {
    "discriminator": {
        "gamma": Field("str", "pow", "fourier: frequency-dependent rate gamma(|k|): pow = min(1e3, |k|^-3) (C3), "
                       "exp = 668.8 exp(-2.05 |k|) (C4), const = gamma_value", choices=("pow", "exp", "const")),
        "gamma_value": Field("float", 1.0, "fourier: the constant rate for gamma = const", POS),
        "freq_count": Field("int", 25, "fourier: log-spaced frequency values per axis", ge(1)),
        "freq_min": Field("float", 0.01, "fourier: smallest frequency per axis", POS),
        "freq_max": Field("float", 20.0, "fourier: largest frequency per axis", POS),
        "freq_signs": Field("str", "both", "fourier: per-axis values and their negatives (both: 2 x 25 = 50 per axis, "
                            "2500 vectors in d = 2) or positive only", choices=("both", "positive")),
    },
    "training": {"lam": LAM},
}


def fourier_axis(count: int, lo: float, hi: float, signs: str) -> np.ndarray:
    """Per-axis frequency values: ``count`` log-spaced in [lo, hi] (and their negatives)."""
    pos = np.geomspace(lo, hi, count)
    return np.concatenate([pos, -pos]) if signs == "both" else pos


def fourier_gamma(kind: str, kabs: np.ndarray, value: float = 1.0) -> np.ndarray:
    """gamma(|k|): pow = min(1e3, |k|^-3) (C3), exp = 668.8 exp(-2.05 |k|) (C4), const = value."""
    if kind == "pow":
        with np.errstate(divide="ignore"):
            return np.minimum(1e3, kabs ** -3.0)
    if kind == "exp":
        return 668.8 * np.exp(-2.05 * kabs)
    return np.full_like(kabs, value)


def _per_axis(disc) -> int:
    return disc.freq_count * (2 if disc.freq_signs == "both" else 1)


class FourierFamily(Family):
    name = "fourier"
    legacy_identity = True
    summary = "Fourier features on a product grid (Algorithm 2)"
    keys = KEYS
    defaults = {"generator.init_std": 0.1, "training.n_disc": 5, "training.lr_disc": LR_DISC,
                "training.lr_gen": LR_GEN}

    def validate(self, cfg, dim):
        disc = cfg.discriminator
        if dim is not None:
            per_axis = _per_axis(disc)
            if per_axis ** dim > MAX_FREQUENCIES:
                raise ConfigError("discriminator.freq_count", disc.freq_count,
                                  f"a {dim}-dimensional product grid of {per_axis} values per axis has "
                                  f"{per_axis ** dim} frequency vectors (limit {MAX_FREQUENCIES})")
            if disc.freq_min > disc.freq_max:
                raise ConfigError("discriminator.freq_min", disc.freq_min,
                                  f"must be <= discriminator.freq_max = {disc.freq_max}")

    def resolve(self, d, cfg, dim):
        if d["training"]["lam"] is None:
            d["training"]["lam"] = LAM_DEFAULT

    def shape_key(self, r, target):
        return {"discriminator.freq_count": r.discriminator.freq_count,
                "discriminator.freq_signs": r.discriminator.freq_signs}

    def state_params(self, r, target):       # weights (2 K^d) and their rates and frequencies
        return _per_axis(r.discriminator) ** target.dim * (3 + target.dim)

    def model(self, ens):
        return Fourier(ens)

    def overlay(self, params, r, pts, particles=None):
        if "w1" not in params:                                               # features as for rff
            return trig_overlay(params, pts)
        from ..plots import overlay_ops                                      # separable d = 2 grid
        f64 = lambda k: np.ascontiguousarray(np.asarray(params[k], dtype=np.float64)[None])       # noqa: E731
        x = np.ascontiguousarray(np.asarray(pts, dtype=np.float64).T[None])
        ops = overlay_ops(x.shape[2] * np.size(params["w1"]))               # numba's op for large sums
        return ops.fourier_grid_forward(f64("w1"), f64("w2"), f64("axis"), f64("axis"), x)[0]

    def title(self, r, ratio):
        return (f"fourier gamma={r.discriminator.gamma} N={r.generator.n_particles} g2/g1={ratio:.3g} {rates(r)} "
                f"lam={r.training.lam:g}")


class Fourier:
    """Algorithm 2: Fourier features on a product grid with a frequency-dependent rate."""

    samples_target = True
    target_points = False

    def __init__(self, ens):
        dim = ens.dim
        self.ens, self.dim = ens, dim
        discs = [r.discriminator for r in ens.resolved]
        self.axes = np.stack([fourier_axis(q.freq_count, q.freq_min, q.freq_max, q.freq_signs) for q in discs])  # (B, K1)
        self.K = self.axes.shape[1]
        grids = np.stack(np.meshgrid(*([np.arange(self.K)] * dim), indexing="ij"), 0).reshape(dim, -1)  # (d, K^d)
        self.omega = self.axes[:, grids]                             # (B, d, K^d)
        kabs = np.sqrt((self.omega ** 2).sum(1))                     # (B, K^d)
        self.gamma = np.stack([fourier_gamma(q.gamma, kabs[b], q.gamma_value) for b, q in enumerate(discs)])
        self.separable = dim == 2

    def init(self, dtype) -> dict:
        B, Kd = self.gamma.shape
        if self.separable:
            z = np.zeros((B, self.K, self.K), dtype=dtype)
            return {"w1": z, "w2": z.copy()}
        return {"theta": np.zeros((B, 2 * Kd), dtype=dtype)}

    def penalty(self) -> np.ndarray:
        return lam_penalty(self.ens)

    def bind(self, ops, env):
        xp, dt = ops.xp, env.dtype
        if self.separable:
            u = xp.asarray(self.axes.astype(dt))
            rate = xp.asarray(self.gamma.reshape(-1, self.K, self.K).astype(dt))

            class Bound:
                def step(self, p, xg, xt, lr, lam, u_reg):
                    ops.fourier_grid_disc_step(p["w1"], p["w2"], u, u, rate, xg, env.wg, xt, env.wt, lr, lam)

                def grad_x(self, p, x):
                    return ops.fourier_grid_grad_x(p["w1"], p["w2"], u, u, x)

                def forward(self, p, x):
                    return ops.fourier_grid_forward(p["w1"], p["w2"], u, u, x)
            return Bound()
        B, Kd = self.gamma.shape
        omega = xp.asarray(np.concatenate([self.omega, self.omega], 2).astype(dt))
        phase = xp.asarray(np.concatenate([np.full((B, Kd), -math.pi / 2), np.zeros((B, Kd))], 1).astype(dt))
        amp = xp.asarray(np.ones((B, 2 * Kd), dtype=dt))
        rate = xp.asarray(np.concatenate([self.gamma, self.gamma], 1).astype(dt))
        return TrigBound(ops, env, omega, phase, amp, rate)

    def export(self, p: dict, run: int) -> dict:
        """Separable d = 2: w1, w2 (K, K) over (u_a, u_b) with u = axis; else theta (2 K^d) = [sin, cos]
        weights with their features (omega (L, d), phase, amp) as for rff."""
        if self.separable:
            return {"w1": host(p["w1"][run]).copy(), "w2": host(p["w2"][run]).copy(), "axis": self.axes[run].copy()}
        Kd = self.gamma.shape[1]
        om = np.concatenate([self.omega[run], self.omega[run]], 1)
        phase = np.concatenate([np.full(Kd, -math.pi / 2), np.zeros(Kd)])
        return {"theta": host(p["theta"][run]).copy(), "omega": om.T.copy(), "phase": phase, "amp": np.ones(2 * Kd)}


FAMILY = FourierFamily()
