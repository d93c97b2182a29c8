"""Phase-diagram sweeps, the spec and the plan: a spec (base config + axes + replicates) turned into
runs and packed into ensembles (``fastgan.sweep`` executes them, ``sweep_store`` keeps the results).

Spec (TOML), the public contract::

    [sweep]
    name = "relu-phase"
    replicates = 2                      # seeds training.seed + 0, 1, ... (the same for every grid point)
    base = "examples/relu.toml"         # a path (relative to the spec file) or an inline [sweep.base] table
    observables = ["mode_collapse"]     # optional: the scalar observables kept (default: all)
    snapshots = false                   # optional: also keep the particle snapshots (record.snapshots of the base)
    max_ensemble = 64                   # optional: runs per ensemble at most
    memory_mb = 1024                    # optional: state memory per ensemble at most
    [[sweep.axes]]
    key = "coupling.ratio"
    logspace = [-2.0, 0.0, 8]           # or values = [...], linspace / geomspace = [start, stop, count],
                                        # int_logspace = [start, stop, count] (unique integers, e.g. n_disc)
    zip = "a"                           # optional: axes with the same label vary together (one dimension)

Checked before any axis or run is built (one line ``KEY = VALUE: reason`` each): generator arguments
are finite numbers and an integer count >= 1; logspace exponents give positive finite float64 values
(about [-323, 308]); geomspace bounds are > 0; int_logspace bounds lie in [1, 2**53] and its rounded
values are kept once each, ascending (the count is the most it gives: [1, 4, 8] gives 1, 2, 3, 4).
Any other value repeated on an axis (or a tuple repeated in a zip group) is an error, as is a key
swept twice. The runs (the product of the axis lengths times the replicates) are bounded
arithmetically by ``RUNS_LIMIT`` (``FASTGAN_ALLOW_HUGE=1`` lifts it, never the memory the plan takes).
The name is a label (printable, path separators allowed: it names no file), ``memory_mb`` lies in
(0, 2**30], ``max_ensemble`` in [1, RUNS_LIMIT], ``replicates`` >= 1 (times the grid: above), refine's threshold and tol are
finite and its metric an observable the runs record.

A run's identity is its config's run id; the sweep's identity (checked when an output folder is
reused) is its name, its base config and its axis keys: extending an axis's values or the number
of replicates adds runs to the same sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .config import load_toml, parse_override, set_dotted, suggest
from .errors import ConfigError, FastganError
from .resources import RUNS_LIMIT, allow_huge, available_memory
from .runconfig import from_dict, schema

SPEC_KEYS = ("name", "replicates", "base", "axes", "observables", "snapshots", "max_ensemble", "memory_mb", "dask",
             "refine", "window")
REFINE_KEYS = ("axis", "metric", "threshold", "tol", "max_evals")
DASK_KEYS = ("jobqueue", "jobs", "cores", "memory", "processes", "walltime", "queue", "account", "job_extra")
JOBQUEUES = {"slurm": "SLURMCluster", "sge": "SGECluster", "pbs": "PBSCluster"}
AXIS_KEYS = ("key", "values", "linspace", "logspace", "geomspace", "int_logspace", "zip")
GENERATORS = ("values", "linspace", "logspace", "geomspace", "int_logspace")


class SweepError(FastganError):
    """A bad sweep spec or output folder (one line, exit status 2)."""


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple
    zip: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: its grid index (one entry per dimension), replicate and config."""

    index: tuple
    replicate: int
    config: object

    @property
    def run_id(self) -> str:
        return self.config.run_id


