"""The sweep store: one output folder per sweep, written only by the client.

    DIR/sweep.json          the spec (as parsed) and the sweep's identity
    DIR/parts/<id>.h5       one part per computed ensemble: run_ids (B,), time (T,) (an ensemble
                            shares its record schedule), observables/<name> (B, T), diverged,
                            diverged_at (B,); attributes: the spec (for recovery), provenance, a SHA-256
                            checksum of every dataset and attribute, and complete = 1 written last
                            (the format: fastgan.sweep_parts). Parts are written under a temporary name
                            and renamed into place, so a crash leaves no file that looks complete.
    DIR/damaged/            parts found damaged when a sweep resumed (moved there, never deleted;
                            their runs are computed again)
    DIR/sweep.h5            the consolidated dataset (netCDF-4 / HDF5 with dimension scales, written
                            by xarray): one dimension per swept axis (a short name, e.g. ``n_disc``; its
                            values as coordinates, its config key as their ``config_key`` attribute;
                            files of earlier versions, named by config keys, are renamed on reading),
                            ``replicate`` and ``time``; observables (axes..., replicate, time), NaN
                            where a run is missing; diverged, diverged_at, run_id (axes..., replicate);
                            with ``snapshots = true`` particles (axes..., replicate, snapshot, particle,
                            coord) at the ``snapshot`` iterations; every variable with long_name,
                            units (where meaningful) and description (fastgan.xr); attributes: spec
                            (with the base config), provenance (fastgan version, git commit, backends,
                            precision, seeds, compute seconds). Rebuilt from the parts.
    DIR/.lock               the pid of the process that owns the folder (the lock itself is a flock on
                            the folder, which deleting this file does not release)

A run whose part is complete is never computed again; re-running resumes, extending an axis computes
only the new runs; an output folder holding another sweep is refused. Reading never trusts a file:
a part is used only when it is a regular file, complete, with every dataset and a matching checksum;
sweep.json and sweep.h5 only when they validate (else the view is rebuilt from the parts).
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
import warnings

import numpy as np

from .errors import FastganError
from .h5io import atomic_bytes, atomic_h5, atomic_text, check_folder_writable, check_seal, seal, stale_temporaries
from .sweep_parts import doc_ok, fill_part, read_part, regular
from .sweep_spec import Sweep, SweepError

PARTS = "parts"
LOCK = ".lock"
DAMAGED = "damaged"
CHECKPOINTS = "checkpoints"     # states of ensembles in flight (fastgan.checkpoint), removed when their part is in
FILES = {PARTS: "folder", "sweep.json": "file", "sweep.h5": "file", LOCK: "file", CHECKPOINTS: "folder"}
STATUS_PLAN_LIMIT = 20_000      # status counts a larger grid from the parts instead of planning every run


class SweepStore:
    def __init__(self, out_dir: str, sweep: Sweep | None = None):
        self.dir = out_dir
        self.sweep = sweep
        self.parts_dir = os.path.join(out_dir, PARTS)
        self._lock = None
        self.damaged: dict = {}                         # {path: why} of the parts that cannot be trusted
        self.ignored: list = []                         # entries of parts/ that are not regular files
        self._parts: dict = {}                          # {path: (stat key, part dict or None, why)}

    # ------------------------------------------------------------------ folder
    def check(self) -> None:
        """That the folder can hold this sweep (nothing is created): it is a folder or absent with an
        existing, writable parent; its entries have their kinds; it holds this sweep or nothing."""
        if not self.dir or not self.dir.strip():
            raise SweepError(f"--out = {self.dir!r}: expected a folder name")
        if os.path.lexists(self.dir) and not os.path.isdir(self.dir):
            raise SweepError(f"--out = {self.dir!r}: exists and is not a folder")
        if not os.path.isdir(self.dir):
            parent = os.path.dirname(os.path.abspath(self.dir))
            if not os.path.isdir(parent):
                raise SweepError(f"--out = {self.dir!r}: folder {parent!r} does not exist")
            check_folder_writable(parent, "--out", self.dir)
            return
        for name, kind in FILES.items():
            path = os.path.join(self.dir, name)
            if os.path.lexists(path) and not (os.path.isdir(path) if kind == "folder" else os.path.isfile(path)):
                raise SweepError(f"--out = {self.dir!r}: {name!r} in it is not a {kind} (a damaged sweep folder: "
                                 f"move {path!r} away)")
        found = self.recorded_identity()
        if found is not None and found[0] != self.sweep.identity:
            raise SweepError(f"--out = {self.dir!r}: holds a different sweep ({found[1]!r}: name, base "
                             "config or axis keys differ); choose another folder")
        if found is None and not os.path.isdir(self.parts_dir) and [f for f in os.listdir(self.dir) if f != LOCK]:
            raise SweepError(f"--out = {self.dir!r}: is not empty and holds no sweep")
        check_folder_writable(self.dir, "--out")

    def prepare(self) -> None:
        """Check, create the folder, take its lock (one process at a time), check again (another process
        may have written it meanwhile), remove what a crashed writer left, move damaged parts to
        DIR/damaged/ and (re)write sweep.json (before anything is computed)."""
        self.check()
        os.makedirs(self.dir, exist_ok=True)
        self.lock()
        try:
            self.check()
            os.makedirs(self.parts_dir, exist_ok=True)
            for stale in stale_temporaries(self.parts_dir) + stale_temporaries(self.dir):
                if regular(stale):
                    os.unlink(stale)                    # a crash's unfinished writes (this process owns the folder)
            self.quarantine()
            doc = {"identity": self.sweep.identity, "name": self.sweep.name,
                   "spec": json.loads(self.sweep.spec_json())}
            atomic_text(os.path.join(self.dir, "sweep.json"), json.dumps(doc, indent=1, sort_keys=True))
        except BaseException:
            self.unlock()
            raise

    def lock(self) -> None:
        """Own the folder until this process ends or :meth:`unlock`: an advisory flock on the folder itself
        (deleting DIR/.lock does not release it), which the system releases when the process dies (a killed
        sweep never leaves it stuck). DIR/.lock records the owner's pid for the message of a refused one."""
        if self._lock is not None:
            return
        try:
            import fcntl
        except ImportError:                             # pragma: no cover - not POSIX: no lock
            return
        fd = os.open(self.dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise SweepError(f"--out = {self.dir!r}: in use by another fastgan process (pid {self._holder()}); "
                             "wait for it or choose another folder") from None
        self._lock = fd
        path = os.path.join(self.dir, LOCK)
        try:                                            # a note only: the flock above is the lock
            if not os.path.lexists(path) or regular(path):
                pid = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
                try:
                    os.write(pid, str(os.getpid()).encode())
                finally:
                    os.close(pid)
        except OSError:
            pass

    def _holder(self) -> str:
        """The pid DIR/.lock names ('?' when it is missing or not a pid)."""
        path = os.path.join(self.dir, LOCK)
        try:
            if regular(path):
                with open(path, "rb") as fh:
                    text = fh.read(32).decode("ascii", "replace").strip()
                if text.isdigit():
                    return text
        except OSError:
            pass
        return "?"

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)                        # closing the descriptor releases the lock
            self._lock = None

    def spec_doc(self) -> dict | None:
        """sweep.json as a dict {identity, name, spec}, None when it is missing, not a regular file or damaged."""
        path = os.path.join(self.dir, "sweep.json")
        try:
            if not regular(path) or os.path.getsize(path) > 2 ** 26:
                return None
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError, RecursionError):
            return None
        return doc if doc_ok(doc) else None

    def recorded_identity(self) -> tuple | None:
        """(identity, name) the folder records: sweep.json's, else its intact parts' (None: neither)."""
        doc = self.spec_doc()
        if doc is None or not isinstance(doc.get("identity"), str):
            docs = self.parts_docs()
            doc = docs[0] if docs else None
        return (doc["identity"], doc.get("name")) if doc is not None else None

    def parts_docs(self) -> list[dict]:
        """The sweep documents {identity, name, spec} the intact parts recorded, the newest part's first."""
        self.completed()
        out = []
        for path in sorted(self._parts, key=lambda p: (-self._parts[p][0][2], p)):
            doc = self._parts[path][1] and self._parts[path][1]["spec"]
            if doc is not None and doc not in out:
                out.append(doc)
        return out

    def write_json(self, name: str, doc: dict) -> str:
        return atomic_text(os.path.join(self.dir, name), json.dumps(doc, indent=1, sort_keys=True, default=float))

    # ------------------------------------------------------------------ parts
    def part_files(self) -> list[str]:
        """The regular files parts/*.h5 (folders, links, pipes and the like are not parts: ``self.ignored``)."""
        self.ignored = []
        try:
            names = sorted(os.listdir(self.parts_dir))
        except OSError:
            return []
        out = []
        for name in names:
            if not name.endswith(".h5") or name.startswith("."):
                continue
            path = os.path.join(self.parts_dir, name)
            (out if regular(path) else self.ignored).append(path)
        return out

    def completed(self) -> dict:
        """{run_id: part path} of every run stored in a complete, intact part (``self.damaged``: {path:
        why} of the others; their runs are computed again). Each part is read once (and again only when
        its file changes)."""
        out, seen = {}, {}
        self.damaged = {}
        for path in self.part_files():
            try:
                st = os.stat(path)
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                continue
            got = self._parts.get(path)
            if got is None or got[0] != key:
                part, why = read_part(path)
                got = (key, part, why)
            seen[path] = got
            if got[1] is None:
                self.damaged[path] = got[2]
            else:
                for rid in got[1]["ids"]:
                    out[rid] = path
        self._parts = seen
        return out

    def quarantine(self) -> list:
        """Move every damaged part to DIR/damaged/ (never deleted; an existing name there is kept: the
        newcomer gets a numbered name) and say so in one warning line. Returns [(from, to)]."""
        self.completed()
        if not self.damaged:
            return []
        dest = os.path.join(self.dir, DAMAGED)
        if os.path.lexists(dest) and not os.path.isdir(dest):
            raise SweepError(f"--out = {self.dir!r}: {DAMAGED!r} in it is not a folder (move {dest!r} away)")
        os.makedirs(dest, exist_ok=True)
        moved = []
        for path in sorted(self.damaged):
            base, n = os.path.basename(path), 1
            target = os.path.join(dest, base)
            while os.path.lexists(target):
                target = os.path.join(dest, f"{base[:-3]}.{n}.h5")
                n += 1
            os.rename(path, target)
            moved.append((path, target))
        first = moved[0][0]
        warnings.warn(f"{len(moved)} damaged part{'s' if len(moved) > 1 else ''} moved to {dest} ({first}: "
                      f"{self.damaged[first]}{' and others' if len(moved) > 1 else ''}); "
                      f"{'their' if len(moved) > 1 else 'its'} runs are computed again", stacklevel=2)
        self.completed()
        return moved

    def write_part(self, name: str, results: list[dict], meta: dict, snapshots: bool = False) -> str:
        """Write one computed ensemble (``sweep.run_ensemble`` output) atomically; returns its path."""
        spec = None if self.sweep is None else json.dumps(
            {"identity": self.sweep.identity, "name": self.sweep.name, "spec": json.loads(self.sweep.spec_json())})
        return atomic_h5(os.path.join(self.parts_dir, f"{name}.h5"),
                         lambda f: fill_part(f, results, meta, spec, snapshots))

    def read_results(self) -> dict:
        """{run_id: {time, observables, diverged, diverged_at}} from the complete parts."""
        self.completed()
        res = {}
        self.backends, self.compute_s = set(), 0.0
        for path in sorted(self._parts):
            part = self._parts[path][1]
            if part is None:
                continue
            self.backends.add(part["backend"])
            self.compute_s += part["compute_s"]
            snaps = part.get("particles")
            for i, rid in enumerate(part["ids"]):
                res[rid] = {"time": part["time"], "observables": {k: v[i] for k, v in part["observables"].items()},
                            "diverged": bool(part["diverged"][i]), "diverged_at": int(part["diverged_at"][i])}
                if snaps is not None:
                    res[rid]["particles"], res[rid]["particles_time"] = snaps[i], part["particles_time"]
        return res
    # ------------------------------------------------------------------ consolidated view
    def dataset(self):
        """The consolidated xarray Dataset built from the parts (missing runs: NaN); swept axes named by
        :func:`fastgan.xr.dim_names` (their config keys as the ``config_key`` attribute)."""
        import xarray as xr

        from .xr import annotate_sweep
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
        return annotate_sweep(xr.Dataset(data, coords=coords, attrs=attrs), [a.key for a in sw.axes])

    def consolidate(self) -> str:
        """Rebuild DIR/sweep.h5 from the parts (written to a temporary name, then renamed)."""
        ds = self.dataset()
        with _local_scheduler():                             # xarray would take a distributed write lock
            image = bytes(ds.to_netcdf(engine="h5netcdf"))   # in memory, written as bytes below
        return atomic_bytes(os.path.join(self.dir, "sweep.h5"), seal(image))


