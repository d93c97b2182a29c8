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
import hashlib
import json
import os
import time

import h5py
import numpy as np

from .errors import FastganError
from .h5io import atomic_bytes, atomic_h5, atomic_text, check_folder_writable, stale_temporaries
from .sweep_spec import Sweep, SweepError

PARTS = "parts"
LOCK = ".lock"


class SweepStore:
    def __init__(self, out_dir: str, sweep: Sweep | None = None):
        self.dir = out_dir
        self.sweep = sweep
        self.parts_dir = os.path.join(out_dir, PARTS)
        self._lock = None
        self.damaged: dict = {}

    # ------------------------------------------------------------------ folder
    def check(self) -> None:
        """That the folder can hold this sweep (nothing is created): it is a folder or absent with an
        existing, writable parent; it holds this sweep or nothing."""
        if os.path.exists(self.dir) and not os.path.isdir(self.dir):
            raise SweepError(f"--out = {self.dir!r}: exists and is not a folder")
        if os.path.exists(self.parts_dir) and not os.path.isdir(self.parts_dir):
            raise SweepError(f"--out = {self.dir!r}: {PARTS!r} in it is not a folder (a damaged sweep folder: move "
                             f"{self.parts_dir!r} away)")
        if os.path.isdir(self.dir):
            old = self.spec_doc()
            if old is not None and old.get("identity") != self.sweep.identity:
                raise SweepError(f"--out = {self.dir!r}: holds a different sweep ({old.get('name')!r}: name, base "
                                 "config or axis keys differ); choose another folder")
            if old is None and not self.part_files() and [f for f in os.listdir(self.dir) if f != LOCK]:
                raise SweepError(f"--out = {self.dir!r}: is not empty and holds no sweep")
            check_folder_writable(self.dir, "--out")
        else:
            parent = os.path.dirname(os.path.abspath(self.dir))
            if not os.path.isdir(parent):
                raise SweepError(f"--out = {self.dir!r}: folder {parent!r} does not exist")
            check_folder_writable(parent, "--out", self.dir)

    def prepare(self) -> None:
        """Check, create the folder, take its lock (one process at a time), remove what a crashed
        writer left and (re)write sweep.json (before anything is computed)."""
        self.check()
        os.makedirs(self.parts_dir, exist_ok=True)
        self.lock()
        for stale in stale_temporaries(self.parts_dir) + stale_temporaries(self.dir):
            os.unlink(stale)                            # a crash's unfinished writes (this process owns the folder)
        doc = {"identity": self.sweep.identity, "name": self.sweep.name, "spec": json.loads(self.sweep.spec_json())}
        atomic_text(os.path.join(self.dir, "sweep.json"), json.dumps(doc, indent=1, sort_keys=True))

    def lock(self) -> None:
        """Own the folder until this process ends or :meth:`unlock`: an advisory lock on DIR/.lock, which
        the system releases when the process dies (a killed sweep never leaves it stuck)."""
        if self._lock is not None:
            return
        try:
            import fcntl
        except ImportError:                             # pragma: no cover - not POSIX: no lock
            return
        fd = os.open(os.path.join(self.dir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise SweepError(f"--out = {self.dir!r}: in use by another fastgan process (pid {holder}); wait for it "
                             "or choose another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)                        # closing the descriptor releases the lock
            self._lock = None

    def spec_doc(self) -> dict | None:
        """sweep.json as a dict, None when it is missing or damaged."""
        try:
            with open(os.path.join(self.dir, "sweep.json")) as fh:
                doc = json.load(fh)
            return doc if isinstance(doc, dict) and isinstance(doc.get("spec"), dict) else None
        except (OSError, ValueError):
            return None

    def write_json(self, name: str, doc: dict) -> str:
        return atomic_text(os.path.join(self.dir, name), json.dumps(doc, indent=1, sort_keys=True, default=float))

    # ------------------------------------------------------------------ parts
    def part_files(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.parts_dir, "*.h5")))

    def completed(self) -> dict:
        """{run_id: part path} of every run stored in a complete, intact part (``self.damaged``: {path:
        why} of the others; their runs are computed again)."""
        out = {}
        self.damaged = {}
        for path in self.part_files():
            try:
                with h5py.File(path, "r") as f:
                    problem = part_problem(f)
                    if problem is None:
                        for rid in f["run_ids"][()]:
                            out[rid.decode() if isinstance(rid, bytes) else str(rid)] = path
            except (OSError, KeyError, ValueError) as exc:
                problem = f"unreadable ({type(exc).__name__})"
            if problem is not None:
                self.damaged[path] = problem
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
            if self.sweep is not None:
                f.attrs["spec"] = json.dumps({"identity": self.sweep.identity, "name": self.sweep.name,
                                              "spec": json.loads(self.sweep.spec_json())})   # for recovery
            f.attrs["checksum"] = checksum(f)
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
        with _local_scheduler():                             # xarray would take a distributed write lock
            image = bytes(ds.to_netcdf(engine="h5netcdf"))   # in memory, written as bytes below
        return atomic_bytes(os.path.join(self.dir, "sweep.h5"), image)


def _local_scheduler():
    """Dask's synchronous scheduler for an in-memory write (with a distributed client alive, xarray would
    try a cluster-wide lock named after the in-memory buffer)."""
    try:
        import dask
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return dask.config.set(scheduler="synchronous")


REQUIRED = ("run_ids", "diverged", "diverged_at", "time")


def checksum(f) -> str:
    """SHA-256 over every dataset of an open HDF5 file (name, dtype, shape and bytes, in name order)."""
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    h = hashlib.sha256()
    for name in sorted(names):
        a = np.ascontiguousarray(f[name][()])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def part_problem(f) -> str | None:
    """Why an open part file cannot be trusted (None: it is complete and intact): the completion marker,
    every dataset a part holds, consistent lengths, and its checksum (parts written before checksums
    existed are checked for structure only)."""
    if int(f.attrs.get("complete", 0)) != 1:
        return "not complete (no completion marker)"
    missing = [k for k in REQUIRED if k not in f]
    if "observables" not in f or not len(f["observables"]):
        missing.append("observables")
    if missing:
        return f"missing {', '.join(missing)}"
    n, T = f["run_ids"].shape[0], f["time"].shape[0]
    bad = [k for k in ("diverged", "diverged_at") if f[k].shape != (n,)]
    bad += [f"observables/{k}" for k in f["observables"] if f["observables"][k].shape != (n, T)]
    if "particles" in f and f["particles"].shape[0] != n:
        bad.append("particles")
    if bad:
        return f"inconsistent shapes: {', '.join(bad)}"
    want = f.attrs.get("checksum")
    if want is not None and str(want) != checksum(f):
        return "checksum mismatch (the file changed after it was written)"
    return None


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
    if not os.path.isdir(out_dir):
        raise SweepError(f"{out_dir!r}: not a sweep folder")
    store = SweepStore(out_dir)
    path = os.path.join(out_dir, "sweep.h5")
    newest = max((os.path.getmtime(p) for p in store.part_files()), default=0.0)
    if os.path.isfile(path) and os.path.getmtime(path) >= newest:
        try:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                return ds.load()
        except (OSError, ValueError, KeyError, TypeError):
            pass                                            # damaged: rebuilt from the parts below
    doc = store.spec_doc() or _spec_from_parts(store)
    if doc is None:
        raise SweepError(f"{out_dir!r}: not a sweep folder (no readable sweep.json, consolidated file or part)")
    try:
        store.sweep = parse_spec({"sweep": doc["spec"]})      # spec_json round-trips
    except FastganError as exc:
        raise SweepError(f"{out_dir!r}: the sweep's stored spec is not valid here ({exc})") from None
    return store.dataset()


def _spec_from_parts(store: "SweepStore") -> dict | None:
    """The sweep's identity and spec as its parts recorded them (when sweep.json is lost or damaged)."""
    for path in reversed(store.part_files()):
        try:
            with h5py.File(path, "r") as f:
                doc = json.loads(f.attrs["spec"])
            if isinstance(doc, dict) and isinstance(doc.get("spec"), dict):
                return doc
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return None


def status(out_dir: str) -> str:
    """A one-paragraph progress report of the sweep in ``out_dir``."""
    ds = open_sweep(out_dir)
    total, done = int(ds.attrs["runs_total"]), int(ds.attrs["runs_complete"])
    store = SweepStore(out_dir)
    store.completed()
    parts = store.part_files()
    last = max((os.path.getmtime(p) for p in parts), default=None)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never"
    div = int(ds["diverged"].values.sum())
    dims = " x ".join(f"{d} ({ds.sizes[d]})" for d in ds["diverged"].dims)
    return (f"sweep {ds.attrs['sweep_name']!r} in {out_dir}: {done}/{total} runs complete "
            f"({100.0 * done / max(1, total):.0f}%) in {len(parts)} parts; {div} diverged; grid {dims}; "
            f"last part written {when}"
            + (f"; {len(store.damaged)} damaged part(s), computed again at the next run" if store.damaged else ""))
