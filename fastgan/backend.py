"""Backend selection: the one place that probes capabilities and branches on libraries.

Names: ``numpy`` (the reference, always there), ``numba`` (CPU JIT, parallel), ``cuda`` (CuPy
arrays with Numba-CUDA and CuPy raw kernels; under ``NUMBA_ENABLE_CUDASIM=1`` the Numba-CUDA
kernels run in the simulator on host arrays and CuPy is never selected), ``auto`` (cuda if a GPU
is usable, else numba, else numpy).

Precedence: an explicit request (``--backend``, ``simulate(backend=...)``) over the
``FASTGAN_BACKEND`` environment variable over the config's ``backend`` key. Probing is lazy and
happens once per process; importing fastgan imports neither cupy nor torch.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass

from .errors import BackendError

NAMES = ("numpy", "numba", "cuda")
CHOICES = NAMES + ("auto",)
log = logging.getLogger("fastgan")


@dataclass(frozen=True)
class Availability:
    name: str
    ok: bool
    reason: str          # why not, or what it runs on
    version: str = ""


def cuda_simulator() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("0", "")


_DISTRIBUTIONS = {"cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"), "dask": ("dask",)}


def _version(mod: str) -> str:
    """Installed version of a library without importing it ('' when absent)."""
    from importlib.metadata import PackageNotFoundError, version
    for dist in _DISTRIBUTIONS.get(mod, (mod,)):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return ""


@functools.lru_cache(maxsize=None)
def probe(name: str) -> Availability:
    """Whether a backend can run here, and why not (cached)."""
    if name == "numpy":
        return Availability(name, True, "NumPy reference", _version("numpy"))
    if name == "numba":
        try:
            import numba
        except Exception as exc:  # noqa: BLE001
            return Availability(name, False, f"numba cannot be imported ({exc})")
        return Availability(name, True, f"CPU, {numba.config.NUMBA_NUM_THREADS} threads ({numba.threading_layer() if _layer_ready() else 'threading layer chosen at first use'})", numba.__version__)
    if name == "cuda":
        if cuda_simulator():
            try:
                from numba import cuda  # noqa: F401
            except Exception as exc:  # noqa: BLE001
                return Availability(name, False, f"numba.cuda cannot be imported under the simulator ({exc})")
            return Availability(name, True, "Numba-CUDA simulator (NUMBA_ENABLE_CUDASIM=1): host arrays, no CuPy",
                                _version("numba"))
        try:
            import cupy
        except Exception as exc:  # noqa: BLE001
            return Availability(name, False, f"cupy is not installed or fails to import ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}); install fastgan[cuda]")
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001
            return Availability(name, False, f"no CUDA driver or device ({str(exc).splitlines()[0]})")
        if n < 1:
            return Availability(name, False, "no CUDA device")
        try:
            from numba import cuda
            if not cuda.is_available():
                return Availability(name, False, "numba.cuda reports no usable GPU")
        except Exception as exc:  # noqa: BLE001
            return Availability(name, False, f"numba.cuda cannot be imported ({exc}); install fastgan[cuda]")
        props = cupy.cuda.runtime.getDeviceProperties(0)
        return Availability(name, True, f"{props['name'].decode()} (+{n - 1} more)" if n > 1 else props["name"].decode(),
                            cupy.__version__)
    raise BackendError(f"unknown backend {name!r} (choose from {', '.join(CHOICES)})")


def _layer_ready() -> bool:
    try:
        import numba
        numba.threading_layer()
        return True
    except Exception:  # noqa: BLE001 - raises until the first parallel function has run
        return False


_announced: set = set()


def _announce(msg: str) -> None:
    if msg not in _announced:
        _announced.add(msg)
        log.info(msg)


def resolve(requested: str | None = None, config_backend: str | None = None, announce: bool = True) -> str:
    """The concrete backend name to use (see module docstring for precedence)."""
    from . import environment
    name = requested or environment.get("FASTGAN_BACKEND") or config_backend or "auto"
    name = name.strip().lower()
    if name not in CHOICES:
        raise BackendError(f"backend = {name!r}: unknown backend (choose from {', '.join(CHOICES)})")
    if name == "auto":
        cuda = probe("cuda")
        if cuda.ok and not cuda_simulator():
            return "cuda"
        nb = probe("numba")
        if nb.ok:
            announce and _announce(f"backend auto -> numba ({'no GPU: ' + cuda.reason if not cuda.ok else 'CUDA simulator is not used by auto'})")
            return "numba"
        announce and _announce(f"backend auto -> numpy (numba: {nb.reason})")
        return "numpy"
    avail = probe(name)
    if not avail.ok:
        raise BackendError(f"backend = {name!r}: not available here: {avail.reason}")
    return name


def get_ops(name: str):
    """The op table of a concrete backend."""
    from .kernels.ops import load_ops
    return load_ops(name)


def info() -> str:
    """What ``fastgan info`` prints: backends, devices, versions, cache paths."""
    import platform

    lines = [f"fastgan {_version('fastgan') or 'dev'} on Python {platform.python_version()} ({sys.platform}, "
             f"{os.cpu_count()} CPUs)"]
    lines.append("backends:")
    for n in NAMES:
        a = probe(n)
        lines.append(f"  {n:6s} {'available  ' if a.ok else 'unavailable'}  {a.reason}"
                     + (f" [{a.version}]" if a.version else ""))
    try:
        lines.append(f"  auto   -> {resolve('auto', announce=False)}")
    except BackendError as exc:  # pragma: no cover
        lines.append(f"  auto   -> error: {exc}")
    lines.append("libraries:")
    for mod in ("numpy", "numba", "numba-cuda", "llvmlite", "h5py", "matplotlib", "scipy", "cupy", "torch", "dask",
                "xarray"):
        lines.append(f"  {mod:10s} {_version(mod) or 'not installed'}")
    lines.append("caches:")
    lines.append(f"  numba      {_numba_cache_dir()}")
    lines.append(f"  cuda C     {kernel_cache_dir()}")
    lines.append(f"environment: FASTGAN_BACKEND={os.environ.get('FASTGAN_BACKEND', '')!s} "
                 f"NUMBA_ENABLE_CUDASIM={os.environ.get('NUMBA_ENABLE_CUDASIM', '')!s} "
                 f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '')!s}")
    return "\n".join(lines)


def _numba_cache_dir() -> str:
    d = os.environ.get("NUMBA_CACHE_DIR")
    if d:
        return d
    try:
        from . import kernels
        return os.path.join(os.path.dirname(kernels.__file__), "__pycache__") + " (beside the sources)"
    except Exception:  # noqa: BLE001
        return "beside the sources (__pycache__)"


def kernel_cache_dir() -> str:
    """Where compiled CUDA C artefacts are kept: CuPy's kernel cache, with fastgan's entries scoped by a
    key of (source, defines, dtype, arch, CuPy version) passed as -DFASTGAN_KERNEL_KEY."""
    return os.environ.get("CUPY_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cupy", "kernel_cache")
