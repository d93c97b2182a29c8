"""Run files: one HDF5 file per run, written atomically (a public layout contract).

    /time                      (T,)       recorded iterations
    /observables/<name>        (T,)       mode_collapse, log_likelihood, nearest_mode_distance,
                                          modes_covered, high_quality_fraction, kl_uniform (mixture targets);
                                          cosine_mode_collapse, cosine_distance, particle_cosine, runaway
                                          (targets of dimension d > 2);
                                          w2, escaped_fraction (rff/kernel); kernel_gan_objective, q_d,
                                          steepness (d = 1) (kde)
    /histograms/<name>         (T, K)     nearest_mode, high_quality (raw per-mode counts; -1 after divergence)
    /particles                 (S, N, d)  snapshots, at /particles_time (S,)
    /discriminator/<param>     final parameters (mlp depth 1: w (W, d), b (W,), a (W,))
    /discriminator_snapshots/<param>  (S, ...) parameters at the snapshot times (if recorded)
    /target/modes              (K, d)     the modes used by the observables (if any)
    attrs: config (canonical JSON of the resolved config), config_input (as given), run_id,
           diverged, diverged_at (-1 if not), target_image_shape ([H, W]: only for a target of images,
           whose particles are H W pixels, row-major), fastgan_version, git_commit, backend, precision,
           created, timings (JSON), format = "fastgan-run", format_version; kde runs with
           record.early_stop add early_stop_at (iteration, -1 if never), early_stop_reason
           ("q_d" or "steepness") and early_stop_threshold (k_d / (2 sigma)); checksum (SHA-256 of every
           dataset and attribute but itself, see :func:`fastgan.h5io.digest`; files written before it
           existed have none and are checked for structure only)

The netCDF-4 view (format_version 2; ``xarray.open_dataset(path, engine="h5netcdf")`` shows it, the same
variables and attributes as :func:`open_run`): the root holds netCDF dimension scales ``time`` (= /time),
``snapshot`` (S,) (the values of /particles_time) and the value-less dimensions ``particle``, ``coord``,
``mode`` (and ``<name>_bin`` for a histogram not over the modes); /time, /particles (snapshot, particle,
coord) and /particles_time (snapshot) are attached to them, and each observable, histogram and the modes
appear at the root as a second name (an HDF5 hard link: the same data, stored once) of the dataset above:
``/<observable>`` (time), ``/<name>_histogram`` (time, mode), ``/modes`` (mode, coord), each with
``long_name``, ``units`` where meaningful and ``description``. The other groups keep their layout (read one
with ``group=``). Version-1 files (no scales, no root names) are read the same by :func:`read_run`.

The file is written to a temporary name in the same folder and renamed into place: a crash never
leaves a half-written file under the final name, and an existing file is replaced only when asked.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess

import h5py
import numpy as np

from .errors import FastganError
from .h5io import atomic_h5, check_seal, check_writable, contents, digest
from .runconfig import from_dict
from .xr import histogram_dim, observable_var, run_attrs, run_dataset, variable_attrs

FORMAT = "fastgan-run"
FORMAT_VERSION = 2                      # 2: the netCDF-4 view (dimension scales, root names)


def package_version() -> str:
    try:
        from importlib.metadata import version
        return version("fastgan")
    except Exception:  # noqa: BLE001
        return "dev"


def git_commit() -> str:
    """The commit of fastgan's own code: its source checkout's HEAD (with ``-dirty`` for uncommitted
    changes) when fastgan runs from one, else the commit an installed build recorded (the wheel's
    ``_build_info.json``, or pip's record of a VCS install); '' when none is known. A git repository that
    merely encloses an installed fastgan (a project holding its virtual environment) is not fastgan's."""
    return _commit_of(os.path.dirname(os.path.abspath(__file__)))


def _commit_of(package_dir: str) -> str:
    checkout = os.path.dirname(package_dir)
    if os.path.isfile(os.path.join(checkout, "pyproject.toml")):
        got = _git_head(checkout)
        if got:
            return got
    try:
        with open(os.path.join(package_dir, "_build_info.json")) as fh:
            got = json.load(fh).get("git_commit") or ""
        if isinstance(got, str) and got:
            return got
    except (OSError, ValueError, AttributeError):
        pass
    try:
        from importlib.metadata import PackageNotFoundError, distribution
        doc = json.loads(distribution("fastgan").read_text("direct_url.json") or "{}")
        return str(doc.get("vcs_info", {}).get("commit_id", "") or "")
    except (PackageNotFoundError, ValueError, AttributeError, OSError):
        return ""


def _git_head(root: str) -> str:
    """HEAD (+ '-dirty') of the git checkout whose top level is ``root``; '' otherwise."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=5)
        if top.returncode or os.path.realpath(top.stdout.strip()) != os.path.realpath(root):
            return ""
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return ""


def provenance(backend: str, precision: str) -> dict:
    return {"fastgan_version": package_version(), "git_commit": git_commit(), "backend": backend,
            "precision": precision, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def write_run(path: str, result, force: bool = False, extra_attrs: dict | None = None) -> None:
    """Write a :class:`~fastgan.engine.RunResult` to ``path`` (atomic; refuses to overwrite unless forced)."""

    def fill(f):
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        attrs = run_attrs(result)
        timings = attrs.pop("timings")
        prov = provenance(attrs.pop("backend"), attrs.pop("precision"))
        stop = {k: attrs.pop(k) for k in list(attrs) if k.startswith("early_stop")}
        for k, v in {**attrs, **prov, **stop, "timings": timings, **(extra_attrs or {})}.items():
            f.attrs[k] = v
        f.create_dataset("time", data=result.time)
        og = f.create_group("observables")
        for k, v in result.observables.items():
            og.create_dataset(k, data=v)
        hg = f.create_group("histograms")
        for k, v in result.histograms.items():
            hg.create_dataset(k, data=v)
        f.create_dataset("particles", data=result.particles, compression="gzip", shuffle=True)
        f.create_dataset("particles_time", data=result.particles_time)
        dg = f.create_group("discriminator")
        for k, v in result.discriminator.items():
            dg.create_dataset(k, data=v)
        if result.disc_snapshots:
            sg = f.create_group("discriminator_snapshots")
            for k, v in result.disc_snapshots.items():
                sg.create_dataset(k, data=v, compression="gzip", shuffle=True)
        if result.modes is not None:
            f.create_dataset("target/modes", data=result.modes)
        netcdf_view(f)
        f.attrs["checksum"] = _digest(f)

    check_writable(path, force)
    atomic_h5(path, fill, replace=force)


NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."     # netCDF-4's name for such a scale


def netcdf_view(f) -> None:
    """Make the open run file ``f`` (the version-1 layout written) readable by netCDF-4 readers: dimension
    scales at the root, the observables, histograms and modes linked there with their dimensions and
    attributes (see the module docstring). Only adds names and attributes: no stored number changes."""
    def scale(name, size=None, values=None):
        if values is not None:
            f.create_dataset(name, data=values)
            f[name].make_scale(name)
        else:                                           # a dimension without values (no storage is allocated)
            f.create_dataset(name, shape=(size,), dtype="f4")
            f[name].make_scale(f"{NOT_A_VARIABLE}{size:10d}")
        return f[name]

    def attach(ds, *dims):
        for i, d in enumerate(dims):
            ds.dims[i].attach_scale(f[d])

    def link(name, target, *dims):
        f[name] = target                                # a hard link: one dataset, two names
        attach(f[name], *dims)
        f[name].attrs.update(variable_attrs(name))

    f["time"].make_scale("time")
    f["time"].attrs.update(variable_attrs("time"))
    S, N, d = f["particles"].shape
    scale("snapshot", values=f["particles_time"][()]).attrs.update(variable_attrs("snapshot"))
    scale("particle", N)
    scale("coord", d)
    attach(f["particles"], "snapshot", "particle", "coord")
    attach(f["particles_time"], "snapshot")
    for name in ("particles", "particles_time"):
        f[name].attrs.update(variable_attrs(name))
    K = None
    if "target" in f and "modes" in f["target"]:
        K = f["target/modes"].shape[0]
        scale("mode", K)
        link("modes", f["target/modes"], "mode", "coord")
    for k in f["observables"]:
        link(observable_var(k), f["observables"][k], "time")
    for k in f["histograms"]:
        dim = histogram_dim(k, f["histograms"][k].shape[1], K)
        if dim not in f:
            scale(dim, f["histograms"][k].shape[1])
        link(f"{k}_histogram", f["histograms"][k], "time", dim)


def _digest(f) -> str:
    """The checksum of an open run file (:func:`fastgan.h5io.digest` of its contents), with the dimension
    scales' object references (whose bytes, as read, are not the file's) as what they name: the scale of each
    dimension, the dimension each attachment is to."""
    arrays, attrs = contents(f)
    for k, v in attrs.items():
        if k.endswith("@DIMENSION_LIST"):
            attrs[k] = "|".join(",".join(f[r].name for r in refs) for refs in v)
        elif k.endswith("@REFERENCE_LIST"):
            attrs[k] = np.asarray([int(row[1]) for row in v], dtype=np.int64)
    return digest(arrays, attrs)


def open_run(path: str):
    """The run file at ``path`` as an xarray Dataset (checked as :func:`read_run` checks it; any layout
    version): observables over ``time``, particles over (snapshot, particle, coord), with attributes."""
    ds = run_dataset(read_run(path))
    ds.encoding["source"] = path
    return ds


def read_run(path: str) -> dict:
    """Load a run file into a dict of host arrays (``config`` is a validated Config)."""
    out: dict = {}
    why = check_seal(path)                        # before HDF5 parses a byte of it: it can crash on damage
    if why is not None:
        raise FastganError(f"{path!r}: a damaged run file ({why})")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FastganError(f"{path!r}: not a fastgan run file (cannot open it as HDF5: "
                           f"{str(exc).splitlines()[0] if str(exc) else exc})") from None
    try:
        with f:
            if f.attrs.get("format") != FORMAT:
                raise _NotARun
            want = f.attrs.get("checksum")
            if want is not None and str(want) != _digest(f):
                raise _Damaged("checksum mismatch: the file changed after it was written")
            _read_into(f, out)
            _check_structure(out)
    except _NotARun:
        raise FastganError(f"{path!r}: not a fastgan run file") from None
    except _Damaged as exc:
        raise FastganError(f"{path!r}: a damaged run file ({exc})") from None
    except FastganError as exc:
        raise FastganError(f"{path!r}: a damaged run file (its stored config: {exc})") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises many types on a damaged file; all mean the same
        raise FastganError(f"{path!r}: a damaged run file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    return out


class _Damaged(Exception):
    pass


class _NotARun(Exception):
    pass


def _check_structure(out: dict) -> None:
    """The shapes and types every reader relies on (a file edited by hand, or one from a damaged copy
    without a checksum): numeric arrays, the observables and histograms over the recorded times, the
    snapshots over their times and of the run's particle count."""
    def numeric(name, a, ndim):
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf" or a.ndim != ndim:
            kind = getattr(a, "dtype", type(a))
            raise _Damaged(f"{name} should be a {ndim}-d numeric array, got {kind} of shape {np.shape(a)}")

    numeric("time", out["time"], 1)
    T = len(out["time"])
    if T == 0:
        raise _Damaged("time is empty: nothing was recorded")
    for k, v in out["observables"].items():
        numeric(f"observables/{k}", v, 1)
        if len(v) != T:
            raise _Damaged(f"observables/{k} has {len(v)} values for {T} recorded times")
    for k, v in out["histograms"].items():
        numeric(f"histograms/{k}", v, 2)
        if len(v) != T:
            raise _Damaged(f"histograms/{k} has {len(v)} rows for {T} recorded times")
    numeric("particles", out["particles"], 3)
    numeric("particles_time", out["particles_time"], 1)
    S, N = out["particles"].shape[:2]
    if len(out["particles_time"]) != S or S == 0:
        raise _Damaged(f"particles has {S} snapshots for {len(out['particles_time'])} snapshot times")
    if N != out["config"].resolved.generator.n_particles:
        raise _Damaged(f"particles holds {N} particles, its config says generator.n_particles = "
                       f"{out['config'].resolved.generator.n_particles}")
    for k, v in {**out["discriminator"], **out["discriminator_snapshots"]}.items():
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf":
            raise _Damaged(f"discriminator parameter {k} is not numeric")
    if out["modes"] is not None:
        numeric("target/modes", out["modes"], 2)
    shape = out.get("image_shape")
    if shape is not None and (len(shape) != 2 or min(shape) < 1):
        raise _Damaged(f"target_image_shape should be two positive integers [H, W], got {list(shape)}")


def _read_into(f, out: dict) -> None:
    out["attrs"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    out["config"] = from_dict(json.loads(f.attrs["config_input"]), check_files=False)
    out["time"] = f["time"][()]
    out["observables"] = {k: f["observables"][k][()] for k in f["observables"]}
    out["histograms"] = {k: f["histograms"][k][()] for k in f.get("histograms", {})}
    out["particles"] = f["particles"][()]
    out["particles_time"] = f["particles_time"][()]
    out["discriminator"] = {k: f["discriminator"][k][()] for k in f["discriminator"]}
    out["discriminator_snapshots"] = {k: f["discriminator_snapshots"][k][()]
                                      for k in f.get("discriminator_snapshots", {})}
    out["modes"] = f["target/modes"][()] if "target" in f and "modes" in f["target"] else None
    out["diverged"] = bool(f.attrs["diverged"])
    out["diverged_at"] = int(f.attrs["diverged_at"])
    shape = f.attrs.get("target_image_shape")
    out["image_shape"] = None if shape is None else tuple(int(n) for n in np.ravel(shape))