def _local_scheduler():
    """Dask's synchronous scheduler for an in-memory write (with a distributed client alive, xarray would
    try a cluster-wide lock named after the in-memory buffer)."""
    try:
        import dask
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return dask.config.set(scheduler="synchronous")



STORED_SPEC_ERRORS = (FastganError, TypeError, ValueError, KeyError, AttributeError, RecursionError)


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


# --------------------------------------------------------------------------- reading a folder back


def _folder(out_dir: str) -> SweepStore:
    if not out_dir or not os.path.isdir(out_dir):
        raise SweepError(f"{out_dir!r}: not a sweep folder")
    return SweepStore(out_dir)


def _outline(doc: dict) -> Sweep:
    """The sweep a stored document {identity, name, spec} describes, with its dims and coords but without
    its runs (cheap for any size); an exception when it does not describe one or its identity differs."""
    from .sweep_spec import Axis, _axis_values, _groups
    s = doc["spec"]
    base, axes_in, reps = s.get("base", {}), s.get("axes"), s.get("replicates", 1)
    if not isinstance(base, dict):
        raise SweepError(f"sweep.base = {base!r}: a stored spec holds its base config inline")
    if not isinstance(axes_in, list) or not axes_in or not all(isinstance(a, dict) for a in axes_in):
        raise SweepError("sweep.axes: a sweep needs at least one [[sweep.axes]] table")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise SweepError(f"sweep.replicates = {reps!r}: expected an integer >= 1")
    sw = Sweep(name=s.get("name", "sweep"), base=base, replicates=reps, observables=None, max_ensemble=1,
               memory_mb=1.0, axes=[Axis(a.get("key"), _axis_values(i, a), a.get("zip")) for i, a in enumerate(axes_in)])
    groups = _groups(sw.axes)
    sw.dims = [d for d, _ in groups]
    sw.coords = {d: members[0].values for d, members in groups}
    if doc.get("identity") not in (None, sw.identity):
        raise SweepError(f"sweep.json: identity {doc.get('identity')!r} does not match its spec")
    return sw


