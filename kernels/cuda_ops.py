"""What the ``cuda`` backend adds to the op registry (``registry.OPS``; ``ops.load_ops`` builds the table).

Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the arrays are host NumPy arrays
(``xp = numpy``) and every op is its registered ``cuda`` implementation: the Numba-CUDA kernels run
by the simulator, so the whole engine can be tested on a machine without a GPU. On a real GPU the
arrays are CuPy arrays (``xp = cupy``) and an op's ``gpu`` entry, where it has one, is preferred:

* the one-hidden-layer MLP step and grad_x are the hand-written CuPy raw kernels of ``cuda_raw``
  (CUDA C, ``mlp.cu``) where that module imports, else the Numba-CUDA kernels;
  ``FASTGAN_CUDA_KERNELS=numba`` uses the Numba-CUDA kernels instead of the raw ones (comparisons,
  benchmarks);
* the explicit-Gram coupling is a batched ``xp.matmul`` (cuBLAS, :func:`matmul_gram`);
* the deep MLP and d = 2 Fourier-grid ops are written over ``xp`` (cuBLAS matmul) for every backend.

``CHOSEN`` records, after ``load_ops("cuda")``, which implementation serves each op.
"""

from __future__ import annotations

import importlib
import logging
import os

import numpy as np

from .cuda_numba_common import SIMULATOR, array_module

log = logging.getLogger("fastgan")

CHOSEN: dict = {}


def array_namespace():
    """The backend's array module: numpy under the simulator, else cupy."""
    if SIMULATOR:
        return np
    import cupy
    return cupy


def _forced_numba() -> bool:
    return os.environ.get("FASTGAN_CUDA_KERNELS", "").strip().lower() == "numba"


def gpu_override(op) -> tuple:
    """(function, note) of an op's ``gpu`` implementation when it serves here, else (None, why not);
    (None, "") for an op without one."""
    if op.gpu is None:
        return None, ""
    if SIMULATOR:
        return None, ""
    module, attr = op.gpu.split(".")
    if module == "cuda_raw" and _forced_numba():       # the raw kernels only: cuBLAS stays
        return None, "FASTGAN_CUDA_KERNELS=numba"
    try:
        fn = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    except Exception as exc:  # noqa: BLE001 - any failure: the registered cuda implementation serves
        log.info("%s is not usable (%s: %s); %s uses %s", op.gpu, type(exc).__name__, exc, op.name, op.cuda)
        return None, f"{op.gpu} unusable: {type(exc).__name__}"
    return fn, op.gpu


def matmul_gram(G, gram):
    """V = (1/N) G Gamma' through cuBLAS (batched matmul, gram broadcast over runs if (1, N, N))."""
    xp = array_module(G)
    gram = xp.asarray(gram, dtype=G.dtype)
    return xp.matmul(G, xp.swapaxes(gram, 1, 2)) / G.dtype.type(G.shape[2])
