"""Typed, validated run configuration.

A run is described by a nested mapping (usually a TOML file) with the sections
``target``, ``generator``, ``coupling``, ``discriminator``, ``training``, ``record`` and the
top-level keys ``precision`` and ``backend``.  :func:`load_config` and :func:`from_dict` turn it
into a frozen :class:`Config`; every problem is reported as a one-line :class:`ConfigError`
naming the dotted key and its value.  ``Config.canonical_json()`` is the sorted-key JSON of the
fully resolved configuration and ``Config.run_id`` its hash (the backend is an execution detail
and is not part of the identity).

The key names are a public contract; ``SCHEMA`` below is the single source of truth for keys,
types, defaults and documentation (``fastgan config --help-keys`` prints it).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
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


# --------------------------------------------------------------------------- field types

@dataclass(frozen=True)
class Field:
    """One configuration key: its type, default, constraint and documentation."""

    kind: str  # int, float, str, bool, floats, number_or_floats, matrix, ints_or_int
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] | None = None
    optional: bool = False


def _ge(lo, strict=False):
    def check(v):
        if (v <= lo) if strict else (v < lo):
            return f"must be {'>' if strict else '>='} {lo}"
        return None
    return check


def _between(lo, hi):
    def check(v):
        if not lo <= v <= hi:
            return f"must lie in [{lo}, {hi}]"
        return None
    return check


def _all_ge(lo, strict=False):
    def check(vs):
        for v in vs:
            if (v <= lo) if strict else (v < lo):
                return f"every entry must be {'>' if strict else '>='} {lo}"
        return None
    return check


POS = _ge(0, strict=True)
NONNEG = _ge(0)

SCHEMA: dict[str, dict[str, Field]] = {
    "": {
        "precision": Field("str", "float32", "floating-point precision of the state", choices=("float32", "float64")),
        "backend": Field("str", "auto", "execution backend (not part of the run identity)",
                         choices=("auto", "numpy", "numba", "cuda")),
    },
    "target": {
        "kind": Field("str", "ring", "target distribution",
                      choices=("ring", "grid", "mixture", "points", "file", "circle", "sphere")),
        "n_modes": Field("int", AUTO, "number of modes (ring: 8; grid: 25, a perfect square; circle: 4; sphere: 10)",
                         _ge(1), optional=True),
        "radius": Field("float", AUTO, "ring / circle / sphere radius (ring 2, circle and sphere 1)", POS, optional=True),
        "dim": Field("int", AUTO, "dimension of a sphere target (default 10; points uniform on the sphere, drawn "
                     "from training.seed)", _ge(2), optional=True),
        "std": Field("float", AUTO, "isotropic std of every mode (ring 0.02, grid 0.05, mixture 0.02, points 0)",
                     NONNEG, optional=True),
        "spacing": Field("float", 2.0, "grid spacing (grid centred on the origin)", POS),
        "means": Field("matrix", AUTO, "mixture means, K x d", optional=True),
        "weights": Field("floats", AUTO, "mixture weights (normalised; default uniform)", _all_ge(0), optional=True),
        "stds": Field("floats", AUTO, "per-component stds of a mixture (default: target.std)", _all_ge(0), optional=True),
        "points": Field("matrix", AUTO, "finite point set, K x d", optional=True),
        "masses": Field("floats", AUTO, "masses of the points (points, circle, sphere; normalised to sum 1; default uniform)", _all_ge(0), optional=True),
        "path": Field("str", AUTO, "array file: .npy/.txt/.csv samples (M x d), or .npz with 'samples' or "
                      "'means' [+ 'weights', 'stds']", optional=True),
    },
    "generator": {
        "n_particles": Field("int", 200, "number of generated particles N", _ge(1)),
        "init_mean": Field("floats", AUTO, "mean of the initial cloud (default: ring -> the mode at 45 degrees, "
                           "(sqrt2, sqrt2) for radius 2; else the origin)", optional=True),
        "init_std": Field("float", AUTO, "std of the initial cloud (default 0.1; rff/kernel discriminators "
                          "1/sqrt(d), i.e. E|x|^2 = 1 as in papers/000 §7: N(0, I/2) in d = 2)", NONNEG, optional=True),
        "init_points": Field("matrix", AUTO, "explicit starting positions, N x d (overrides init_mean/init_std)",
                             optional=True),
        "masses": Field("floats", AUTO, "fixed masses p~_j of the generated points (rff/kernel discriminators; "
                        "default 1/N each)", _all_ge(0), optional=True),
    },
    "coupling": {
        "kind": Field("str", "coarse", "NTK coupling", choices=("coarse", "gram", "spatial")),
        "ratio": Field("float", AUTO, "g2/g1 with g1 + g2 (N - 1) = N (default 0 unless g1/g2 given)",
                       _between(0.0, 1.0), optional=True),
        "g1": Field("float", AUTO, "explicit diagonal NTK value (with coupling.g2)", POS, optional=True),
        "g2": Field("float", AUTO, "explicit off-diagonal NTK value (with coupling.g1)", optional=True),
        "gram": Field("str", AUTO, "Gram matrix file (.npy, .npz/.h5 key 'gram', .txt), N x N, for kind = gram",
                      optional=True),
        "gram_arch": Field("str", AUTO, "kind = gram without a file: the analytic infinite-width NTK of a relu or erf "
                           "generator at N seeds uniform on a sphere, drawn from training.seed (papers/001 SPEC §5)",
                           choices=("relu", "erf"), optional=True),
        "gram_setting": Field("str", AUTO, "gram_arch initialisation: appendix-g (one hidden layer, App. G; default), "
                              "fig2 (one hidden layer, Fig. 2) or deep (the mu-parametrised network of Fig. 21, seeds "
                              "on the sphere of radius sqrt(gram_dim))", choices=("appendix-g", "fig2", "deep"),
                              optional=True),
        "gram_dim": Field("int", AUTO, "gram_arch: latent dimension of the seeds (default 256)", _ge(2), optional=True),
        "gram_depth": Field("int", AUTO, "gram_setting = deep: hidden layers (default 6)", _ge(1), optional=True),
        "gram_mu": Field("float", AUTO, "gram_setting = deep: mu of the pre-activations mu b + sqrt((1 - mu^2)/n) W a "
                         "(default 0.5)", _between(0.0, 1.0), optional=True),
        "normalize": Field("bool", False, "rescale a Gram matrix so that 1'G1/N = N (the paper's normalisation)"),
        "length_scale": Field("float", 1.0, "data-space length scale of the spatial coupling", POS),
        "spatial_kernel": Field("str", "rbf", "data-space kernel of the spatial coupling", choices=("rbf", "laplacian")),
    },
    "discriminator": {
        "kind": Field("str", "mlp", "discriminator family: mlp (eq. 23), fourier (Algorithm 2), rff (random "
                      "Fourier features) or kernel (exact kernel, dual form) of papers/000, kde (density ratio of "
                      "kernel density estimates: papers/002 and 004)",
                      choices=("mlp", "fourier", "rff", "kernel", "kde")),
        "width": Field("int", 2048, "hidden width W", _ge(1)),
        "depth": Field("int", 1, "number of hidden layers (1: eq. 23; 4 x 512 for Figs. 3-4)", _ge(1)),
        "activation": Field("str", "relu", "hidden activation", choices=("relu", "tanh")),
        "l2": Field("float", AUTO, "L2 coefficient c of eq. 24, L += c * sum(phi^2) (default 1/width)",
                    NONNEG, optional=True),
        "init": Field("str", AUTO, "initialisation: paper (a, w ~ N(0, weight_std^2), b ~ N(0, bias_std^2)) or "
                      "glorot (uniform weights, zero biases); default paper for depth 1, glorot deeper",
                      choices=("paper", "glorot"), optional=True),
        "weight_std": Field("float", 1.0, "std of a and w in the paper initialisation", NONNEG),
        "bias_std": Field("float", 3.0, "std of b in the paper initialisation (variance 9)", NONNEG),
        "gamma": Field("str", "pow", "fourier: frequency-dependent rate gamma(|k|): pow = min(1e3, |k|^-3) (C3), "
                       "exp = 668.8 exp(-2.05 |k|) (C4), const = gamma_value", choices=("pow", "exp", "const")),
        "gamma_value": Field("float", 1.0, "fourier: the constant rate for gamma = const", POS),
        "freq_count": Field("int", 25, "fourier: log-spaced frequency values per axis", _ge(1)),
        "freq_min": Field("float", 0.01, "fourier: smallest frequency per axis", POS),
        "freq_max": Field("float", 20.0, "fourier: largest frequency per axis", POS),
        "freq_signs": Field("str", "both", "fourier: per-axis values and their negatives (both: 2 x 25 = 50 per axis, "
                            "2500 vectors in d = 2) or positive only", choices=("both", "positive")),
        "n_features": Field("int", 1024, "rff: random features per bandwidth block (cossin: half as many "
                            "frequencies, each with a cos and a sin)", _ge(1)),
        "features": Field("str", "cossin", "rff: cos(Omega x + b) features or [cos, sin] pairs (no spurious "
                          "self-force)", choices=("cos", "cossin")),
        "bandwidth": Field("number_or_floats", (1.0,), "rff/kernel: kernel width sigma, or a list of widths for a multi-scale "
                           "kernel (the sum of the kernels, papers/000 eq. 27-28); kde: the Gaussian KDE bandwidth, or "
                           "a list for an equal-weight mixture of bandwidths", _all_ge(0, strict=True)),
        "kernel": Field("str", "rbf", "kernel: rbf exp(-r^2/2s^2), laplacian exp(-r/s), rq (1 + r^2/(2 a s^2))^-a "
                        "(rff: rbf only)", choices=("rbf", "laplacian", "rq")),
        "rq_alpha": Field("float", 1.0, "kernel = rq: the exponent a", POS),
        "model": Field("str", "kernel_gan", "kde: kernel_gan (particles descend the KDE-smoothed JSD K_n of "
                       "papers/002 eq. 12) or nsgan (particles ascend log d*, d* = p_data / (p_data + p_g), papers/004)",
                       choices=("kernel_gan", "nsgan")),
        "schedule": Field("schedule", AUTO, "kde: piecewise-constant bandwidth schedule, a list of [iteration, "
                          "bandwidth] or [iteration, bandwidth, step] (bandwidth a number or a list like "
                          "discriminator.bandwidth): from each iteration on, that bandwidth (and particle step, "
                          "else training.lr_gen)", optional=True),
        "floor": Field("float", 0.0, "kde, kernel_gan: the floor phi >= 0 of eq. 12 (0 in the paper)", NONNEG),
        "data_density": Field("str", AUTO, "kde: p_data is the exact target density (a mixture with widths) or the KDE "
                              "of a fixed data sample (training.batch_size points; a point set's own points). Default: "
                              "exact for nsgan on a target with a density, else kde", choices=("exact", "kde"),
                              optional=True),
        "data_resample": Field("bool", False, "kde, data_density = kde: draw a fresh data sample of "
                               "training.batch_size points every iteration (papers/002 Algorithm 1, line 3) instead "
                               "of one fixed sample; a point set is then minibatched with replacement by mass"),
        "history": Field("int", AUTO, "kernel: capacity H of the ring buffer of past generated positions (steps); "
                         "older terms are dropped. Default: the H with (1 - lr_disc lam)^H <= 1e-6, at most 4096",
                         _ge(1), optional=True),
    },
    "training": {
        "n_iterations": Field("int", 3000, "generator steps", _ge(1)),
        "n_disc": Field("int", AUTO, "discriminator steps per generator step (default 5; rff/kernel 1 as papers/000)",
                        _ge(1), optional=True),
        "lr_disc": Field("float", AUTO, "discriminator learning rate alpha_D / eta_d (default: mlp 0.25, "
                         "fourier 0.001, rff/kernel 0.001)", NONNEG, optional=True),
        "lr_gen": Field("float", AUTO, "generator (particle) learning rate alpha_G / eta_g (default: mlp 0.01, "
                        "fourier 0.001, rff/kernel 0.001)", NONNEG, optional=True),
        "lam": Field("float", AUTO, "fourier/rff/kernel: L2 coefficient lambda of the linear discriminator, "
                     "L += (lam/2)|theta|^2 (default: fourier 1, rff/kernel 0.01 as papers/000)", NONNEG,
                     optional=True),
        "update_order": Field("str", "alternating", "alternating: the generator moves on the updated "
                              "discriminator (Algorithm 1); simultaneous: both use the state at the start of the "
                              "iteration (papers/000 eq. 9)", choices=("alternating", "simultaneous")),
        "beta": Field("float", 0.0, "gradient-regulariser strength (eq. 28-29)", NONNEG),
        "seed": Field("int", 0, "seed of the counter-based random numbers", _between(0, 2**63 - 1)),
        "batch_size": Field("int", AUTO, "target samples per discriminator step (default N)", _ge(1), optional=True),
    },
    "record": {
        "every": Field("int", 20, "record observables every this many iterations (and at 0 and the end)", _ge(1)),
        "snapshots": Field("ints_or_int", 6, "particle snapshots: a count (evenly spaced, incl. 0 and the end) "
                           "or a list of iterations"),
        "discriminator": Field("bool", True, "store discriminator parameters with every snapshot"),
        "escape_radius": Field("float", 2.0, "rff/kernel: a generated point with |x| beyond this counts as "
                               "diverging (papers/000 Fig. 3b)", POS),
        "q_modes": Field("int", AUTO, "kde: m of q_d, the (1 - 1/m) quantile over particles of |grad d / d| "
                         "(default: the target's number of modes, else 1)", _ge(1), optional=True),
        "early_stop": Field("bool", False, "kde: evaluate the early-stopping rule of papers/004 Algorithm 2 at every "
                            "record and report when it would have fired (the run is not stopped)"),
        "k_d": Field("float", AUTO, "early stop: fire when q_d > k_d / (2 stop_sigma) (default: the distance between "
                     "the two nearest modes)", POS, optional=True),
        "k_g": Field("float", -0.5, "early stop: or when the relative change of the steepness S_g drops below k_g "
                     "(d = 1 only)"),
        "warmup": Field("int", 50, "early stop: iterations before the rule may fire (N_w)", _ge(0)),
        "stop_sigma": Field("float", AUTO, "early stop: the sigma of k_d / (2 sigma) (default: the largest target "
                            "std, else the smallest initial KDE bandwidth)", POS, optional=True),
    },
}

SECTIONS = tuple(s for s in SCHEMA if s)
KNOWN_KEYS = tuple((f"{s}.{k}" if s else k) for s, fields in SCHEMA.items() for k in fields)


# --------------------------------------------------------------------------- coercion

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _coerce(key: str, field: Field, value):
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
        out = (_coerce(key, Field("float", None, ""), value),) if _is_number(value) else _floats(key, value)
    elif kind == "matrix":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(key, value, "expected a non-empty list of points (list of lists of numbers)")
        rows = [_floats(key, row) for row in value]
        if len({len(r) for r in rows}) != 1:
            raise ConfigError(key, value, "rows must all have the same length")
        out = tuple(rows)
    elif kind == "schedule":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(key, value, "expected a non-empty list of [iteration, bandwidth(, step)] entries")
        entries = []
        for e in value:
            if (not isinstance(e, (list, tuple)) or len(e) not in (2, 3) or isinstance(e[0], bool)
                    or not isinstance(e[0], int) or e[0] < 0):
                raise ConfigError(key, value, "each entry must be [iteration >= 0, bandwidth] or "
                                  "[iteration >= 0, bandwidth, step]")
            bw = _coerce(key, Field("number_or_floats", None, "", _all_ge(0, strict=True)), e[1])
            entry = (int(e[0]), bw)
            if len(e) == 3:
                entry += (_coerce(key, Field("float", None, "", POS), e[2]),)
            entries.append(entry)
        its = [e[0] for e in entries]
        if its != sorted(its) or len(set(its)) != len(its):
            raise ConfigError(key, value, "iterations must be strictly increasing")
        out = tuple(entries)
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


# --------------------------------------------------------------------------- the config object

def _section_class(name: str):
    fields = SCHEMA[name]
    cls = dataclasses.make_dataclass(
        name.capitalize() + "Config",
        [(k, Any, dataclasses.field(default=f.default)) for k, f in fields.items()],
        frozen=True,
    )
    cls.__doc__ = f"The [{name}] section. Keys: " + "; ".join(f"{k}: {f.doc}" for k, f in fields.items())
    return cls


SECTION_CLASSES = {name: _section_class(name) for name in SECTIONS}


@dataclass(frozen=True)
class Config:
    """A validated run configuration (immutable). Sections are attributes: ``cfg.training.n_disc``."""

    target: Any
    generator: Any
    coupling: Any
    discriminator: Any
    training: Any
    record: Any
    precision: str = "float32"
    backend: str = "auto"

    # ---- views
    def to_dict(self) -> dict:
        """Nested plain dict of every key (None for 'auto' keys)."""
        out: dict[str, Any] = {"precision": self.precision, "backend": self.backend}
        for name in SECTIONS:
            sec = getattr(self, name)
            out[name] = {k: _plain(getattr(sec, k)) for k in SCHEMA[name]}
        return out

    def canonical_json(self) -> str:
        """Sorted-key compact JSON of the resolved config without the backend (the run identity)."""
        d = resolved_dict(self)
        d.pop("backend", None)
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def replace(self, **dotted) -> "Config":
        """A new validated config with dotted keys replaced: ``cfg.replace(**{"training.seed": 3})``."""
        d = self.to_dict()
        for key, value in dotted.items():
            set_dotted(d, key, value)
        return from_dict(d)

    @property
    def dtype(self):
        import numpy as np
        return np.dtype(self.precision)


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


# --------------------------------------------------------------------------- building

def from_dict(data: Mapping[str, Any], *, check_files: bool = True) -> Config:
    """Validate a nested mapping into a :class:`Config` (raises :class:`ConfigError`)."""
    if not isinstance(data, Mapping):
        raise ConfigError("", data, "a configuration must be a table of sections")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in SCHEMA[""]:
            values[key] = _coerce(key, SCHEMA[""][key], value)
        elif key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(key, value, "expected a table of keys")
            for sub in value:
                if sub not in SCHEMA[key]:
                    raise ConfigError(f"{key}.{sub}", value[sub], "unknown key" + _suggest(f"{key}.{sub}"))
        else:
            raise ConfigError(key, value, "unknown key" + _suggest(key))
    sections = {}
    for name in SECTIONS:
        given = data.get(name, {}) or {}
        kw = {}
        for k, f in SCHEMA[name].items():
            kw[k] = _coerce(f"{name}.{k}", f, given[k]) if k in given else f.default
        sections[name] = SECTION_CLASSES[name](**kw)
    cfg = Config(**sections, **values)
    validate(cfg, check_files=check_files)
    return cfg


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
    if not close:
        tail = key.rsplit(".", 1)[-1]
        close = [k for k in KNOWN_KEYS if k.rsplit(".", 1)[-1] == tail]
    return f" (did you mean {close[0]}?)" if close else ""


def load_toml(path: str | os.PathLike) -> dict:
    """Read a TOML file into a dict; errors are one-line ConfigErrors naming the file."""
    try:
        with open(path, "rb") as fh:
            return _toml.load(fh)
    except FileNotFoundError:
        raise ConfigError("config", str(path), "file not found") from None
    except IsADirectoryError:
        raise ConfigError("config", str(path), "is a directory, expected a TOML file") from None
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
    return key, value


def set_dotted(d: dict, key: str, value) -> None:
    """Set ``d[a][b] = value`` for ``key = 'a.b'`` (creating the section table)."""
    parts = key.split(".")
    if len(parts) > 2:
        raise ConfigError(key, value, "unknown key" + _suggest(key))
    if len(parts) == 2:
        sec = d.setdefault(parts[0], {})
        if not isinstance(sec, dict):
            raise ConfigError(parts[0], sec, "expected a table of keys")
        sec[parts[1]] = value
    else:
        d[parts[0]] = value


def load_config(path=None, overrides=(), base: Mapping | None = None) -> Config:
    """Load a TOML file (or start from ``base``), apply ``dotted.key=value`` overrides, validate."""
    data = json.loads(json.dumps(base)) if base is not None else {}
    if path is not None:
        data = load_toml(path)
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        set_dotted(data, key, value)
    return from_dict(data)


def default_config(**dotted) -> Config:
    """The documented defaults, with optional dotted overrides (``default_config(**{"training.seed": 1})``)."""
    d: dict = {}
    for k, v in dotted.items():
        set_dotted(d, k.replace("__", "."), v)
    return from_dict(d)


# --------------------------------------------------------------------------- cross-key checks

def _target_dim(t) -> int | None:
    if t.kind in ("ring", "grid", "circle"):
        return 2
    if t.kind == "sphere":
        return 10 if t.dim is None else t.dim
    if t.kind == "mixture":
        return len(t.means[0])
    if t.kind == "points":
        return len(t.points[0])
    return None  # file: known once loaded


def validate(cfg: Config, *, check_files: bool = True) -> None:
    """Checks that involve more than one key."""
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
        k = t.n_modes or (4 if t.kind == "circle" else 10)
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
    d = _target_dim(t)
    g = cfg.generator
    if g.init_mean is not None and d is not None and len(g.init_mean) != d:
        raise ConfigError("generator.init_mean", list(g.init_mean), f"needs {d} entries (the target dimension)")
    if g.init_points is not None:
        if len(g.init_points) != g.n_particles:
            raise ConfigError("generator.init_points", len(g.init_points),
                              f"needs generator.n_particles = {g.n_particles} rows")
        if d is not None and len(g.init_points[0]) != d:
            raise ConfigError("generator.init_points", list(g.init_points[0]), f"rows need {d} entries (the target dimension)")
    _validate_discriminator(cfg, d)

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

    tr = cfg.training
    r = cfg.record
    if isinstance(r.snapshots, tuple) and r.snapshots and r.snapshots[-1] > tr.n_iterations:
        raise ConfigError("record.snapshots", list(r.snapshots), f"iterations must be <= training.n_iterations = {tr.n_iterations}")
    if check_files:
        # Loading checks the file's shape and contents; the error names the key.
        from . import couplings, targets
        targets.make_target(cfg)
        if c.kind == "gram" and c.gram_arch is None:
            couplings.load_gram(c.gram, g.n_particles, key="coupling.gram")


GRAM_SPEC_KEYS = ("gram_setting", "gram_dim", "gram_depth", "gram_mu")


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


def _validate_discriminator(cfg: Config, d: int | None) -> None:
    """Keys that only some discriminator families take, and their cross-key limits."""
    disc, tr, g, t = cfg.discriminator, cfg.training, cfg.generator, cfg.target
    kind = disc.kind
    if kind != "mlp" and tr.beta > 0:
        raise ConfigError("training.beta", tr.beta, f"the gradient regulariser is defined for mlp discriminators, "
                          f"not discriminator.kind = {kind}")
    if kind == "mlp" and tr.lam is not None:
        raise ConfigError("training.lam", tr.lam, "mlp discriminators take discriminator.l2 (eq. 24), not training.lam")
    if g.masses is not None:
        if kind not in ("rff", "kernel"):
            raise ConfigError("generator.masses", list(g.masses), "only rff and kernel discriminators weigh generated "
                              "points by masses")
        if len(g.masses) != g.n_particles:
            raise ConfigError("generator.masses", list(g.masses), f"needs generator.n_particles = {g.n_particles} entries")
    if kind == "fourier" and d is not None:
        per_axis = disc.freq_count * (2 if disc.freq_signs == "both" else 1)
        if per_axis ** d > 200_000:
            raise ConfigError("discriminator.freq_count", disc.freq_count,
                              f"a {d}-dimensional product grid of {per_axis} values per axis has {per_axis ** d} "
                              "frequency vectors (limit 200000)")
        if disc.freq_min > disc.freq_max:
            raise ConfigError("discriminator.freq_min", disc.freq_min, f"must be <= discriminator.freq_max = {disc.freq_max}")
    if kind == "rff":
        if disc.kernel != "rbf":
            raise ConfigError("discriminator.kernel", disc.kernel, "random Fourier features sample the rbf kernel only "
                              "(use discriminator.kind = kernel for laplacian or rq)")
        if disc.features == "cossin" and disc.n_features % 2:
            raise ConfigError("discriminator.n_features", disc.n_features, "[cos, sin] pairs need an even count")
    if kind == "kde":
        _validate_kde(cfg)
    else:
        if disc.schedule is not None:
            raise ConfigError("discriminator.schedule", _plain(disc.schedule), "only kde discriminators take a "
                              "bandwidth schedule")
        if disc.data_resample:
            raise ConfigError("discriminator.data_resample", True, "only kde discriminators hold a data sample "
                              "(the other families draw target samples every step already)")
    if kind in ("rff", "kernel"):
        std = max(_component_stds(t))
        if std > 0:
            raise ConfigError("target.std", std, f"discriminator.kind = {kind} uses the target's points exactly "
                              "(isolated points model): set target.std = 0 or use a points/circle/sphere target")


DEFAULT_STD = {"ring": 0.02, "grid": 0.05, "mixture": 0.02, "points": 0.0, "circle": 0.0, "sphere": 0.0}


def _component_stds(t) -> tuple:
    """The widths of the target's components as the target will have them (a mixture's stds, else
    target.std or the kind's default)."""
    if t.kind == "mixture" and t.stds is not None:
        return tuple(t.stds)
    return (t.std if t.std is not None else DEFAULT_STD.get(t.kind, 0.0),)


