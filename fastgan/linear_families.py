"""Discriminators that are linear in their parameters (SPEC §1.7 and §2).

fourier  Algorithm 2 of papers/001 (App. C): D(x) = sum_k w1_k sin(k.x) + w2_k cos(k.x) on a product
         grid of frequencies (per axis: ``freq_count`` log-spaced values in [freq_min, freq_max] and,
         with ``freq_signs = both``, their negatives), each weight updated at the rate
         alpha_D gamma(|k|). Init w = 0. The generator step is the NTK-coupled step of §1.1.
         params: w1, w2 (B, K1, K2) in d = 2 (separable ops ``fourier_grid_*`` of the op table); theta (B, 2K) otherwise.
rff      papers/000 with random Fourier features of the rbf kernel: a(x) = sqrt(2/D) cos(Omega x + b),
         Omega ~ N(0, sigma^-2 I), b ~ U[0, 2pi) (``features = cos``), or D/2 frequencies each with a
         cos and a sin (``cossin``: a(x).a(x) = 1 exactly, no spurious self-force). A list of
         bandwidths concatenates one block of D features per width (eq. 27-28). Init theta = 0.
         params: theta (B, L)
kernel   papers/000 in the dual ("history") form: f^k = sum_c w_c K(., y_c) over the true points and
         the last H generated positions. With beta = 1 - eta_d lam one step is
             w <- beta w;   w_true += eta_d p_i;   new slot: y = x~_j^k, w = -eta_d p~_j
         which is f^{k+1} = (1 - eta_d lam) f^k + eta_d (sum_i p_i K(., x_i) - sum_j p~_j K(., x~_j^k))
         exactly (eq. 4-5, 9), with f^0 = 0. The ring buffer holds H steps; when it is full the oldest
         step is overwritten, i.e. terms of weight <= eta_d beta^H p~_j are dropped (the truncation
         rule; the default H makes beta^H <= 1e-6). A run's slot pointer only advances on steps it takes.
         params: centres (B, d, K + H N), weights (B, K + H N)

For rff and kernel the discriminator sees the target's points x_i with masses p_i exactly (no
sampling) and the generated points with their fixed masses p~_j; the generator moves by
x~_j <- x~_j + eta_g p~_j grad f(x~_j) (through the coupling, whose default g2/g1 = 0 is the identity).
"""

from __future__ import annotations

import math

import numpy as np

from .config import resolved_dict
from .kernels import rng
from .kernels.sampling_numpy import normal_init


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


def _resolved(configs):
    return [resolved_dict(c) for c in configs]


class _Linear:
    """What every linear family shares: its L2 coefficient is training.lam."""

    @staticmethod
    def penalty(configs) -> np.ndarray:
        """(B,) lambda of L += (lambda / 2) |theta|^2."""
        return np.array([q["training"]["lam"] for q in _resolved(configs)], dtype=np.float64)


class Fourier(_Linear):
    """Algorithm 2: Fourier features on a product grid with a frequency-dependent rate."""

    name = "fourier"
    samples_target = True

    def __init__(self, configs, dim: int):
        self.dim = dim
        r = _resolved(configs)
        axes = [fourier_axis(q["discriminator"]["freq_count"], q["discriminator"]["freq_min"],
                             q["discriminator"]["freq_max"], q["discriminator"]["freq_signs"]) for q in r]
        self.axes = np.stack(axes)                                   # (B, K1): same values on every axis
        self.K = self.axes.shape[1]
        grids = np.stack(np.meshgrid(*([np.arange(self.K)] * dim), indexing="ij"), 0).reshape(dim, -1)  # (d, K^d)
        self.omega = self.axes[:, grids]                             # (B, d, K^d)
        kabs = np.sqrt((self.omega ** 2).sum(1))                     # (B, K^d)
        self.gamma = np.stack([fourier_gamma(q["discriminator"]["gamma"], kabs[b], q["discriminator"]["gamma_value"])
                               for b, q in enumerate(r)])
        self.separable = dim == 2

    def init(self, configs, dtype) -> dict:
        B, Kd = self.gamma.shape
        if self.separable:
            z = np.zeros((B, self.K, self.K), dtype=dtype)
            return {"w1": z, "w2": z.copy()}
        return {"theta": np.zeros((B, 2 * Kd), dtype=dtype)}

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
        return _TrigBound(ops, env, omega, phase, amp, rate)

    def export(self, p: dict, run: int) -> dict:
        """Separable d = 2: w1, w2 (K, K) over (u_a, u_b) with u = axis; else theta (2 K^d) = [sin, cos]
        weights with their features (omega (L, d), phase, amp) as for rff."""
        if self.separable:
            return {"w1": np.asarray(p["w1"][run]).copy(), "w2": np.asarray(p["w2"][run]).copy(),
                    "axis": self.axes[run].copy()}
        Kd = self.gamma.shape[1]
        om = np.concatenate([self.omega[run], self.omega[run]], 1)
        phase = np.concatenate([np.full(Kd, -math.pi / 2), np.zeros(Kd)])
        return {"theta": np.asarray(p["theta"][run]).copy(), "omega": om.T.copy(), "phase": phase,
                "amp": np.ones(2 * Kd)}


class _TrigBound:
    """step / grad_x / forward of a trigonometric-feature discriminator over the op table."""

    def __init__(self, ops, env, omega, phase, amp, rate):
        self.ops, self.env = ops, env
        self.c = (omega, phase, amp)
        self.rate = rate

    def step(self, p, xg, xt, lr, lam, u_reg):
        e = self.env
        self.ops.trig_disc_step(p["theta"], *self.c, self.rate, xg, e.wg, xt, e.wt, lr, lam)

    def grad_x(self, p, x):
        return self.ops.trig_grad_x(p["theta"], *self.c, x)

    def forward(self, p, x):
        return self.ops.trig_forward(p["theta"], *self.c, x)


