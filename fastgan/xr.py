"""Results as xarray: a run as a Dataset (:func:`run_dataset`, from a RunResult or a read run file) and the
names and attributes of a sweep's Dataset (:func:`annotate_sweep`).

Every variable carries ``long_name``, ``units`` where meaningful (CF: "1" for a pure number, "nats") and a
one-line ``description`` (:func:`variable_attrs`); a swept axis is a dimension with a short, identifier-safe
name (``n_disc``, so ``ds.sel(n_disc=6)``), its config key kept as the coordinate's ``config_key``
attribute (:func:`dim_names`, :func:`key_attrs`). The names come from :mod:`fastgan.labels`.

A run's Dataset (the same from memory and from its file)::

    time (time)                       recorded iterations           observables <name> (time)
    snapshot (snapshot)               snapshot iterations           <histogram>_histogram (time, mode | <histogram>_bin)
    particles (snapshot, particle, coord)                           modes (mode, coord) (targets with modes)

attributes: the run file's (config, config_input, run_id, diverged, diverged_at (ints), target_image_shape
(image targets), backend, precision, timings, early_stop_*, and from a file fastgan_version, git_commit,
created). xarray is imported only here,
and only when a Dataset is built.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

from .labels import OBSERVABLES, label, short_name

FIXED = {
    "time": ("training iteration", "", "iterations at which the observables were recorded"),
    "snapshot": ("snapshot iteration", "", "iterations at which the particles were saved"),
    "particles_time": ("snapshot iteration", "", "iterations at which the particles were saved (the snapshot "
                       "coordinate's values)"),
    "particles": ("particle positions", "", "generated particles X_a at the snapshot iterations"),
    "modes": ("target mode centres", "", "the modes of the target the observables are measured against"),
    "replicate": ("replicate", "", "replicate index r: the run's seed is training.seed + r"),
    "diverged": ("diverged", "", "the run's particles or discriminator became NaN/Inf (its observables are NaN "
                 "from then on)"),
    "diverged_at": ("divergence iteration", "", "first iteration with a non-finite state (-1: never)"),
    "complete": ("run complete", "", "the run is stored in a complete part (False: its values are NaN)"),
    "run_id": ("run id", "", "hash of the run's canonical config (its identity)"),
}
HISTOGRAMS = {
    "nearest_mode": ("particles per nearest mode", "1", "number of particles whose nearest mode is this one "
                     "(-1 after divergence)"),
    "high_quality": ("high-quality particles per mode", "1", "number of particles within 3 std of this mode "
                     "(-1 after divergence)"),
    "excess_mass": ("excess mass per point", "1", "generated mass near each target point beyond its share "
                    "(NaN after divergence)"),
}
RESERVED = set(FIXED) | {"particle", "coord", "mode"}
FILE_GROUPS = {"observables", "histograms", "discriminator", "discriminator_snapshots", "target"}
FILE_ONLY = ("checksum", "format", "format_version")    # attributes of the file, not of its results


def _attrs(long_name: str, units: str, description: str) -> dict:
    out = {"long_name": long_name}
    if units:
        out["units"] = units
    out["description"] = description or long_name
    return out


def variable_attrs(name: str) -> dict:
    """{long_name, units (where meaningful), description} of a result variable: an observable, a
    ``<histogram>_histogram``, or a fixed variable (time, particles, diverged, ...); a fallback from the name."""
    if name in FIXED:
        return _attrs(*FIXED[name])
    if name.endswith("_histogram"):
        h = name[: -len("_histogram")]
        return _attrs(*HISTOGRAMS.get(h, (f"{h.replace('_', ' ')} histogram", "", "")))
    if name in OBSERVABLES:
        lb = OBSERVABLES[name]
        return _attrs(lb.long_name, lb.units, lb.description)
    return _attrs(name.replace("_", " "), "", "")


def key_attrs(key: str) -> dict:
    """The attributes of a swept axis' coordinate: config_key, long_name, units (where meaningful), description."""
    lb = label(key)
    return {"config_key": key, **_attrs(lb.long_name, lb.units, lb.description or f"{lb.long_name} "
                                        f"(config key {key})")}


def _safe(key: str) -> str:
    return re.sub(r"\W", "_", key) or "axis"


def dim_names(keys, reserved=()) -> dict:
    """{config key: dimension name}: the key's short name (:func:`fastgan.labels.short_name`) where it is
    unique among ``keys`` and not one of ``reserved`` (or fastgan's own names: time, replicate, ...), else
    the key with non-word characters as underscores (``coupling_ratio``); numbered if still not unique."""
    keys = list(dict.fromkeys(keys))
    taken = RESERVED | set(reserved)
    short = {k: short_name(k) for k in keys}
    count = Counter(short.values())
    out = {k: (s if count[s] == 1 and s not in taken else _safe(k)) for k, s in short.items()}
    seen: set = set()
    for k in keys:
        n, i = out[k], 2
        while out[k] in seen or out[k] in taken:
            out[k], i = f"{n}_{i}", i + 1
        seen.add(out[k])
    return out


