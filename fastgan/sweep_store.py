"""The sweep store: one output folder per sweep, written only by the client.

    DIR/sweep.json          the spec (as parsed) and the sweep's identity
    DIR/parts/<id>.h5       one part per computed ensemble: run_ids (B,), time (T,) (an ensemble
                            shares its record schedule), observables/<name> (B, T), diverged,
                            diverged_at (B,); attribute complete = 1 written last. Parts are written under a temporary name and renamed into
                            place, so a crash leaves no file that looks complete.
    DIR/sweep.h5            the consolidated dataset (netCDF-4 / HDF5 with dimension scales, written
                            by xarray): one dimension per swept axis (its values as coordinates),
                            ``replicate`` and ``time``; observables (axes..., replicate, time), NaN
                            where a run is missing; diverged, diverged_at, run_id (axes..., replicate);
                            with ``snapshots = true`` particles (axes..., replicate, snapshot, particle,
                            coord) at the ``snapshot`` iterations;
                            attributes: spec (with the base config), provenance (fastgan version,
                            git commit, backends, precision, seeds, compute seconds). Rebuilt from
                            the parts.

A run whose part is complete is never computed again; re-running resumes, extending an axis computes
only the new runs; an output folder holding another sweep is refused.
"""

from __future__ import annotations

import glob
import json
import os
import time

import h5py
import numpy as np

from .h5io import atomic_h5, atomic_text, atomic_write, stale_temporaries
from .sweep_spec import Sweep, SweepError

PARTS = "parts"


