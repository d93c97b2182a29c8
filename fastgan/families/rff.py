"""The ``rff`` family: the isolated points model with random Fourier features of the rbf kernel,
a(x) = sqrt(2/D) cos(Omega x + b), Omega ~ N(0, sigma^-2 I), b ~ U[0, 2pi) (``features = cos``), or
D/2 frequencies each with a cos and a sin (``cossin``: a(x).a(x) = 1 exactly, no spurious
self-force). A list of bandwidths concatenates one block of D features per width (eq. 27-28).
Init theta = 0. params: theta (B, L)."""

from __future__ import annotations

import math

import numpy as np

from ..config import Field, ge
from ..errors import ConfigError
from ..kernels import rng
from ..kernels.sampling_numpy import normal_init
from .base import host
from .common import BANDWIDTH, KERNEL
from .ipm import KEYS as IPM_KEYS
from .ipm import IPMModel, IPMObserver, IsolatedPoints
from .trig import TrigBound, trig_overlay

KEYS = {
    "discriminator": {
        "n_features": Field("int", 1024, "rff: random features per bandwidth block (cossin: half as many "
                            "frequencies, each with a cos and a sin)", ge(1)),
        "features": Field("str", "cossin", "rff: cos(Omega x + b) features or [cos, sin] pairs (no spurious "
                          "self-force)", choices=("cos", "cossin")),
        "bandwidth": BANDWIDTH,
        "kernel": KERNEL,
    },
    **IPM_KEYS,
}


class RFFFamily(IsolatedPoints):
    name = "rff"
    summary = "random Fourier features of the isolated points model"
    keys = KEYS

    def validate(self, cfg, dim):
        disc = cfg.discriminator
        if disc.kernel != "rbf":
            raise ConfigError("discriminator.kernel", disc.kernel, "random Fourier features sample the rbf kernel only "
                              "(use discriminator.kind = kernel for laplacian or rq)")
        if disc.features == "cossin" and disc.n_features % 2:
            raise ConfigError("discriminator.n_features", disc.n_features, "[cos, sin] pairs need an even count")
        super().validate(cfg, dim)

    def shape_key(self, r, target):
        d = r.discriminator
        return {"discriminator.n_features": d.n_features, "discriminator.features": d.features,
                "discriminator.kernel": d.kernel, "bandwidths": len(d.bandwidth)}

    def state_params(self, r, target):       # theta, phase, amp, rate and omega per feature
        return len(r.discriminator.bandwidth) * r.discriminator.n_features * (4 + target.dim)

    def model(self, ens):
        return RandomFeatures(ens)

    def overlay(self, params, r, pts, particles=None):
        return trig_overlay(params, pts)


class RandomFeatures(IPMModel):
    """Random Fourier features of the rbf kernel (one block per bandwidth)."""

    def __init__(self, ens):
        super().__init__(ens)
        dim = ens.dim
        disc = ens.resolved[0].discriminator
        self.D, self.cossin = disc.n_features, disc.features == "cossin"
        self.bandwidths = np.array([r.discriminator.bandwidth for r in ens.resolved], dtype=np.float64)   # (B, S)
        B, S = self.bandwidths.shape
        nf = self.D // 2 if self.cossin else self.D          # frequencies per block
        base = rng.base_keys(ens.seeds, rng.STREAM_FEATURES)
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

    def init(self, dtype) -> dict:
        return {"theta": np.zeros((self.ens.B, self.L), dtype=dtype)}

    def bind(self, ops, env):
        xp, dt = ops.xp, env.dtype
        c = [xp.asarray(a.astype(dt)) for a in (self.omega, self.phase, self.amp)]
        bound = TrigBound(ops, env, *c, xp.asarray(np.ones((len(self.phase), self.L), dtype=dt)))
        bound.observer = lambda: IPMObserver(self.ens)
        return bound

    def export(self, p: dict, run: int) -> dict:
        return {"theta": host(p["theta"][run]).copy(), "omega": self.omega[run].T.copy(),
                "phase": self.phase[run].copy(), "amp": self.amp[run].copy()}


FAMILY = RFFFamily()
