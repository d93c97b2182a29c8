"""The adaptive discriminator update (RMSProp, Adam) over ``xp``: the reference the fused kernels follow.

For a parameter x with gradient g (the L2 term of eq. 24 included: torch's ``weight_decay`` adds it the
same way), at a run's t-th discriminator step:

    m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
    x <- x - rate * m / (sqrt(v) * r + eps)

with the per-run coefficients ``coef`` (B, 4) = (b1, b2, eps, r) and ``rate`` (B,) set by the engine
(``fastgan.optim``): Adam (torch.optim.Adam) b1, b2 as configured, rate = lr / (1 - b1^t),
r = 1 / sqrt(1 - b2^t); RMSProp (torch.optim.RMSprop, no momentum, not centred) b1 = 0 (m = g), r = 1,
rate = lr; gradient descent inside an ensemble that holds adaptive runs b1 = 0, b2 = 1, eps = 1, r = 0,
which is x - lr g exactly (v stays 0). An ensemble of gradient-descent runs only takes no ``opt`` at all.

Results below the dtype's smallest normal number flush to zero (parameters and moments), as float32
arithmetic on the GPU does (``-ftz=true``): with the L2 term of eq. 24, Adam shrinks the weights of units
that no sample activates geometrically, and subnormal arithmetic runs ~10-100x slower on a CPU (measured:
a 2-D ReLU ensemble slowed 4x within 400 iterations at alpha_D = 1e-3, every later op on those weights).

The step ops take the state as ``opt``: a dict with the moments of every parameter array ``k`` of the
step, ``"m:" + k`` and ``"v:" + k`` (its shape, updated in place), and ``"coef"`` (B, 4). A run with
rate 0 is untouched (parameters and moments).
"""

from __future__ import annotations

import numpy as np

COEFS = ("b1", "b2", "eps", "r")


def moment_keys(names) -> tuple:
    """The state keys of an ``opt`` dict for parameter arrays ``names``."""
    return tuple(f"{s}:{k}" for s in "mv" for k in names)


ONE_LAYER = moment_keys("wba")          # the fused one-hidden-layer kernels' order: m:w, m:b, m:a, v:w, v:b, v:a


def one_layer_moments(w, opt) -> tuple:
    """The six moments of the one-hidden-layer step in :data:`ONE_LAYER` order, each checked to be shaped and
    typed as its parameter (w (B, d, W); b, a (B, W)) — what the fused kernels index without checks."""
    out = tuple(opt[k] for k in ONE_LAYER)
    for x, like in zip(out, ((w.shape[0], w.shape[2]) if k != "w" else w.shape for k in "wba" * 2)):
        if tuple(x.shape) != tuple(like) or x.dtype != w.dtype:
            raise ValueError("opt: every moment must be an array shaped and typed as its parameter")
    return out


def flush(xp, y):
    """y with its subnormal entries set to zero."""
    return xp.where(xp.abs(y) < np.finfo(y.dtype).tiny, y.dtype.type(0), y)


def adapt(xp, x, g, m, v, rate, coef, live=None):
    """The update above, in place on x, m, v (B, ...) for the runs with rate != 0; ``rate`` (B,) and
    ``coef`` (B, 4) in x's dtype, ``live`` the runs' rate != 0 mask if already at hand."""
    shape = (-1,) + (1,) * (x.ndim - 1)
    b1, b2, eps, r = (coef[:, j].reshape(shape) for j in range(4))
    one = x.dtype.type(1)
    m_new = flush(xp, b1 * m + (one - b1) * g)
    v_new = flush(xp, b2 * v + (one - b2) * (g * g))
    x_new = flush(xp, x - rate.reshape(shape) * m_new / (xp.sqrt(v_new) * r + eps))
    keep = (rate != 0 if live is None else live).reshape(shape)
    m[...] = xp.where(keep, m_new, m)
    v[...] = xp.where(keep, v_new, v)
    x[...] = xp.where(keep, x_new, x)
