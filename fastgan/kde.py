"""Discriminators that are density ratios of kernel density estimates (SPEC §3-4).

Kernel GAN (papers/002). KDEs P of the data X_1..M (weights w_i; 1/M for a sample) and Q of the
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
per-query weight (the four softmax-weighted sums of SPEC §3). All weights are passed as logs
(``kde_grad_sum``), so nothing under- or overflows in float32. Particles move by
Y <- Y - eta grad K_n, i.e. the generator "gradient" handed to the coupling is -grad K_n.

Optimal discriminator (NSGAN, papers/004): d* = p_data / (p_data + p_g), p_g the particles' KDE,
p_data the exact target density (a Gaussian mixture) or the KDE of a data sample; the particle
field is grad log d* = (1 - d*)(grad log p_data - grad log p_g), with d* = sigmoid(log p_data -
log p_g). Particles move by Z <- Z + s grad log d*(Z).

The data: a target with a density is represented by a fixed sample of M = training.batch_size
points drawn once from the run's target stream (iteration 0); a point set (or file of samples)
by its points with their masses. With discriminator.data_resample the engine draws a fresh batch of
M points every iteration instead (papers/002 Algorithm 1, line 3; the counter-based target streams
of the MLP runs, so every backend draws the same points), weights 1/M; a point set is then
minibatched with replacement by mass. The fixed sample still serves until the first draw (the
simultaneous update order evaluates the particles' force before it) and is what ``export`` keeps.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import rng

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


def kde_dstar(cfg, params: dict, particles, x) -> np.ndarray:
    """d* (1, n) at points x (1, d, n) for one run from its exported kde parameters and particles (N, d)."""
    from .config import resolved_dict
    from .kernels.ops import load_ops
    from .targets import make_target
    bw = np.asarray(params["bandwidth"], dtype=np.float64)[None]
    lm = np.full(bw.shape, -math.log(bw.shape[1]))
    Z = np.ascontiguousarray(np.asarray(particles, dtype=np.float64).T[None])
    exact = data = None
    if resolved_dict(cfg)["discriminator"]["data_density"] == "exact":
        t = make_target(cfg)
        exact = (t.means[None], _log(t.weights)[None], t.stds[None])
    else:
        data = (np.ascontiguousarray(np.asarray(params["data"], dtype=np.float64).T[None]),
                np.asarray(params["data_log_weights"], dtype=np.float64)[None])
    lP, lQ, _, _ = _log_densities(load_ops("numpy"), x, Z, bw, lm, data, exact, grad=False)
    return _sigmoid(np, lP - lQ)


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

def bandwidth_schedule(disc: dict, lr_gen: float) -> list[tuple[int, tuple[float, ...], float]]:
    """[(first iteration, bandwidths, particle step)] from the resolved discriminator section: the base
    bandwidth and ``lr_gen`` from iteration 0, then each [iteration, bandwidth(, step)] entry of
    ``schedule`` from its iteration on (a step left out keeps the previous one)."""
    steps = [(0, tuple(disc["bandwidth"]), float(lr_gen))]
    for entry in disc["schedule"] or ():
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


# --------------------------------------------------------------------------- the family

class KDEFamily:
    """The ``kde`` discriminator family: no trained parameters; the state is the current bandwidth."""

    name = "kde"
    samples_target = False
    OBSERVABLES = ("kernel_gan_objective", "q_d")

    def __init__(self, configs, targets, dim: int, n_particles: int):
        from .config import resolved_dict
        r = [resolved_dict(c) for c in configs]
        self.dim, self.N = dim, n_particles
        self.model = r[0]["discriminator"]["model"]
        self.exact_data = r[0]["discriminator"]["data_density"] == "exact"
        self.schedules = [bandwidth_schedule(q["discriminator"], q["training"]["lr_gen"]) for q in r]
        self.phi = np.array([q["discriminator"]["floor"] for q in r], dtype=np.float64)
        self.q_modes = np.array([q["record"]["q_modes"] for q in r], dtype=np.int64)
        self.samples_target = bool(r[0]["discriminator"].get("data_resample", False))   # the engine draws X
        self.batch = int(r[0]["training"]["batch_size"])         # the size of a drawn batch (shape key)
        data, logw = [], []
        for cfg, t, q in zip(configs, targets, r):
            if t.has_density:
                data.append(t.sample(q["training"]["batch_size"], seed=cfg.training.seed))
                logw.append(np.full(q["training"]["batch_size"], -math.log(q["training"]["batch_size"])))
            else:
                data.append(t.means)
                logw.append(_log(t.weights))
        self.data = np.ascontiguousarray(np.stack(data).transpose(0, 2, 1))          # (B, d, M)
        self.logw = np.stack(logw)
        self.exact = None
        if self.exact_data:
            self.exact = (np.stack([t.means for t in targets]), np.stack([_log(t.weights) for t in targets]),
                          np.stack([t.stds for t in targets]))

    def init(self, configs, dtype) -> dict:
        return {"bandwidth": np.array([schedule_at(s, 0)[0] for s in self.schedules], dtype=dtype)}

    @staticmethod
    def penalty(configs) -> np.ndarray:
        return np.zeros(len(configs))

    def bind(self, ops, env):
        return _KDEBound(self, ops, env)

    def export(self, p: dict, run: int) -> dict:
        return {"bandwidth": np.asarray(p["bandwidth"][run]).copy(), "data": self.data[run].T.copy(),
                "data_log_weights": self.logw[run].copy()}


class _KDEBound:
    def __init__(self, fam: KDEFamily, ops, env):
        xp, dt = ops.xp, env.dtype
        self.fam, self.ops, self.dt = fam, ops, dt
        self.X = xp.asarray(fam.data.astype(dt))
        self.logwX = xp.asarray(fam.logw.astype(dt))
        S = len(fam.schedules[0][0][1])
        self.logmix = xp.asarray(np.full((len(fam.schedules), S), -math.log(S), dtype=dt))
        self.exact = None if fam.exact is None else tuple(xp.asarray(a.astype(dt)) for a in fam.exact)
        self.current = None
        self.lPX = None          # log P(X) at the current bandwidths and data
        self.uniform = None
        if fam.samples_target:   # log weights of a drawn batch
            self.uniform = xp.asarray(np.full((fam.data.shape[0], fam.batch), -math.log(fam.batch), dtype=dt))

    def begin_iteration(self, p, it: int):
        """Set the bandwidths of iteration ``it`` (piecewise-constant schedules); returns the (B,)
        particle steps in force."""
        now = [schedule_at(s, it) for s in self.fam.schedules]
        bw = np.array([b for b, _ in now], dtype=self.dt)
        if self.current is None or not np.array_equal(bw, self.current):
            p["bandwidth"][...] = self.ops.xp.asarray(bw)
            self.current = bw
            self.lPX = None
        return np.array([step for _, step in now], dtype=np.float64)

    def step(self, p, xg, xt, lr, lam, u_reg) -> None:
        """No trained parameters: the discriminator is the density ratio of the KDEs; with
        data_resample, the engine's fresh target batch xt (B, d, M) becomes the data."""
        if self.fam.samples_target:
            self.X, self.logwX, self.lPX = xt, self.uniform, None

    def grad_x(self, p, x):
        """The force on each particle: -grad K_n (kernel_gan) or grad log d* (nsgan)."""
        if self.fam.model == "kernel_gan":
            return -self.kernel_gan(p, x, True)[1]
        return self.field(p, x)[1]

    def kernel_gan(self, p, x, grad):
        if self.lPX is None:
            self.lPX = self.ops.kde_log_density(self.X, self.X, self.logwX, p["bandwidth"], self.logmix)
        return kernel_gan(self.ops, x, self.X, self.logwX, p["bandwidth"], self.logmix, self.fam.phi, grad, self.lPX)

    def field(self, p, x):
        return nsgan_field(self.ops, x, p["bandwidth"], self.logmix, data=(self.X, self.logwX), exact=self.exact)

    def observables(self, p, x) -> dict:
        """K_n and q_d (host (B,) arrays) at the current particles."""
        K, _ = self.kernel_gan(p, x, False)
        _, f = self.field(p, x)
        return {"kernel_gan_objective": np.asarray(self.ops.to_host(K), dtype=np.float64),
                "q_d": quantile_norm(self.ops.to_host(f), self.fam.q_modes)}


