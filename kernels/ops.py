"""The op table: every hot op of the simulator under one name per backend.

``load_ops(name)`` returns an :class:`Ops` for ``numpy`` (the reference, the oracle), ``numba``
(CPU JIT) or ``cuda`` (GPU), built from the op registry (``registry.OPS``: each op declared once,
with its signature). Engines bind an ``Ops`` once and never branch on the backend per step. Every
op takes and returns arrays of the backend's array module ``xp`` with the run axis first and
feature-major samples (B, d, n).
"""

from __future__ import annotations

import functools

import numpy as np

from . import registry


class Ops:
    """A backend's op table: ``name``, ``xp`` (numpy or cupy), one attribute per registered op and
    ``chosen`` ({op: which implementation serves it})."""

    def __init__(self, name: str, xp, table: dict, chosen: dict):
        self.name, self.xp, self.chosen = name, xp, dict(chosen)
        missing = [op.name for op in registry.OPS if op.name not in table]
        if missing:
            raise ValueError(f"backend {name!r} has no implementation of {', '.join(missing)}")
        self.__dict__.update(table)

    def __repr__(self) -> str:
        return f"Ops({self.name!r}, {len(registry.OPS)} ops)"

    def asarray(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def to_host(self, x):
        return x if isinstance(x, np.ndarray) or self.xp is np else self.xp.asnumpy(x)


def _table(backend: str) -> tuple[dict, dict]:
    ns = registry.namespace(backend)
    table, chosen = {}, {}
    for op in registry.OPS:
        table[op.name] = registry.implementation(op, backend, ns)
        chosen[op.name] = getattr(op, backend)
    return table, chosen


@functools.lru_cache(maxsize=None)
def load_ops(name: str) -> Ops:
    """The op table of a concrete backend (numpy, numba, cuda)."""
    if name not in registry.BACKENDS:
        raise ValueError(f"unknown backend {name!r}")
    table, chosen = _table(name)
    xp = np
    if name == "cuda":
        from . import cuda_ops
        xp = cuda_ops.array_namespace()
        for op in registry.OPS:                      # what a real GPU prefers (never the simulator)
            fn, why = cuda_ops.gpu_override(op)
            if fn is not None:
                table[op.name] = fn
            if why:
                chosen[op.name] = why if fn is not None else f"{chosen[op.name]} ({why})"
        cuda_ops.CHOSEN.clear()
        cuda_ops.CHOSEN.update(chosen)
    return Ops(name, xp, table, chosen)
