"""The discriminator families, one module each, and the registry that maps ``discriminator.kind`` to
its family (see :mod:`.base` for the protocol; :mod:`.common`, :mod:`.ipm`, :mod:`.trig` and
:mod:`.kde_maths` hold what several families or the reproductions share). Adding a family: write its
module (with a module-level ``FAMILY``) and name it on the registry line below (or, from outside
fastgan, ``register`` an instance before making configs)."""

from __future__ import annotations

from types import ModuleType

from . import mlp, fourier, rff, kernel, kde  # noqa: E401, I001  the registry line, in display order
from .base import Family

FAMILIES: dict[str, Family] = {m.FAMILY.name: m.FAMILY for m in list(globals().values())
                               if isinstance(m, ModuleType) and isinstance(getattr(m, "FAMILY", None), Family)}


_VERSION = [0]
CHECKS: list = []          # callables(registry) that raise on a registry that cannot work (the config layer's)


def register(family: Family) -> None:
    """Add (or replace) a family at run time, e.g. one defined outside fastgan: its keys join the
    schema of the configs made from now on. A family whose keys clash with the others' is refused."""
    if not isinstance(family, Family) or not family.name:
        raise TypeError("register() takes a named Family instance")
    trial = {**FAMILIES, family.name: family}
    for check in CHECKS:
        check(trial)
    FAMILIES[family.name] = family
    _VERSION[0] += 1


def unregister(name: str) -> None:
    FAMILIES.pop(name)
    _VERSION[0] += 1


def version() -> int:
    """Changes whenever the registry does (the config layer rebuilds its schema then)."""
    return _VERSION[0]


def get(kind: str) -> Family:
    """The family registered as ``kind`` (a KeyError names the registered ones)."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise KeyError(f"unknown discriminator family {kind!r} (registered: {', '.join(FAMILIES)})") from None
