"""The maths of the ``kde`` family: discriminators that are density ratios of kernel density estimates.

Kernel GAN (Sinn & Rawat). KDEs P of the data X_1..M (weights w_i; 1/M for a sample) and Q of the
generated points Y_1..N (1/N each), Gaussian kernel or a mixture of bandwidths, self-terms
included; the objective minimised by the generator (eq. 12), floor phi >= 0:

    K_n = sum_i w_i log[(P(X_i) + phi) / (P(X_i) + Q(X_i) + 2 phi)]
        + (1/N) sum_l log[(Q(Y_l) + phi) / (P(Y_l) + Q(Y_l) + 2 phi)].

Its exact gradient with respect to Y_m (k' = k (x - y)/sigma^2 summed over the bandwidths, i.e.
grad_y k(x, y) = k'(x, y)):

    grad_m K_n = -(1/N) sum_i w_i [C^X_i + C^Y_m] k'(X_i, Y_m)
                 + (1/N^2) sum_l [(A_m - C^Y_m) + (A_l - C^Y_l)] k'(Y_l, Y_m)

with C^X_i = 1/(P + Q + 2 phi)(X_i), C^Y_l = 1/(P + Q + 2 phi)(Y_l), A_l = 1/(Q(Y_l) + phi): two
fused reductions (over the data and over the particles), each carrying a per-centre and a
per-query weight (the four softmax-weighted sums of grad K_n). All weights are passed as logs
(``kde_grad_sum``), so nothing under- or overflows in float32. Particles move by
Y <- Y - eta grad K_n, i.e. the generator "gradient" handed to the coupling is -grad K_n.

Optimal discriminator (NSGAN, the fitting-to-collapse paper): d* = p_data / (p_data + p_g), p_g the particles' KDE,
p_data the exact target density (a Gaussian mixture) or the KDE of a data sample; the particle
field is grad log d* = (1 - d*)(grad log p_data - grad log p_g), with d* = sigmoid(log p_data -
log p_g). Particles move by Z <- Z + s grad log d*(Z).

The data: a target with a density is represented by a fixed sample of M = training.batch_size
points drawn once from the run's target stream (iteration 0); a point set (or file of samples)
by its points with their masses. With discriminator.data_resample the engine draws a fresh batch of
M points every iteration instead (Sinn & Rawat Algorithm 1, line 3; the counter-based target streams
of the MLP runs, so every backend draws the same points), weights 1/M; a point set is then
minibatched with replacement by mass. The fixed sample still serves until the first draw (the
simultaneous update order evaluates the particles' force before it) and is what ``export`` keeps.
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- model maths (xp-generic)

def _lae(xp, a, b):
    return xp.logaddexp(a, b)


def _sigmoid(xp, z):
    """1 / (1 + e^-z) without overflow (d* = sigmoid(log p_data - log p_g))."""
    return xp.exp(-xp.logaddexp(0, -z))


def _log(x):
    """Host float64 log with log 0 = -inf and no warning."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(x)


