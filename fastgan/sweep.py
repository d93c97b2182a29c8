"""Phase-diagram sweeps, the execution: the runs of a spec (``fastgan.sweep_spec``) that the store
lacks are computed ensemble by ensemble, inline or on Dask workers, and handed to the store
(``fastgan.sweep_store``), the only writer. ``--refine`` bisects a boundary instead of the full grid.
"""

from __future__ import annotations

import contextlib
import itertools
import os

import numpy as np

from .checkpoint import interval as checkpoint_interval
from .runconfig import from_dict
from .sweep_store import CHECKPOINTS
from .sweep_spec import (JOBQUEUES, Axis, RunSpec, Sweep, SweepError, _groups, cost, ensemble_id, load_spec,  # noqa: F401
                         make_config, missing, missing_runs, parse_spec, plan)

__all__ = ["Sweep", "SweepError", "Axis", "RunSpec", "JOBQUEUES", "cost", "ensemble_id", "load_spec", "make_config",
           "missing", "missing_runs", "parse_spec", "plan", "execute", "refine", "run_ensemble",
           "run_ensemble_dicts", "jobqueue_cluster"]


def run_ensemble(configs: list, backend: str | None, tick=None, checkpoint=None) -> list[dict]:
    """Compute one ensemble and return plain arrays per run (what a worker sends back); ``tick`` and
    ``checkpoint`` as for :meth:`fastgan.engine.Ensemble.run`."""
    from .engine import Ensemble
    results = Ensemble(configs, backend).run(progress=False, tick=tick, checkpoint=checkpoint)
    return [{"run_id": r.config.run_id, "time": r.time, "observables": r.observables,
             "diverged": r.diverged, "diverged_at": r.diverged_at, "provenance": r.provenance,
             "particles": r.particles, "particles_time": r.particles_time} for r in results]


def run_ensemble_dicts(config_dicts: list, backend: str | None) -> list[dict]:
    """``run_ensemble`` from plain config dicts (what is shipped to a Dask worker)."""
    return run_ensemble([from_dict(d, check_files=False) for d in config_dicts], backend)


def execute(sw: Sweep, out_dir: str, backend: str | None = None, progress: bool | None = None,
            dask: str | None = None, checkpoint_every: float | None = None) -> dict:
    """Run every missing run of ``sw`` into the store at ``out_dir`` and rebuild the consolidated file.
    Inline by default; ``dask`` = a scheduler address, ``local:N`` (a local cluster of N worker
    processes) or ``jobqueue`` (the spec's [sweep.dask] cluster): workers compute ensembles and
    return arrays, only this process writes files, and an ensemble lost with a worker is recomputed.
    Inline, an ensemble saves its state to DIR/checkpoints/ every ``checkpoint_every`` seconds of compute
    (default :data:`fastgan.checkpoint.DEFAULT_EVERY_S`; 0: never) and on an interruption, and a resume
    continues it from there. Returns counts and timings."""
    import time

    every = checkpoint_interval(checkpoint_every)
    store, be, client, cleanup = _start(sw, out_dir, backend, dask)
    try:
        out = _compute(sw, store, sw.runs, be, client, progress, every)
        t3 = time.perf_counter()
        store.consolidate()
        stored = store.read_results()                  # the parts, already read for the consolidation
        from .sweep_report import outside_runs
        outside = outside_runs(sw, store)
    finally:
        cleanup()
        store.unlock()
    out.update(runs_total=len(sw.runs), backend=be, executor=dask or "inline", consolidate_s=time.perf_counter() - t3,
               outside=outside,
               runs_diverged=sum(bool(stored[r.run_id]["diverged"]) for r in sw.runs if r.run_id in stored))
    return out


