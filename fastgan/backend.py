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
                _import_numba_cuda()
            except Exception as exc:  # noqa: BLE001
                return Availability(name, False, f"numba.cuda cannot be imported under the simulator ({exc})")
            return Availability(name, True, "Numba-CUDA simulator (NUMBA_ENABLE_CUDASIM=1): host arrays, no CuPy",
                                _version("numba"))
        return _probe_cuda()
    raise BackendError(f"unknown backend {name!r} (choose from {', '.join(CHOICES)})")


# --------------------------------------------------------------------------- the cuda probe
# Each step below is a small function so the tests can replace it (no GPU needed to test the branches).
# Minimum kernel-mode driver per CUDA major version: the runtime's, and what PTX / cubins of that
# toolkit's NVVM need (PTX ISA 9.x comes from CUDA 13, 8.x from CUDA 12, 7.x from CUDA 11).
DRIVER_FOR_CUDA = {11: "450.80", 12: "525.60", 13: "580"}
_INSTALL = "install fastgan[cuda] (CUDA 12) or fastgan[cuda13]"


def _why(exc: BaseException) -> str:
    """An exception as one short line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _cuda_str(v: int) -> str:
    """12040 -> '12.4' (the encoding of cudaDriverGetVersion / cudaRuntimeGetVersion)."""
    return f"{v // 1000}.{v % 1000 // 10}"


def _import_cupy():
    import cupy
    return cupy


def _import_numba_cuda():
    from numba import cuda
    return cuda


def _driver_release() -> str:
    """The kernel-mode driver's release ('580.159.04') read from /proc, without any CUDA library ('' if unknown)."""
    import re
    try:
        with open("/proc/driver/nvidia/version") as fh:
            m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", fh.read())
    except OSError:
        return ""
    return m.group(1) if m else ""


def _ptx_isa(nbcuda) -> tuple:
    """(major, minor) PTX ISA version that numba-cuda's libNVVM emits: compiles a trivial kernel to PTX
    (needs NVVM, not a GPU); raises when there is no usable NVVM."""
    import re

    def _noop(a):
        a[0] = 1.0

    ptx = nbcuda.compile_ptx(_noop, "void(float32[:])", cc=(8, 0))[0]
    m = re.search(r"^\s*\.version\s+(\d+)\.(\d+)", ptx, re.M)
    if not m:
        raise RuntimeError("NVVM's PTX has no .version line")
    return int(m.group(1)), int(m.group(2))


def _tiny_launch(cupy, nbcuda) -> str:
    """'' when a CuPy kernel compiled by NVRTC and a Numba-CUDA kernel each ran once with the right
    result, else why not (one line)."""
    import numpy as np
    try:
        k = cupy.ElementwiseKernel("float32 x", "float32 y", "y = 2 * x + 1", "fastgan_probe")
        got = cupy.asnumpy(k(cupy.arange(5, dtype=cupy.float32)))
        if not np.array_equal(got, 2 * np.arange(5, dtype=np.float32) + 1):
            return f"CuPy (NVRTC) kernel computed {got.tolist()}"
    except Exception as exc:  # noqa: BLE001
        return f"CuPy (NVRTC) kernel: {_why(exc)}"
    try:
        @nbcuda.jit
        def _add_one(a):
            i = nbcuda.grid(1)
            if i < a.size:
                a[i] += 1

        d = nbcuda.to_device(np.arange(5, dtype=np.float32))
        _add_one[1, 32](d)
        got = d.copy_to_host()
        if not np.array_equal(got, np.arange(5, dtype=np.float32) + 1):
            return f"Numba-CUDA kernel computed {got.tolist()}"
    except Exception as exc:  # noqa: BLE001
        return f"Numba-CUDA kernel: {_why(exc)}"
    return ""


