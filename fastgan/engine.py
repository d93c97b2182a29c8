"""The engine: advances an ensemble of B runs with Algorithm 1 of Durr et al. (Effective Dynamics of GANs).

    for each iteration:
        for k < n_disc (per run):   sample a fresh target batch; phi <- phi - alpha_D grad_phi L_D  (eq. 24, 28)
        X <- X + alpha_G V,  V = (1/N) Gamma grad D(X)                                                 (eq. 21)
        record observables / snapshots on the schedule

The same loop runs Algorithm 2 (Fourier discriminator) and the isolated points model (Becker et al.)
(rff / exact kernel discriminators): those see the target's points with their masses instead of a
sampled batch, and move each generated point by its mass, V_a <- p~_a V_a. With
``training.update_order = simultaneous`` the generator's velocity is taken from the discriminator
before this iteration's steps (Becker et al. eq. 9) instead of after them.

The engine holds no physics: it binds the backend's ops once and calls them. Runs in one ensemble
share shapes (N, d, W, depth, family, coupling kind, batch, iterations, precision, schedule) and
may differ in every scalar: seed, g1/g2, learning rates, beta, n_disc (a run skips sub-steps
beyond its own n_disc: its learning rate is 0 there), target geometry, initial cloud.

Blow-up: after every iteration each run's particles and discriminator parameters are checked;
a run with a NaN/Inf is flagged with the iteration (``diverged_at``), its particles keep their
last finite positions, it stops being updated, and its observables are NaN (histograms -1)
from then on, while the other runs continue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import backend as backend_mod
from . import families, resources
from .couplings import Coupling
from .kernels import rng
from .observables import COSINE_SCALARS, HISTOGRAMS, SCALARS, from_cosine_stats, from_stats, records_cosine
from .optim import DiscOptimiser
from .progress import Progress
from .runconfig import Config
from .shapes import mismatch, shape_items
from .targets import check_against, make_target, stack_targets

def record_times(n_iterations: int, every: int) -> np.ndarray:
    """Recorded iterations: 0, every, 2 every, ..., and the last one."""
    return np.union1d(np.arange(0, n_iterations + 1, every), [n_iterations]).astype(np.int64)


def snapshot_times(n_iterations: int, snapshots) -> np.ndarray:
    """Snapshot iterations from a count (evenly spaced incl. 0 and the end) or an explicit list."""
    if isinstance(snapshots, int):
        if snapshots == 0:
            return np.zeros(0, dtype=np.int64)
        if snapshots == 1:
            return np.array([n_iterations], dtype=np.int64)
        count = min(snapshots, n_iterations + 1)           # more than every iteration is every iteration
        return np.unique(np.round(np.linspace(0, n_iterations, count)).astype(np.int64))
    return np.asarray(sorted(set(snapshots)), dtype=np.int64)


@dataclass
class RunResult:
    """Everything one run produced (host arrays).

    time (T,) recorded iterations; observables[name] (T,); histograms[name] (T, K);
    particles (S, N, d) at particles_time (S,); disc_snapshots[param] (S, ...);
    discriminator[param] final parameters; diverged / diverged_at (-1 if not); image_shape (H, W) of
    an image target (its particles are H W pixels), else None.
    """

    config: Config
    time: np.ndarray
    observables: dict
    histograms: dict
    particles: np.ndarray
    particles_time: np.ndarray
    disc_snapshots: dict
    discriminator: dict
    diverged: bool
    diverged_at: int
    modes: np.ndarray | None
    provenance: dict = field(default_factory=dict)
    image_shape: tuple | None = None

    def final(self, name: str) -> float:
        return float(self.observables[name][-1])

    def average_last(self, name: str, k: int = 4) -> float:
        """Mean of the last k records of an observable."""
        return float(np.mean(self.observables[name][-k:]))

    def to_xarray(self):
        """This run as an xarray Dataset (the same as ``fastgan.open_run`` of its file)."""
        from .xr import run_dataset
        return run_dataset(self)


class Ensemble:
    """B runs sharing shapes, set up on a backend. ``run()`` returns one RunResult per config."""

    def __init__(self, configs: list[Config], backend: str | None = None):
        if not configs:
            raise ValueError("an ensemble needs at least one run")
        self.configs = list(configs)
        self.resolved = [c.resolved for c in self.configs]
        chosen = backend_mod.resolve(backend, self.configs[0].backend, announce=False)
        resources.check_ensemble(self.resolved, chosen)  # before anything is allocated
        self.targets = [make_target(r) for r in self.resolved]
        for t, r in zip(self.targets, self.resolved):      # what only the loaded target tells (files)
            check_against(t, r)
        differ = mismatch([shape_items(c, t) for c, t in zip(self.configs, self.targets)])
        if differ:
            raise ValueError(f"runs in one ensemble must share shapes; these differ: {differ}")
        r0 = self.resolved[0]
        self.backend = backend_mod.resolve(backend, self.configs[0].backend)
        self.ops = backend_mod.get_ops(self.backend)
        self.dtype = np.dtype(r0.precision)
        self.B = len(self.configs)
        self.N = r0.generator.n_particles
        self.M = r0.training.batch_size
        self.T = r0.training.n_iterations
        self.dim = self.targets[0].dim
        self.points = np.stack([t.means for t in self.targets])                       # (B, K, d)
        self.weights = np.stack([t.weights for t in self.targets])
        self.coupling = Coupling.from_configs(self.resolved)
        self.velocity = self.coupling.bind(self.ops, self.dtype)

        f64 = lambda get: np.array([get(r) for r in self.resolved], dtype=np.float64)  # noqa: E731
        self.lr_disc = f64(lambda r: r.training.lr_disc)
        self.lr_gen = f64(lambda r: r.training.lr_gen)
        self.beta = f64(lambda r: r.training.beta)
        self.n_disc = np.array([r.training.n_disc for r in self.resolved], dtype=np.int64)
        self.simultaneous = r0.training.update_order == "simultaneous"
        self.seeds = [r.training.seed for r in self.resolved]
        self.comp_base = rng.base_keys(self.seeds, rng.STREAM_TARGET_COMPONENT)
        self.noise_base = rng.base_keys(self.seeds, rng.STREAM_TARGET_NOISE)
        self.means, self.cum, self.stds = stack_targets(self.targets)
        self.modes = np.stack([t.modes for t in self.targets]) if self.targets[0].modes is not None else None
        self.cosine = records_cosine(self.dim)           # the high-dimensional observables, against the points
        self.point_norm = np.sqrt((self.points * self.points).sum(2)).max(1)                   # (B,)
        self.family = families.get(r0.discriminator.kind)
        self.model = self.family.model(self)
        self.gen_masses = getattr(self.model, "generated_masses", lambda: None)()    # (B, N) or None
        self.l2 = self.model.penalty()
        self.env = _DiscEnv(self)
        self.disc = self.model.bind(self.ops, self.env)
        self.optimiser = DiscOptimiser.of(self)          # None: gradient descent for every run
        self.begin_iteration = getattr(self.disc, "begin_iteration", None)   # e.g. kde bandwidth schedules

    # ------------------------------------------------------------------ state
    def initial_particles(self) -> np.ndarray:
        """(B, d, N) host float64: init_mean + init_std * Z from the generator-init stream."""
        base = rng.base_keys(self.seeds, rng.STREAM_GEN_INIT)
        z = rng.np_normal(rng.np_step_keys(base, 0, 0), self.N * self.dim).reshape(self.B, self.N, self.dim)
        x = np.empty_like(z)
        for b, r in enumerate(self.resolved):
            g = r.generator
            if g.init_points is not None:
                x[b] = np.asarray(g.init_points, dtype=np.float64)
            else:      # init_mean None: a file target's origin (its dimension is known once loaded)
                mean = np.zeros(self.dim) if g.init_mean is None else np.asarray(g.init_mean, dtype=np.float64)
                x[b] = mean[None, :] + g.init_std * z[b]
        return np.ascontiguousarray(x.transpose(0, 2, 1))

    # ------------------------------------------------------------------ loop
    def run(self, progress: bool | None = None, desc: str = "fastgan", tick=None, checkpoint=None) -> list[RunResult]:
        """Every iteration, then one RunResult per config. ``tick(k)``: called after each iteration with the
        run-iterations done (B), e.g. a sweep's progress bar (the ensemble's own bar is then off).
        ``checkpoint`` (a :class:`fastgan.checkpoint.Checkpoint`): resume from its file when it holds this
        ensemble's state, save the state every ``checkpoint.every_s`` of compute and on an interruption."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # blow-up: detected per run
            return self._run(progress, desc, tick, checkpoint)

    def _run(self, progress: bool | None, desc: str, tick=None, checkpoint=None) -> list[RunResult]:
        from .checkpoint import deferred_interrupts
        t_setup = time.perf_counter()
        st = _LoopState(self)
        rec0 = self.resolved[0].record
        rec = _Recorder(self, record_times(self.T, rec0.every), snapshot_times(self.T, rec0.snapshots),
                        rec0.discriminator)
        start = 0
        got = checkpoint.load() if checkpoint is not None else None
        if got is not None:
            missing = sorted(set(self.state(st, rec)) - set(got[1]))
            if missing:                     # written by a fastgan that recorded less (e.g. before an observable)
                checkpoint.reject(f"it lacks {len(missing)} of this version's arrays ({', '.join(missing[:3])}"
                                  f"{', ...' if len(missing) > 3 else ''}): written by an earlier fastgan")
                got = None
        if got is not None:
            start = got[0]
            self.restore(st, rec, got[1])
        else:
            rec.take(0, st)
        t_loop = time.perf_counter()
        if tick is not None:
            progress = False
        with Progress(self.T, unit="it", desc=desc, scale=self.B, scale_unit="run-steps", enabled=progress,
                      initial=start) as bar, deferred_interrupts(checkpoint is not None) as pending:
            if checkpoint is not None:
                checkpoint.start_clock()
            for it in range(start, self.T):
                self.advance(st, it)
                if st.check_every > 1 and (it + 1 in rec.rec_set or it + 1 in rec.snap_set or it + 1 == self.T):
                    st.sync()                      # the records and the results read liveness on the host
                rec.take(it + 1, st)
                bar.update(1)
                if tick is not None:
                    tick(self.B)
                if checkpoint is not None and not checkpoint.failed and \
                        (pending or (it + 1 < self.T and checkpoint.due(it + 1))):
                    checkpoint.save(it + 1, self.T, self.state(st, rec))
                pending.proceed()                  # an interruption, once its state is saved
        t_end = time.perf_counter()
        timings = {"setup_s": t_loop - t_setup, "loop_s": t_end - t_loop,
                   "s_per_iteration": (t_end - t_loop) / max(1, self.T - start), "ensemble_size": self.B}
        if start:
            timings["resumed_at"] = start
        return rec.results(st, timings)

    # ------------------------------------------------------------------ checkpoints
    def state(self, st: "_LoopState", rec: "_Recorder") -> dict:
        """The whole state of the loop after an iteration as flat host arrays ``{name: array}``: particles,
        parameters, liveness, what was recorded, and what the family's bound ops and observer hold."""
        host = self.ops.to_host
        st.sync()
        out = {"X": host(st.X), "alive": st.alive, "diverged_at": st.diverged_at}
        out.update({f"p/{k}": host(v) for k, v in st.p.items()})
        out.update({f"opt/{k}": host(v) for k, v in st.opt.items()})
        out.update(rec.state())
        for part, obj in (("bound", self.disc), ("observer", rec.family_obs)):
            get = getattr(obj, "state", None)
            if get is not None:
                out.update({f"{part}/{k}": np.asarray(v) for k, v in get().items()})
        return {k: np.asarray(v, order="C") for k, v in out.items()}

    def restore(self, st: "_LoopState", rec: "_Recorder", arrays: dict) -> None:
        """Put back what :meth:`state` saved (the inverse, onto a freshly set-up loop)."""
        xp = self.ops.xp
        st.X = xp.asarray(arrays["X"])
        for k in st.p:                       # in place: the dtype and any reference to the array stay
            st.p[k][...] = xp.asarray(arrays[f"p/{k}"])
        for k in st.opt:
            st.opt[k][...] = xp.asarray(arrays[f"opt/{k}"])
        st.set_liveness(arrays["alive"], arrays["diverged_at"])
        rec.restore(arrays)
        for part, obj in (("bound", self.disc), ("observer", rec.family_obs)):
            put = getattr(obj, "restore", None)
            if put is not None:
                put({k[len(part) + 1:]: v for k, v in arrays.items() if k.startswith(part + "/")})

    def advance(self, st: "_LoopState", it: int) -> None:
        """One iteration of Algorithm 1 for every live run: n_disc discriminator steps, one generator step.

        Liveness lives on the device (``st.alive_d``, ``st.diverged_d``): the learning rates of a sub-step
        and the generator's step are masked there, the blow-up check is fused into device ops, and the
        host mirror (``st.alive``) is refreshed by :meth:`_LoopState.sync` — after every iteration on the
        host backends (free), at records and every ``check_every`` iterations on a GPU (no blocking copy
        in between; ``diverged_at`` is the same: it is recorded on the device)."""
        ops = self.ops
        lr_gen = self.lr_gen
        if self.begin_iteration is not None:     # e.g. kde bandwidth (and step) schedules
            lr_gen = self.begin_iteration(st.p, it)
        V = self.generator_velocity(st) if self.simultaneous else None
        coef = None
        if self.optimiser is None:
            lr_table = st.lr_disc_table()        # (max n_disc, B): liveness changes only between iterations
        else:                                    # the adaptive optimisers' rates and coefficients
            rates, coef = self.optimiser.tables(it)
            lr_table = st.lr_disc_table(rates)
        if self.model.samples_target:            # every sub-step's target batch in one call (counter-based)
            xts = ops.sample_mixture_steps(st.comp_base, st.noise_base, it, st.max_n_disc, st.means, st.cum,
                                           st.stds, self.M, self.dtype)
        for k in range(st.max_n_disc):
            if not (st.alive & (self.n_disc > k)).any():   # the host mirror: exact where it syncs every iteration
                break
            xt = xts[k] if self.model.samples_target else self.env.xt
            u = None
            if st.regularised:
                u = st.u_scale * self.velocity(self.disc.grad_x(st.p, st.X), st.X)
            if coef is None:
                self.disc.step(st.p, st.X, xt, lr_table[k], st.l2, u)
            else:
                self.disc.step(st.p, st.X, xt, lr_table[k], st.l2, u, opt={**st.opt, "coef": coef[k]})
        if V is None:
            V = self.generator_velocity(st)
        # Xn = X + lr V for the live runs; a run whose Xn or parameters are not finite dies here (alive,
        # diverged updated on the device) and keeps its last finite particles
        st.X = ops.generator_update(st.X, V, st.lr_gen_d(lr_gen), st.alive_d, st.diverged_d, it + 1,
                                    tuple(st.p.values()))
        if st.check_every == 1 or (it + 1) % st.check_every == 0:
            st.sync()

    def generator_velocity(self, st: "_LoopState"):
        """V = (1/N) Gamma grad D(X), times the generated masses where the family has them."""
        V = self.velocity(self.disc.grad_x(st.p, st.X), st.X)
        return V if self.env.gen_mass is None else V * self.env.gen_mass


