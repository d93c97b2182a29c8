"""What a discriminator family is: the plugin protocol the rest of fastgan talks to.

A family owns everything about one kind of discriminator. The config layer (``fastgan.runconfig``)
reads its keys and calls ``auto`` / ``validate`` / ``resolve``; the planner calls ``shape_key`` and
``state_bytes``; the engine calls ``model(ensemble)`` and then only the returned model and its
bound ops; plots call ``overlay`` / ``title``. None of those modules names a family: the registry
(``fastgan.families``) maps ``discriminator.kind`` to the family object.

The ensemble handed to ``model`` (``fastgan.engine.Ensemble``) provides: ``resolved`` (list of
:class:`~fastgan.runconfig.Resolved`, one per run), ``configs``, ``targets`` (list of
:class:`~fastgan.targets.Target`), ``B``, ``N`` (particles), ``M`` (target batch), ``dim``,
``points`` (B, K, d) (the targets' component centres), ``weights`` (B, K), ``seeds``, ``lr_disc``
(B,), ``ops`` and ``initial_particles()`` (B, d, N).

A model (one per ensemble) has:

    samples_target   the engine draws a fresh target batch (B, d, M) for every discriminator step
    target_points    the family sees the target's points and masses exactly (no sampling); such a model
                     also gives ``generated_masses()`` (B, N): the fixed masses of the generated points,
                     which weigh them in its step and multiply their velocities
    init(dtype)      {name: (B, ...) host array}: the initial parameters
    penalty()        (B,) float64 L2 coefficient handed to ``step``
    bind(ops, env)   the bound ops over device arrays (below)
    export(p, run)   one run's parameters as host arrays in user layout (the run file's /discriminator)

and the bound ops: ``step(p, xg, xt, lr, l2, u)`` (in place; a family whose keys include
``training.optimizer_disc`` also takes ``opt=``: the moments "m:" + k, "v:" + k of every parameter array and
the sub-step's "coef", see ``fastgan.optim``), ``grad_x(p, x)`` -> (B, d, n),
``forward(p, x)`` -> (B, n), optionally ``begin_iteration(p, it)`` -> (B,) particle steps in force
(schedules) or None, and ``observer()`` -> an :class:`Observer` or None: the family's own
observables, recorded with the generic ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Histogram:
    """A per-run histogram observable: K bins, ``fill`` before the first record / after a blow-up."""

    bins: int
    dtype: type = np.float64
    fill: float = np.nan


class Observer:
    """A family's observables: ``scalars`` (names of (B,) values), ``histograms`` ({name: Histogram});
    ``take(t, p, X, alive)`` -> ({name: (B,)}, {name: (B, K)}) at recorded iteration ``t``;
    ``provenance(b)`` -> per-run facts for the run file's attributes. An observer (or a family's bound ops)
    that keeps state between records gives it to checkpoints: ``state()`` -> {name: host array} and
    ``restore(saved)`` (the same dict, onto a fresh observer); a resume is bitwise only with all of it."""

    scalars: tuple = ()
    histograms: dict = {}

    def take(self, t: int, p: dict, X, alive: np.ndarray) -> tuple[dict, dict]:
        return {}, {}

    def provenance(self, b: int) -> dict:
        return {}


class Family:
    """A discriminator family (subclass and register one instance in ``fastgan.families``).

    name          the value of ``discriminator.kind``
    summary       one line for ``fastgan config --keys``
    keys          {section: {key: Field}}: the keys this family reads beyond the shared ones
                  (a key read by several families is the same Field object, see ``families.common``)
    defaults      {dotted key: value}: its defaults of the family-dependent shared keys
                  (``config.FAMILY_DEFAULTED``); ``auto`` computes the others
    computed      {dotted key: text}: how ``auto`` computes those (for ``fastgan config --keys``)
    legacy_identity  True for the families that existed before families were plugins (mlp, fourier,
                  rff, kernel, kde): their keys stay in every run's identity as None where unused, so
                  that no run id changed; a new family's keys are left out of other runs' identities
                  (registering it changes no existing run id)
    plot_observables  the observables drawn under the snapshots of a run figure
    observables   the names of the scalar observables its observer may record (sweeps check names)
    """

    name = ""
    summary = ""
    keys: dict = {}
    defaults: dict = {}
    computed: dict = {}
    legacy_identity = False
    plot_observables: tuple = ("mode_collapse", "log_likelihood", "nearest_mode_distance")
    observables: tuple = ()           # the scalar observables its observer may record

    # ---- configuration
    def auto(self, cfg, dim: int | None) -> dict:
        """{dotted key: value} for the family-dependent shared keys (``config.FAMILY_DEFAULTED``) from
        the input config ``cfg`` (None = auto) and the target dimension (None: a file target)."""
        return dict(self.defaults)

    def validate(self, cfg, dim: int | None) -> None:
        """Cross-key checks of the input config (raise ``ConfigError``)."""

    def resolve(self, d: dict, cfg, dim: int | None) -> None:
        """Fill this family's own 'auto' keys in ``d``, the nested plain dict being resolved (the
        shared keys, the family defaults and the target's defaults are already filled in)."""

    # ---- planning
    def shape_key(self, r, target) -> dict:
        """{name: value} of what must agree between runs packed into one ensemble, beyond the shared
        shape (the names appear in the error when an ensemble mixes them)."""
        return {}

    def state_params(self, r, target) -> int:
        """Numbers of discriminator state of one run (parameters and their per-run constants)."""
        raise NotImplementedError

    def work_memory(self, r, target) -> int:
        """Bytes of transient working memory of one run beyond its state (e.g. an observable's problem)."""
        return 0

    def scratch_memory(self, r, target, backend: str, runs: int) -> int:
        """Bytes of temporaries an ensemble of ``runs`` runs like ``r`` needs at once on ``backend``
        beyond what :meth:`work_memory` counts per run (e.g. a reference kernel that materialises
        samples x width activations); kernels that bound their temporaries need nothing here."""
        return 0

    def sample_work(self, r, target) -> int:
        """Multiply-adds to evaluate the discriminator (or the field the particles follow) at one
        sample: by default every number of its state once."""
        return self.state_params(r, target)

    # ---- simulation
    def model(self, ens):
        raise NotImplementedError

    # ---- pictures
    def overlay(self, params: dict, r, pts: np.ndarray, particles: np.ndarray | None) -> np.ndarray:
        """The discriminator (or the field the particles follow) at points ``pts`` (n, d) from one
        run's exported parameters; ``particles`` (N, d) at the same time, for families that need them."""
        raise NotImplementedError

    def title(self, r, ratio: float) -> str:
        raise NotImplementedError


def rates(r) -> str:
    """The rates part of a figure title."""
    tr = r.training
    return f"lr_D={tr.lr_disc:g} lr_G={tr.lr_gen:g} n_disc={tr.n_disc}"


def host(a) -> np.ndarray:
    """A parameter array (host or CuPy) as a host array."""
    return np.asarray(a.get() if hasattr(a, "get") else a)
