"""Shared plumbing of the Numba-CUDA twins (``cuda_numba_mlp``, ``_misc``, ``_linear``, ``_kde``).

Array module: the host wrappers take "device arrays of the backend". On a real GPU those are CuPy
arrays (handed to Numba-CUDA kernels through ``__cuda_array_interface__``); under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``) they are host NumPy arrays. ``array_module`` picks
``cupy`` only when an input already is a CuPy array, so CuPy is imported lazily and never under
the simulator.

Streams: every launch goes onto CuPy's current stream (``external_stream``), and CuPy arrays
are wrapped with ``cuda.as_cuda_array(..., sync=False)``: consumer-side synchronisation of the
CUDA Array Interface would otherwise block the host at every launch, and it is not needed
because producer and consumer share that stream.

Launch parameters come from ``launch.GPU_BLOCK`` / ``launch.GPU_MAX_BLOCKS`` and are read at
call time (tests patch them to tiny odd values); every kernel is written with grid-stride loops
over its tasks, so any (grid, block) pair is correct.

``mul_rn`` (``mul_rn_for(dtype)``: float32 too): NVVM contracts ``a + b * c`` into an FMA by
default, which changes the rounding of the last bit. Where results must be bitwise equal to the
NumPy reference (target samples, squared distances deciding the nearest mode) the product goes
through ``libdevice.dmul_rn``, which is never contracted. The simulator has no libdevice; there a
plain product is the same thing.

Disk cache: kernels are compiled with ``cache=True`` on a GPU (:func:`jit_kernel`), so a new process
(a sweep's worker, the next command) loads them from ``__pycache__`` (or numba's user cache directory)
instead of compiling them again.

Kernel sets: every module registers its kernels once (:func:`register_kernels`): the dimension
limit (:func:`check_dim`) and the compile-only targets (:func:`ptx_targets`) come from there.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from numba import cuda

from . import launch


def _simulator_enabled() -> bool:
    """Whether numba.cuda is the simulator (numba-cuda keeps the flag in numba.cuda.core.config,
    the numba.cuda built into numba in numba.core.config)."""
    import importlib
    for name in ("numba.cuda.core.config", "numba.core.config"):
        try:
            return bool(importlib.import_module(name).ENABLE_CUDASIM)
        except (ImportError, AttributeError):
            continue
    import os
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("0", "")


SIMULATOR = _simulator_enabled()


def _kernel_cache() -> bool:
    import os
    return not SIMULATOR and os.environ.get("FASTGAN_CUDA_CACHE", "1").strip() != "0"


KERNEL_CACHE = _kernel_cache()


def jit_kernel(fn):
    """``cuda.jit`` of a kernel, cached on disk on a GPU (``KERNEL_CACHE``; numba keys an entry by the
    signature, the target GPU, the function's bytecode and its closure's values, so the per-d / per-dtype
    kernels of a factory get one entry each). ``FASTGAN_CUDA_CACHE=0`` turns it off."""
    return cuda.jit(cache=True)(fn) if KERNEL_CACHE else cuda.jit(fn)

MAX_THREADS = 1024   # hardware limit of threads per block; sizes the per-block scratch arrays

if SIMULATOR:
    @cuda.jit(device=True)
    def mul_rn(x, y):
        return x * y
    mul_rn_f32 = mul_rn
else:
    from numba.cuda import libdevice as _libdevice
    mul_rn, mul_rn_f32 = _libdevice.dmul_rn, _libdevice.fmul_rn


def mul_rn_for(dtype_name: str):
    """The uncontracted product of ``dtype_name`` (``mul_rn`` for float64, ``fmul_rn`` for float32)."""
    return mul_rn_f32 if dtype_name == "float32" else mul_rn


def is_cupy(x) -> bool:
    return x is not None and not isinstance(x, np.ndarray) and type(x).__module__.split(".")[0] == "cupy"


def array_module(*arrays):
    """``cupy`` if any argument is a CuPy array (imported lazily), else ``numpy``."""
    for a in arrays:
        if is_cupy(a):
            import cupy
            return cupy
    return np


def as_xp(xp, x, dtype=None):
    """``x`` as an array of ``xp`` (no copy when it already is one with that dtype)."""
    if dtype is None:
        return x if (xp is np and isinstance(x, np.ndarray)) or (xp is not np and is_cupy(x)) else xp.asarray(x)
    return xp.ascontiguousarray(xp.asarray(x), dtype=dtype)


def dev(xp, x):
    """What a kernel receives: NumPy arrays as they are (simulator / host transfers), CuPy arrays
    as Numba device arrays without consumer-side stream synchronisation (see module docstring)."""
    if xp is np:
        return x
    return cuda.as_cuda_array(x, sync=False)


def stream(xp):
    """The stream to launch on: CuPy's current stream on a GPU, the default stream otherwise."""
    if xp is np:
        return 0
    import cupy
    ptr = cupy.cuda.get_current_stream().ptr
    return cuda.external_stream(ptr) if ptr else cuda.default_stream()


