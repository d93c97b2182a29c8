"""The ``kde`` family: discriminators that are density ratios of kernel density estimates, the Kernel
GAN objective of Sinn & Rawat (Non-parametric estimation of Jensen-Shannon divergence in GAN
training, eq. 12) and the optimal NSGAN discriminator of 'Evolution of Discriminator and Generator
Gradients in GAN Training: From Fitting to Collapse'. The equations are in :mod:`.kde_maths`; the
family has no trained parameters: its state is the current bandwidth."""

from __future__ import annotations

import math

import numpy as np

from ..config import AUTO, NONNEG, OMIT_DEFAULT, POS, Field, ge, plain
from ..errors import ConfigError
from ..kernels import rng
from ..targets import component_stds, has_density
from .base import Family, Observer, host
from .common import BANDWIDTH
from .kde_maths import (_log, bandwidth_schedule, kde_dstar, kernel_gan, nsgan_field, quantile_norm, schedule_at,
                        steepness_1d)

KEYS = {
    "discriminator": {
        "bandwidth": BANDWIDTH,
        "model": Field("str", "kernel_gan", "kde: kernel_gan (particles descend the KDE-smoothed JSD K_n of the "
                       "Kernel GAN, eq. 12) or nsgan (particles ascend log d*, d* = p_data / (p_data + p_g))",
                       choices=("kernel_gan", "nsgan")),
        "schedule": Field("schedule", AUTO, "kde: piecewise-constant bandwidth schedule, a list of [iteration, "
                          "bandwidth] or [iteration, bandwidth, step] (bandwidth a number or a list like "
                          "discriminator.bandwidth): from each iteration on, that bandwidth (and particle step, "
                          "else training.lr_gen)", optional=True,
                          foreign="only kde discriminators take a bandwidth schedule"),
        "floor": Field("float", 0.0, "kde, kernel_gan: the floor phi >= 0 of eq. 12 (0 in the paper)", NONNEG),
        "data_density": Field("str", AUTO, "kde: p_data is the exact target density (a mixture with widths) or the KDE "
                              "of a fixed data sample (training.batch_size points; a point set's own points). Default: "
                              "exact for nsgan on a target with a density, else kde", choices=("exact", "kde"),
                              optional=True),
        "data_resample": Field("bool", False, "kde, data_density = kde: draw a fresh data sample of "
                               "training.batch_size points every iteration (Kernel GAN, Algorithm 1, line 3) instead "
                               "of one fixed sample; a point set is then minibatched with replacement by mass",
                               identity=OMIT_DEFAULT, foreign="only kde discriminators hold a data sample (the other "
                               "families draw target samples every step already)"),
    },
    "record": {
        "q_modes": Field("int", AUTO, "kde: m of q_d, the (1 - 1/m) quantile over particles of |grad d / d| "
                         "(default: the target's number of modes, else 1)", ge(1), optional=True),
        "early_stop": Field("bool", False, "kde: evaluate the early-stopping rule (Algorithm 2 of 'Evolution of "
                            "Discriminator and Generator Gradients') at every record and report when it would have "
                            "fired (the run is not stopped)"),
        "k_d": Field("float", AUTO, "early stop: fire when q_d > k_d / (2 stop_sigma) (default: the distance between "
                     "the two nearest modes)", POS, optional=True),
        "k_g": Field("float", -0.5, "early stop: or when the relative change of the steepness S_g drops below k_g "
                     "(d = 1 only)"),
        "warmup": Field("int", 50, "early stop: iterations before the rule may fire (N_w)", ge(0)),
        "stop_sigma": Field("float", AUTO, "early stop: the sigma of k_d / (2 sigma) (default: the largest target "
                            "std, else the smallest initial KDE bandwidth)", POS, optional=True),
    },
}


def default_step(cfg) -> float:
    """The default particle step of a kde run (the papers train networks with adaptive optimisers
    and state no particle step). Stable across the whole bandwidth schedule, with sigma the smallest
    bandwidth it reaches:
    kernel_gan  eta = N sigma^2 / 2: a particle moves at most about half its distance to the
                kernel-weighted data per step (grad K_n ~ (x - y) / (N sigma^2));
    nsgan       s = sigma^2 / 4, sigma also at most the target's std when p_data is exact
                (grad log d* ~ (mu - z) / sigma^2 near a mode)."""
    disc = cfg.discriminator
    sig = min(disc.bandwidth)
    for _, bw, *_ in disc.schedule or ():
        sig = min(sig, min(bw))
    if disc.model == "kernel_gan":
        return cfg.generator.n_particles * sig * sig / 2
    if disc.data_density != "kde":
        widths = [w for w in component_stds(cfg.target) if w > 0]
        if widths:
            sig = min(sig, min(widths))
    return sig * sig / 4