class _DiscEnv:
    """Constants a discriminator model binds to (device arrays): sample weights of the generated
    points ``wg`` (B, N) and of the target ``wt`` (B, M or K) (uniform for sampled batches, the masses
    for a model that sees the target's points), the target's points ``xt`` (B, d, K) for the latter
    (None otherwise: a model that holds its own data gets none of them), and the generated masses
    ``gen_mass`` (B, 1, N) or None."""

    def __init__(self, ens: "Ensemble"):
        xp, dt = ens.ops.xp, ens.dtype
        self.dtype, self.B = dt, ens.B
        self.wg = self.wt = self.xt = None
        if ens.model.samples_target:
            self.wg = xp.asarray(np.full((ens.B, ens.N), 1.0 / ens.N, dtype=dt))
            self.wt = xp.asarray(np.full((ens.B, ens.M), 1.0 / ens.M, dtype=dt))
        elif ens.model.target_points:
            if ens.gen_masses is None:
                raise TypeError("a model with target_points = True must give generated_masses() (B, N)")
            self.wg = xp.asarray(ens.gen_masses.astype(dt))
            self.wt = xp.asarray(ens.weights.astype(dt))
            self.xt = xp.asarray(np.ascontiguousarray(ens.points.transpose(0, 2, 1)).astype(dt))
        self.gen_mass = None if ens.gen_masses is None else xp.asarray(ens.gen_masses.astype(dt))[:, None, :]


