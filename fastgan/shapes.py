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


def shape_key(cfg, target=None) -> tuple:
    """Runs with equal shape keys can share an ensemble (resolved values: e.g. a default history
    capacity depends on the rates). ``cfg``: a Config (or its Resolved); ``target``: its Target if built."""
    r = getattr(cfg, "resolved", cfg)
    t = target or make_target(r)
    shared = tuple(_get(r, k) for k in SHAPE_KEYS)
    return shared + (t.dim, t.n_components, t.n_modes) + tuple(r.family.shape_key(r, t))


def ensemble_memory_bytes(cfg) -> int:
    """State bytes of one run (particles + discriminator + a target batch), for ensemble sizing."""
    r = getattr(cfg, "resolved", cfg)
    t = make_target(r)
    N, M = r.generator.n_particles, r.training.batch_size
    return r.dtype.itemsize * (r.family.state_params(r, t) + 2 * N * t.dim + M * t.dim)