class KDEFamily(Family):
    name = "kde"
    legacy_identity = True
    summary = "density ratio of kernel density estimates (Kernel GAN; the optimal NSGAN discriminator)"
    keys = KEYS
    plot_observables = ("mode_collapse", "kernel_gan_objective", "q_d")
    observables = ("kernel_gan_objective", "q_d", "steepness")
    defaults = {"generator.init_std": 0.1, "training.n_disc": 1, "training.lr_disc": 0.0}
    computed = {"training.lr_gen": "N sigma^2/2 (kernel_gan) or sigma^2/4 (nsgan)"}

    def auto(self, cfg, dim):
        return {**self.defaults, "training.lr_gen": default_step(cfg)}

    def validate(self, cfg, dim):
        disc = cfg.discriminator
        S = len(disc.bandwidth)
        for it, bw, *_ in disc.schedule or ():
            if len(bw) != S:
                raise ConfigError("discriminator.schedule", plain(disc.schedule),
                                  f"every bandwidth needs {S} entries, as discriminator.bandwidth")
        if disc.data_density == "exact":
            if disc.model != "nsgan":
                raise ConfigError("discriminator.data_density", "exact", "kernel_gan compares the KDEs of data and "
                                  "particles (eq. 12): use data_density = kde or model = nsgan")
            if has_density(cfg.target) is False:
                raise ConfigError("discriminator.data_density", "exact", f"target.kind = {cfg.target.kind} has no "
                                  "density (zero-width points): use data_density = kde")
        if disc.data_resample and _density(disc, cfg.target) == "exact":
            raise ConfigError("discriminator.data_resample", True, "p_data is the exact target density here (no "
                              "sample to redraw): set discriminator.data_density = kde")

    def resolve(self, d, cfg, dim):
        disc, t = d["discriminator"], d["target"]
        if disc["data_density"] is None:
            disc["data_density"] = _density(cfg.discriminator, cfg.target)
        r = d["record"]
        if r["q_modes"] is None:
            r["q_modes"] = t["n_modes"] or (len(t["means"]) if t["means"] else None) or \
                (len(t["points"]) if t["points"] else 1)

    def shape_key(self, r, target):
        d = r.discriminator
        return {"discriminator.model": d.model, "discriminator.data_density": d.data_density,
                "bandwidths": len(d.bandwidth), "discriminator.data_resample": bool(d.data_resample),
                "target density": target.has_density}         # a drawn sample or the target's points

    def state_params(self, r, target):   # the data sample (or the target's points) with its log weights
        m = r.training.batch_size if target.has_density else target.n_components
        return m * (target.dim + 1)

    def sample_work(self, r, target):     # d* needs both densities: the data sample and every particle
        m = r.training.batch_size if target.has_density else target.n_components
        return (m + r.generator.n_particles) * (target.dim + 1) * len(r.discriminator.bandwidth)

    def model(self, ens):
        return KDEModel(ens)

    def overlay(self, params, r, pts, particles=None):
        from ..plots import overlay_ops
        return kde_dstar(r, params, particles, np.asarray(pts, dtype=np.float64).T[None], overlay_ops)[0]

    def title(self, r, ratio):
        d, tr = r.discriminator, r.training
        bw = ",".join(f"{b:g}" for b in d.bandwidth)
        sched = " (scheduled)" if d.schedule else ""
        step = "scheduled" if any(len(e) > 2 for e in d.schedule or ()) else f"{tr.lr_gen:g}"
        return (f"kde {d.model} sigma={bw}{sched} p_data={d.data_density} N={r.generator.n_particles} "
                f"g2/g1={ratio:.3g} step={step}")


def _density(disc, target) -> str:
    """p_data of a kde run: the given data_density, else exact for nsgan on a target with a density."""
    return disc.data_density or ("exact" if disc.model == "nsgan" and has_density(target) else "kde")