NUMBA_MAX_BLOCK = 256   # the Numba-CUDA kernels have no launch bounds and use up to 255 registers


def block(name: str) -> int:
    """Threads per block of a Numba-CUDA kernel for ``name`` (read now: tests patch ``launch.GPU_BLOCK``),
    at most ``NUMBA_MAX_BLOCK``: a larger block would need more than the 65536 registers of an SM."""
    t = int(launch.GPU_BLOCK[name])
    if not 1 <= t <= MAX_THREADS:
        raise ValueError(f"launch.GPU_BLOCK[{name!r}] = {t}: must be in [1, {MAX_THREADS}]")
    return min(t, NUMBA_MAX_BLOCK)


def blocks(n_tasks: int) -> int:
    """Blocks for ``n_tasks`` block-sized tasks, capped by ``launch.GPU_MAX_BLOCKS`` (grid-stride)."""
    return max(1, min(int(launch.GPU_MAX_BLOCKS), int(n_tasks)))


# ----------------------------------------------------------------------------- the kernel sets

class KernelSet(NamedTuple):
    """The Numba-CUDA kernels of one module, registered once for dimension checks and compile-only
    checks: ``build(dtype_name, d)`` -> a NamedTuple of kernels (d None when they are not
    specialised per dimension), ``examples(dtype_name, d)`` -> {kernel name: example arguments (their
    numba types are the compiled signature)}, ``max_dim`` the largest d the kernels support (None:
    any)."""

    name: str
    build: Callable
    examples: Callable
    max_dim: int | None = None
    routed: Callable | None = None      # (kernel name, dtype name, d) -> whether the router sends d there
    variants: Callable | None = None    # (dtype name, d) -> {label: (kernel, example args)} of extra kernels


KERNEL_SETS: dict = {}


def register_kernels(name: str, build: Callable, examples: Callable, max_dim: int | None = None,
                     routed: Callable | None = None, variants: Callable | None = None) -> KernelSet:
    KERNEL_SETS[name] = ks = KernelSet(name, build, examples, max_dim, routed, variants)
    return ks


def check_dim(name: str, d: int) -> None:
    """ValueError unless the kernel set ``name`` supports dimension d."""
    top = KERNEL_SETS[name].max_dim
    if not 1 <= d <= top:
        raise ValueError(f"the Numba-CUDA {name} kernels support 1 <= d <= MAX_DIM = {top}, got d = {d}")


def ptx_targets(dtypes=("float32", "float64"), dims=(1, 2, 3), sets=None) -> list:
    """(label, python function, numba signature) of every registered kernel the router can choose, for
    every dtype and every d in ``dims`` it supports (compile-only checks: ``cuda_numba.compile_ptx_all``,
    tests/test_gpu_build.py); ``sets`` restricts to some kernel sets."""
    import numba
    out = []
    for ks in KERNEL_SETS.values():
        if sets is not None and ks.name not in sets:
            continue
        for dn in dtypes:
            for d in (dims if ks.max_dim is not None else (None,)):
                if d is not None and d > ks.max_dim:
                    continue
                kernels = ks.build(dn, d)
                tag = f"[{dn}" + ("" if d is None else f",d={d}") + "]"
                for kname, args in ks.examples(dn, d).items():
                    if ks.routed is not None and not ks.routed(kname, dn, d):
                        continue
                    out.append((f"{ks.name}.{kname}{tag}", getattr(kernels, kname).py_func,
                                tuple(numba.typeof(a) for a in args)))
                for label, (kern, args) in (ks.variants(dn, d) if ks.variants else {}).items():
                    out.append((f"{ks.name}.{label}{tag}", kern.py_func, tuple(numba.typeof(a) for a in args)))
    return out
