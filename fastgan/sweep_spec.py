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
from dataclasses import dataclass, field

import numpy as np

from .config import load_toml, set_dotted
from .errors import ConfigError, FastganError
from .resources import RUNS_LIMIT, allow_huge
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

def _axis_values(i: int, ax: dict) -> tuple:
    where = f"sweep.axes[{i}]"
    unknown = [k for k in ax if k not in AXIS_KEYS]
    if unknown:
        raise SweepError(f"{where}.{unknown[0]} = {ax[unknown[0]]!r}: unknown axis key (expected one of "
                         f"{', '.join(AXIS_KEYS)})")
    if not isinstance(ax.get("key"), str) or not ax["key"]:
        raise SweepError(f"{where}.key = {ax.get('key')!r}: every axis needs the dotted config key it sweeps")
    gens = [g for g in GENERATORS if g in ax]
    if len(gens) != 1:
        raise SweepError(f"{where} ({ax['key']}): give exactly one of {', '.join(GENERATORS)}")
    g, v = gens[0], ax[gens[0]]
    if g == "values":
        if not isinstance(v, list) or not v:
            raise SweepError(f"{where}.values = {v!r}: expected a non-empty list")
        return tuple(v)
    if (not isinstance(v, list) or len(v) != 3 or not all(isinstance(t, (int, float)) and not isinstance(t, bool)
                                                          for t in v) or int(v[2]) != v[2]):
        raise SweepError(f"{where}.{g} = {v!r}: expected [start, stop, count]")
    a, b, n = float(v[0]), float(v[1]), int(v[2])
    if n < 1:
        raise SweepError(f"{where}.{g} = {v!r}: the count must be >= 1 (an empty axis)")
    if n > RUNS_LIMIT and not allow_huge():
        raise SweepError(f"{where}.{g} = {v!r}: {n} values on one axis (more than {RUNS_LIMIT}); set "
                         "FASTGAN_ALLOW_HUGE=1 to plan it anyway")
    if g == "linspace":
        out = np.linspace(a, b, n)
    elif g == "logspace":
        out = np.logspace(a, b, n)
    else:
        if a <= 0 or b <= 0:
            raise SweepError(f"{where}.{g} = {v!r}: start and stop must be > 0")
        out = np.geomspace(a, b, n)
        if g == "int_logspace":
            return tuple(int(t) for t in np.unique(np.round(out).astype(np.int64)))
    return tuple(float(t) for t in out)


def _int_field(spec, key, default, lo):
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise SweepError(f"sweep.{key} = {v!r}: expected an integer >= {lo}")
    return v


def parse_spec(data: dict, spec_dir: str = ".") -> Sweep:
    """Validate a spec mapping (the TOML document) into a :class:`Sweep` with its runs."""
    if not isinstance(data, dict) or set(data) != {"sweep"} or not isinstance(data["sweep"], dict):
        extra = [k for k in (data if isinstance(data, dict) else {}) if k != "sweep"]
        raise SweepError(f"{extra[0] if extra else 'sweep'}: a sweep spec is one [sweep] table "
                         "(with [[sweep.axes]] and an optional [sweep.base])")
    s = data["sweep"]
    unknown = [k for k in s if k not in SPEC_KEYS]
    if unknown:
        raise SweepError(f"sweep.{unknown[0]} = {s[unknown[0]]!r}: unknown key (expected one of {', '.join(SPEC_KEYS)})")
    name = s.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise SweepError(f"sweep.name = {name!r}: expected a non-empty string")
    replicates = _int_field(s, "replicates", 1, 1)
    max_ensemble = _int_field(s, "max_ensemble", 64, 1)
    memory_mb = s.get("memory_mb", 1024)
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, (int, float)) or not memory_mb > 0:
        raise SweepError(f"sweep.memory_mb = {memory_mb!r}: expected a number > 0")
    base = s.get("base", {})
    if isinstance(base, str):
        path = base if os.path.isabs(base) else os.path.join(spec_dir, base)
        if not os.path.isfile(path) and os.path.isfile(base):
            path = base
        if not os.path.isfile(path):
            raise SweepError(f"sweep.base = {base!r}: file not found")
        base = load_toml(path)
    if not isinstance(base, dict):
        raise SweepError(f"sweep.base = {base!r}: expected a config file path or an inline table")
    obs = s.get("observables")
    if obs is not None and (not isinstance(obs, list) or not obs or not all(isinstance(o, str) for o in obs)):
        raise SweepError(f"sweep.observables = {obs!r}: expected a non-empty list of observable names")
    axes_in = s.get("axes")
    if not isinstance(axes_in, list) or not axes_in:
        raise SweepError("sweep.axes: a sweep needs at least one [[sweep.axes]] table")
    axes = []
    for i, ax in enumerate(axes_in):
        if not isinstance(ax, dict):
            raise SweepError(f"sweep.axes[{i}] = {ax!r}: expected a table")
        z = ax.get("zip")
        if z is not None and not isinstance(z, str):
            raise SweepError(f"sweep.axes[{i}].zip = {z!r}: expected a label (string)")
        axes.append(Axis(ax.get("key"), _axis_values(i, ax), z))
    keys = [a.key for a in axes]
    dup = [k for k in keys if keys.count(k) > 1]
    if dup:
        raise SweepError(f"sweep.axes: key {dup[0]!r} is swept twice")
    if "training.seed" in keys and replicates > 1:
        raise SweepError("sweep.replicates: replicates derive training.seed; do not also sweep it")
    sw = Sweep(name=name, base=base, axes=axes, replicates=replicates, observables=tuple(obs) if obs else None,
               max_ensemble=max_ensemble, memory_mb=float(memory_mb), dask=_dask_section(s.get("dask")),
               refine=_refine_section(s.get("refine"), keys), window=_window_section(s.get("window")),
               snapshots=_snapshots(s.get("snapshots", False), keys))
    runs = math.prod(len(v) for v in {d: m[0].values for d, m in _groups(axes)}.values()) * replicates
    if runs > RUNS_LIMIT and not allow_huge():
        raise SweepError(f"sweep.replicates = {replicates}: the grid has {runs} runs (more than {RUNS_LIMIT}); set "
                         "FASTGAN_ALLOW_HUGE=1 to plan it anyway")
    _build(sw)
    if sw.observables:
        from .observables import SCALARS
        known = set(SCALARS).union(*(r.config.resolved.family.observables for r in sw.runs))
        unknown = [o for o in sw.observables if o not in known]
        if unknown:
            raise SweepError(f"sweep.observables = {list(sw.observables)!r}: {unknown[0]!r} is not an observable of "
                             f"these runs (known: {', '.join(sorted(known))})")
    return sw