def _candidates(store: SweepStore) -> tuple[list, list]:
    """([(doc, outline)] of the specs the folder records, the best first: sweep.json when it agrees with
    the parts, then the parts' own), [why each other one was passed over]."""
    docs, errors = [], []
    own = store.spec_doc()
    parts = store.parts_docs()
    if own is not None and (not parts or own.get("identity") == parts[0]["identity"]):
        docs.append(own)
    docs += [d for d in parts if d not in docs]
    out = []
    for doc in docs:
        try:
            out.append((doc, _outline(doc)))
        except STORED_SPEC_ERRORS as exc:             # a hand-edited or foreign document: passed over
            errors.append(exc)
    return out, errors


def _planned(out_dir: str, candidates: list, errors: list) -> Sweep:
    """The first recorded spec that parses into a sweep with its runs."""
    from .sweep_spec import parse_spec
    for doc, _ in candidates:
        try:
            return parse_spec({"sweep": doc["spec"]})         # spec_json round-trips
        except STORED_SPEC_ERRORS as exc:             # validation of a stored document: the next one is tried
            errors.append(exc)
    if errors:
        raise SweepError(f"{out_dir!r}: the sweep's stored spec is not valid here ({errors[0]})")
    raise SweepError(f"{out_dir!r}: not a sweep folder (no readable sweep.json, consolidated file or intact part)")