def _probe_cuda() -> Availability:
    """A real GPU (not the simulator): CuPy, the driver against the runtime, a device, numba-cuda,
    libNVVM and the driver against its PTX, then a tiny launch of each kind of kernel."""
    no = lambda why: Availability("cuda", False, " ".join(why.split()))      # noqa: E731 - one line
    try:
        cupy = _import_cupy()
    except Exception as exc:  # noqa: BLE001
        return no(f"cupy is not installed or fails to import ({_why(exc)}); {_INSTALL}")
    rt = cupy.cuda.runtime
    try:
        driver = int(rt.driverGetVersion())
    except Exception as exc:  # noqa: BLE001
        return no(f"no CUDA driver ({_why(exc)})")
    if driver <= 0:
        return no("no CUDA driver (no NVIDIA driver / libcuda on this machine)")
    release = _driver_release()
    drv = f"driver {release + ' ' if release else ''}(CUDA {_cuda_str(driver)})"
    try:
        runtime = int(rt.runtimeGetVersion())
    except Exception:  # noqa: BLE001
        runtime = 0
    if runtime and driver // 1000 < runtime // 1000:
        need = DRIVER_FOR_CUDA.get(runtime // 1000, "newer")
        return no(f"{drv} is too old for CuPy's CUDA {_cuda_str(runtime)} runtime (needs driver >= {need}); "
                  f"update the driver or install fastgan[cuda] (CUDA 12)")
    try:
        n = int(rt.getDeviceCount())
    except Exception as exc:  # noqa: BLE001
        return no(f"no usable CUDA device with {drv} ({_why(exc)})")
    if n < 1:
        return no(f"no CUDA device ({drv})")
    try:
        nbcuda = _import_numba_cuda()
    except Exception as exc:  # noqa: BLE001
        return no(f"numba-cuda cannot be imported ({_why(exc)}); {_INSTALL}")
    try:
        isa = _ptx_isa(nbcuda)
    except Exception as exc:  # noqa: BLE001
        return no(f"no usable libNVVM for numba-cuda ({_why(exc)}); {_INSTALL} (numba-cuda[cu12] / [cu13] bring NVVM)")
    nvvm_cuda = isa[0] + 4                     # PTX ISA 9.x <- CUDA 13, 8.x <- CUDA 12
    if nvvm_cuda > driver // 1000:
        return no(f"{drv} cannot load PTX {isa[0]}.{isa[1]} from CUDA {nvvm_cuda} NVVM (needs driver >= "
                  f"{DRIVER_FOR_CUDA.get(nvvm_cuda, 'newer')}); update the driver or install fastgan[cuda] (CUDA 12)")
    try:
        usable = nbcuda.is_available()
    except Exception as exc:  # noqa: BLE001
        return no(f"numba-cuda cannot use the GPU ({_why(exc)})")
    if not usable:
        return no(f"numba-cuda reports no usable GPU ({drv})")
    err = _tiny_launch(cupy, nbcuda)
    if err:
        return no(f"a tiny kernel launch failed with {drv}, NVVM PTX {isa[0]}.{isa[1]}: {err}")
    try:
        props = rt.getDeviceProperties(0)
        dev = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        dev += f" (sm_{props['major']}{props['minor']})"
    except Exception:  # noqa: BLE001
        dev = "CUDA device 0"
    more = f" (+{n - 1} more)" if n > 1 else ""
    return Availability("cuda", True, f"{dev}{more}; {drv}, CuPy runtime CUDA {_cuda_str(runtime)}, "
                        f"NVVM PTX {isa[0]}.{isa[1]}", getattr(cupy, "__version__", ""))


def cuda_facts() -> dict:
    """What the GPU check reports about CUDA here: versions of the driver, runtime, NVRTC and NVVM,
    the device, and the probe's verdict (never raises; '' for what cannot be read)."""
    out = {"simulator": cuda_simulator(), "driver_release": _driver_release(), "cupy": _version("cupy"),
           "numba": _version("numba"), "numba_cuda": _version("numba-cuda")}
    a = probe("cuda")
    out.update(ok=a.ok, reason=a.reason)
    if out["simulator"]:
        return out
    try:
        cupy = _import_cupy()
        rt = cupy.cuda.runtime
        drv = int(rt.driverGetVersion())
        out["driver_cuda"] = _cuda_str(drv) if drv > 0 else ""
        out["runtime_cuda"] = _cuda_str(int(rt.runtimeGetVersion()))
        out["nvrtc"] = ".".join(map(str, cupy.cuda.nvrtc.getVersion()))
        if a.ok:
            props = rt.getDeviceProperties(0)
            out.update(device=props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                       compute_capability=f"{props['major']}.{props['minor']}",
                       multiprocessors=int(props["multiProcessorCount"]),
                       memory_gib=round(int(props["totalGlobalMem"]) / 2 ** 30, 1))
    except Exception as exc:  # noqa: BLE001
        out["cupy_error"] = _why(exc)
    try:
        isa = _ptx_isa(_import_numba_cuda())
        out["nvvm_ptx_isa"] = f"{isa[0]}.{isa[1]}"
        out["nvvm_cuda"] = str(isa[0] + 4)
    except Exception as exc:  # noqa: BLE001
        out["nvvm_error"] = _why(exc)
    return out


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
            announce and _announce(f"backend auto -> numba ({'cuda: ' + cuda.reason if not cuda.ok else 'CUDA simulator is not used by auto'})")
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