class RandomFeatures(_Linear):
    """papers/000 with random Fourier features of the rbf kernel (one block per bandwidth)."""

    name = "rff"
    samples_target = False

    def __init__(self, configs, dim: int):
        self.dim = dim
        r = _resolved(configs)
        disc = r[0]["discriminator"]
        self.D, self.cossin = disc["n_features"], disc["features"] == "cossin"
        self.bandwidths = np.array([q["discriminator"]["bandwidth"] for q in r], dtype=np.float64)   # (B, S)
        B, S = self.bandwidths.shape
        nf = self.D // 2 if self.cossin else self.D          # frequencies per block
        base = rng.base_keys([c.training.seed for c in configs], rng.STREAM_FEATURES)
        z = normal_init(base, S * nf * dim).reshape(B, S, dim, nf) / self.bandwidths[:, :, None, None]
        omega = z.transpose(0, 2, 1, 3).reshape(B, dim, S * nf)                # block s: columns s*nf..
        amp = math.sqrt(2.0 / self.D)
        if self.cossin:   # per block: nf cos features then nf sin features of the same frequencies
            om = z.transpose(0, 2, 1, 3)                                        # (B, d, S, nf)
            self.omega = np.concatenate([om, om], 3).reshape(B, dim, S * 2 * nf)
            ph = np.concatenate([np.zeros(nf), np.full(nf, -math.pi / 2)])
            self.phase = np.broadcast_to(np.tile(ph, S), (B, S * 2 * nf)).copy()
        else:
            self.omega = omega
            # phases b ~ U[0, 2 pi) from sub-step 1 of the features stream (the frequencies use sub-step 0)
            self.phase = 2 * math.pi * rng.np_uniform(rng.np_step_keys(base, 0, 1), S * nf)
        self.amp = np.full(self.phase.shape, amp)
        self.L = self.phase.shape[1]

    def init(self, configs, dtype) -> dict:
        return {"theta": np.zeros((len(configs), self.L), dtype=dtype)}

    def bind(self, ops, env):
        xp, dt = ops.xp, env.dtype
        c = [xp.asarray(a.astype(dt)) for a in (self.omega, self.phase, self.amp)]
        return _TrigBound(ops, env, *c, xp.asarray(np.ones((len(self.phase), self.L), dtype=dt)))

    def export(self, p: dict, run: int) -> dict:
        return {"theta": np.asarray(p["theta"][run]).copy(), "omega": self.omega[run].T.copy(),
                "phase": self.phase[run].copy(), "amp": self.amp[run].copy()}


class ExactKernel(_Linear):
    """papers/000 in the dual form: decayed kernel sums over the true points and a ring buffer of
    past generated positions (see the module docstring for the update and the truncation rule)."""

    name = "kernel"
    samples_target = False

    def __init__(self, configs, dim: int, points: np.ndarray, n_particles: int):
        self.dim, self.K, self.N = dim, points.shape[1], n_particles
        self.points = points                                              # (B, K, d) true points
        r = _resolved(configs)
        disc = r[0]["discriminator"]
        self.H = disc["history"]
        self.kernel = disc["kernel"]
        self.alpha = float(disc["rq_alpha"] or 1.0)
        self.bandwidths = np.array([q["discriminator"]["bandwidth"] for q in r], dtype=np.float64)

    def init(self, configs, dtype) -> dict:
        B, C = len(configs), self.K + self.H * self.N
        centres = np.zeros((B, self.dim, C), dtype=dtype)
        centres[:, :, :self.K] = self.points.transpose(0, 2, 1)          # the true points, for good
        return {"centres": centres, "weights": np.zeros((B, C), dtype=dtype)}

    def bind(self, ops, env):
        xp, dt = ops.xp, env.dtype
        fam = self
        bw = xp.asarray(self.bandwidths.astype(dt))
        B, K, N, H = env.B, self.K, self.N, self.H
        slot = np.zeros(B, dtype=np.int64)
        runs = np.arange(B)
        cols = np.arange(N)

        class Bound:
            def step(self, p, xg, xt, lr, lam, u_reg):
                centres, weights = p["centres"], p["weights"]
                lr_h = xp.asarray(lr)
                weights *= (1 - lr_h * xp.asarray(lam))[:, None]
                weights[:, :K] += lr_h[:, None] * env.wt
                act = np.asarray(lr.get() if hasattr(lr, "get") else lr) != 0
                if not act.any():
                    return
                r = runs[act]
                c = K + slot[act, None] * N + cols[None, :]                       # (R, N)
                ri = xp.asarray(r)
                ci = xp.asarray(c)
                centres[ri[:, None, None], xp.arange(fam.dim)[None, :, None], ci[:, None, :]] = xg[ri]
                weights[ri[:, None], ci] = -(lr_h[ri, None] * env.wg[ri])
                slot[act] = (slot[act] + 1) % H

            def grad_x(self, p, x):
                return ops.kernel_sum_grad(x, p["centres"], p["weights"], bw, fam.kernel, fam.alpha)

            def forward(self, p, x):
                return ops.kernel_sum(x, p["centres"], p["weights"], bw, fam.kernel, fam.alpha)
        return Bound()

    def export(self, p: dict, run: int) -> dict:
        return {"centres": np.asarray(p["centres"][run]).T.copy(), "weights": np.asarray(p["weights"][run]).copy()}