@dataclass
class Sweep:
    """A parsed, validated sweep.

    dims: dimension names (an axis key, or the first key of a zip group); coords: {dim: values};
    extra_coords: {key: (dim, values)} for the other keys of zip groups; runs: every RunSpec.
    """

    name: str
    base: dict
    axes: list
    replicates: int
    observables: tuple | None
    max_ensemble: int
    memory_mb: float
    dask: dict | None = None
    snapshots: bool = False
    refine: dict | None = None
    window: dict | None = None
    dims: list = field(default_factory=list)
    coords: dict = field(default_factory=dict)
    extra_coords: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)

    @property
    def identity(self) -> str:
        """Hash of what makes two specs the same sweep (name, base config, axis keys and grouping)."""
        base = json.loads(from_dict(self.base, check_files=False).canonical_json())
        key = json.dumps({"name": self.name, "base": base, "axes": [[a.key, a.zip] for a in self.axes]},
                         sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def shape(self) -> tuple:
        return tuple(len(self.coords[d]) for d in self.dims) + (self.replicates,)

    def spec_json(self) -> str:
        """The parsed spec as JSON; ``parse_spec({"sweep": json.loads(...)})`` rebuilds the same sweep."""
        doc = {"name": self.name, "base": self.base, "replicates": self.replicates, "refine": self.refine,
               "window": self.window, "snapshots": self.snapshots, "dask": self.dask,
               "axes": [{"key": a.key, "values": list(a.values), **({"zip": a.zip} if a.zip else {})}
                        for a in self.axes],
               "observables": list(self.observables) if self.observables else None,
               "max_ensemble": self.max_ensemble, "memory_mb": self.memory_mb}
        return json.dumps({k: v for k, v in doc.items() if v is not None}, sort_keys=True)


# --------------------------------------------------------------------------- parsing

NAME_MAX = 256               # characters of a sweep name (a label in files and on the progress line)
MAX_ENSEMBLE_MAX = RUNS_LIMIT
MEMORY_MB_MAX = 2 ** 30      # 1 PiB of state per ensemble: anything above is a typo
MAX_EVALS_MAX = 1000         # bisection in float64 cannot use more evaluations per line than this
INT_LOGSPACE_MAX = 2 ** 53   # int_logspace bounds: integers exact in float64
RUN_BYTES = 4096             # memory of one planned run (its RunSpec and resolved config), measured ~4.3 KB


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(key: str, value, reason: str) -> SweepError:
    """The one-line error ``KEY = VALUE: reason``."""
    return SweepError(f"{key} = {_short(value)}: {reason}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _too_many(n: int) -> str | None:
    """Why ``n`` runs cannot be planned (None: they can): above RUNS_LIMIT without FASTGAN_ALLOW_HUGE,
    and never more than the memory their plan would take."""
    if n > RUNS_LIMIT and not allow_huge():
        return f"more than {RUNS_LIMIT} runs; set FASTGAN_ALLOW_HUGE=1 to plan it anyway"
    if n * RUN_BYTES > available_memory():
        return f"its plan alone needs ~{n * RUN_BYTES / 2 ** 30:.3g} GiB, more than the memory available"
    return None


def _axis_head(i: int, ax) -> tuple:
    """(key, generator, its argument, number of values or None when only building tells (int_logspace))
    of one [[sweep.axes]] table, every argument checked; nothing is built."""
    where = f"sweep.axes[{i}]"
    if not isinstance(ax, dict):
        raise _bad(where, ax, "expected a table (with key and one of " + ", ".join(GENERATORS) + ")")
    unknown = [k for k in ax if k not in AXIS_KEYS]
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", ax[unknown[0]], f"unknown axis key (expected one of {', '.join(AXIS_KEYS)})")
    key = ax.get("key")
    if not isinstance(key, str) or not key:
        raise _bad(f"{where}.key", key, "every axis needs the dotted config key it sweeps")
    z = ax.get("zip")
    if z is not None and (not isinstance(z, str) or not z):
        raise _bad(f"{where}.zip", z, "expected a label (a non-empty string)")
    gens = [g for g in GENERATORS if g in ax]
    if len(gens) != 1:
        raise _bad(f"{where}.key", key, f"give exactly one of {', '.join(GENERATORS)} for this axis"
                   + (f" (not {' and '.join(gens)})" if gens else ""))
    g, v = gens[0], ax[gens[0]]
    at = f"{where}.{g}"
    if g == "values":
        if not isinstance(v, list) or not v:
            raise _bad(at, v, f"expected a non-empty list ({key})")
        return key, g, v, len(v)
    if not isinstance(v, list) or len(v) != 3:
        raise _bad(at, v, f"expected [start, stop, count] ({key})")
    a, b, n = v
    for name, t in (("start", a), ("stop", b)):
        if not _is_number(t) or not math.isfinite(t):
            raise _bad(at, v, f"the {name} must be a finite number ({key})")
    if isinstance(n, bool) or not isinstance(n, int):
        raise _bad(at, v, f"the count must be an integer ({key})")
    if n < 1:
        raise _bad(at, v, f"the count must be >= 1 (an empty axis) ({key})")
    why = _too_many(n)
    if why:
        raise _bad(at, v, f"{n} values on one axis: {why} ({key})")
    a, b = float(a), float(b)
    if g == "linspace" and not math.isfinite(b - a):
        raise _bad(at, v, f"stop - start overflows float64 ({key})")
    if g == "logspace":
        for name, t in (("start", a), ("stop", b)):
            try:
                ok = 0.0 < 10.0 ** t < math.inf
            except OverflowError:
                ok = False
            if not ok:
                raise _bad(at, v, f"10 ** {name} is not a positive finite float64 (exponents lie in about "
                           f"[-323, 308]) ({key})")
    if g == "geomspace" and not (a > 0 and b > 0):
        raise _bad(at, v, f"start and stop must be > 0 ({key})")
    if g == "int_logspace":
        if not (1 <= a <= INT_LOGSPACE_MAX and 1 <= b <= INT_LOGSPACE_MAX):
            raise _bad(at, v, f"start and stop must lie in [1, 2**53] ({key})")
        return key, g, v, None
    return key, g, v, n


def _axis_values(i: int, ax: dict, head: tuple | None = None) -> tuple:
    """The values of one [[sweep.axes]] table (every argument checked first; ``head``: its
    :func:`_axis_head` when already known). int_logspace keeps each rounded integer once, ascending
    (a count of 8 over [1, 4] gives 1, 2, 3, 4); any other repeated value is an error (on a zipped axis,
    a repeated tuple of its group: see :func:`parse_spec`)."""
    key, g, v, _ = head or _axis_head(i, ax)
    at = f"sweep.axes[{i}].{g}"
    if g == "values":
        out = tuple(v)
    else:
        a, b, n = float(v[0]), float(v[1]), v[2]
        try:
            with np.errstate(all="raise"):
                if g == "linspace":
                    arr = np.linspace(a, b, n)
                elif g == "logspace":
                    arr = np.logspace(a, b, n)
                else:
                    arr = np.geomspace(a, b, n)
                    if g == "int_logspace":
                        return tuple(int(t) for t in np.unique(np.round(arr).astype(np.int64)))
        except FloatingPointError as exc:
            raise _bad(at, v, f"not representable in float64 ({exc}) ({key})") from None
        if not np.isfinite(arr).all():
            raise _bad(at, v, f"gives values that are not finite ({key})")
        out = tuple(float(t) for t in arr)
    dup = None if ax.get("zip") else _first_duplicate(out)      # a zipped axis: its group's tuples are checked
    if dup is not None:
        raise _bad(at, v, f"{key} = {_short(dup)} appears twice on this axis (each value is one grid line)")
    return out


def _identity_of(value):
    """A hashable stand-in for an axis value: equal numbers are one value (1 == 1.0), booleans apart."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float, str)):
        return ("scalar", value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_identity_of(x) for x in value))
    return ("other", repr(value))


def _first_duplicate(values):
    """The first value that occurs twice in ``values`` (None if none does)."""
    seen = set()
    for x in values:
        k = _identity_of(x)
        if k in seen:
            return x
        seen.add(k)
    return None


def _int_field(spec, key, default, lo, hi=None):
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        raise _bad(f"sweep.{key}", v, f"expected an integer >= {lo}" if hi is None else
                   f"expected an integer in [{lo}, {hi}]")
    return v


def _name(name) -> str:
    """The sweep's name: a label (HDF5 attributes, the progress line; never a file name), so any printable
    text, path separators included, but no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise _bad("sweep.name", name, "expected a non-empty string")
    if len(name) > NAME_MAX:
        raise _bad("sweep.name", name, f"longer than {NAME_MAX} characters")
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise _bad("sweep.name", name, f"contains the control character {bad!r}")
    return name


def _base(base, spec_dir: str) -> dict:
    if isinstance(base, str):
        path = base if os.path.isabs(base) else os.path.join(spec_dir, base)
        if not os.path.isfile(path) and os.path.isfile(base):
            path = base
        if not base or not os.path.exists(path):
            raise _bad("sweep.base", base, "file not found")
        try:
            base = load_toml(path)
        except ConfigError as exc:
            raise _bad("sweep.base", base, exc.message) from None
    if not isinstance(base, dict):
        raise _bad("sweep.base", base, "expected a config file path or an inline table")
    odd = _not_plain(base, "sweep.base")
    if odd:
        raise _bad(*odd, "expected a number, string, boolean, list or table (a TOML date or time is no config value)")
    return base


def _not_plain(value, where: str):
    """(where, value) of the first value inside ``value`` that JSON cannot hold (a TOML date), or None."""
    if isinstance(value, dict):
        items = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None if value is None or isinstance(value, (str, int, float)) else (where, value)
    return next(filter(None, (_not_plain(v, w) for w, v in items)), None)


def _grid_size(dims: list, replicates: int, exact: bool) -> None:
    """Refuse a grid of too many runs; ``dims``: [(dimension, length or None)], a None length counted as 1
    (a lower bound, checked before anything is built)."""
    runs = math.prod(n or 1 for _, n in dims) * replicates
    why = _too_many(runs)
    if why:
        sizes = " x ".join([f"{n} ({d})" for d, n in dims if n] + [f"{replicates} replicates"])
        raise _bad("sweep.replicates", replicates, f"the grid has {'' if exact else 'at least '}{runs} runs "
                   f"({sizes}): {why}")


def parse_spec(data: dict, spec_dir: str = ".") -> Sweep:
    """Validate a spec mapping (the TOML document) into a :class:`Sweep` with its runs. Every value is
    checked, and the number of runs bounded, before any axis or run is built."""
    if not isinstance(data, dict) or set(data) != {"sweep"} or not isinstance(data["sweep"], dict):
        extra = [k for k in (data if isinstance(data, dict) else {}) if k != "sweep"]
        raise _bad(extra[0] if extra else "sweep", data[extra[0]] if extra else (data or {}).get("sweep"),
                   "a sweep spec is one [sweep] table (with [[sweep.axes]] and an optional [sweep.base])")
    s = data["sweep"]
    unknown = [k for k in s if k not in SPEC_KEYS]
    if unknown:
        raise _bad(f"sweep.{unknown[0]}", s[unknown[0]], "unknown key" + suggest(unknown[0], SPEC_KEYS)
                   + f" (expected one of {', '.join(SPEC_KEYS)})")
    name = _name(s.get("name", "sweep"))
    replicates = _int_field(s, "replicates", 1, 1)             # bounded with the grid, below
    max_ensemble = _int_field(s, "max_ensemble", 64, 1, MAX_ENSEMBLE_MAX)
    memory_mb = s.get("memory_mb", 1024)
    if not _is_number(memory_mb) or not 0 < memory_mb <= MEMORY_MB_MAX:
        raise _bad("sweep.memory_mb", memory_mb, f"expected a number > 0 and <= {MEMORY_MB_MAX} (MiB)")
    obs = s.get("observables")
    if obs is not None and (not isinstance(obs, list) or not obs or not all(isinstance(o, str) for o in obs)):
        raise _bad("sweep.observables", obs, "expected a non-empty list of observable names")
    if obs is not None and _first_duplicate(obs) is not None:
        raise _bad("sweep.observables", obs, f"{_first_duplicate(obs)!r} is listed twice")
    axes_in = s.get("axes")
    if not isinstance(axes_in, list) or not axes_in:
        raise _bad("sweep.axes", axes_in, "a sweep needs at least one [[sweep.axes]] table")
    heads = [_axis_head(i, ax) for i, ax in enumerate(axes_in)]
    keys = [h[0] for h in heads]
    for j, k in enumerate(keys):
        if k in keys[:j]:
            raise _bad(f"sweep.axes[{j}].key", k, f"swept twice (also by sweep.axes[{keys.index(k)}])")
    if "training.seed" in keys and replicates > 1:
        raise _bad("sweep.replicates", replicates, "replicates derive training.seed; do not also sweep it")
    dims: dict = {}                                      # {dimension: [(axis index, length or None)]}
    for i, ((key, _, _, n), ax) in enumerate(zip(heads, axes_in)):
        dims.setdefault(ax.get("zip") or ("", key), []).append((i, n))
    lengths = []
    for members in dims.values():
        known = {n for _, n in members if n is not None}
        if len(known) > 1:
            _zip_mismatch(axes_in, [i for i, _ in members], sorted(known))
        lengths.append((keys[members[0][0]], known.pop() if known else None))
    _grid_size(lengths, replicates, exact=all(n is not None for _, n in lengths))
    axes = [Axis(h[0], _axis_values(i, ax, h), ax.get("zip")) for i, (h, ax) in enumerate(zip(heads, axes_in))]
    groups = _groups(axes)
    _grid_size([(d, len(m[0].values)) for d, m in groups], replicates, exact=True)
    for d, members in groups:
        if len(members) > 1:
            dup = _first_duplicate(list(zip(*(m.values for m in members))))
            if dup is not None:
                raise _bad(f"sweep.axes[{keys.index(d)}].zip", members[0].zip, f"the zipped axes "
                           f"{', '.join(m.key for m in members)} give {_short(list(dup))} twice")
    sw = Sweep(name=name, base=_base(s.get("base", {}), spec_dir), axes=axes, replicates=replicates,
               observables=tuple(obs) if obs else None, max_ensemble=max_ensemble, memory_mb=float(memory_mb),
               dask=_dask_section(s.get("dask")), refine=_refine_section(s.get("refine"), keys),
               window=_window_section(s.get("window")), snapshots=_snapshots(s.get("snapshots", False), keys))
    _build(sw)
    from .observables import COSINE_SCALARS, SCALARS, records_cosine
    recorded = set(SCALARS).union(*{r.config.resolved.family.observables for r in sw.runs})
    if any(records_cosine(r.config.resolved.dim) for r in sw.runs):
        recorded |= set(COSINE_SCALARS)
    if sw.observables:
        unknown = [o for o in sw.observables if o not in recorded]
        if unknown:
            raise _bad("sweep.observables", list(sw.observables), f"{unknown[0]!r} is not an observable of these "
                       f"runs{suggest(unknown[0], sorted(recorded))} (known: {', '.join(sorted(recorded))})")
    metric = sw.refine["metric"]
    if metric not in recorded:
        raise _bad("sweep.refine.metric", metric, f"not an observable these runs record"
                   f"{suggest(metric, sorted(recorded))} (known: {', '.join(sorted(recorded))})")
    return sw


def _zip_mismatch(axes_in, members, lengths):
    labels = {axes_in[i].get("zip") for i in members}
    raise _bad(f"sweep.axes[{members[0]}].zip", labels.pop(), f"the zipped axes "
               f"{', '.join(axes_in[i]['key'] for i in members)} have different lengths {lengths}")


def _snapshots(v, keys) -> bool:
    if not isinstance(v, bool):
        raise _bad("sweep.snapshots", v, "expected true or false")
    clash = [k for k in keys if k in ("generator.n_particles", "record.snapshots", "training.n_iterations")]
    if v and clash:
        raise _bad("sweep.snapshots", v, f"every run must share its snapshot shape, but {clash[0]} is swept")
    return v


def _refine_section(d, keys):
    """[sweep.refine]: the axis bisected by ``--refine`` (default the first), the metric (default
    mode_collapse; checked against the runs' observables once they are built), its threshold (default
    ½ log K), the bracket tolerance (relative on a geometric axis) and the evaluations per line at most.
    Whether the axis can be bisected (numeric, two values or more, not zipped) is checked by ``--refine``
    (a plain sweep never reads it, and folders made before that check must still open)."""
    d = {} if d is None else d
    if not isinstance(d, dict):
        raise _bad("sweep.refine", d, "expected a table")
    unknown = [k for k in d if k not in REFINE_KEYS]
    if unknown:
        raise _bad(f"sweep.refine.{unknown[0]}", d[unknown[0]], "unknown key" + suggest(unknown[0], REFINE_KEYS)
                   + f" (expected one of {', '.join(REFINE_KEYS)})")
    out = {"axis": d.get("axis", keys[0]), "metric": d.get("metric", "mode_collapse"),
           "threshold": d.get("threshold"), "tol": d.get("tol", 0.05), "max_evals": d.get("max_evals", 12)}
    if out["axis"] not in keys:
        raise _bad("sweep.refine.axis", out["axis"], f"not a swept key ({', '.join(keys)})")
    if not isinstance(out["metric"], str) or not out["metric"]:
        raise _bad("sweep.refine.metric", out["metric"], "expected the name of an observable")
    t = out["threshold"]
    if t is not None and (not _is_number(t) or not math.isfinite(t)):
        raise _bad("sweep.refine.threshold", t, "expected a finite number")
    t = out["tol"]
    if not _is_number(t) or not 0 < t < math.inf:
        raise _bad("sweep.refine.tol", t, "expected a finite number > 0")
    m = out["max_evals"]
    if isinstance(m, bool) or not isinstance(m, int) or not 3 <= m <= MAX_EVALS_MAX:
        raise _bad("sweep.refine.max_evals", m, f"expected an integer in [3, {MAX_EVALS_MAX}]")
    return out


def _window_section(d):
    """[sweep.window]: the time average T ± offsets (``centre`` default: the latest iteration that
    has the whole window recorded; ``offsets`` default 20 n, n = -3..3, as in Durr et al.)."""
    if d is None:
        return None
    if not isinstance(d, dict) or any(k not in ("centre", "offsets") for k in d):
        raise _bad("sweep.window", d, "expected a table with centre and/or offsets")
    c, offs = d.get("centre"), d.get("offsets")
    if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 0):
        raise _bad("sweep.window.centre", c, "expected an iteration >= 0")
    if offs is not None and (not isinstance(offs, list) or not offs or
                             not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
        raise _bad("sweep.window.offsets", offs, "expected a non-empty list of integers")
    return {"centre": c, "offsets": offs}


def _dask_section(d):
    """[sweep.dask]: a dask-jobqueue cluster (used with ``--dask jobqueue``)."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise _bad("sweep.dask", d, "expected a table")
    unknown = [k for k in d if k not in DASK_KEYS]
    if unknown:
        raise _bad(f"sweep.dask.{unknown[0]}", d[unknown[0]], "unknown key" + suggest(unknown[0], DASK_KEYS)
                   + f" (expected one of {', '.join(DASK_KEYS)})")
    if not isinstance(d.get("jobqueue"), str) or d.get("jobqueue") not in JOBQUEUES:
        raise _bad("sweep.dask.jobqueue", d.get("jobqueue"), f"expected one of {', '.join(JOBQUEUES)}")
    for key in ("jobs", "cores", "processes"):
        v = d.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10 ** 6:
            raise _bad(f"sweep.dask.{key}", v, "expected an integer in [1, 1000000]")
    return dict(d)


def load_spec(path: str, overrides=()) -> Sweep:
    """The sweep of the spec file at ``path``; ``overrides`` (``key=value`` texts, as ``--set``) change
    its base config (a base given as a file is read first; the file itself is not changed)."""
    try:
        data = load_toml(path)
    except ConfigError as exc:
        raise SweepError(str(exc).replace("config = ", "spec = ")) from None
    spec_dir = os.path.dirname(os.path.abspath(path))
    if overrides and isinstance(data.get("sweep"), dict):
        base = json.loads(json.dumps(_base(data["sweep"].get("base", {}), spec_dir)))
        for text in overrides:
            try:
                key, value = parse_override(text)
            except ConfigError as exc:
                raise SweepError(str(exc)) from None
            _set(base, key, value)
        data = dict(data, sweep=dict(data["sweep"], base=base))
    return parse_spec(data, spec_dir)


def _groups(axes):
    """Dimensions: [(dim name, [axes])], zip groups merged in order of first appearance."""
    out, seen = [], {}
    for a in axes:
        if a.zip is None:
            out.append((a.key, [a]))
        elif a.zip in seen:
            seen[a.zip][1].append(a)
        else:
            seen[a.zip] = (a.key, [a])
            out.append(seen[a.zip])
    for dim, members in out:
        lens = {len(m.values) for m in members}
        if len(lens) > 1:
            raise _bad("sweep.axes.zip", members[0].zip, f"the zipped axes {', '.join(m.key for m in members)} have "
                       f"different lengths {sorted(lens)}")
    return out


def _build(sw: Sweep) -> None:
    """Every run of the grid, each built and checked by :func:`make_config` (the one way a config is made)."""
    groups = _groups(sw.axes)
    sw.dims = [d for d, _ in groups]
    sw.coords = {d: members[0].values for d, members in groups}
    sw.extra_coords = {m.key: (d, m.values) for d, members in groups for m in members[1:]}
    shape = [len(sw.coords[d]) for d in sw.dims]
    for index in itertools.product(*[range(n) for n in shape]):
        values = {m.key: m.values[i] for (dim, members), i in zip(groups, index) for m in members}
        where = ", ".join(f"{dim} = {sw.coords[dim][i]!r}" for dim, i in zip(sw.dims, index))
        for rep in range(sw.replicates):
            sw.runs.append(RunSpec(tuple(index), rep, make_config(sw, values, rep, where)))


def make_config(sw: Sweep, values: dict, rep: int, where: str = ""):
    """The config of one run: the base with the swept ``values`` {key: value} and the replicate's seed."""
    d = json.loads(json.dumps(sw.base))
    for key, v in values.items():
        _set(d, key, v)
    if sw.replicates > 1 or "training.seed" not in values:
        training = sw.base.get("training")
        base_seed = training.get("seed", 0) if isinstance(training, dict) else 0
        seeded = isinstance(base_seed, int) and not isinstance(base_seed, bool)
        _set(d, "training.seed", base_seed + rep if seeded else base_seed)     # a bad seed: from_dict names it
    try:
        return from_dict(d)
    except ConfigError as exc:
        raise SweepError(f"{exc} (at {where})" if where else str(exc)) from None


def _set(d, key, value):
    try:
        set_dotted(d, key, value, schema().known)
    except ConfigError as exc:
        raise SweepError(str(exc)) from None


# --------------------------------------------------------------------------- planning

def plan(runs: list, max_ensemble: int = 64, memory_mb: float = 1024) -> list[list]:
    """Ensembles (lists of RunSpec): runs grouped by shape, sorted by n_disc within a group so that
    similar costs share an ensemble (a run skips sub-steps beyond its own n_disc: little masked
    work), chunked by ``max_ensemble`` and by state memory (``memory_mb``)."""
    from .shapes import ensemble_memory_bytes, shape_key
    groups: dict = {}
    for r in runs:
        groups.setdefault(shape_key(r.config), []).append(r)
    out = []
    for members in groups.values():
        members.sort(key=lambda r: (r.config.resolved.training.n_disc, r.index, r.replicate))
        per_run = max(1, ensemble_memory_bytes(members[0].config))
        size = max(1, min(max_ensemble, int(memory_mb * 2 ** 20 // per_run)))
        out += [members[i:i + size] for i in range(0, len(members), size)]
    return out


def cost(ensemble: list) -> float:
    """Relative cost of an ensemble: run-iterations weighted by the discriminator steps."""
    out = 0.0
    for r in ensemble:
        t = r.config.resolved.training
        out += t.n_iterations * (1 + t.n_disc)
    return out


def ensemble_id(ensemble: list) -> str:
    return hashlib.sha256("".join(sorted(r.run_id for r in ensemble)).encode()).hexdigest()[:16]


def missing(sw: Sweep, done: set) -> list:
    """Runs of the sweep whose results are not stored yet (each run id once)."""
    return missing_runs(sw.runs, done)


def missing_runs(runs: list, done: set) -> list:
    """The runs whose results are not stored yet (each run id once)."""
    seen, out = set(done), []
    for r in runs:
        if r.run_id not in seen:
            seen.add(r.run_id)
            out.append(r)
    return out