def _start(sw: Sweep, out_dir: str, backend, dask):
    """Everything checked before anything is written: the folder, every ensemble's memory and every run's
    work, the backend, the Dask cluster (connected); then the folder is created, locked and checked again
    (damaged parts moved aside). Returns (store, backend, client, cleanup)."""
    from . import backend as backend_mod
    from .resources import check_ensemble
    from .sweep_store import SweepStore
    if dask is not None and not str(dask).strip():
        raise SweepError(f"--dask = {dask!r}: expected a scheduler address, local:N or jobqueue")
    store = SweepStore(out_dir, sw)
    store.check()
    chosen = backend_mod.resolve(backend, sw.runs[0].config.backend, announce=False)
    for ens in plan(sw.runs, sw.max_ensemble, sw.memory_mb):    # every ensemble's memory, every run's work
        check_ensemble([r.config.resolved for r in ens], chosen)
    be = backend_mod.resolve(backend, sw.runs[0].config.backend)     # announced once the checks passed
    client, cleanup = _dask_client(dask, sw) if dask else (None, lambda: None)
    try:
        store.prepare()
    except BaseException:
        cleanup()
        raise
    from .h5io import stale_temporaries
    for stale in stale_temporaries(os.path.join(store.dir, CHECKPOINTS)):   # a crash's unfinished checkpoint
        if os.path.isfile(stale) and not os.path.islink(stale):
            os.unlink(stale)
    return store, be, client, cleanup


def _compute(sw: Sweep, store, runs: list, be: str, client, progress, checkpoint_every: float) -> dict:
    """Compute the runs among ``runs`` that the store lacks (inline, or on the Dask ``client``),
    writing one part per ensemble. Ensembles with a checkpoint of this backend in DIR/checkpoints are
    formed as they were when it was written (and resume from it); the others are planned."""
    import time

    from .progress import Progress
    from .store import git_commit, package_version
    t0 = time.perf_counter()
    todo = missing_runs(runs, set(store.completed()))
    every = checkpoint_every if client is None else 0.0
    ck_dir = os.path.join(store.dir, CHECKPOINTS)
    resumed = _checkpointed(ck_dir, todo, be) if every else []
    taken = {r.run_id for e in resumed for r in e}
    ensembles = resumed + plan([r for r in todo if r.run_id not in taken], sw.max_ensemble, sw.memory_mb)
    iterations = {id(r): r.config.resolved.training.n_iterations for r in todo}
    t_plan = time.perf_counter() - t0
    t_compute = t_write = 0.0
    meta = {"backend": be, "fastgan_version": package_version(), "git_commit": git_commit()}
    done = [0]
    with Progress(sum(iterations.values()), unit="run-it", desc=sw.name, enabled=progress,
                  note=lambda: f"{done[0]}/{len(todo)} runs") as bar, _reports(client, bar) as reports:
        def checkpoint_for(ens):
            if not every:
                return None
            return _sweep_checkpoint(ck_dir, ens, be, every, bar)

        def tick(k):
            bar.update(k)
        for ens, results, dt, ckpt in _results(ensembles, be, client, tick, checkpoint_for):
            t2 = time.perf_counter()
            store.write_part(ensemble_id(ens), results, dict(meta, compute_s=dt), snapshots=sw.snapshots)
            if ckpt is not None:
                ckpt.remove()                             # the part holds the results now
            t_compute += dt
            t_write += time.perf_counter() - t2
            done[0] += len(ens)
            if reports is not None:                      # workers report while they compute; topped up here
                reports.finished(f"fastgan-{ensemble_id(ens)}", sum(iterations[id(r)] for r in ens))
    _drop_finished_checkpoints(ck_dir, set(store.completed()))
    return {"runs_computed": len(todo), "ensembles": len(ensembles), "plan_s": t_plan, "compute_s": t_compute,
            "write_s": t_write, "ensembles_resumed": sum(1 for e in resumed)}


