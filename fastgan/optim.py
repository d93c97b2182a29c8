"""The discriminator's optimiser per run (``training.optimizer_disc``): gradient descent (the papers'
Algorithm 1), RMSProp or Adam with the update rules of torch.optim.RMSprop and torch.optim.Adam.

The step ops fuse the update (``fastgan.kernels.optim`` gives the rule and the layout of its state); this
module holds what the engine adds around them: the moments of every parameter array (zeros at the start,
saved with checkpoints) and, for every iteration, the per-run coefficients of each discriminator sub-step.

A run's t-th discriminator step is fixed by the iteration: t = it * n_disc + k + 1 at sub-step k. Adam's bias
corrections therefore need no counter (a dead run's t runs on harmlessly: its parameters never change
again), and a resumed run continues bitwise. Gradient descent inside an ensemble that holds adaptive runs
is the adaptive update with b1 = 0, b2 = 1, eps = 1, r = 0, which is x - lr g exactly (but for a subnormal
result, which flushes to zero: ``fastgan.kernels.optim``); an ensemble of
gradient-descent runs only has no optimiser at all (the plain fused update, unchanged).
"""

from __future__ import annotations

import numpy as np


def kind(r) -> str:
    """A resolved run's discriminator optimiser (gradient descent for the families that have no other)."""
    return r.training.optimizer_disc or "sgd"


class DiscOptimiser:
    """The adaptive optimisers of an ensemble's runs; build with :meth:`of` (None: gradient descent only)."""

    def __init__(self, resolved, n_disc: np.ndarray, lr_disc: np.ndarray, xp, dtype):
        kinds = [kind(r) for r in resolved]
        tr = [r.training for r in resolved]
        self.xp, self.dtype = xp, np.dtype(dtype)
        f64 = lambda vals: xp.asarray(np.array(vals, dtype=np.float64))          # noqa: E731
        self.adam = xp.asarray(np.array([k == "adam" for k in kinds]))
        self.sgd = xp.asarray(np.array([k == "sgd" for k in kinds]))
        self.b1 = f64([t.optimizer_beta1 if k == "adam" else 0.0 for t, k in zip(tr, kinds)])
        self.b2 = f64([t.optimizer_beta2 if k != "sgd" else 1.0 for t, k in zip(tr, kinds)])
        self.eps = f64([t.optimizer_eps if k != "sgd" else 1.0 for t, k in zip(tr, kinds)])
        self.n_disc = f64(n_disc)
        self.lr = f64(lr_disc)
        self.sub = f64(np.arange(int(np.max(n_disc))))[:, None]                  # (K, 1)

    @classmethod
    def of(cls, ens) -> "DiscOptimiser | None":
        if all(kind(r) == "sgd" for r in ens.resolved):
            return None
        return cls(ens.resolved, ens.n_disc, ens.lr_disc, ens.ops.xp, ens.dtype)

    def moments(self, p: dict) -> dict:
        """Zero moments of every parameter array: {"m:" + k, "v:" + k} (the ``opt`` state of the step ops)."""
        from .kernels.optim import moment_keys
        return {key: self.xp.zeros_like(p[key[2:]]) for key in moment_keys(p)}

    def tables(self, it: int):
        """(rates (K, B), coef (K, B, 4)) in the state dtype for the K sub-steps of iteration ``it``: each run's
        rate lr / (1 - b1^t) (Adam; lr otherwise) and coefficients (b1, b2, eps, r), r = 1 / sqrt(1 - b2^t)
        for Adam, 1 for RMSProp, 0 for gradient descent. Sub-steps a run does not take are masked by the
        engine (its rate is set to 0 there)."""
        xp = self.xp
        t = it * self.n_disc[None, :] + self.sub + 1.0                               # (K, B)
        bc1 = xp.where(self.adam, 1.0 - self.b1 ** t, 1.0)
        b2 = xp.where(self.adam, self.b2, 0.0)                                         # 1 - b2^t > 0 for Adam only
        r = xp.where(self.adam, 1.0 / xp.sqrt(1.0 - b2 ** t), xp.where(self.sgd, 0.0, 1.0))
        rates = (self.lr / bc1).astype(self.dtype)
        shape = r.shape
        coef = xp.stack([xp.broadcast_to(self.b1, shape), xp.broadcast_to(self.b2, shape),
                         xp.broadcast_to(self.eps, shape), r], axis=-1).astype(self.dtype)
        return rates, coef
