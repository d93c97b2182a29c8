"""The configuration schema: keys, types, defaults, coercion and one-line errors (a leaf module).

A run is described by a nested mapping (usually a TOML file) with the sections ``target``,
``generator``, ``coupling``, ``discriminator``, ``training``, ``record`` and the top-level keys
``precision`` and ``backend``. This module knows the keys every run shares (:data:`BASE`); each
discriminator family declares its own keys next to its code (``fastgan.families``), and
``fastgan.runconfig`` merges the two, parses a mapping into a :class:`~fastgan.runconfig.Config`
and resolves it once. Every problem is a one-line :class:`ConfigError` ``KEY = VALUE: reason``.

The key names are a public contract (``fastgan config --keys`` prints them).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import ConfigError

try:  # Python >= 3.11
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as _toml  # type: ignore[no-redef]

AUTO = None  # optional keys default to None ("auto"); the string "auto" is accepted as input

# How a family key enters the identity (the run id) of runs of the families that do not read it:
OWNED = "owned"          # not at all (None for the five original families' keys: ``Family.legacy_identity``)
ALWAYS = "always"        # its value, like a shared key
OMIT_DEFAULT = "omit-default"  # absent from the identity of every run where it is at its default, None or not read
# A shared key added after run ids were fixed is OMIT_DEFAULT too: runs that leave it at its default keep their id.


# --------------------------------------------------------------------------- field types

@dataclass(frozen=True)
class Field:
    """One configuration key: its type, default, constraint and documentation.

    ``foreign``: for a family key, the reason given when a run of a family that does not read it
    sets it to anything but its default (None: silently ignored there). ``identity``: see
    :data:`OWNED`, :data:`ALWAYS`, :data:`OMIT_DEFAULT`.
    """

    kind: str  # int, float, str, bool, floats, number_or_floats, matrix, ints_or_int, schedule
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False
    foreign: str | None = None
    identity: str = OWNED


def ge(lo, strict=False):
    def check(v):
        if (v <= lo) if strict else (v < lo):
            return f"must be {'>' if strict else '>='} {lo}"
        return None
    return check


def between(lo, hi):
    def check(v):
        if not lo <= v <= hi:
            return f"must lie in [{lo}, {hi}]"
        return None
    return check


def all_ge(lo, strict=False):
    def check(vs):
        for v in vs:
            if (v <= lo) if strict else (v < lo):
                return f"every entry must be {'>' if strict else '>='} {lo}"
        return None
    return check


def nonzero(v):
    return "must not be 0" if v == 0 else None


POS = ge(0, strict=True)
NONNEG = ge(0)
NORMALIZE_CHOICES = ("none", "pixel", "affine")     # target.normalize (fastgan.targets.normalize_points)

# --------------------------------------------------------------------------- the keys every run shares

BASE: dict[str, dict[str, Field]] = {
    "": {
        "precision": Field("str", "float32", "floating-point precision of the state", choices=("float32", "float64")),
        "backend": Field("str", "auto", "execution backend (not part of the run identity)",
                         choices=("auto", "numpy", "numba", "cuda")),
    },
    "target": {
        "kind": Field("str", "ring", "target distribution",
                      choices=("ring", "grid", "mixture", "points", "file", "circle", "sphere")),
        "n_modes": Field("int", AUTO, "number of modes (ring: 8; grid: 25, a perfect square; circle: 4; sphere: 10)",
                         ge(1), optional=True),
        "radius": Field("float", AUTO, "ring / circle / sphere radius (ring 2, circle and sphere 1)", POS, optional=True),
        "dim": Field("int", AUTO, "dimension of a sphere target (default 10; points uniform on the sphere, drawn "
                     "from training.seed)", ge(2), optional=True),
        "std": Field("float", AUTO, "isotropic std of every mode (ring 0.02, grid 0.05, mixture 0.02, points 0)",
                     NONNEG, optional=True),
        "spacing": Field("float", 2.0, "grid spacing (grid centred on the origin)", POS),
        "means": Field("matrix", AUTO, "mixture means, K x d", optional=True),
        "weights": Field("floats", AUTO, "mixture weights (normalised; default uniform)", all_ge(0), optional=True),
        "stds": Field("floats", AUTO, "per-component stds of a mixture (default: target.std)", all_ge(0), optional=True),
        "points": Field("matrix", AUTO, "finite point set, K x d", optional=True),
        "masses": Field("floats", AUTO, "masses of the points (points, circle, sphere; normalised to sum 1; default "
                        "uniform)", all_ge(0), optional=True),
        "path": Field("str", AUTO, "array file: .npy/.txt/.csv samples (M x d) or .npy images (M x H x W, flattened "
                      "to d = H W), or .npz/.h5 with 'samples' or 'images' [+ 'masses' or 'weights', 'image_shape'] "
                      "or 'means' [+ 'weights', 'stds']", optional=True),
        "normalize": Field("str", "none", "rescaling of a file target's points before use: none; pixel (per "
                           "coordinate (x - mean) / std over the file's points, a constant coordinate only centred); "
                           "affine ((x - target.offset) * target.scale)", choices=NORMALIZE_CHOICES,
                           identity=OMIT_DEFAULT),
        "offset": Field("float", AUTO, "target.normalize = affine: subtracted from every coordinate (default 0)",
                        optional=True, identity=OMIT_DEFAULT),
        "scale": Field("float", AUTO, "target.normalize = affine: multiplies every coordinate after the offset "
                       "(required, not 0)", nonzero, optional=True, identity=OMIT_DEFAULT),
    },
    "generator": {
        "n_particles": Field("int", 200, "number of generated particles N", ge(1)),
        "init_mean": Field("floats", AUTO, "mean of the initial cloud (default: ring -> the mode at 45 degrees, "
                           "(sqrt2, sqrt2) for radius 2; else the origin)", optional=True),
        "init_std": Field("float", AUTO, "std of the initial cloud", NONNEG, optional=True),
        "init_points": Field("matrix", AUTO, "explicit starting positions, N x d (overrides init_mean/init_std)",
                             optional=True),
    },
    "coupling": {
        "kind": Field("str", "coarse", "NTK coupling", choices=("coarse", "gram", "spatial")),
        "ratio": Field("float", AUTO, "g2/g1 with g1 + g2 (N - 1) = N (default 0 unless g1/g2 given)",
                       between(0.0, 1.0), optional=True),
        "g1": Field("float", AUTO, "explicit diagonal NTK value (with coupling.g2)", POS, optional=True),
        "g2": Field("float", AUTO, "explicit off-diagonal NTK value (with coupling.g1)", optional=True),
        "gram": Field("str", AUTO, "Gram matrix file (.npy, .npz/.h5 key 'gram', .txt), N x N, for kind = gram",
                      optional=True),
        "gram_arch": Field("str", AUTO, "kind = gram without a file: the analytic infinite-width NTK of a relu or erf "
                           "generator at N seeds uniform on a sphere, drawn from training.seed (Durr et al., "
                           "Effective Dynamics of GANs, Appendix G)", choices=("relu", "erf"), optional=True),
        "gram_setting": Field("str", AUTO, "gram_arch initialisation: appendix-g (one hidden layer, App. G; default), "
                              "fig2 (one hidden layer, Fig. 2) or deep (the mu-parametrised network of Fig. 21, seeds "
                              "on the sphere of radius sqrt(gram_dim))", choices=("appendix-g", "fig2", "deep"),
                              optional=True),
        "gram_dim": Field("int", AUTO, "gram_arch: latent dimension of the seeds (default 256)", ge(2), optional=True),
        "gram_depth": Field("int", AUTO, "gram_setting = deep: hidden layers (default 6)", ge(1), optional=True),
        "gram_mu": Field("float", AUTO, "gram_setting = deep: mu of the pre-activations mu b + sqrt((1 - mu^2)/n) W a "
                         "(default 0.5)", between(0.0, 1.0), optional=True),
        "normalize": Field("bool", False, "rescale a Gram matrix so that 1'G1/N = N (the paper's normalisation)"),
        "length_scale": Field("float", 1.0, "data-space length scale of the spatial coupling", POS),
        "spatial_kernel": Field("str", "rbf", "data-space kernel of the spatial coupling", choices=("rbf", "laplacian")),
    },
    "discriminator": {
        # the choices are the registered families (fastgan.families), filled in by fastgan.runconfig
        "kind": Field("str", "mlp", "discriminator family"),
    },
    "training": {
        "n_iterations": Field("int", 3000, "generator steps", ge(1)),
        "n_disc": Field("int", AUTO, "discriminator steps per generator step", ge(1), optional=True),
        "lr_disc": Field("float", AUTO, "discriminator learning rate alpha_D / eta_d", NONNEG, optional=True),
        "lr_gen": Field("float", AUTO, "generator (particle) learning rate alpha_G / eta_g", NONNEG, optional=True),
        "update_order": Field("str", "alternating", "alternating: the generator moves on the updated "
                              "discriminator (Algorithm 1); simultaneous: both use the state at the start of the "
                              "iteration (isolated points model, eq. 9)", choices=("alternating", "simultaneous")),
        "seed": Field("int", 0, "seed of the counter-based random numbers", between(0, 2**63 - 1)),
        "batch_size": Field("int", AUTO, "target samples per discriminator step (default N)", ge(1), optional=True),
    },
    "record": {
        "every": Field("int", 20, "record observables every this many iterations (and at 0 and the end)", ge(1)),
        "snapshots": Field("ints_or_int", 6, "particle snapshots: a count (evenly spaced, incl. 0 and the end) "
                           "or a list of iterations"),
        "discriminator": Field("bool", True, "store discriminator parameters with every snapshot"),
    },
}

SECTIONS = tuple(s for s in BASE if s)
# coupling keys that refine coupling.gram_arch (the analytic Gram coupling)
GRAM_SPEC_KEYS = ("gram_setting", "gram_dim", "gram_depth", "gram_mu")
# Base keys whose default depends on the discriminator family (each family's ``auto`` gives it).
FAMILY_DEFAULTED = ("generator.init_std", "training.n_disc", "training.lr_disc", "training.lr_gen")


def dotted_keys(schema: Mapping[str, Mapping[str, Field]]) -> tuple[str, ...]:
    return tuple((f"{s}.{k}" if s else k) for s, fields in schema.items() for k in fields)


# --------------------------------------------------------------------------- coercion

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def coerce(key: str, field: Field, value):
    """``value`` as the key's type (tuples for lists), or a ConfigError naming ``key``."""
    if field.optional and (value is None or value == "auto"):
        return None
    kind = field.kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "expected an integer")
        out = int(value)
    elif kind == "float":
        if not _is_number(value):
            raise ConfigError(key, value, "expected a number")
        out = float(value)
        if not math.isfinite(out):
            raise ConfigError(key, value, "must be finite")
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(key, value, "expected a string")
        out = value
        if field.choices and out not in field.choices:
            raise ConfigError(key, value, f"must be one of {', '.join(field.choices)}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, value, "expected true or false")
        out = value
    elif kind == "floats":
        out = _floats(key, value)
    elif kind == "number_or_floats":
        out = (coerce(key, Field("float", None, ""), value),) if _is_number(value) else _floats(key, value)
    elif kind == "matrix":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(key, value, "expected a non-empty list of points (list of lists of numbers)")
        rows = [_floats(key, row) for row in value]
        if len({len(r) for r in rows}) != 1:
            raise ConfigError(key, value, "rows must all have the same length")
        out = tuple(rows)
    elif kind == "schedule":
        out = _schedule(key, value)
    elif kind == "ints_or_int":
        if isinstance(value, bool):
            raise ConfigError(key, value, "expected an integer or a list of integers")
        if isinstance(value, int):
            if value < 0:
                raise ConfigError(key, value, "must be >= 0")
            out = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if any(v < 0 for v in value):
                raise ConfigError(key, value, "iterations must be >= 0")
            out = tuple(sorted(set(value)))
        else:
            raise ConfigError(key, value, "expected an integer or a list of integers")
    else:  # pragma: no cover - schema error
        raise AssertionError(kind)
    if field.check is not None:
        problem = field.check(out)
        if problem:
            raise ConfigError(key, value, problem)
    return out


def _schedule(key, value):
    """A list of [iteration >= 0, bandwidth(s)(, step > 0)] entries, strictly increasing iterations."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, value, "expected a non-empty list of [iteration, bandwidth(, step)] entries")
    entries = []
    for e in value:
        if (not isinstance(e, (list, tuple)) or len(e) not in (2, 3) or isinstance(e[0], bool)
                or not isinstance(e[0], int) or e[0] < 0):
            raise ConfigError(key, value, "each entry must be [iteration >= 0, bandwidth] or "
                              "[iteration >= 0, bandwidth, step]")
        bw = coerce(key, Field("number_or_floats", None, "", all_ge(0, strict=True)), e[1])
        entry = (int(e[0]), bw)
        if len(e) == 3:
            entry += (coerce(key, Field("float", None, "", POS), e[2]),)
        entries.append(entry)
    its = [e[0] for e in entries]
    if its != sorted(its) or len(set(its)) != len(its):
        raise ConfigError(key, value, "iterations must be strictly increasing")
    return tuple(entries)


def _floats(key, value):
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, value, "expected a non-empty list of numbers")
    out = []
    for v in value:
        if not _is_number(v):
            raise ConfigError(key, value, "expected a list of numbers")
        if not math.isfinite(float(v)):
            raise ConfigError(key, value, "entries must be finite")
        out.append(float(v))
    return tuple(out)


def plain(v):
    """Tuples as lists (JSON / TOML form of a coerced value)."""
    if isinstance(v, tuple):
        return [plain(x) for x in v]
    return v


# --------------------------------------------------------------------------- sections

def section_class(name: str, fields: Mapping[str, Field], prefix: str = ""):
    """A frozen dataclass with one attribute per key (defaults from the schema)."""
    cls = dataclasses.make_dataclass(
        prefix + name.capitalize() + "Section",
        [(k, Any, dataclasses.field(default=f.default)) for k, f in fields.items()],
        frozen=True,
    )
    cls.__doc__ = f"The [{name}] section. Keys: " + "; ".join(f"{k}: {f.doc}" for k, f in fields.items())
    return cls


def parse(data: Mapping[str, Any], schema: Mapping[str, Mapping[str, Field]]) -> tuple[dict, dict]:
    """(top-level values, {section: {key: coerced value}}) of a nested mapping, every key of the schema
    present (defaults where not given); unknown keys are errors with a suggestion."""
    if not isinstance(data, Mapping):
        raise ConfigError("", data, "a configuration must be a table of sections")
    known = dotted_keys(schema)
    top: dict[str, Any] = {}
    for key, value in data.items():
        if key in schema[""]:
            top[key] = coerce(key, schema[""][key], value)
        elif key in schema and key:
            if not isinstance(value, Mapping):
                raise ConfigError(key, value, "expected a table of keys")
            for sub in value:
                if sub not in schema[key]:
                    raise ConfigError(f"{key}.{sub}", value[sub], "unknown key" + suggest(f"{key}.{sub}", known))
        else:
            raise ConfigError(key, value, "unknown key" + suggest(key, known))
    sections = {}
    for name, fields in schema.items():
        if not name:
            continue
        given = data.get(name, {}) or {}
        sections[name] = {k: coerce(f"{name}.{k}", f, given[k]) if k in given else f.default
                          for k, f in fields.items()}
    return top, sections


SUGGEST_CUTOFF = 0.75       # difflib similarity a "did you mean" needs (0.6, difflib's default, names random keys)


def suggest(key: str, known) -> str:
    """`` (did you mean K?)`` for a genuinely close known key K, else "". Within a known section only the
    key names are compared (the shared section prefix would make every key of it look close); a key
    given in the wrong section is found by its exact name when one section alone has it; a lone word
    is also compared with the section names (``trainig`` -> ``training``)."""
    known = list(known)
    section, _, name = key.rpartition(".")
    candidates = known + (sorted({k.split(".")[0] for k in known if "." in k}) if not section else [])
    best, score = None, 0.0
    for k in candidates:
        k_section, _, k_name = k.rpartition(".")
        same = bool(section) and k_section == section
        r = difflib.SequenceMatcher(None, name if same else key, k_name if same else k).ratio()
        if r > score:
            best, score = k, r
    if score < SUGGEST_CUTOFF:
        same_name = [k for k in known if k.rpartition(".")[2] == name]
        best = same_name[0] if len(same_name) == 1 and name else None
    return f" (did you mean {best}?)" if best else ""


# --------------------------------------------------------------------------- text forms

MAX_CONFIG_BYTES = 16 << 20      # a config or sweep spec is a few KiB; anything this big is something else


def load_toml(path: str | os.PathLike) -> dict:
    """Read a TOML file into a dict; errors are one-line ConfigErrors naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)            # bounded: a device or a pipe may never end
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError("config", str(path), f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config file")
        return _toml.loads(data.decode("utf-8"))
    except RecursionError:
        raise ConfigError("config", str(path), "nested too deeply to be a config") from None
    except FileNotFoundError:
        raise ConfigError("config", str(path), "file not found") from None
    except IsADirectoryError:
        raise ConfigError("config", str(path), "is a directory, expected a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError("config", str(path), "is not a UTF-8 text file (a TOML file is expected)") from None
    except OSError as exc:
        raise ConfigError("config", str(path), f"cannot be read ({exc.strerror or exc})") from None
    except _toml.TOMLDecodeError as exc:
        raise ConfigError("config", str(path), f"invalid TOML: {exc}") from None


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``dotted.key=value``; the value is read as TOML, falling back to a bare string."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected dotted.key=value")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise ConfigError("--set", text, "expected dotted.key=value")
    try:
        value = _toml.loads(f"v = {raw}")["v"]
    except _toml.TOMLDecodeError:
        value = raw
    except RecursionError:
        raise ConfigError(key, raw[:20] + "...", "nested too deeply") from None
    return key, value


def set_dotted(d: dict, key: str, value, known=()) -> None:
    """Set ``d[a][b] = value`` for ``key = 'a.b'`` (creating the section table); ``known``: the
    dotted keys suggested when the key has too many parts."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(key, value, "expected a key such as training.seed (a section and a key, or a top-level "
                          "key such as precision)")
    if len(parts) > 2:
        raise ConfigError(key, value, "unknown key" + suggest(key, known))
    if len(parts) == 2:
        sec = d.setdefault(parts[0], {})
        if not isinstance(sec, dict):
            raise ConfigError(parts[0], sec, "expected a table of keys")
        sec[parts[1]] = value
    else:
        d[parts[0]] = value