def dim_of(obj, key: str) -> str | None:
    """The dimension of a Dataset or DataArray named ``key`` or whose coordinate's ``config_key`` is ``key``
    (``ds[dim_of(ds, "training.n_disc")]``); None when there is none."""
    if key in obj.dims:
        return key
    for d in obj.dims:
        if d in obj.coords and obj[d].attrs.get("config_key") == key:
            return d
    return None


def annotate_sweep(ds, keys):
    """A sweep Dataset with its swept axes (and zipped coordinates) renamed from config ``keys`` to
    :func:`dim_names` and every variable's attributes set (idempotent: a Dataset already renamed keeps its
    names). Returns the new Dataset."""
    names = dim_names(keys, reserved=set(ds.data_vars))
    ds = ds.rename({k: n for k, n in names.items() if k in ds.variables and k != n})
    for k, n in names.items():
        if n in ds.variables:
            ds[n].attrs.update(key_attrs(k))
    for v in ds.variables:
        if v not in names.values():
            ds[v].attrs.update(variable_attrs(v))
    return ds


def observable_var(name: str) -> str:
    """The variable name of an observable: its own, unless fastgan uses that name (``observable_<name>``)."""
    taken = name in RESERVED or name in FILE_GROUPS or name.endswith(("_histogram", "_bin"))
    return f"observable_{name}" if taken else name


def histogram_dim(name: str, bins: int, n_modes: int | None) -> str:
    """The dimension of a histogram's bins: ``mode`` when it counts per target mode, else ``<name>_bin``."""
    return "mode" if n_modes is not None and bins == n_modes else f"{name}_bin"


def run_attrs(result) -> dict:
    """The run attributes a RunResult records (as the run file stores them, in its order): config,
    config_input, run_id, diverged, diverged_at, target_image_shape ([H, W], image targets only), backend,
    precision, early_stop_* (kde), timings (JSON of the rest of its provenance)."""
    cfg, prov = result.config, result.provenance
    out = {"config": cfg.canonical_json(), "config_input": json.dumps(cfg.to_dict(), sort_keys=True),
           "run_id": cfg.run_id, "diverged": bool(result.diverged), "diverged_at": int(result.diverged_at)}
    shape = getattr(result, "image_shape", None)
    if shape is not None:
        out["target_image_shape"] = np.asarray(shape, dtype=np.int64)
    out.update({"backend": prov.get("backend", ""), "precision": prov.get("precision", cfg.precision)})
    stop = {k: v for k, v in prov.items() if k.startswith("early_stop")}
    out.update(stop)
    skip = {"fastgan_version", "git_commit", "backend", "precision", "created"}
    out["timings"] = json.dumps({k: v for k, v in prov.items() if k not in skip and k not in stop})
    return out


def _netcdf_attr(v):
    """An attribute value netCDF takes (a bool as 0/1)."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    return v.item() if isinstance(v, np.generic) else v


def run_dataset(run):
    """A run as an xarray Dataset (see the module docstring): ``run`` a RunResult, or the dict
    :func:`fastgan.store.read_run` returns (then the file's provenance attributes too)."""
    import xarray as xr
    if isinstance(run, dict):
        time, obs, hist, P, pt, modes = (run["time"], run["observables"], run["histograms"], run["particles"],
                                         run["particles_time"], run["modes"])
        attrs = {k: v for k, v in run["attrs"].items() if k not in FILE_ONLY}
    else:
        time, obs, hist, P, pt, modes = (run.time, run.observables, run.histograms, run.particles,
                                         run.particles_time, run.modes)
        attrs = run_attrs(run)
    K = None if modes is None else len(modes)
    data = {observable_var(k): (("time",), np.asarray(v)) for k, v in obs.items()}
    for k, v in hist.items():
        data[f"{k}_histogram"] = (("time", histogram_dim(k, np.shape(v)[1], K)), np.asarray(v))
    data["particles"] = (("snapshot", "particle", "coord"), np.asarray(P))
    if modes is not None:
        data["modes"] = (("mode", "coord"), np.asarray(modes))
    coords = {"time": np.asarray(time), "snapshot": np.asarray(pt)}
    ds = xr.Dataset(data, coords=coords, attrs={k: _netcdf_attr(v) for k, v in attrs.items()})
    for v in ds.variables:
        ds[v].attrs.update(variable_attrs(v))
    return ds