def _nearest_mode_distance(t) -> float:
    pts = t.modes if t.modes is not None else t.means
    if len(pts) < 2:
        return float("nan")
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d2[~np.eye(len(pts), dtype=bool)].min()))


class EarlyStop:
    """The early-stopping rule of papers/004 Algorithm 2, evaluated at every record: after the
    warm-up, it fires when q_d > k_d / (2 sigma) or (d = 1) when the relative change of the
    steepness since the previous record, (S_g - S_g_prev) / S_g_prev, falls below k_g. The run
    is not stopped: the first record at which the rule fires is reported (``early_stop_at``).

    Steepness (d = 1): the particles are the images g(z_a) of their latent seeds z_a (the normal
    draws of the initial cloud, or the initial positions when given explicitly); S_g is the largest
    |dx/dz| between seed-adjacent particles (finite differences of g)."""

    def __init__(self, ens):
        r = ens.resolved
        B = ens.B
        self.ops = ens.ops
        self.enabled = np.array([bool(q["record"]["early_stop"]) for q in r])
        self.k_g = np.array([q["record"]["k_g"] for q in r], dtype=np.float64)
        self.warmup = np.array([q["record"]["warmup"] for q in r], dtype=np.int64)
        k_d = np.array([q["record"]["k_d"] if q["record"]["k_d"] is not None else _nearest_mode_distance(t)
                        for q, t in zip(r, ens.targets)], dtype=np.float64)
        sig = []
        for q, t, sched in zip(r, ens.targets, ens.family.schedules):
            if q["record"]["stop_sigma"] is not None:
                sig.append(q["record"]["stop_sigma"])
            else:
                sig.append(float(t.stds.max()) if t.stds.max() > 0 else min(sched[0][1]))
        self.threshold = k_d / (2 * np.array(sig))
        self.steepness = ens.dim == 1
        if self.steepness:
            z = seeds_of(ens)
            x0 = ens.initial_particles()[:, 0, :]
            given = np.array([q["generator"]["init_points"] is not None for q in r])
            self.seeds = np.where(given[:, None], x0, z)
        self.prev = np.full(B, np.nan)
        self.fired_at = np.full(B, -1, dtype=np.int64)
        self.reason = [""] * B

    def update(self, t: int, q_d: np.ndarray, X, alive: np.ndarray) -> dict:
        out = {}
        change = np.full(len(q_d), np.nan)
        if self.steepness:
            s = steepness_1d(self.ops.to_host(X), self.seeds)
            with np.errstate(divide="ignore", invalid="ignore"):
                change = (s - self.prev) / self.prev
            self.prev = s
            out["steepness"] = s
        for b in np.nonzero(self.enabled & alive & (self.fired_at < 0) & (t > self.warmup))[0]:
            if q_d[b] > self.threshold[b]:
                self.fired_at[b], self.reason[b] = t, "q_d"
            elif change[b] < self.k_g[b]:
                self.fired_at[b], self.reason[b] = t, "steepness"
        return out

    def provenance(self, b: int) -> dict:
        if not self.enabled[b]:
            return {}
        return {"early_stop_at": int(self.fired_at[b]), "early_stop_reason": self.reason[b],
                "early_stop_threshold": float(self.threshold[b])}


def seeds_of(ens) -> np.ndarray:
    """(B, N) latent seeds z of the particles in d = 1 (initial position = init_mean + init_std z)."""
    base = rng.base_keys(ens.seeds, rng.STREAM_GEN_INIT)
    return rng.np_normal(rng.np_step_keys(base, 0, 0), ens.N * ens.dim).reshape(ens.B, ens.N, ens.dim)[:, :, 0]
