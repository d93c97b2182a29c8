"""Sweep parts: the file one computed ensemble is stored in, written and read back.

A part holds run_ids (B,), time (T,) (an ensemble shares its record schedule), observables/<name>
(B, T), diverged, diverged_at (B,), optionally particles (B, S, N, d) at particles_time (S,); its
attributes: the sweep document (for recovery), provenance, a SHA-256 checksum of every dataset and
attribute (``v2:``; a bare digest: datasets only, the earlier format; none: written before parts had
checksums, checked for structure only; ``part_format`` = 2 marks a part that must have one), and
complete = 1, written last. Reading never trusts a file:
a part is used only when it is a regular file, complete, with every dataset of the right kind and
shape and a matching checksum; whatever a damaged file makes h5py raise is a reason, never an
exception.
"""

from __future__ import annotations

import json
import os
import stat

import h5py
import numpy as np

from .h5io import check_seal, contents, digest

REQUIRED = ("run_ids", "diverged", "diverged_at", "time")
PART_FORMAT = 2                     # parts that always carry a v2 checksum
CHECKSUM_V2 = "v2:"                 # a checksum of datasets and attributes (without the prefix: datasets only)


def fill_part(f, results: list[dict], meta: dict, spec: str | None, snapshots: bool = False) -> None:
    """One computed ensemble (``sweep.run_ensemble`` output) as a part in the open HDF5 file ``f``: the
    datasets, ``meta`` and the sweep document ``spec`` (for recovery) as attributes, the checksum, and the
    completion marker last."""
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
    if spec is not None:
        f.attrs["spec"] = spec
    f.attrs["part_format"] = PART_FORMAT
    f.attrs["checksum"] = CHECKSUM_V2 + digest(*contents(f))
    f.attrs["complete"] = 1                  # the completion marker: written last


def regular(path: str) -> bool:
    """A regular file (not a link, folder, pipe or device): the only kind fastgan reads from a sweep folder."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def checksum(f) -> str:
    """The datasets-only checksum of an open HDF5 file (the format of parts written before attributes were
    covered)."""
    return digest(contents(f)[0])


def read_part(path: str) -> tuple[dict | None, str | None]:
    """(part, None) for an intact, complete part, read into memory: {ids, time, observables {name: (B, T)},
    diverged, diverged_at, particles, particles_time, backend, compute_s, spec}; (None, why) for anything
    else. Whatever a damaged file makes h5py raise is a reason, never an exception."""
    why = check_seal(path)                       # before HDF5 parses a byte of it: it can crash on damage
    if why is not None:
        return None, why
    try:
        with h5py.File(path, "r") as f:
            arrays, attrs = contents(f)
        problem = part_problem(arrays, attrs)
        if problem is not None:
            return None, problem
        obs = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("observables/")}
        try:
            doc = json.loads(attrs["spec"]) if isinstance(attrs.get("spec"), str) else None
        except (ValueError, RecursionError):
            doc = None
        try:
            compute_s = float(attrs.get("compute_s", 0.0))
        except (TypeError, ValueError):
            compute_s = 0.0
        return {"ids": [r.decode("ascii") for r in arrays["run_ids"]], "time": arrays["time"], "observables": obs,
                "diverged": arrays["diverged"], "diverged_at": arrays["diverged_at"],
                "particles": arrays.get("particles"), "particles_time": arrays.get("particles_time"),
                "backend": str(attrs.get("backend", "")), "compute_s": compute_s,
                "spec": doc if doc_ok(doc) and isinstance(doc.get("identity"), str) else None}, None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises anything on a damaged file: it is damaged
        text = " ".join(str(exc).split())[:120]
        return None, f"unreadable ({type(exc).__name__}{': ' + text if text else ''})"


def part_problem(arrays: dict, attrs: dict) -> str | None:
    """Why a part's contents (:func:`fastgan.h5io.contents`) cannot be trusted (None: complete and intact): the completion
    marker, every dataset a part holds with its kind and a consistent shape, and its checksum."""
    c = attrs.get("complete")
    if c is None or np.ndim(c) != 0 or np.asarray(c).dtype.kind not in "iub" or int(c) != 1:
        return "not complete (no completion marker)"
    obs = {k: v for k, v in arrays.items() if k.startswith("observables/")}
    missing = [k for k in REQUIRED if k not in arrays] + ([] if obs else ["observables"])
    if missing:
        return f"missing {', '.join(missing)}"
    ids, t = arrays["run_ids"], arrays["time"]
    n = ids.shape[0] if ids.ndim == 1 else -1
    bad = [] if n > 0 and ids.dtype.kind == "S" else ["run_ids"]
    bad += [] if t.ndim == 1 and t.dtype.kind in "iu" else ["time"]
    bad += [] if arrays["diverged"].shape == (n,) and arrays["diverged"].dtype.kind in "biu" else ["diverged"]
    bad += [] if arrays["diverged_at"].shape == (n,) and arrays["diverged_at"].dtype.kind in "iu" else ["diverged_at"]
    bad += [k for k, v in obs.items() if v.shape != (n, t.shape[0]) or v.dtype.kind != "f" or k.count("/") != 1]
    if "particles" in arrays or "particles_time" in arrays:
        p, pt = arrays.get("particles"), arrays.get("particles_time")
        if p is None or pt is None or p.ndim != 4 or p.shape[0] != n or pt.ndim != 1 or pt.shape[0] != p.shape[1]:
            bad.append("particles")
    if bad:
        return f"inconsistent datasets: {', '.join(bad)}"
    want = attrs.get("checksum")
    if isinstance(want, bytes):
        want = want.decode("ascii", "replace")
    if not isinstance(want, str):
        if "part_format" in attrs:               # a part of this format always has one
            return "no checksum"
        want = None                              # written before parts had checksums: structure only
    got = None if want is None else CHECKSUM_V2 + digest(arrays, attrs) if want.startswith(CHECKSUM_V2) \
        else digest(arrays)
    if want != got:
        return "checksum mismatch (the file changed after it was written)"
    try:
        [r.decode("ascii") for r in ids]
    except UnicodeDecodeError:
        return "inconsistent datasets: run_ids"
    return None


def doc_ok(doc) -> bool:
    """A sweep document {identity, name, spec} as sweep.json and the parts record it (types only)."""
    return (isinstance(doc, dict) and isinstance(doc.get("spec"), dict)
            and isinstance(doc.get("identity", ""), str) and isinstance(doc.get("name", ""), str))