def kernel_gan(ops, Y, X, logwX, bw, logmix, phi, grad=True, lPX=None):
    """(K_n (B,), grad_Y K_n (B, d, N) or None) for particles Y (B, d, N), data X (B, d, M) with log
    weights logwX (B, M), bandwidths / log mixture weights (B, S), floors phi (B,) (host); ``lPX``:
    the data KDE at the data, log P(X) (B, M), if already known (it depends on the bandwidth only)."""
    xp = ops.xp
    dt = Y.dtype
    B, _, N = Y.shape
    lwY = xp.full((B, N), -math.log(N), dtype=dt)
    lphi = xp.asarray(_log(phi)[:, None].astype(dt))
    l2phi = xp.asarray(_log(2 * np.asarray(phi, dtype=np.float64))[:, None].astype(dt))
    ld = ops.kde_log_density
    lPX = ld(X, X, logwX, bw, logmix) if lPX is None else lPX
    lQX = ld(X, Y, lwY, bw, logmix)
    lPY, lQY = ld(Y, X, logwX, bw, logmix), ld(Y, Y, lwY, bw, logmix)
    lSX = _lae(xp, _lae(xp, lPX, lQX), l2phi)
    lSY = _lae(xp, _lae(xp, lPY, lQY), l2phi)
    lAY = _lae(xp, lQY, lphi)
    K = (xp.exp(logwX) * (_lae(xp, lPX, lphi) - lSX)).sum(1) + (lAY - lSY).mean(1)
    if not grad:
        return K, None
    lN = dt.type(math.log(N))
    gX = ops.kde_grad_sum(Y, X, logwX, -lSX - lN, -lSY - lN, bw, logmix)
    with np.errstate(divide="ignore", invalid="ignore"):
        # log(A - C) = -log(Q + phi) + log(1 - (Q + phi)/(P + Q + 2 phi)); -inf where P = phi = 0
        lgam = -lAY + xp.log1p(-xp.exp(xp.minimum(lAY - lSY, 0))) - lN
    gY = ops.kde_grad_sum(Y, Y, lwY, lgam, lgam, bw, logmix)
    return K, gY - gX