class _LoopState:
    """Device state of a running ensemble: particles X (B, d, N), discriminator parameters p, per-run
    liveness and divergence iteration (on the device: ``alive_d``, ``diverged_d``; their host mirror
    ``alive``, ``diverged_at`` as of the last :meth:`sync`), and device copies of the loop constants."""

    CHECK_EVERY_GPU = 16          # iterations between host copies of liveness on a GPU (and at every record)

    def __init__(self, ens: Ensemble):
        xp, dt = ens.ops.xp, ens.dtype
        self.ops, self.xp, self.dtype = ens.ops, xp, dt
        self.X = xp.asarray(ens.initial_particles().astype(dt))
        self.p = {k: xp.asarray(v) for k, v in ens.model.init(dt).items()}
        self.opt = {} if ens.optimiser is None else ens.optimiser.moments(self.p)   # the adaptive moments
        self.means, self.cum, self.stds = (xp.asarray(a) for a in (ens.means, ens.cum, ens.stds))
        self.comp_base, self.noise_base = xp.asarray(ens.comp_base), xp.asarray(ens.noise_base)
        if ens.modes is not None:   # device copies for the observables op
            self.modes, self.weights = xp.asarray(ens.modes), xp.asarray(ens.weights)
        self.l2 = xp.asarray(ens.l2.astype(dt))
        self.regularised = bool(np.any(ens.beta > 0))
        self.u_scale = xp.asarray((2.0 * ens.beta / ens.N).astype(dt))[:, None, None]
        self.alive = np.ones(ens.B, dtype=bool)
        self.diverged_at = np.full(ens.B, -1, dtype=np.int64)
        self.alive_d = xp.asarray(self.alive.copy())          # updated in place by generator_update
        self.diverged_d = xp.asarray(self.diverged_at.copy())
        self.max_n_disc = int(ens.n_disc.max())
        self.n_disc_d = xp.asarray(ens.n_disc)
        self.sub_steps_d = xp.arange(self.max_n_disc)
        self.lr_disc_d = xp.asarray(ens.lr_disc.astype(dt))
        self.zero = xp.zeros((), dtype=dt)
        self._lr_gen_host, self._lr_gen_d = None, None
        self.check_every = self.CHECK_EVERY_GPU if ens.backend == "cuda" else 1

    def sync(self) -> None:
        """Refresh the host mirror of liveness from the device (a blocking copy on a GPU)."""
        self.alive[...] = self.ops.to_host(self.alive_d)
        self.diverged_at[...] = self.ops.to_host(self.diverged_d)

    def set_liveness(self, alive: np.ndarray, diverged_at: np.ndarray) -> None:
        self.alive[...], self.diverged_at[...] = alive, diverged_at
        self.alive_d, self.diverged_d = self.xp.asarray(self.alive.copy()), self.xp.asarray(self.diverged_at.copy())

    def lr_disc_table(self, rates=None):
        """(max n_disc, B) device learning rates of every sub-step (``rates`` (max n_disc, B), default each
        run's lr_disc): 0 for a dead run or one whose n_disc <= k."""
        xp = self.xp
        need = self.alive_d[None, :] & (self.n_disc_d[None, :] > self.sub_steps_d[:, None])
        return xp.where(need, self.lr_disc_d[None, :] if rates is None else rates, self.zero)

    def lr_gen_d(self, lr_gen: np.ndarray):
        """(B,) device generator rates in the state dtype; uploaded only when the (host) rates change."""
        if self._lr_gen_host is None or not np.array_equal(lr_gen, self._lr_gen_host):
            self._lr_gen_host = np.array(lr_gen, dtype=np.float64, copy=True)
            self._lr_gen_d = self.xp.asarray(self._lr_gen_host.astype(self.dtype))
        return self._lr_gen_d