def _drop_finished_checkpoints(ck_dir: str, stored: set) -> None:
    """Remove the checkpoints whose runs are all stored now (e.g. an interrupted inline ensemble that a
    later --dask run or another packing computed); the others wait for their ensemble."""
    from .checkpoint import identity_of
    if not os.path.isdir(ck_dir):
        return
    for name in os.listdir(ck_dir):
        path = os.path.join(ck_dir, name)
        if not name.endswith(".h5") or name.startswith(".") or not os.path.isfile(path) or os.path.islink(path):
            continue
        runs = (identity_of(path) or {}).get("runs") or []
        if runs and all(r in stored for r in runs):
            os.unlink(path)


def _checkpoint_name(ens, be: str) -> str:
    return f"{ensemble_id(ens)}.{be}.h5"


@contextlib.contextmanager
def _reports(client, bar):
    """The Dask workers' progress reports feeding ``bar`` (None inline, where ticks feed it directly)."""
    if client is None:
        yield None
        return
    reports = _DaskProgress(client, bar)
    try:
        yield reports
    finally:
        reports.close()


def _checkpointed(ck_dir: str, todo: list, be: str) -> list:
    """The ensembles (runs in their stored order) whose checkpoints in ``ck_dir`` were written by backend
    ``be`` and whose runs are all still to do."""
    from .checkpoint import identity_of
    if not os.path.isdir(ck_dir):
        return []
    by_id = {r.run_id: r for r in todo}
    out, taken = [], set()
    for name in sorted(os.listdir(ck_dir)):
        if not name.endswith(f".{be}.h5"):
            continue
        ident = identity_of(os.path.join(ck_dir, name)) or {}
        ids = ident.get("runs") or []
        if ident.get("backend") == be and ids and all(i in by_id and i not in taken for i in ids):
            out.append([by_id[i] for i in ids])
            taken.update(ids)
    return out


def _sweep_checkpoint(ck_dir: str, ens: list, be: str, every: float, bar):
    """The Checkpoint of one ensemble of a sweep (its restored iterations credited to the bar)."""
    from .checkpoint import Checkpoint
    from .store import package_version
    os.makedirs(ck_dir, exist_ok=True)
    ids = [r.run_id for r in ens]

    class SweepCheckpoint(Checkpoint):
        def load(self):
            got = super().load()
            if got is not None:
                bar.credit(got[0] * len(ens))
            return got
    return SweepCheckpoint(os.path.join(ck_dir, _checkpoint_name(ens, be)), every,
                           {"runs": ids, "backend": be, "fastgan": package_version()},
                           what=f"ensemble {ensemble_id(ens)} ({len(ens)} runs)")