def _consolidated(store: SweepStore, candidates: list):
    """DIR/sweep.h5 loaded, when it is a regular file, not older than the newest part, and validates: its
    attributes, variables and dimensions are those of a consolidated sweep, of the sweep the folder records
    (None otherwise: the view is rebuilt from the parts). A file of an earlier version, its dimensions named
    by config keys and without attributes, is renamed and annotated as it is read
    (:func:`fastgan.xr.annotate_sweep`)."""
    import xarray as xr

    from .xr import annotate_sweep, dim_names
    path = os.path.join(store.dir, "sweep.h5")
    newest = max((os.path.getmtime(p) for p in store.part_files()), default=0.0)
    if not regular(path) or os.path.getmtime(path) < newest or check_seal(path) is not None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                ds = ds.load()
        a = ds.attrs
        sw = _outline({"identity": a["identity"], "name": a["sweep_name"], "spec": json.loads(a["spec"])})
        if candidates and (candidates[0][1].identity != sw.identity or candidates[0][1].shape != sw.shape
                           or candidates[0][1].coords != sw.coords):
            return None
        total, done = a["runs_total"], a["runs_complete"]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in (total, done)):
            return None
        keys = [ax.key for ax in sw.axes]
        ds = annotate_sweep(ds, keys)
        names = dim_names(keys, reserved=set(ds.data_vars))
        dims = tuple(names[d] for d in sw.dims) + ("replicate",)
        for v in ("diverged", "diverged_at", "complete", "run_id"):
            if ds[v].dims != dims or ds[v].shape != sw.shape:
                return None
        if int(total) != math.prod(sw.shape) or int(done) != int(ds["complete"].values.sum()):
            return None
        if any(ds[v].dims[-1:] == ("time",) and ds[v].dims != dims + ("time",) for v in ds.data_vars):
            return None
        return ds
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - a damaged, incomplete or foreign file: rebuilt from the parts
        return None


