"""What a sweep will do before it does it (``fastgan sweep SPEC --dry-run``): its runs, the stored ones, the
ensembles still to compute with their state memory and an estimated time from a short calibration; and,
for a folder whose grid changed, which stored runs lie outside the new grid (they are kept in the
folder's parts, out of the consolidated view, and come back when the axes include them again)."""

from __future__ import annotations

import json
import os
import time

from .sweep_spec import SweepError, ensemble_id, missing_runs, plan

CALIBRATION_S = 1.0          # seconds of timed iterations per shape of ensemble (after one untimed iteration)


class _Enough(Exception):
    """Stops a calibration ensemble once it has been timed."""


def calibrate(ens: list, backend: str, budget_s: float) -> tuple[float, int]:
    """(seconds per iteration, iterations timed) of the ensemble ``ens`` (RunSpecs) on ``backend``: its
    first iteration (compilation, caches) untimed, then iterations until ``budget_s`` has passed."""
    from .engine import Ensemble
    stamps = []
    T = ens[0].config.resolved.training.n_iterations

    def tick(_):
        stamps.append(time.perf_counter())
        if len(stamps) > 1 and (stamps[-1] - stamps[1] >= budget_s or len(stamps) >= T):
            raise _Enough
    ensemble = Ensemble([r.config for r in ens], backend)
    t0 = time.perf_counter()
    try:
        ensemble.run(progress=False, tick=tick)
    except _Enough:
        pass
    if len(stamps) < 2:                      # a single iteration: its time, compilation included
        return (stamps[0] if stamps else time.perf_counter()) - t0, 1
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1), len(stamps) - 1


def _weight(ens: list) -> float:
    """Relative cost of one iteration of an ensemble: every run takes the ensemble's largest n_disc."""
    return len(ens) * (1 + max(r.config.resolved.training.n_disc for r in ens))


def outside_runs(sw, store) -> list[str]:
    """Phrases for the runs stored in the folder that are not runs of ``sw`` (an axis changed or shrank):
    how many, and the axis values that put them outside, read from the spec their parts recorded."""
    from .sweep_parts import read_part
    from .sweep_spec import parse_spec
    mine = {r.run_id for r in sw.runs}
    stored = store.completed()
    away = {rid: path for rid, path in stored.items() if rid not in mine}
    if not away:
        return []
    values: dict = {}
    parsed: dict = {}
    docs: dict = {}
    for rid, path in away.items():
        if path not in docs:
            part, _ = read_part(path)
            docs[path] = part.get("spec") if part else None
        doc = docs[path]
        if doc is None:
            continue
        key = json.dumps(doc["spec"], sort_keys=True)
        if key not in parsed:
            try:
                old = parse_spec({"sweep": doc["spec"]})
                parsed[key] = {r.run_id: r for r in old.runs}, old
            except Exception:  # noqa: BLE001 - a spec this version cannot read: the count is still said
                parsed[key] = {}, None
        runs, old = parsed[key]
        r = runs.get(rid)
        if r is None:
            continue
        at = dict(zip(old.dims, r.index))
        for d, i in at.items():
            v = old.coords[d][i]
            if d not in sw.coords or v not in list(sw.coords[d]):
                values.setdefault(d, set()).add(v)
        if r.replicate >= sw.replicates:
            values.setdefault("replicate", set()).add(r.replicate)
    rank = {d: i for i, d in enumerate(sw.dims)}
    keys = sorted(values, key=lambda d: (d == "replicate", rank.get(d, len(rank)), d))
    where = "; ".join(f"{d} = {', '.join(_show(v) for v in sorted(values[d], key=_order))}" for d in keys)
    n = len(away)
    return [f"{n} stored run{'s' if n > 1 else ''} of this folder lie{'s' if n == 1 else ''} outside this grid"
            + (f" ({where})" if where else "") + ": kept in parts/, left out of sweep.h5; an axis that includes "
            "them again brings them back without computing"]