class _Recorder:
    """Observables on the record schedule and snapshots on theirs (host arrays)."""

    def __init__(self, ens: Ensemble, rec_t, snap_t, keep_disc: bool):
        self.ens, self.rec_t, self.snap_t, self.keep_disc = ens, rec_t, snap_t, keep_disc
        self.rec_set, self.snap_set = set(rec_t.tolist()), set(snap_t.tolist())
        B, T = ens.B, len(rec_t)
        self.obs = {k: np.full((B, T), np.nan) for k in SCALARS} if ens.modes is not None else {}
        if ens.cosine:
            self.obs.update({k: np.full((B, T), np.nan) for k in COSINE_SCALARS})
        K = ens.modes.shape[1] if ens.modes is not None else 0
        self.hist = {k: np.full((B, T, K), -1, dtype=np.int64) for k in HISTOGRAMS} if K else {}
        make_observer = getattr(ens.disc, "observer", None)     # the family's own observables
        self.family_obs = make_observer() if make_observer is not None else None
        if self.family_obs is not None:
            self.obs.update({k: np.full((B, T), np.nan) for k in self.family_obs.scalars})
            self.hist.update({k: np.full((B, T, h.bins), h.fill, dtype=h.dtype)
                              for k, h in self.family_obs.histograms.items()})
        self.snaps, self.disc_snaps = [], []
        self.i_rec = 0

    def take(self, t: int, st: _LoopState) -> None:
        ens = self.ens
        X, p, alive = st.X, st.p, st.alive
        if t in self.rec_set:
            if ens.modes is not None:
                counts, hq, nearest, loglik = ens.ops.mode_stats(X, st.modes, st.weights, st.stds)
                vals = from_stats(counts, hq, nearest, loglik, ens.weights, ens.N)
                for k, v in vals.items():
                    self.obs[k][:, self.i_rec] = np.where(alive, v, np.nan)
                self.hist["nearest_mode"][alive, self.i_rec] = np.asarray(counts)[alive]
                self.hist["high_quality"][alive, self.i_rec] = np.asarray(hq)[alive]
            if ens.cosine:
                vals = from_cosine_stats(*ens.ops.cosine_stats(X, st.means), ens.point_norm)
                for k, v in vals.items():
                    self.obs[k][:, self.i_rec] = np.where(alive, v, np.nan)
            if self.family_obs is not None:
                scal, hist = self.family_obs.take(t, p, X, alive)
                for k, v in scal.items():
                    self.obs[k][:, self.i_rec] = np.where(alive, v, np.nan)
                for k, v in hist.items():
                    self.hist[k][alive, self.i_rec] = v[alive]
            self.i_rec += 1
        if t in self.snap_set:
            self.snaps.append(ens.ops.to_host(X).transpose(0, 2, 1).copy())
            if self.keep_disc:
                self.disc_snaps.append({k: ens.ops.to_host(v).copy() for k, v in p.items()})

    def state(self) -> dict:
        """What was recorded so far, as flat host arrays (see Ensemble.state)."""
        out = {"rec/i_rec": np.int64(self.i_rec), "rec/n_snaps": np.int64(len(self.snaps))}
        out.update({f"rec/obs/{k}": v for k, v in self.obs.items()})
        out.update({f"rec/hist/{k}": v for k, v in self.hist.items()})
        if self.snaps:
            out["rec/snaps"] = np.stack(self.snaps)
        for i, ps in enumerate(self.disc_snaps):
            out.update({f"rec/disc/{i}/{k}": v for k, v in ps.items()})
        return out

    def restore(self, arrays: dict) -> None:
        self.i_rec = int(arrays["rec/i_rec"])
        for k in self.obs:
            self.obs[k][...] = arrays[f"rec/obs/{k}"]
        for k in self.hist:
            self.hist[k][...] = arrays[f"rec/hist/{k}"]
        n = int(arrays["rec/n_snaps"])
        self.snaps = [arrays["rec/snaps"][i] for i in range(n)]
        self.disc_snaps = []
        if self.keep_disc:
            for i in range(n):
                pre = f"rec/disc/{i}/"
                self.disc_snaps.append({k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)})

    def results(self, st: _LoopState, timings) -> list[RunResult]:
        ens = self.ens
        diverged_at = st.diverged_at
        host_p = {k: ens.ops.to_host(v) for k, v in st.p.items()}
        parts = np.stack(self.snaps, 1) if self.snaps else np.zeros((ens.B, 0, ens.N, ens.dim))
        out = []
        for b, cfg in enumerate(ens.configs):
            disc_snaps = {}
            if self.disc_snaps:
                per = [ens.model.export(s, b) for s in self.disc_snaps]
                disc_snaps = {k: np.stack([q[k] for q in per]) for k in per[0]}
            out.append(RunResult(
                config=cfg,
                time=self.rec_t.copy(),
                observables={k: v[b].copy() for k, v in self.obs.items()},
                histograms={k: v[b].copy() for k, v in self.hist.items()},
                particles=parts[b].copy(),
                particles_time=self.snap_t.copy(),
                disc_snapshots=disc_snaps,
                discriminator=ens.model.export(host_p, b),
                diverged=bool(diverged_at[b] >= 0),
                diverged_at=int(diverged_at[b]),
                modes=None if ens.modes is None else ens.modes[b].copy(),
                image_shape=ens.targets[b].image_shape,
                provenance={"backend": ens.backend, "precision": str(ens.dtype), "g1": cfg.resolved.coupling.g1,
                            "g2": cfg.resolved.coupling.g2, **timings,
                            **({} if self.family_obs is None else self.family_obs.provenance(b))},
            ))
        return out


def simulate_ensemble(configs: list[Config], backend: str | None = None, progress: bool | None = None,
                      checkpoint=None) -> list[RunResult]:
    """Run configs that share shapes as one ensemble (see :class:`Ensemble`; ``checkpoint`` as for its
    ``run``)."""
    return Ensemble(configs, backend).run(progress=progress, checkpoint=checkpoint)


def simulate(config: Config, backend: str | None = None, progress: bool | None = None,
             checkpoint=None) -> RunResult:
    """Run one configuration; returns its :class:`RunResult`."""
    return simulate_ensemble([config], backend, progress, checkpoint)[0]