def refine(sw: Sweep, out_dir: str, backend: str | None = None, progress: bool | None = None,
           dask: str | None = None, checkpoint_every: float | None = None) -> dict:
    """``--refine``: locate the boundary along [sweep.refine].axis by bisection, for every point of the
    other axes, instead of computing the full grid: each round runs the midpoints of all lines (with
    their replicates) as ensembles, the metric is averaged over the time window and the replicates.
    Stored runs are reused (resumable). Writes DIR/boundary.json and returns its content."""
    import time

    from . import analysis
    from .sweep_store import window_average

    R = sw.refine
    ax = _refine_checks(sw)
    every = checkpoint_interval(checkpoint_every)
    store, be, client, cleanup = _start(sw, out_dir, backend, dask)      # one cluster for every round
    others = [d for d in sw.dims if d != ax.key]
    groups = dict(_groups(sw.axes))
    vals = np.asarray(ax.values, dtype=np.float64)
    lo, hi = float(vals.min()), float(vals.max())
    log = bool(lo > 0 and hi / lo >= 10)
    threshold = R["threshold"]
    if threshold is None:
        threshold = analysis.default_threshold(sw.runs[0].config.resolved.target.n_modes or 1)
    lines = list(itertools.product(*[range(len(sw.coords[d])) for d in others]))
    stats = {"runs_computed": 0, "compute_s": 0.0}

    def runs_at(line, x):
        values = {m.key: m.values[i] for d, i in zip(others, line) for m in groups[d]}
        values[ax.key] = type(ax.values[0])(x) if isinstance(ax.values[0], int) else float(x)
        return [RunSpec((line, x), rep, make_config(sw, values, rep)) for rep in range(sw.replicates)]

    def F(points):
        batch = [runs_at(line, x) for line, x in points]
        got = _compute(sw, store, [r for b in batch for r in b], be, client, progress, every)
        stats["runs_computed"] += got["runs_computed"]
        stats["compute_s"] += got["compute_s"]
        res = store.read_results()
        return [float(np.mean([window_average(res[r.run_id], R["metric"], sw.window) for r in b])) for b in batch]

    t0 = time.perf_counter()
    try:
        found, n_evals = analysis.bisect_boundaries(F, {line: (lo, hi) for line in lines}, threshold, R["tol"], log,
                                                    R["max_evals"], unbracketed="skip")
    except BaseException:
        cleanup()
        store.unlock()
        raise
    cleanup()
    doc = {"axis": ax.key, "metric": R["metric"], "threshold": threshold, "tol": R["tol"], "log": log,
           "other_axes": others, "range": [lo, hi], "evaluations": n_evals, "runs": n_evals * sw.replicates,
           "grid_runs": len(sw.runs), "seconds": time.perf_counter() - t0, **stats,
           "lines": [{"coords": {d: sw.coords[d][i] for d, i in zip(others, line)},
                      "boundary": b.estimate if b.status == "bracketed" else None, "status": b.status,
                      "bracket": list(b.bracket), "converged": bool(b.converged),
                      "points": [[float(x), float(m) if m == m else None] for x, m in b.points]}
                     for line, b in found.items()]}
    try:
        store.write_json("boundary.json", doc)
        store.consolidate()
    finally:
        store.unlock()
    return doc


def _refine_checks(sw: Sweep) -> Axis:
    """The axis ``--refine`` bisects, once it is known to be numeric with two different values and not
    zipped (before anything is computed or written)."""
    ax = next(a for a in sw.axes if a.key == sw.refine["axis"])
    if ax.zip is not None:
        raise SweepError(f"sweep.refine.axis = {ax.key!r}: a zipped axis cannot be bisected alone")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in ax.values):
        raise SweepError(f"sweep.refine.axis = {ax.key!r}: its values {list(ax.values)!r} are not all finite numbers "
                         "(only a numeric axis can be bisected)")
    vals = np.asarray(ax.values, dtype=np.float64)
    if not vals.min() < vals.max():
        raise SweepError(f"sweep.refine.axis = {ax.key!r}: needs two different values to bracket a boundary")
    return ax                                    # metric, threshold and tol: checked when the spec is read


def _results(ensembles, backend, client, tick=None, checkpoint_for=lambda ens: None):
    """(ensemble, results, compute seconds, its Checkpoint or None) as they complete: inline (client None;
    ``tick`` after every iteration, the checkpoint from ``checkpoint_for(ensemble)``), or from Dask workers."""
    import time
    if client is None:
        for ens in ensembles:
            t0 = time.perf_counter()
            ckpt = checkpoint_for(ens)
            results = run_ensemble([r.config for r in ens], backend, tick, ckpt)
            yield ens, results, time.perf_counter() - t0, ckpt
        return
    from distributed import as_completed
    futures = {}
    for ens in ensembles:
        key = f"fastgan-{ensemble_id(ens)}"
        fut = client.submit(_timed_dicts, [r.config.to_dict() for r in ens], backend, key, DASK_PROGRESS_S,
                            pure=False, retries=3, key=key)
        futures[fut] = ens
    for fut in as_completed(futures):
        results, dt = fut.result()
        yield futures[fut], results, dt, None