def _snapshots(v, keys) -> bool:
    if not isinstance(v, bool):
        raise SweepError(f"sweep.snapshots = {v!r}: expected true or false")
    clash = [k for k in keys if k in ("generator.n_particles", "record.snapshots", "training.n_iterations")]
    if v and clash:
        raise SweepError(f"sweep.snapshots = true: every run must share its snapshot shape, but {clash[0]} is swept")
    return v


def _refine_section(d, keys):
    """[sweep.refine]: the axis bisected by ``--refine`` (default the first), the metric (default
    mode_collapse), its threshold (default ½ log K), the bracket tolerance (relative on a geometric
    axis) and the evaluations per line at most."""
    d = {} if d is None else d
    if not isinstance(d, dict):
        raise SweepError(f"sweep.refine = {d!r}: expected a table")
    unknown = [k for k in d if k not in REFINE_KEYS]
    if unknown:
        raise SweepError(f"sweep.refine.{unknown[0]} = {d[unknown[0]]!r}: unknown key (expected one of "
                         f"{', '.join(REFINE_KEYS)})")
    out = {"axis": d.get("axis", keys[0]), "metric": d.get("metric", "mode_collapse"),
           "threshold": d.get("threshold"), "tol": d.get("tol", 0.05), "max_evals": d.get("max_evals", 12)}
    if out["axis"] not in keys:
        raise SweepError(f"sweep.refine.axis = {out['axis']!r}: not a swept key ({', '.join(keys)})")
    for k in ("tol", "threshold"):
        v = out[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or (k == "tol" and not v > 0)):
            raise SweepError(f"sweep.refine.{k} = {v!r}: expected a {'positive ' if k == 'tol' else ''}number")
    if isinstance(out["max_evals"], bool) or not isinstance(out["max_evals"], int) or out["max_evals"] < 3:
        raise SweepError(f"sweep.refine.max_evals = {out['max_evals']!r}: expected an integer >= 3")
    return out


def _window_section(d):
    """[sweep.window]: the time average T ± offsets (``centre`` default: the latest iteration that
    has the whole window recorded; ``offsets`` default 20 n, n = -3..3, as in Durr et al.)."""
    if d is None:
        return None
    if not isinstance(d, dict) or any(k not in ("centre", "offsets") for k in d):
        raise SweepError(f"sweep.window = {d!r}: expected a table with centre and/or offsets")
    c, offs = d.get("centre"), d.get("offsets")
    if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 0):
        raise SweepError(f"sweep.window.centre = {c!r}: expected an iteration >= 0")
    if offs is not None and (not isinstance(offs, list) or not offs or
                             not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
        raise SweepError(f"sweep.window.offsets = {offs!r}: expected a non-empty list of integers")
    return {"centre": c, "offsets": offs}


def _dask_section(d):
    """[sweep.dask]: a dask-jobqueue cluster (used with ``--dask jobqueue``)."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise SweepError(f"sweep.dask = {d!r}: expected a table")
    unknown = [k for k in d if k not in DASK_KEYS]
    if unknown:
        raise SweepError(f"sweep.dask.{unknown[0]} = {d[unknown[0]]!r}: unknown key (expected one of {', '.join(DASK_KEYS)})")
    if d.get("jobqueue") not in JOBQUEUES:
        raise SweepError(f"sweep.dask.jobqueue = {d.get('jobqueue')!r}: expected one of {', '.join(JOBQUEUES)}")
    for key in ("jobs", "cores", "processes"):
        v = d.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SweepError(f"sweep.dask.{key} = {v!r}: expected an integer >= 1")
    return dict(d)


def load_spec(path: str) -> Sweep:
    try:
        data = load_toml(path)
    except ConfigError as exc:
        raise SweepError(str(exc).replace("config = ", "spec = ")) from None
    return parse_spec(data, os.path.dirname(os.path.abspath(path)))


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
            raise SweepError(f"sweep.axes: zipped axes {', '.join(m.key for m in members)} have different lengths "
                             f"{sorted(lens)}")
    return out


def _build(sw: Sweep) -> None:
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
        base_seed = sw.base.get("training", {}).get("seed", 0) if isinstance(sw.base.get("training"), dict) else 0
        _set(d, "training.seed", int(base_seed) + rep)
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