class SweepStore:
    def __init__(self, out_dir: str, sweep: Sweep | None = None):
        self.dir = out_dir
        self.sweep = sweep
        self.parts_dir = os.path.join(out_dir, PARTS)

    # ------------------------------------------------------------------ folder
    def prepare(self) -> None:
        """Create the folder or check that it holds this sweep (before anything is computed)."""
        meta = os.path.join(self.dir, "sweep.json")
        if os.path.exists(self.dir) and not os.path.isdir(self.dir):
            raise SweepError(f"--out = {self.dir!r}: exists and is not a folder")
        if os.path.isdir(self.dir):
            if os.path.isfile(meta):
                with open(meta) as fh:
                    old = json.load(fh)
                if old.get("identity") != self.sweep.identity:
                    raise SweepError(f"--out = {self.dir!r}: holds a different sweep ({old.get('name')!r}: name, base "
                                     "config or axis keys differ); choose another folder")
            elif os.listdir(self.dir):
                raise SweepError(f"--out = {self.dir!r}: is not empty and holds no sweep")
        else:
            parent = os.path.dirname(os.path.abspath(self.dir))
            if not os.path.isdir(parent):
                raise SweepError(f"--out = {self.dir!r}: folder {parent!r} does not exist")
        os.makedirs(self.parts_dir, exist_ok=True)
        for stale in stale_temporaries(self.parts_dir) + stale_temporaries(self.dir):
            os.unlink(stale)                            # a crash's unfinished writes
        doc = {"identity": self.sweep.identity, "name": self.sweep.name, "spec": json.loads(self.sweep.spec_json())}
        atomic_text(meta, json.dumps(doc, indent=1, sort_keys=True))

    def write_json(self, name: str, doc: dict) -> str:
        return atomic_text(os.path.join(self.dir, name), json.dumps(doc, indent=1, sort_keys=True, default=float))

    # ------------------------------------------------------------------ parts
    def part_files(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.parts_dir, "*.h5")))

    def completed(self) -> dict:
        """{run_id: part path} of every run stored in a complete part."""
        out = {}
        for path in self.part_files():
            try:
                with h5py.File(path, "r") as f:
                    if int(f.attrs.get("complete", 0)) != 1:
                        continue
                    for rid in f["run_ids"][()]:
                        out[rid.decode() if isinstance(rid, bytes) else str(rid)] = path
            except OSError:
                continue                                 # unreadable: recomputed
        return out

    def write_part(self, name: str, results: list[dict], meta: dict, snapshots: bool = False) -> str:
        """Write one computed ensemble (``sweep.run_ensemble`` output) atomically; returns its path."""
        def fill(f):
            f.create_dataset("run_ids", data=np.array([r["run_id"] for r in results], dtype="S"))
            f.create_dataset("diverged", data=np.array([r["diverged"] for r in results]))
            f.create_dataset("diverged_at", data=np.array([r["diverged_at"] for r in results], dtype=np.int64))
            f.create_dataset("time", data=results[0]["time"])      # an ensemble shares its record schedule
            for k in results[0]["observables"]:
                f.create_dataset(f"observables/{k}", data=np.stack([np.asarray(r["observables"][k], dtype=np.float64)
                                                                    for r in results]))
            if snapshots:
                f.create_dataset("particles_time", data=results[0]["particles_time"])
                f.create_dataset("particles", data=np.stack([r["particles"] for r in results]),
                                 compression="gzip", shuffle=True)
            for k, v in meta.items():
                f.attrs[k] = v
            f.attrs["complete"] = 1                  # the completion marker: written last
        return atomic_h5(os.path.join(self.parts_dir, f"{name}.h5"), fill)

    def read_results(self) -> dict:
        """{run_id: {time, observables, diverged, diverged_at}} from the complete parts."""
        out = {}
        for rid, path in self.completed().items():
            out.setdefault(path, []).append(rid)
        res = {}
        self.backends, self.compute_s = set(), 0.0
        for path in sorted(out):
            with h5py.File(path, "r") as f:
                self.backends.add(str(f.attrs.get("backend", "")))
                self.compute_s += float(f.attrs.get("compute_s", 0.0))
                ids = [r.decode() for r in f["run_ids"][()]]
                t = f["time"][()]
                obs = {k: f["observables"][k][()] for k in f.get("observables", {})}
                div, div_at = f["diverged"][()], f["diverged_at"][()]
                parts = (f["particles"][()], f["particles_time"][()]) if "particles" in f else None
                for i, rid in enumerate(ids):
                    res[rid] = {"time": t, "observables": {k: v[i] for k, v in obs.items()},
                                "diverged": bool(div[i]), "diverged_at": int(div_at[i])}
                    if parts is not None:
                        res[rid]["particles"], res[rid]["particles_time"] = parts[0][i], parts[1]
        return res

    # ------------------------------------------------------------------ consolidated view
    def dataset(self):
        """The consolidated xarray Dataset built from the parts (missing runs: NaN)."""
        import xarray as xr
        sw = self.sweep
        res = self.read_results()
        times = sorted({int(t) for r in res.values() for t in r["time"]})
        names = list(sw.observables) if sw.observables else sorted({k for r in res.values() for k in r["observables"]})
        tpos = {t: i for i, t in enumerate(times)}
        shape = sw.shape
        obs = {k: np.full(shape + (len(times),), np.nan) for k in names}
        div = np.zeros(shape, dtype=bool)
        div_at = np.full(shape, -1, dtype=np.int64)
        done = np.zeros(shape, dtype=bool)
        rid = np.empty(shape, dtype=object)
        for r in sw.runs:
            at = r.index + (r.replicate,)
            rid[at] = r.run_id
            got = res.get(r.run_id)
            if got is None:
                continue
            done[at] = True
            div[at], div_at[at] = got["diverged"], got["diverged_at"]
            idx = [tpos[int(t)] for t in got["time"]]
            for k in names:
                if k in got["observables"]:
                    obs[k][at + (idx,)] = got["observables"][k]
        dims = list(sw.dims) + ["replicate"]
        coords = {d: list(sw.coords[d]) for d in sw.dims}
        coords["replicate"] = np.arange(sw.replicates)
        coords["time"] = np.asarray(times, dtype=np.int64)
        for key, (dim, values) in sw.extra_coords.items():
            coords[key] = (dim, list(values))
        data = {k: (dims + ["time"], v) for k, v in obs.items()}
        snaps = [g for g in res.values() if "particles" in g] if sw.snapshots else []
        if snaps:                                           # every run shares (S, N, d) (checked by the spec)
            S, N, d = snaps[0]["particles"].shape
            P = np.full(shape + (S, N, d), np.nan)
            for r in sw.runs:
                got = res.get(r.run_id)
                if got is not None and "particles" in got:
                    P[r.index + (r.replicate,)] = got["particles"]
            data["particles"] = (dims + ["snapshot", "particle", "coord"], P)
            coords["snapshot"] = np.asarray(snaps[0]["particles_time"], dtype=np.int64)
        data.update(diverged=(dims, div), diverged_at=(dims, div_at), complete=(dims, done),
                    run_id=(dims, rid.astype(str)))
        from .store import provenance
        attrs = {"spec": sw.spec_json(), "sweep_name": sw.name, "identity": sw.identity,
                 "runs_total": len(sw.runs), "runs_complete": int(done.sum()),
                 **{k: str(v) for k, v in provenance("", "").items() if k not in ("precision", "backend")},
                 "backends": ",".join(sorted(b for b in getattr(self, "backends", ()) if b)),
                 "compute_s": float(getattr(self, "compute_s", 0.0)),
                 "precision": sw.runs[0].config.precision,
                 "seeds": f"training.seed of the base + replicate (replicates = {sw.replicates})"}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def consolidate(self) -> str:
        """Rebuild DIR/sweep.h5 from the parts (written to a temporary name, then renamed)."""
        ds = self.dataset()
        return atomic_write(os.path.join(self.dir, "sweep.h5"), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def window_average(result: dict, name: str, window: dict | None = None) -> float:
    """The time average of one run's observable over the sweep's window (T ± offsets; default
    Durr et al.'s T ± 20 n, n = 0..3, at the latest T that has it recorded)."""
    from . import analysis
    from .sweep_plots import window as default_window
    times = np.asarray(result["time"])
    centre, offs = default_window(times)
    if window:
        offs = np.asarray(window["offsets"]) if window.get("offsets") else offs
        centre = window["centre"] if window.get("centre") is not None else default_window(times, offsets=offs)[0]
    return float(analysis.time_average(np.asarray(result["observables"][name]), times, centre, offs,
                                       nan_policy="omit"))


def open_sweep(out_dir: str):
    """The sweep in ``out_dir`` as an xarray Dataset (swept axes as named dimensions with their values
    as coordinates, plus ``replicate`` and ``time``). Built from the parts when the consolidated file
    is missing or older than the newest part (e.g. after an interrupted run)."""
    import xarray as xr
    from .sweep_spec import parse_spec
    meta = os.path.join(out_dir, "sweep.json")
    if not os.path.isfile(meta):
        raise SweepError(f"{out_dir!r}: not a sweep folder (no sweep.json)")
    with open(meta) as fh:
        doc = json.load(fh)
    path = os.path.join(out_dir, "sweep.h5")
    store = SweepStore(out_dir)
    newest = max((os.path.getmtime(p) for p in store.part_files()), default=0.0)
    if os.path.isfile(path) and os.path.getmtime(path) >= newest:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    store.sweep = parse_spec({"sweep": doc["spec"]})          # spec_json round-trips
    return store.dataset()


def status(out_dir: str) -> str:
    """A one-paragraph progress report of the sweep in ``out_dir``."""
    ds = open_sweep(out_dir)
    total, done = int(ds.attrs["runs_total"]), int(ds.attrs["runs_complete"])
    store = SweepStore(out_dir)
    parts = store.part_files()
    last = max((os.path.getmtime(p) for p in parts), default=None)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never"
    div = int(ds["diverged"].values.sum())
    dims = " x ".join(f"{d} ({ds.sizes[d]})" for d in ds["diverged"].dims)
    return (f"sweep {ds.attrs['sweep_name']!r} in {out_dir}: {done}/{total} runs complete "
            f"({100.0 * done / max(1, total):.0f}%) in {len(parts)} parts; {div} diverged; grid {dims}; "
            f"last part written {when}")