class KDEModel:
    """One ensemble of kde runs: the data (a fixed sample of the target, or its points) and the
    bandwidth schedules."""

    target_points = False

    def __init__(self, ens):
        res = ens.resolved
        self.ens, self.dim, self.N = ens, ens.dim, ens.N
        disc0 = res[0].discriminator
        self.objective = disc0.model
        self.exact_data = disc0.data_density == "exact"
        self.schedules = [bandwidth_schedule(r.discriminator, r.training.lr_gen) for r in res]
        self.phi = np.array([r.discriminator.floor for r in res], dtype=np.float64)
        self.q_modes = np.array([r.record.q_modes for r in res], dtype=np.int64)
        self.samples_target = bool(disc0.data_resample)          # the engine draws X
        self.batch = int(res[0].training.batch_size)             # the size of a drawn batch (shape key)
        data, logw = [], []
        for r, t in zip(res, ens.targets):
            if t.has_density:
                m = r.training.batch_size
                data.append(t.sample(m, seed=r.training.seed))
                logw.append(np.full(m, -math.log(m)))
            else:
                data.append(t.means)
                logw.append(_log(t.weights))
        self.data = np.ascontiguousarray(np.stack(data).transpose(0, 2, 1))          # (B, d, M)
        self.logw = np.stack(logw)
        self.exact = None
        if self.exact_data:
            self.exact = (np.stack([t.means for t in ens.targets]), np.stack([_log(t.weights) for t in ens.targets]),
                          np.stack([t.stds for t in ens.targets]))

    def init(self, dtype) -> dict:
        return {"bandwidth": np.array([schedule_at(s, 0)[0] for s in self.schedules], dtype=dtype)}

    def penalty(self) -> np.ndarray:
        return np.zeros(self.ens.B)

    def bind(self, ops, env):
        return KDEBound(self, ops, env)

    def export(self, p: dict, run: int) -> dict:
        return {"bandwidth": host(p["bandwidth"][run]).copy(), "data": self.data[run].T.copy(),
                "data_log_weights": self.logw[run].copy()}


class KDEBound:
    def __init__(self, model: KDEModel, ops, env):
        xp, dt = ops.xp, env.dtype
        self.model, self.ops, self.dt = model, ops, dt
        self.X = xp.asarray(model.data.astype(dt))
        self.logwX = xp.asarray(model.logw.astype(dt))
        S = len(model.schedules[0][0][1])
        self.logmix = xp.asarray(np.full((len(model.schedules), S), -math.log(S), dtype=dt))
        self.exact = None if model.exact is None else tuple(xp.asarray(a.astype(dt)) for a in model.exact)
        self.current = None
        self.lPX = None          # log P(X) at the current bandwidths and data
        self.uniform = None
        if model.samples_target:   # log weights of a drawn batch
            self.uniform = xp.asarray(np.full((model.data.shape[0], model.batch), -math.log(model.batch), dtype=dt))

    def begin_iteration(self, p, it: int):
        """Set the bandwidths of iteration ``it`` (piecewise-constant schedules); returns the (B,)
        particle steps in force."""
        now = [schedule_at(s, it) for s in self.model.schedules]
        bw = np.array([b for b, _ in now], dtype=self.dt)
        if self.current is None or not np.array_equal(bw, self.current):
            p["bandwidth"][...] = self.ops.xp.asarray(bw)
            self.current = bw
            self.lPX = None
        return np.array([step for _, step in now], dtype=np.float64)

    def step(self, p, xg, xt, lr, lam, u_reg) -> None:
        """No trained parameters: the discriminator is the density ratio of the KDEs; with
        data_resample, the engine's fresh target batch xt (B, d, M) becomes the data."""
        if self.model.samples_target:
            self.X, self.logwX, self.lPX = xt, self.uniform, None

    def state(self) -> dict:
        """A checkpoint's part: the data of the last drawn batch (data_resample; else the data are fixed)."""
        if not self.model.samples_target:
            return {}
        return {"data": self.ops.to_host(self.X)}

    def restore(self, saved: dict) -> None:
        if self.model.samples_target:
            self.X, self.logwX, self.lPX = self.ops.xp.asarray(saved["data"]), self.uniform, None

    def grad_x(self, p, x):
        """The force on each particle: -grad K_n (kernel_gan) or grad log d* (nsgan)."""
        if self.model.objective == "kernel_gan":
            return -self.kernel_gan(p, x, True)[1]
        return self.field(p, x)[1]

    def kernel_gan(self, p, x, grad):
        if self.lPX is None:
            self.lPX = self.ops.kde_log_density(self.X, self.X, self.logwX, p["bandwidth"], self.logmix)
        return kernel_gan(self.ops, x, self.X, self.logwX, p["bandwidth"], self.logmix, self.model.phi, grad, self.lPX)

    def field(self, p, x):
        return nsgan_field(self.ops, x, p["bandwidth"], self.logmix, data=(self.X, self.logwX), exact=self.exact)

    def observer(self):
        return KDEObserver(self)