def mixture_log_density(xp, Z, means, logw, stds, grad=True):
    """Exact log p and grad log p of isotropic Gaussian mixtures at Z (B, d, n): means (B, K, d),
    log weights (B, K), stds (B, K) (all > 0)."""
    d = Z.shape[1]
    s2 = (stds * stds)[:, :, None]                                               # (B, K, 1)
    d2 = ((Z[:, None, :, :] - means[:, :, :, None]) ** 2).sum(2)                 # (B, K, n)
    lc = logw[:, :, None] - 0.5 * d * xp.log(2 * math.pi * s2) - d2 / (2 * s2)
    m = lc.max(1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    lp = (m + xp.log(xp.exp(lc - m).sum(1, keepdims=True)))[:, 0]
    if not grad:
        return lp, None
    r = xp.exp(lc - lp[:, None, :]) / s2                                         # responsibilities / s^2
    g = (r[:, :, None, :] * (means[:, :, :, None] - Z[:, None, :, :])).sum(1)    # (B, d, n)
    return lp, g


def nsgan_field(ops, Z, bw, logmix, data=None, exact=None):
    """(d* (B, N), grad log d* (B, d, N)) at the particles Z (B, d, N): p_g the particles' KDE, p_data
    exact (``exact = (means, logw, stds)``) or the KDE of ``data = (X, logwX)``."""
    return ratio_field_at(ops, Z, Z, bw, logmix, data=data, exact=exact)


def _log_densities(ops, q, Z, bw, logmix, data, exact, grad: bool):
    """(log p_data, log p_g, grad log p_data, grad log p_g) at q (B, d, n); p_g the KDE of the particles
    Z (B, d, N) (gradients taken at q with the particles fixed; None when ``grad`` is false)."""
    xp = ops.xp
    B, _, N = Z.shape
    lwZ = xp.full((B, N), -math.log(N), dtype=Z.dtype)
    lQ = ops.kde_log_density(q, Z, lwZ, bw, logmix)
    gQ = ops.kde_grad_sum(q, Z, lwZ, None, -lQ, bw, logmix) if grad else None
    if exact is not None:
        lP, gP = mixture_log_density(xp, q, *exact, grad=grad)
        lP, gP = lP.astype(q.dtype), (None if gP is None else gP.astype(q.dtype))
    else:
        X, logwX = data
        lP = ops.kde_log_density(q, X, logwX, bw, logmix)
        gP = ops.kde_grad_sum(q, X, logwX, None, -lP, bw, logmix) if grad else None
    return lP, lQ, gP, gQ


def ratio_field_at(ops, q, Z, bw, logmix, data=None, exact=None):
    """d* and grad log d* at points q (B, d, n) given particles Z (B, d, N) (the field, plots,
    analytic checks): grad log d* = (1 - d*)(grad log p_data - grad log p_g), d* = sigmoid(log p_data
    - log p_g), p_g's gradient taken at q with the particles fixed."""
    xp = ops.xp
    lP, lQ, gP, gQ = _log_densities(ops, q, Z, bw, logmix, data, exact, grad=True)
    return _sigmoid(xp, lP - lQ), _sigmoid(xp, lQ - lP)[:, None, :] * (gP - gQ)


def kde_dstar(r, params: dict, particles, x, overlay_ops=None) -> np.ndarray:
    """d* (1, n) at points x (1, d, n) for one run (resolved config ``r``) from its exported kde
    parameters and particles (N, d); ``overlay_ops(work)`` picks the op table (default the NumPy
    reference)."""
    from ..kernels.ops import load_ops
    from ..targets import make_target
    bw = np.asarray(params["bandwidth"], dtype=np.float64)[None]
    lm = np.full(bw.shape, -math.log(bw.shape[1]))
    Z = np.ascontiguousarray(np.asarray(particles, dtype=np.float64).T[None])
    exact = data = None
    if r.discriminator.data_density == "exact":
        t = make_target(r)
        exact = (t.means[None], _log(t.weights)[None], t.stds[None])
    else:
        data = (np.ascontiguousarray(np.asarray(params["data"], dtype=np.float64).T[None]),
                np.asarray(params["data_log_weights"], dtype=np.float64)[None])
    centres = Z.shape[2] + (0 if data is None else data[0].shape[2])
    ops = load_ops("numpy") if overlay_ops is None else overlay_ops(x.shape[2] * centres * bw.shape[1])
    lP, lQ, _, _ = _log_densities(ops, np.ascontiguousarray(x), Z, bw, lm, data, exact, grad=False)
    return _sigmoid(np, np.asarray(lP, dtype=np.float64) - np.asarray(lQ, dtype=np.float64))


def quantile_norm(field, m: np.ndarray) -> np.ndarray:
    """q_d (B,): the (1 - 1/m) quantile over particles of |field| (host)."""
    f = np.asarray(field, dtype=np.float64)
    norms = np.sqrt((f * f).sum(1))                                              # (B, N)
    return np.array([np.quantile(norms[b], 1.0 - 1.0 / max(1, int(m[b]))) for b in range(f.shape[0])])


def steepness_1d(X, seeds) -> np.ndarray:
    """S_g (B,) in d = 1: the largest |dx/dz| between particles adjacent in their seed z (host);
    NaN where the seeds do not separate the particles."""
    x = np.asarray(X, dtype=np.float64)[:, 0, :]
    out = np.full(x.shape[0], np.nan)
    for b in range(x.shape[0]):
        order = np.argsort(seeds[b], kind="stable")
        dz = np.diff(seeds[b][order])
        ok = dz > 0
        if ok.any():
            out[b] = float(np.max(np.abs(np.diff(x[b][order])[ok]) / dz[ok]))
    return out


# --------------------------------------------------------------------------- schedules

def bandwidth_schedule(disc, lr_gen: float) -> list[tuple[int, tuple[float, ...], float]]:
    """[(first iteration, bandwidths, particle step)] from the resolved discriminator section: the base
    bandwidth and ``lr_gen`` from iteration 0, then each [iteration, bandwidth(, step)] entry of
    ``schedule`` from its iteration on (a step left out keeps the previous one)."""
    steps = [(0, tuple(disc.bandwidth), float(lr_gen))]
    for entry in disc.schedule or ():
        it, bw = int(entry[0]), entry[1]
        bw = tuple(bw) if isinstance(bw, (list, tuple)) else (float(bw),)
        step = float(entry[2]) if len(entry) > 2 else steps[-1][2]
        if it == 0:
            steps[0] = (0, bw, step)
        else:
            steps.append((it, bw, step))
    return steps


def schedule_at(steps, it: int) -> tuple[tuple[float, ...], float]:
    """(bandwidths, particle step) in force at iteration ``it``."""
    cur = steps[0]
    for s in steps:
        if s[0] <= it:
            cur = s
    return cur[1], cur[2]


