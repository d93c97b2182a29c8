"""What runs can share an ensemble, and what one run's state costs (for packing runs into ensembles).

Runs share an ensemble when they agree on the shared shape keys below, the target's shape and what
their discriminator family adds (``Family.shape_key``); everything else may differ per run.
"""

from __future__ import annotations

from .targets import make_target

# Resolved keys that must agree inside one ensemble (the "shape" of a run), beside the target's
# shape and what the discriminator family adds (``Family.shape_key``).
SHAPE_KEYS = ("precision", "generator.n_particles", "discriminator.kind", "coupling.kind", "coupling.spatial_kernel",
              "training.n_iterations", "training.batch_size", "training.update_order", "record.every",
              "record.snapshots", "record.discriminator")


def _get(r, dotted: str):
    sec, _, key = dotted.rpartition(".")
    return getattr(getattr(r, sec) if sec else r, key)


def shape_items(cfg, target=None) -> tuple:
    """((name, value), ...) of everything that must agree inside an ensemble: the shared keys, the
    target's shape and the family's ``shape_key`` (resolved values: e.g. a default history capacity
    depends on the rates). ``cfg``: a Config (or its Resolved); ``target``: its Target if built."""
    r = getattr(cfg, "resolved", cfg)
    t = target or make_target(r)
    return (tuple((k, _get(r, k)) for k in SHAPE_KEYS)
            + (("target dimension", t.dim), ("target components", t.n_components), ("target modes", t.n_modes))
            + tuple(r.family.shape_key(r, t).items()))


def shape_key(cfg, target=None) -> tuple:
    """Runs with equal shape keys can share an ensemble (see :func:`shape_items`)."""
    return tuple(v for _, v in shape_items(cfg, target))


def mismatch(items: list) -> str:
    """The names whose values differ across the shape items of several runs ('' when none do)."""
    names = [n for n, _ in items[0]]
    if any([n for n, _ in it] != names for it in items[1:]):
        return "discriminator.kind"
    return ", ".join(n for i, n in enumerate(names) if len({repr(it[i][1]) for it in items}) > 1)


def ensemble_memory_bytes(cfg) -> int:
    """State bytes of one run (particles + discriminator + a target batch), for ensemble sizing."""
    r = getattr(cfg, "resolved", cfg)
    t = make_target(r)
    N, M = r.generator.n_particles, r.training.batch_size
    return r.dtype.itemsize * (r.family.state_params(r, t) + 2 * N * t.dim + M * t.dim)