class KDEObserver(Observer):
    """K_n and q_d (and the steepness S_g in d = 1) at every record; the early-stopping rule."""

    def __init__(self, bound: KDEBound):
        self.bound = bound
        self.stopper = EarlyStop(bound.model.ens, bound.model.schedules)
        self.scalars = ("kernel_gan_objective", "q_d") + (("steepness",) if self.stopper.steepness else ())
        self.histograms = {}

    def take(self, t, p, X, alive):
        b, ops = self.bound, self.bound.ops
        K, _ = b.kernel_gan(p, X, False)
        _, f = b.field(p, X)
        vals = {"kernel_gan_objective": np.asarray(ops.to_host(K), dtype=np.float64),
                "q_d": quantile_norm(ops.to_host(f), b.model.q_modes)}
        vals.update(self.stopper.update(t, vals["q_d"], X, alive))
        return vals, {}

    def provenance(self, b):
        return self.stopper.provenance(b)

    def state(self) -> dict:
        st = self.stopper
        return {"prev": st.prev, "fired_at": st.fired_at, "reason": np.array(st.reason, dtype=str)}

    def restore(self, saved: dict) -> None:
        st = self.stopper
        st.prev, st.fired_at, st.reason = saved["prev"].copy(), saved["fired_at"].copy(), [str(r) for r in saved["reason"]]


def _nearest_mode_distance(t) -> float:
    pts = t.modes if t.modes is not None else t.means
    if len(pts) < 2:
        return float("nan")
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d2[~np.eye(len(pts), dtype=bool)].min()))


class EarlyStop:
    """The early-stopping rule of Algorithm 2 of 'Evolution of Discriminator and Generator Gradients in GAN
    Training: From Fitting to Collapse', evaluated at every record: after the
    warm-up, it fires when q_d > k_d / (2 sigma) or (d = 1) when the relative change of the
    steepness since the previous record, (S_g - S_g_prev) / S_g_prev, falls below k_g. The run
    is not stopped: the first record at which the rule fires is reported (``early_stop_at``).

    Steepness (d = 1): the particles are the images g(z_a) of their latent seeds z_a (the normal
    draws of the initial cloud, or the initial positions when given explicitly); S_g is the largest
    |dx/dz| between seed-adjacent particles (finite differences of g)."""

    def __init__(self, ens, schedules):
        recs = [q.record for q in ens.resolved]
        B = ens.B
        self.ops = ens.ops
        self.enabled = np.array([bool(r.early_stop) for r in recs])
        self.k_g = np.array([r.k_g for r in recs], dtype=np.float64)
        self.warmup = np.array([r.warmup for r in recs], dtype=np.int64)
        # k_d and stop_sigma default to properties of the loaded target: resolved here, at set-up
        k_d = np.array([r.k_d if r.k_d is not None else _nearest_mode_distance(t)
                        for r, t in zip(recs, ens.targets)], dtype=np.float64)
        sig = []
        for r, t, sched in zip(recs, ens.targets, schedules):
            if r.stop_sigma is not None:
                sig.append(r.stop_sigma)
            else:
                sig.append(float(t.stds.max()) if t.stds.max() > 0 else min(sched[0][1]))
        self.threshold = k_d / (2 * np.array(sig))
        self.steepness = ens.dim == 1
        if self.steepness:
            z = seeds_of(ens)
            x0 = ens.initial_particles()[:, 0, :]
            given = np.array([q.generator.init_points is not None for q in ens.resolved])
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


FAMILY = KDEFamily()