DASK_PROGRESS_S = 1.0              # seconds between a Dask worker's progress reports of its ensemble
PROGRESS_TOPIC = "fastgan-progress"


class _DaskProgress:
    """The sweep bar fed by Dask workers' reports ({key, done} events: run-iterations of an ensemble so
    far) while their ensembles run, topped up to the ensemble's whole when its results arrive. A report
    of an ensemble already counted (a late one, or a retry's) adds nothing."""

    def __init__(self, client, bar):
        import threading
        self.client, self.bar, self.lock = client, bar, threading.Lock()
        self.seen: dict = {}
        self.closed: set = set()
        try:
            client.subscribe_topic(PROGRESS_TOPIC, self._event)
        except Exception:  # noqa: BLE001 - a scheduler without events: the bar moves per ensemble
            self.client = None

    def _event(self, event):
        msg = event[1] if isinstance(event, (tuple, list)) else event
        with self.lock:
            key, done = msg.get("key"), int(msg.get("done", 0))
            if key in self.closed or done <= self.seen.get(key, 0):
                return
            self.bar.update(done - self.seen.get(key, 0))
            self.seen[key] = done

    def finished(self, key: str, total: int) -> None:
        with self.lock:
            self.bar.update(max(0, total - self.seen.pop(key, 0)))
            self.closed.add(key)

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.unsubscribe_topic(PROGRESS_TOPIC)
            except Exception:  # noqa: BLE001
                pass


def jobqueue_cluster(section: dict):
    """The dask-jobqueue cluster of a [sweep.dask] table (not yet scaled: no job is submitted)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise SweepError("--dask = 'jobqueue': dask-jobqueue is not installed (pip install dask-jobqueue)") from None
    d = {k: v for k, v in section.items() if k not in ("jobqueue", "jobs")}
    extra = d.pop("job_extra", None)
    if extra:
        d["job_extra_directives"] = list(extra)
    return getattr(dask_jobqueue, JOBQUEUES[section["jobqueue"]])(**d)


def _timed_dicts(config_dicts, backend, key=None, every_s=DASK_PROGRESS_S):
    """On a Dask worker: the ensemble's results and compute seconds; its progress reported as events
    (:data:`PROGRESS_TOPIC`) every ``every_s`` seconds."""
    import time
    t0 = time.perf_counter()
    state = {"done": 0, "last": t0}

    def tick(k):
        state["done"] += k
        now = time.perf_counter()
        if key is not None and now - state["last"] >= every_s:
            state["last"] = now
            try:
                from distributed import get_worker
                get_worker().log_event(PROGRESS_TOPIC, {"key": key, "done": state["done"]})
            except Exception:  # noqa: BLE001 - not on a worker, or no events: nothing reported
                pass
    out = run_ensemble([from_dict(d, check_files=False) for d in config_dicts], backend, tick)
    return out, time.perf_counter() - t0


def _dask_client(spec: str, sw: Sweep):
    """(client, cleanup) for ``--dask``: an address, local:N or jobqueue."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("--dask: dask.distributed is not installed (pip install 'fastgan[distributed]')") from None
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
            if n < 1:
                raise ValueError
        except ValueError:
            raise SweepError(f"--dask = {spec!r}: expected local:N with N >= 1 workers") from None
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        return client, lambda: (client.close(), cluster.close())
    if spec == "jobqueue":
        if not sw.dask:
            raise SweepError("--dask = 'jobqueue': the spec has no [sweep.dask] table")
        cluster = jobqueue_cluster(sw.dask)
        cluster.scale(jobs=sw.dask.get("jobs", 1))
        client = Client(cluster)
        return client, lambda: (client.close(), cluster.close())
    try:
        from . import environment
        wait = environment.get("FASTGAN_DASK_TIMEOUT")    # a scheduler silent this long is unreachable
        client = Client(spec, timeout=wait)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"--dask = {spec!r}: cannot reach the scheduler ({exc})") from None
    return client, client.close