def _target_has_density(t) -> bool | None:
    """Whether every component of the target has a width (None: a file, known once loaded)."""
    if t.kind == "file":
        return None
    return min(_component_stds(t)) > 0


def _validate_kde(cfg: Config) -> None:
    disc, tr = cfg.discriminator, cfg.training
    if tr.lam is not None:
        raise ConfigError("training.lam", tr.lam, "kde discriminators have no trained parameters to regularise")
    S = len(disc.bandwidth)
    for it, bw, *_ in disc.schedule or ():
        if len(bw) != S:
            raise ConfigError("discriminator.schedule", _plain(disc.schedule),
                              f"every bandwidth needs {S} entries, as discriminator.bandwidth")
    if disc.data_density == "exact":
        if disc.model != "nsgan":
            raise ConfigError("discriminator.data_density", "exact", "kernel_gan compares the KDEs of data and "
                              "particles (eq. 12): use data_density = kde or model = nsgan")
        if _target_has_density(cfg.target) is False:
            raise ConfigError("discriminator.data_density", "exact", f"target.kind = {cfg.target.kind} has no density "
                              "(zero-width points): use data_density = kde")
    density = disc.data_density or ("exact" if disc.model == "nsgan" and _target_has_density(cfg.target) else "kde")
    if disc.data_resample and density == "exact":
        raise ConfigError("discriminator.data_resample", True, "p_data is the exact target density here (no sample "
                          "to redraw): set discriminator.data_density = kde")