def _order(v):
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _show(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def dry_run(sw, out_dir: str, backend: str | None = None, calibrate_s: float | None = None) -> str:
    """The plan of ``fastgan sweep`` as text, without writing anything: runs stored and to compute, the
    ensembles (runs, iterations, n_disc, state memory, estimated time), the largest ensemble's memory
    against what is available, and the total estimated time from a calibration of one ensemble of each
    shape (``calibrate_s`` seconds each, default :data:`CALIBRATION_S`; 0: no estimate)."""
    from . import backend as backend_mod
    from .memory import available_memory
    from .resources import GiB, check_ensemble, memory_needed
    from .shapes import shape_key
    from .sweep_store import SweepStore
    store = SweepStore(out_dir, sw)
    store.check()
    be = backend_mod.resolve(backend, sw.runs[0].config.backend, announce=False)
    for ens in plan(sw.runs, sw.max_ensemble, sw.memory_mb):      # what the sweep itself would refuse
        check_ensemble([r.config.resolved for r in ens], be)
    stored = set(store.completed()) if os.path.isdir(out_dir) else set()
    todo = missing_runs(sw.runs, stored)
    ensembles = plan(todo, sw.max_ensemble, sw.memory_mb)
    grid = " x ".join(str(len(sw.coords[d])) for d in sw.dims)
    lines = [f"sweep {sw.name!r}: {len(sw.runs)} runs ({grid} grid x {sw.replicates} replicate"
             f"{'s' if sw.replicates > 1 else ''}); {len(sw.runs) - len(todo)} stored, {len(todo)} to compute in "
             f"{len(ensembles)} ensemble{'s' if len(ensembles) != 1 else ''} [{be}]"]
    if os.path.isdir(out_dir):
        lines += outside_runs(sw, store)
    if not ensembles:
        return "\n".join(lines + ["nothing to compute; nothing was written (--dry-run)"])
    speed: dict = {}
    t_cal = 0.0
    calibrate_s = CALIBRATION_S if calibrate_s is None else calibrate_s
    if calibrate_s > 0:
        t0 = time.perf_counter()
        for ens in ensembles:
            k = shape_key(ens[0].config)
            if k not in speed:
                spi, n = calibrate(ens, be, calibrate_s)
                speed[k] = (spi / _weight(ens), n)
        t_cal = time.perf_counter() - t0
    mems = [memory_needed(e[0].config.resolved, len(e), be) for e in ensembles]
    rows = [("ensemble", "runs", "iterations", "n_disc", "memory", "estimate")]
    total = 0.0
    for ens, mem in zip(ensembles, mems):
        T = ens[0].config.resolved.training.n_iterations
        nd = sorted({r.config.resolved.training.n_disc for r in ens})
        est = None
        if speed:
            est = speed[shape_key(ens[0].config)][0] * _weight(ens) * T
            total += est
        rows.append((ensemble_id(ens)[:12], str(len(ens)), str(T), f"{nd[0]}-{nd[-1]}" if len(nd) > 1 else str(nd[0]),
                     _bytes(mem), _duration(est) if est is not None else "-"))
    shown = rows if len(rows) <= 21 else rows[:11] + [("...",) + ("",) * 5] + rows[-10:]
    widths = [max(len(r[i]) for r in shown) for i in range(6)]
    lines += ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in shown]
    lines.append(f"memory: the largest ensemble holds about {_bytes(max(mems))}; {available_memory() / GiB:.3g} GiB "
                 "are available")
    if speed:
        timed = sum(n for _, n in speed.values())
        lines.append(f"estimated compute: {_duration(total)} on {be} (calibrated on {timed} iterations of "
                     f"{len(speed)} ensemble{'s' if len(speed) > 1 else ''} in {t_cal:.1f} s, their first iteration "
                     "untimed)")
    lines.append("nothing was written (--dry-run)")
    return "\n".join(lines)


def _bytes(n: float) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _duration(s: float) -> str:
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        return f"{s / 60:.3g} min"
    return f"{s / 3600:.3g} h"


__all__ = ["dry_run", "outside_runs", "calibrate", "SweepError"]
