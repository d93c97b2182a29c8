"""The ``kernel`` family: the isolated points model in the dual ("history") form,
f^k = sum_c w_c K(., y_c) over the true points and the last H generated positions. With
beta = 1 - eta_d lam one step is

    w <- beta w;   w_true += eta_d p_i;   new slot: y = x~_j^k, w = -eta_d p~_j

which is f^{k+1} = (1 - eta_d lam) f^k + eta_d (sum_i p_i K(., x_i) - sum_j p~_j K(., x~_j^k)) exactly
(eq. 4-5, 9), with f^0 = 0. The ring buffer holds H steps; when it is full the oldest step is
overwritten, i.e. terms of weight <= eta_d beta^H p~_j are dropped (the truncation rule; the default
H makes beta^H <= 1e-6). A run's slot pointer only advances on steps it takes.
params: centres (B, d, K + H N), weights (B, K + H N)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..config import ALWAYS, AUTO, POS, Field, ge
from .base import host
from .common import BANDWIDTH, KERNEL
from .ipm import KEYS as IPM_KEYS
from .ipm import IPMModel, IPMObserver, IsolatedPoints

HISTORY_TOL = 1e-6        # drop terms whose decay weight is below this
HISTORY_MAX = 4096

KEYS = {
    "discriminator": {
        "bandwidth": BANDWIDTH,
        "kernel": KERNEL,
        "rq_alpha": Field("float", 1.0, "kernel = rq: the exponent a", POS, identity=ALWAYS),
        "history": Field("int", AUTO, "kernel: capacity H of the ring buffer of past generated positions (steps); "
                         "older terms are dropped. Default: the H with (1 - lr_disc lam)^H <= 1e-6, at most 4096",
                         ge(1), optional=True),
    },
    **IPM_KEYS,
}


def default_history(lr_disc: float, lam: float) -> int:
    """Ring-buffer capacity H with (1 - lr_disc lam)^H <= HISTORY_TOL, at most HISTORY_MAX."""
    beta = 1.0 - lr_disc * lam
    if beta <= 0.0:
        return 1
    if beta >= 1.0:
        return HISTORY_MAX
    return int(min(HISTORY_MAX, max(1, math.ceil(math.log(HISTORY_TOL) / math.log(beta)))))


class KernelFamily(IsolatedPoints):
    name = "kernel"
    summary = "the exact kernel discriminator of the isolated points model (dual form)"
    keys = KEYS

    def resolve(self, d, cfg, dim):
        super().resolve(d, cfg, dim)
        disc = d["discriminator"]
        if disc["history"] is None:
            disc["history"] = default_history(d["training"]["lr_disc"], d["training"]["lam"])

    def shape_key(self, r, target):
        d = r.discriminator
        return {"discriminator.kernel": d.kernel, "discriminator.history": d.history, "bandwidths": len(d.bandwidth),
                "discriminator.rq_alpha": d.rq_alpha if d.kernel == "rq" else None}

    def state_params(self, r, target):       # centres and weights: the true points and the history ring buffer
        return (target.n_components + r.discriminator.history * r.generator.n_particles) * (target.dim + 1)

    def sample_work(self, r, target):       # every centre once per bandwidth
        return self.state_params(r, target) * len(r.discriminator.bandwidth)

    def model(self, ens):
        return ExactKernel(ens)

    def overlay(self, params, r, pts, particles=None):
        """f at pts (n, d): the kernel sum over the centres of non-zero weight (empty ring-buffer slots and
        f^0 add exact zeros), with numba's op for large sums (``plots.overlay_ops``)."""
        from ..plots import overlay_ops
        x = np.ascontiguousarray(np.asarray(pts, dtype=np.float64).T[None])
        d = r.discriminator
        weights = np.asarray(params["weights"], dtype=np.float64)
        keep = weights != 0
        centres = np.ascontiguousarray(np.asarray(params["centres"], dtype=np.float64)[keep].T[None])
        bw = np.asarray([d.bandwidth], dtype=np.float64)
        ops = overlay_ops(x.shape[2] * centres.shape[2] * bw.shape[1])
        return ops.kernel_sum(x, centres, np.ascontiguousarray(weights[keep][None]), bw, d.kernel, d.rq_alpha)[0]


