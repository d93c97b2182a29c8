"""The bound ops of a discriminator linear in trigonometric features,
f(x) = sum_l theta_l amp_l cos(omega_l . x + phase_l) (the non-separable Fourier grid and random
Fourier features share them): a step, grad_x and forward over the op table."""

from __future__ import annotations


class TrigBound:
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


def trig_overlay(params: dict, pts):
    """f at points (n, d) from one run's exported trigonometric features (theta, omega (L, d), phase, amp)."""
    import numpy as np

    from ..plots import overlay_ops
    f64 = lambda k: np.ascontiguousarray(np.asarray(params[k], dtype=np.float64)[None])       # noqa: E731
    x = np.ascontiguousarray(np.asarray(pts, dtype=np.float64).T[None])
    ops = overlay_ops(x.shape[2] * np.size(params["theta"]) * x.shape[1])  # numba's op for large sums
    return ops.trig_forward(f64("theta"), np.ascontiguousarray(np.asarray(params["omega"], dtype=np.float64).T[None]),
                            f64("phase"), f64("amp"), x)[0]


def lam_penalty(ens):
    """(B,) lambda of L += (lambda / 2) |theta|^2 (training.lam, resolved)."""
    import numpy as np
    return np.array([r.training.lam for r in ens.resolved], dtype=np.float64)