# --------------------------------------------------------------------------- resolution

def resolved_dict(cfg: Config) -> dict:
    """``cfg.to_dict()`` with every 'auto' value replaced by what the simulator uses."""
    d = cfg.to_dict()
    t, g, c, disc, tr = d["target"], d["generator"], d["coupling"], d["discriminator"], d["training"]
    if t["n_modes"] is None:
        t["n_modes"] = {"ring": 8, "grid": 25, "circle": 4, "sphere": 10}.get(t["kind"])
    if t["std"] is None:
        t["std"] = DEFAULT_STD.get(t["kind"])
    if t["radius"] is None:
        t["radius"] = 2.0 if t["kind"] == "ring" else 1.0
    if t["dim"] is None and t["kind"] == "sphere":
        t["dim"] = 10
    kind = disc["kind"]
    linear = kind in ("rff", "kernel")
    if g["init_std"] is None:
        dim = _target_dim(cfg.target)
        g["init_std"] = 1.0 / math.sqrt(dim) if (linear and dim) else 0.1
    if g["masses"] is None and linear:
        g["masses"] = [1.0 / g["n_particles"]] * g["n_particles"]
    if tr["n_disc"] is None:
        tr["n_disc"] = 1 if (linear or kind == "kde") else 5
    if tr["lr_disc"] is None:
        tr["lr_disc"] = {"mlp": 0.25, "fourier": FOURIER_LR_DISC, "kde": 0.0}.get(kind, 1e-3)
    if tr["lr_gen"] is None:
        tr["lr_gen"] = kde_default_step(cfg) if kind == "kde" else {"mlp": 0.01, "fourier": FOURIER_LR_GEN}.get(kind, 1e-3)
    if kind == "kde":
        if disc["data_density"] is None:
            disc["data_density"] = "exact" if (disc["model"] == "nsgan" and _target_has_density(cfg.target)) else "kde"
        r = d["record"]
        if r["q_modes"] is None:
            r["q_modes"] = t["n_modes"] or (len(t["means"]) if t["means"] else None) or \
                (len(t["points"]) if t["points"] else 1)
    else:
        for key in ("q_modes", "early_stop", "k_d", "k_g", "warmup", "stop_sigma"):
            d["record"][key] = None          # kde-only record keys: not part of other runs' identity
    if tr["lam"] is None and kind not in ("mlp", "kde"):
        tr["lam"] = FOURIER_LAM if kind == "fourier" else 0.01
    if disc["history"] is None and kind == "kernel":
        disc["history"] = default_history(tr["lr_disc"], tr["lam"])
    if g["init_mean"] is None and g["init_points"] is None:
        if t["kind"] == "ring":
            g["init_mean"] = [t["radius"] * math.cos(math.pi / 4), t["radius"] * math.sin(math.pi / 4)]
        else:
            dim = _target_dim(cfg.target)
            g["init_mean"] = [0.0] * dim if dim is not None else None
    mine = FAMILY_KEYS[kind] + (("rq_alpha",) if kind == "kernel" and disc["kernel"] == "rq" else ())
    for keys in FAMILY_KEYS.values():
        for key in keys:
            if key not in mine:
                disc[key] = None   # another family's key: not part of this run's identity
    if not disc["data_resample"]:
        del disc["data_resample"]  # not part of the identity of runs with a fixed (or no) data sample
    g1, g2 = coupling_constants(cfg)
    c["g1"], c["g2"] = g1, g2
    if c["gram_arch"] is None:
        for key in ("gram_arch",) + GRAM_SPEC_KEYS:
            del c[key]               # not part of the identity of runs without an analytic Gram coupling
    else:
        c.update(gram_spec(cfg))
    if disc["l2"] is None and kind == "mlp":
        disc["l2"] = 1.0 / disc["width"]
    if disc["init"] is None and kind == "mlp":
        disc["init"] = "paper" if disc["depth"] == 1 else "glorot"
    if tr["batch_size"] is None:
        tr["batch_size"] = g["n_particles"]
    return d


