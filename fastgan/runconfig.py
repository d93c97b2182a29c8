"""A run's configuration, validated and resolved once.

:func:`from_dict` (and :func:`load_config`, :func:`default_config`) turn a nested mapping into a
frozen :class:`Config`: the keys as given (None for "auto"), checked key by key (``fastgan.config``)
and across keys (here and in the discriminator family's ``validate``), and its :class:`Resolved`
form, built once: every "auto" value filled in, the defaults derived in this one place (shared
ones here, family ones by the family's ``auto`` / ``resolve``). Every consumer reads
``cfg.resolved``; nothing derives a default again.

The identity of a run is the sorted-key JSON of its resolved configuration without the backend
(``Resolved.canonical_json``) and its hash (``run_id``). A family key that the run's family does
not read is None there (or left out, or kept, as its ``Field.identity`` says), so that two runs
that compute the same thing have one identity. A shared key whose ``Field.identity`` is
``OMIT_DEFAULT`` (one added after run ids were fixed, e.g. ``target.normalize``) is left out where it
is at its default, so that the runs that do not set it keep their ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from . import config as C
from . import families, resources
from .config import FAMILY_DEFAULTED, GRAM_SPEC_KEYS, ConfigError, plain
from .targets import DEFAULT_MODES, DEFAULT_STD, SPHERE_DIM, target_dim

# --------------------------------------------------------------------------- the merged schema

class Schema(NamedTuple):
    """The keys of every run: the shared ones and every registered family's.

    fields          {section: {key: Field}} ("" holds the top-level keys)
    owners          {dotted family key: names of the families that read it}
    known           every dotted key (for "did you mean" suggestions)
    sections        {section: the frozen dataclass of a section}
    discriminators  {family: its resolved discriminator section (kind + the keys it reads)}
    """

    fields: dict
    owners: dict
    known: tuple
    sections: dict
    discriminators: dict


def _merge(registered: dict) -> Schema:
    fields = {s: dict(f) for s, f in C.BASE.items()}
    owners: dict[str, list[str]] = {}
    for fam in registered.values():
        for sec, declared in fam.keys.items():
            for k, f in declared.items():
                dotted = f"{sec}.{k}"
                if dotted in owners and fields[sec][k] is not f:
                    raise AssertionError(f"{dotted} is declared twice with different fields (share the Field "
                                         "object through fastgan.families.common)")
                if dotted not in owners and k in fields[sec]:
                    raise AssertionError(f"family {fam.name} redeclares the shared key {dotted}")
                fields[sec][k] = f
                owners.setdefault(dotted, []).append(fam.name)
    fields["discriminator"]["kind"] = dataclasses.replace(
        fields["discriminator"]["kind"], choices=tuple(registered),
        doc="discriminator family: " + ", ".join(f"{f.name} ({f.summary})" for f in registered.values()))
    sections = {name: _section(name, fields[name]) for name in SECTIONS}
    discriminators = {name: _section("discriminator", {"kind": fields["discriminator"]["kind"],
                                                       **fam.keys.get("discriminator", {})}, prefix=name.capitalize())
                      for name, fam in registered.items()}
    return Schema(fields, owners, C.dotted_keys(fields), sections, discriminators)


_SECTION_CLASSES: dict = {}


def _section(name: str, fields: dict, prefix: str = ""):
    """The frozen dataclass of a section with these fields: one class per distinct field set, importable
    under a name of its own (configs pickle, and stay equal, across registrations that leave it alone)."""
    key = (prefix + name, tuple(fields.items()))
    cls = _SECTION_CLASSES.get(key)
    if cls is None:
        cls = C.section_class(name, fields, prefix)
        base, n = cls.__name__, sum(k[0] == prefix + name for k in _SECTION_CLASSES)
        cls.__name__ = cls.__qualname__ = base if n == 0 else f"{base}{n + 1}"
        cls.__module__ = __name__
        globals()[cls.__name__] = cls
        _SECTION_CLASSES[key] = cls
    return cls


SECTIONS = C.SECTIONS
_SCHEMA: list = [None, None]          # (registry version, Schema)


def schema() -> Schema:
    """The schema of the families registered now (rebuilt when ``families.register`` changed them;
    configs made before a registration keep the sections they were made with)."""
    if _SCHEMA[0] != families.version():
        _SCHEMA[:] = [families.version(), _merge(dict(families.FAMILIES))]
    return _SCHEMA[1]


families.CHECKS.append(lambda registry: _merge(registry))      # a family is checked when it is registered


# --------------------------------------------------------------------------- the objects

@dataclass(frozen=True)
class Resolved:
    """A run's configuration with every default filled in: what the engine, the planner, the store
    and the plots read. Sections are attributes (``r.training.n_disc``); ``discriminator`` holds its
    family's keys only; keys of other families are None. ``dim``: the target dimension (None for a
    file target, known once loaded)."""

    precision: str
    backend: str
    target: Any
    generator: Any
    coupling: Any
    discriminator: Any
    training: Any
    record: Any
    dim: int | None
    canonical: str = field(repr=False)

    def canonical_json(self) -> str:
        """Sorted-key compact JSON of the resolved config without the backend (the run identity)."""
        return self.canonical

    @property
    def run_id(self) -> str:
        return hashlib.sha256(self.canonical.encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        """The identity as a nested dict, with the backend (what ``fastgan config`` prints)."""
        return {**json.loads(self.canonical), "backend": self.backend}

    @property
    def family(self):
        return families.get(self.discriminator.kind)

    def input_files(self) -> dict:
        """{key: path} of the files this run reads (an output must be none of them)."""
        files = {}
        if self.target.kind == "file":
            files["target.path"] = self.target.path
        if self.coupling.kind == "gram" and self.coupling.gram_arch is None:
            files["coupling.gram"] = self.coupling.gram
        return files

    @property
    def dtype(self):
        import numpy as np
        return np.dtype(self.precision)


@dataclass(frozen=True)
class Config:
    """A validated run configuration as given (immutable; None for 'auto'). Sections are attributes:
    ``cfg.training.n_disc``; ``cfg.resolved`` is the :class:`Resolved` form every consumer reads."""

    target: Any
    generator: Any
    coupling: Any
    discriminator: Any
    training: Any
    record: Any
    precision: str = "float32"
    backend: str = "auto"
    resolved: Resolved = field(default=None, init=False, compare=False, repr=False)

    def to_dict(self) -> dict:
        """Nested plain dict of every key as given (None for 'auto' keys)."""
        out: dict[str, Any] = {"precision": self.precision, "backend": self.backend}
        for name in SECTIONS:
            sec = getattr(self, name)
            out[name] = {f.name: plain(getattr(sec, f.name)) for f in dataclasses.fields(sec)}
        return out

    def canonical_json(self) -> str:
        return self.resolved.canonical

    @property
    def run_id(self) -> str:
        return self.resolved.run_id

    def replace(self, **dotted) -> "Config":
        """A new validated config with dotted keys replaced: ``cfg.replace(**{"training.seed": 3})``."""
        d = self.to_dict()
        for key, value in dotted.items():
            C.set_dotted(d, key, value, schema().known)
        return from_dict(d)

    @property
    def dtype(self):
        import numpy as np
        return np.dtype(self.precision)


# --------------------------------------------------------------------------- building

def from_dict(data: Mapping[str, Any], *, check_files: bool = True) -> Config:
    """Validate a nested mapping into a :class:`Config` and resolve it (raises :class:`ConfigError`).
    ``check_files``: also check that the files it names exist and hold what they should."""
    S = schema()
    top, secs = C.parse(data, S.fields)
    cfg = Config(**{name: S.sections[name](**vals) for name, vals in secs.items()}, **top)
    validate(cfg, check_files=check_files)
    object.__setattr__(cfg, "resolved", resolve(cfg))
    if check_files:
        _check_files(cfg)
    return cfg


def load_config(path=None, overrides=(), base: Mapping | None = None) -> Config:
    """Load a TOML file (or start from ``base``), apply ``dotted.key=value`` overrides, validate."""
    data = json.loads(json.dumps(base)) if base is not None else {}
    if path is not None:
        data = C.load_toml(path)
    for item in overrides:
        key, value = C.parse_override(item) if isinstance(item, str) else item
        C.set_dotted(data, key, value, schema().known)
    return from_dict(data)


def default_config(**dotted) -> Config:
    """The documented defaults, with optional dotted overrides (``default_config(**{"training.seed": 1})``)."""
    d: dict = {}
    for k, v in dotted.items():
        C.set_dotted(d, k.replace("__", "."), v, schema().known)
    return from_dict(d)


# --------------------------------------------------------------------------- cross-key checks



def validate(cfg: Config, *, check_files: bool = True) -> None:
    """Checks that involve more than one key (the family's own in its ``validate``)."""
    t = cfg.target
    if t.kind == "grid" and t.n_modes is not None:
        side = math.isqrt(t.n_modes)
        if side * side != t.n_modes:
            raise ConfigError("target.n_modes", t.n_modes, "a grid needs a perfect square")
    if t.kind == "mixture":
        if t.means is None:
            raise ConfigError("target.means", None, "required for target.kind = mixture")
        k = len(t.means)
        for key in ("weights", "stds"):
            v = getattr(t, key)
            if v is not None and len(v) != k:
                raise ConfigError(f"target.{key}", list(v), f"needs {k} entries, one per mean")
        if t.weights is not None and sum(t.weights) <= 0:
            raise ConfigError("target.weights", list(t.weights), "must not all be zero")
    if t.kind == "points":
        if t.points is None:
            raise ConfigError("target.points", None, "required for target.kind = points")
        if t.masses is not None:
            if len(t.masses) != len(t.points):
                raise ConfigError("target.masses", list(t.masses), f"needs {len(t.points)} entries, one per point")
            if sum(t.masses) <= 0:
                raise ConfigError("target.masses", list(t.masses), "must not all be zero")
    if t.kind in ("circle", "sphere") and t.masses is not None:
        k = t.n_modes or DEFAULT_MODES[t.kind]
        if len(t.masses) != k:
            raise ConfigError("target.masses", list(t.masses), f"needs {k} entries, one per point (target.n_modes)")
        if sum(t.masses) <= 0:
            raise ConfigError("target.masses", list(t.masses), "must not all be zero")
    if t.dim is not None and t.kind != "sphere":
        raise ConfigError("target.dim", t.dim, "only a sphere target takes a dimension (others have theirs)")
    if t.kind == "file":
        if t.path is None:
            raise ConfigError("target.path", None, "required for target.kind = file")
        if check_files and not os.path.isfile(t.path):
            raise ConfigError("target.path", t.path, "file not found")
    _validate_normalize(t)
    d = target_dim(t)
    resources.check_dimension(d)
    g = cfg.generator
    if g.init_mean is not None and d is not None and len(g.init_mean) != d:
        raise ConfigError("generator.init_mean", list(g.init_mean), f"needs {d} entries (the target dimension)")
    if g.init_points is not None:
        if len(g.init_points) != g.n_particles:
            raise ConfigError("generator.init_points", len(g.init_points),
                              f"needs generator.n_particles = {g.n_particles} rows")
        if d is not None and len(g.init_points[0]) != d:
            raise ConfigError("generator.init_points", list(g.init_points[0]),
                              f"rows need {d} entries (the target dimension)")
    _check_scale(cfg)
    fam = families.get(cfg.discriminator.kind)
    _check_foreign(cfg, fam)
    fam.validate(cfg, d)

    c = cfg.coupling
    explicit = (c.g1 is not None) or (c.g2 is not None)
    if explicit and c.ratio is not None:
        raise ConfigError("coupling.ratio", c.ratio, "give either coupling.ratio or coupling.g1 and coupling.g2, not both")
    if explicit and (c.g1 is None or c.g2 is None):
        missing = "coupling.g2" if c.g2 is None else "coupling.g1"
        raise ConfigError(missing, None, "coupling.g1 and coupling.g2 must be given together")
    if explicit:
        n = g.n_particles
        if c.g2 > c.g1 or c.g1 + (n - 1) * c.g2 < 0:
            raise ConfigError("coupling.g2", c.g2, f"with coupling.g1 = {c.g1} the NTK is not positive semi-definite "
                              "(need g2 <= g1 and g1 + (N-1) g2 >= 0)")
    _validate_gram_spec(c)
    if c.kind == "gram" and c.gram_arch is None:
        if c.gram is None:
            raise ConfigError("coupling.gram", None, "required for coupling.kind = gram (a Gram matrix file), "
                              "unless coupling.gram_arch names an analytic NTK")
        if check_files and not os.path.isfile(c.gram):
            raise ConfigError("coupling.gram", c.gram, "file not found")

    tr, r = cfg.training, cfg.record
    if isinstance(r.snapshots, tuple) and r.snapshots and r.snapshots[-1] > tr.n_iterations:
        raise ConfigError("record.snapshots", list(r.snapshots),
                          f"iterations must be <= training.n_iterations = {tr.n_iterations}")


def _validate_normalize(t) -> None:
    """target.normalize and the affine map's keys: a file target's only; offset and scale only for affine,
    which needs a scale."""
    if t.normalize != "none" and t.kind != "file":
        raise ConfigError("target.normalize", t.normalize, f"only a file target is rescaled (target.kind = {t.kind})")
    if t.normalize == "affine":
        if t.scale is None:
            raise ConfigError("target.scale", None, "required for target.normalize = affine ((x - target.offset) * "
                              "target.scale)")
        return
    for key in ("offset", "scale"):
        if getattr(t, key) is not None:
            raise ConfigError(f"target.{key}", getattr(t, key), f"only for target.normalize = affine (it is "
                              f"{t.normalize})")


POSITION_KEYS = ("target.radius", "target.std", "target.means", "target.points", "generator.init_mean",
                 "generator.init_std", "generator.init_points")


def _check_scale(cfg: Config) -> None:
    """Positions (and their spreads) whose squares overflow the run's precision: the very first distance
    would be infinite, so such a run could only diverge at its first step; refused as input instead."""
    import numpy as np
    limit = math.sqrt(float(np.finfo(cfg.precision).max))
    for dotted in POSITION_KEYS:
        sec, key = dotted.split(".")
        value = getattr(getattr(cfg, sec), key, None)
        if value is None:
            continue
        big = float(np.max(np.abs(np.asarray(value, dtype=np.float64)))) if np.size(value) else 0.0
        if big > limit:
            raise ConfigError(dotted, plain(value) if np.ndim(value) else value,
                              f"too large for precision = {cfg.precision} (squared distances overflow above "
                              f"{limit:.3g})")


def _check_foreign(cfg: Config, fam) -> None:
    """A key of another family set on this run: an error where the key says why (``Field.foreign``),
    else ignored (it is not part of the run's identity)."""
    S = schema()
    for dotted, names in S.owners.items():
        if fam.name in names:
            continue
        sec, key = dotted.split(".")
        f = S.fields[sec][key]
        value = getattr(getattr(cfg, sec), key)
        if f.foreign and value != f.default:
            raise ConfigError(dotted, plain(value), f.foreign.format(kind=fam.name))


def _validate_gram_spec(c) -> None:
    """The analytic Gram coupling: coupling.gram_arch and the keys that refine it."""
    if c.gram_arch is None:
        for k in GRAM_SPEC_KEYS:
            if getattr(c, k) is not None:
                raise ConfigError(f"coupling.{k}", getattr(c, k), "only refines coupling.gram_arch (unset)")
        return
    if c.kind != "gram":
        raise ConfigError("coupling.gram_arch", c.gram_arch, f"needs coupling.kind = gram, not {c.kind}")
    if c.gram is not None:
        raise ConfigError("coupling.gram_arch", c.gram_arch, "give either a Gram file (coupling.gram) or an "
                          "analytic NTK (coupling.gram_arch), not both")
    if c.gram_setting != "deep":
        for k in ("gram_depth", "gram_mu"):
            if getattr(c, k) is not None:
                raise ConfigError(f"coupling.{k}", getattr(c, k), "only for coupling.gram_setting = deep")


def _check_files(cfg: Config) -> None:
    """Load what the config's files hold (the error names the key)."""
    from . import couplings, targets
    resources.check_target(cfg.resolved)
    targets.check_against(targets.make_target(cfg), cfg.resolved)
    c = cfg.resolved.coupling
    if c.kind == "gram" and c.gram_arch is None:
        couplings.load_gram(c.gram, cfg.generator.n_particles, key="coupling.gram")


# --------------------------------------------------------------------------- resolution

def resolve(cfg: Config) -> Resolved:
    """The :class:`Resolved` form of a validated config: the one place defaults are derived."""
    fam = families.get(cfg.discriminator.kind)
    d = cfg.to_dict()
    t, g, c, tr = d["target"], d["generator"], d["coupling"], d["training"]
    dim = target_dim(cfg.target)
    if t["n_modes"] is None:
        t["n_modes"] = DEFAULT_MODES.get(t["kind"])
    if t["std"] is None:
        t["std"] = DEFAULT_STD.get(t["kind"])
    if t["radius"] is None:
        t["radius"] = 2.0 if t["kind"] == "ring" else 1.0
    if t["dim"] is None and t["kind"] == "sphere":
        t["dim"] = SPHERE_DIM
    if t["normalize"] == "affine" and t["offset"] is None:
        t["offset"] = 0.0
    auto = fam.auto(cfg, dim)
    for dotted in FAMILY_DEFAULTED:
        sec, key = dotted.split(".")
        if d[sec][key] is None:
            d[sec][key] = auto[dotted]
    fam.resolve(d, cfg, dim)
    if g["init_mean"] is None and g["init_points"] is None:
        if t["kind"] == "ring":
            g["init_mean"] = [t["radius"] * math.cos(math.pi / 4), t["radius"] * math.sin(math.pi / 4)]
        else:
            g["init_mean"] = [0.0] * dim if dim is not None else None
    c["g1"], c["g2"] = coupling_constants(cfg)
    if c["gram_arch"] is not None:
        c.update(_gram_spec(c))
    if tr["batch_size"] is None:
        tr["batch_size"] = g["n_particles"]
    S = schema()
    omitted = []                                   # keys left out of this run's identity
    for dotted, names in S.owners.items():         # keys of other families: not this run's
        sec, key = dotted.split(".")
        f = S.fields[sec][key]
        if fam.name not in names and f.identity != C.ALWAYS:
            d[sec][key] = None
            if not any(families.get(n).legacy_identity for n in names):
                omitted.append((sec, key))         # a family's key appears in no other family's identity
        if f.identity == C.OMIT_DEFAULT and (d[sec][key] is None or d[sec][key] == f.default):
            omitted.append((sec, key))
    for sec, fields in S.fields.items():           # shared keys added after run ids were fixed
        for key, f in fields.items():
            if sec and f"{sec}.{key}" not in S.owners and f.identity == C.OMIT_DEFAULT \
                    and (d[sec][key] is None or d[sec][key] == f.default):
                omitted.append((sec, key))
    ident = json.loads(json.dumps(d))
    ident.pop("backend", None)
    for sec, key in omitted:
        ident[sec].pop(key, None)
    if ident["coupling"]["gram_arch"] is None:
        for key in ("gram_arch",) + GRAM_SPEC_KEYS:
            del ident["coupling"][key]          # not part of the identity of runs without an analytic Gram
    disc_cls = S.discriminators[fam.name]
    sections = {name: S.sections[name](**{k: _frozen(v) for k, v in d[name].items()})
                for name in SECTIONS if name != "discriminator"}
    sections["discriminator"] = disc_cls(**{k: _frozen(d["discriminator"][k])
                                            for k in (f.name for f in dataclasses.fields(disc_cls))})
    return Resolved(precision=d["precision"], backend=d["backend"], dim=dim,
                    canonical=json.dumps(ident, sort_keys=True, separators=(",", ":")), **sections)


def _frozen(v):
    """Lists as tuples (a resolved section is immutable)."""
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    return v


def coupling_constants(cfg) -> tuple[float, float]:
    """(g1, g2) of an input config: explicit values, or from the ratio r with g1 + g2 (N - 1) = N
    (Appendix A). Consumers read ``cfg.resolved.coupling.g1 / g2``."""
    c = cfg.coupling
    if c.g1 is not None:
        return float(c.g1), float(c.g2)
    r = 0.0 if c.ratio is None else float(c.ratio)
    n = cfg.generator.n_particles
    g1 = n / (1.0 + r * (n - 1))
    return g1, r * g1


def _gram_spec(c: dict) -> dict:
    """The resolved analytic Gram coupling: gram_arch, gram_setting, gram_dim and, for deep, gram_depth
    and gram_mu."""
    setting = c["gram_setting"] or "appendix-g"
    deep = setting == "deep"
    return {"gram_arch": c["gram_arch"], "gram_setting": setting, "gram_dim": c["gram_dim"] or 256,
            "gram_depth": (6 if c["gram_depth"] is None else c["gram_depth"]) if deep else None,
            "gram_mu": (0.5 if c["gram_mu"] is None else c["gram_mu"]) if deep else None}


def describe_keys() -> str:
    """Human-readable table of every key, its type, default and meaning (the family-dependent
    defaults listed per family)."""
    S = schema()
    rows = []
    for sec, fields in S.fields.items():
        for k, f in fields.items():
            name = f"{sec}.{k}" if sec else k
            default = "auto" if f.default is None else json.dumps(plain(f.default))
            choice = f" ({'|'.join(f.choices)})" if f.choices else ""
            doc = f.doc
            if name in FAMILY_DEFAULTED:
                doc += " (default: " + _family_defaults(name) + ")"
            elif name in S.owners:
                doc += f" [{', '.join(S.owners[name])}]"
            rows.append((name, f.kind, default, doc + choice))
    return columns(rows, ("key", "type", "default", "meaning"))


def columns(rows: list, header: tuple) -> str:
    """A plain-text table: every column but the last padded to its widest cell."""
    rows = [tuple(header)] + [tuple(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]).rstrip() for r in rows)


def _family_defaults(dotted: str) -> str:
    out = []
    for fam in families.FAMILIES.values():
        v = fam.defaults.get(dotted)
        out.append(f"{fam.name} {v:g}" if isinstance(v, (int, float)) else f"{fam.name} {fam.computed.get(dotted, '?')}")
    return ", ".join(out)