class ExactKernel(IPMModel):
    """Decayed kernel sums over the true points and a ring buffer of past generated positions (see
    the module docstring for the update and the truncation rule)."""

    def __init__(self, ens):
        super().__init__(ens)
        self.K, self.N = ens.points.shape[1], ens.N
        self.points = ens.points                                           # (B, K, d) true points
        disc = ens.resolved[0].discriminator
        self.H = disc.history
        self.kernel = disc.kernel
        self.alpha = float(disc.rq_alpha)
        self.bandwidths = np.array([r.discriminator.bandwidth for r in ens.resolved], dtype=np.float64)
        # weight of the oldest term the ring buffer drops (<= 1e-6 by default)
        self.history_tail = np.clip(1.0 - ens.lr_disc * self.penalty(), 0.0, 1.0) ** self.H
        if self.history_tail.max() > 1e-3:
            warnings.warn(f"discriminator.history = {self.H} drops kernel terms of relative weight up to "
                          f"{self.history_tail.max():.3g} ((1 - lr_disc lam)^H): the dual form is truncated; "
                          "raise discriminator.history or use discriminator.kind = rff", stacklevel=5)

    def init(self, dtype) -> dict:
        B, C = self.ens.B, self.K + self.H * self.N
        centres = np.zeros((B, self.dim, C), dtype=dtype)
        centres[:, :, :self.K] = self.points.transpose(0, 2, 1)          # the true points, for good
        return {"centres": centres, "weights": np.zeros((B, C), dtype=dtype)}

    def bind(self, ops, env):
        xp, dt = ops.xp, env.dtype
        fam = self
        bw = xp.asarray(self.bandwidths.astype(dt))
        B, K, N, H = env.B, self.K, self.N, self.H
        slot = xp.zeros(B, dtype=np.int64)          # each run's next ring-buffer slot, on the device
        runs = xp.arange(B)[:, None, None]
        dims = xp.arange(fam.dim)[None, :, None]
        cols = xp.arange(N)[None, :]
        tail = self.history_tail

        class Bound:
            def step(self, p, xg, xt, lr, lam, u_reg):
                """Decay and the new terms, with no host copy: a run with lr = 0 (dead, or past its n_disc)
                keeps its centres, weights and slot (written back unchanged)."""
                centres, weights = p["centres"], p["weights"]
                lr_h = xp.asarray(lr)
                weights *= (1 - lr_h * xp.asarray(lam))[:, None]
                weights[:, :K] += lr_h[:, None] * env.wt
                act = lr_h != 0
                c = K + slot[:, None] * N + cols                                   # (B, N)
                at = (runs, dims, c[:, None, :])                                    # (B, d, N) ring columns
                centres[at] = xp.where(act[:, None, None], xg, centres[at])
                at = (runs[:, :, 0], c)
                weights[at] = xp.where(act[:, None], -(lr_h[:, None] * env.wg), weights[at])
                slot[...] = xp.where(act, (slot + 1) % H, slot)

            def grad_x(self, p, x):
                return ops.kernel_sum_grad(x, p["centres"], p["weights"], bw, fam.kernel, fam.alpha)

            def forward(self, p, x):
                return ops.kernel_sum(x, p["centres"], p["weights"], bw, fam.kernel, fam.alpha)

            def observer(self):
                return IPMObserver(fam.ens, lambda b: {"history_tail_weight": float(tail[b])})

            def state(self):              # the ring buffer's next slot per run (a checkpoint's part)
                return {"slot": ops.to_host(slot).copy()}

            def restore(self, saved):
                slot[...] = xp.asarray(saved["slot"])
        return Bound()

    def export(self, p: dict, run: int) -> dict:
        return {"centres": host(p["centres"][run]).T.copy(), "weights": host(p["weights"][run]).copy()}


FAMILY = KernelFamily()