def open_sweep(out_dir: str):
    """The sweep in ``out_dir`` as an xarray Dataset (swept axes as dimensions with short names, e.g.
    ``n_disc``, their values as coordinates and their config keys as the ``config_key`` attribute, plus
    ``replicate`` and ``time``; every variable with ``long_name``, ``units`` where meaningful and a
    ``description``). Built from the parts when the consolidated file is missing, older than the newest
    part (e.g. after an interrupted run), damaged or foreign; the spec from sweep.json, else from the
    parts."""
    store = _folder(out_dir)
    ds, own = None, store.spec_doc()
    if own is not None and isinstance(own.get("identity"), str):      # the common case: no part is read
        try:
            ds = _consolidated(store, [(own, _outline(own))])
        except STORED_SPEC_ERRORS:
            ds = None
    if ds is None:
        candidates, errors = _candidates(store)
        ds = _consolidated(store, candidates)
    if ds is None:
        store.sweep = _planned(out_dir, candidates, errors)
        ds = store.dataset()
    ds.encoding["source"] = out_dir
    return ds


def status(out_dir: str) -> str:
    """A one-paragraph progress report of the sweep in ``out_dir`` (a grid too large to plan quickly is
    counted from the parts)."""
    store = _folder(out_dir)
    candidates, errors = _candidates(store)
    ds = _consolidated(store, candidates)
    if ds is None and candidates and math.prod(candidates[0][1].shape) > STATUS_PLAN_LIMIT:
        sw = candidates[0][1]
        res = store.read_results()
        name, total, done = sw.name, math.prod(sw.shape), min(math.prod(sw.shape), len(res))
        div = sum(r["diverged"] for r in res.values())
        from .xr import dim_names
        names = dim_names([ax.key for ax in sw.axes], reserved=set(sw.observables or ()))
        sizes = [(names[d], len(sw.coords[d])) for d in sw.dims] + [("replicate", sw.replicates)]
        note = "; counted from the parts (the grid is too large to plan for a status)"
    else:
        if ds is None:
            store.sweep = _planned(out_dir, candidates, errors)
            ds = store.dataset()
        name, total, done = ds.attrs["sweep_name"], int(ds.attrs["runs_total"]), int(ds.attrs["runs_complete"])
        div = int(ds["diverged"].values.sum())
        sizes = [(d, ds.sizes[d]) for d in ds["diverged"].dims]
        note = ""
        store.completed()
    parts = store.part_files()
    last = max((os.path.getmtime(p) for p in parts), default=None)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never"
    dims = " x ".join(f"{d} ({n})" for d, n in sizes)
    return (f"sweep {name!r} in {out_dir}: {done}/{total} runs complete "
            f"({100.0 * done / max(1, total):.0f}%) in {len(parts)} parts; {div} diverged; grid {dims}; "
            f"last part written {when}" + note
            + (f"; {len(store.damaged)} damaged part(s), computed again at the next run" if store.damaged else "")
            + (f"; {len(store.ignored)} entr{'ies' if len(store.ignored) > 1 else 'y'} of parts/ ignored (not a "
               "regular file)" if store.ignored else "")
            + _checkpoints_note(out_dir))


def _checkpoints_note(out_dir: str) -> str:
    """'; ensemble X (B runs) checkpointed at iteration i (backend) ...' for the checkpoints in the folder
    (ensembles in flight or interrupted: the next run of the sweep resumes them)."""
    from .checkpoint import header
    folder = os.path.join(out_dir, CHECKPOINTS)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".h5") and not n.startswith("."))
    except OSError:
        return ""
    said = []
    for n in names:
        got = header(os.path.join(folder, n))
        if got is None:
            said.append(f"{n} (unreadable: moved aside when its ensemble runs again)")
            continue
        it, doc = got
        said.append(f"ensemble {n.split('.')[0]} ({len(doc.get('runs', []))} runs) at iteration {it} "
                    f"({doc.get('backend')})")
    return f"; checkpoints: {', '.join(said)} (resumed by the next run of the sweep)" if said else ""