FAMILY_KEYS = {   # discriminator keys each family reads (others are dropped from its resolved config)
    "mlp": ("width", "depth", "activation", "l2", "init", "weight_std", "bias_std"),
    "fourier": ("gamma", "gamma_value", "freq_count", "freq_min", "freq_max", "freq_signs"),
    "rff": ("n_features", "features", "bandwidth", "kernel"),
    "kernel": ("bandwidth", "kernel", "history"),
    "kde": ("bandwidth", "model", "schedule", "floor", "data_density", "data_resample"),
}


def kde_default_step(cfg: Config) -> float:
    """The default particle step of a kde run (papers/002 and 004 train networks with adaptive
    optimisers and state no particle step). Stable across the whole bandwidth schedule, with
    sigma the smallest bandwidth it reaches:
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
        widths = [w for w in _component_stds(cfg.target) if w > 0]
        if widths:
            sig = min(sig, min(widths))
    return sig * sig / 4
FOURIER_LR_DISC = 1e-3    # Algorithm 2 rates (not stated in papers/001; calibrated, see README)
FOURIER_LR_GEN = 1e-3
FOURIER_LAM = 1.0
HISTORY_TOL = 1e-6        # kernel history: drop terms whose decay weight is below this
HISTORY_MAX = 4096


def default_history(lr_disc: float, lam: float) -> int:
    """Ring-buffer capacity H with (1 - lr_disc lam)^H <= HISTORY_TOL, at most HISTORY_MAX."""
    beta = 1.0 - lr_disc * lam
    if beta <= 0.0:
        return 1
    if beta >= 1.0:
        return HISTORY_MAX
    return int(min(HISTORY_MAX, max(1, math.ceil(math.log(HISTORY_TOL) / math.log(beta)))))


def coupling_constants(cfg: Config) -> tuple[float, float]:
    """(g1, g2): explicit values, or from the ratio r with g1 + g2 (N - 1) = N (Appendix A)."""
    c = cfg.coupling
    if c.g1 is not None:
        return float(c.g1), float(c.g2)
    r = 0.0 if c.ratio is None else float(c.ratio)
    n = cfg.generator.n_particles
    g1 = n / (1.0 + r * (n - 1))
    return g1, r * g1


def gram_spec(cfg: Config) -> dict:
    """The resolved analytic Gram coupling: gram_arch, gram_setting, gram_dim and, for deep, gram_depth
    and gram_mu (``coupling.gram_arch`` must be set)."""
    c = cfg.coupling
    setting = c.gram_setting or "appendix-g"
    deep = setting == "deep"
    return {"gram_arch": c.gram_arch, "gram_setting": setting, "gram_dim": c.gram_dim or 256,
            "gram_depth": (6 if c.gram_depth is None else c.gram_depth) if deep else None,
            "gram_mu": (0.5 if c.gram_mu is None else c.gram_mu) if deep else None}


def describe_keys() -> str:
    """Human-readable table of every key, its type, default and meaning."""
    lines = []
    for sec, fields in SCHEMA.items():
        for k, f in fields.items():
            name = f"{sec}.{k}" if sec else k
            default = "auto" if f.default is None else json.dumps(_plain(f.default))
            choice = f" ({'|'.join(f.choices)})" if f.choices else ""
            lines.append(f"{name:28s} {f.kind:11s} default {default:9s} {f.doc}{choice}")
    return "\n".join(lines)
