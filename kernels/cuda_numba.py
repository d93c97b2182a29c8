"""Numba-CUDA twins of every hot op (reference: the ``*_numpy`` modules), one namespace.

The kernels live in ``cuda_numba_mlp`` (the one-hidden-layer MLP: step, grad_x, forward),
``cuda_numba_misc`` (target sampling, the three couplings, mode statistics), ``cuda_numba_linear``
(the linear discriminators: trig features, kernel sums) and ``cuda_numba_kde`` (KDE reductions);
their module docstrings describe the GPU design. The per-query reductions are built by
``cuda_numba_tiled``; ``cuda_numba_common`` holds the array-module / stream / launch plumbing and
the registry of kernel sets (dimension limits, compile-only targets). Each host wrapper has exactly the signature and semantics of its reference:
arrays are CuPy arrays on a real GPU and NumPy arrays under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``), in-place updates land in the caller's arrays, ``mode_stats``
returns host arrays.

``compile_ptx_all`` compiles every kernel (for a few dtypes and d) to PTX without a GPU: the
simulator runs kernels as plain Python, so this is what catches Numba-CUDA typing errors on a
machine that has libNVVM but no device.
"""

from __future__ import annotations

from .cuda_numba_common import KERNEL_SETS, check_dim, ptx_targets  # noqa: F401
from .cuda_numba_kde import kde_grad_sum, kde_log_density  # noqa: F401
from .cuda_numba_linear import (kernel_sum, kernel_sum_grad, trig_disc_step, trig_forward,  # noqa: F401
                                trig_grad_x)
from .cuda_numba_mlp import MAX_DIM, mlp_disc_step, mlp_forward, mlp_grad_x  # noqa: F401
from .cuda_numba_update import generator_update  # noqa: F401
from .cuda_numba_misc import (coupled_velocity_coarse, coupled_velocity_gram, coupled_velocity_spatial,  # noqa: F401
                              mode_stats, sample_mixture, sample_mixture_steps)


def compile_ptx_all(cc=None, dtypes=("float32", "float64"), dims=(1, 2, 3)) -> dict:
    """Compile every kernel to PTX for compute capability ``cc`` (default: the current GPU's, or
    (9, 0) without one); returns {name: ptx}.

    Needs libNVVM (a CUDA toolkit), not a GPU, and must run without the simulator."""
    import contextlib
    from types import SimpleNamespace
    from unittest import mock

    from numba import cuda

    from .cuda_numba_common import SIMULATOR
    if SIMULATOR:
        raise RuntimeError("compile_ptx_all needs the real numba.cuda (unset NUMBA_ENABLE_CUDASIM)")
    patch = contextlib.nullcontext()
    if cuda.is_available():
        cc = cc or cuda.get_current_device().compute_capability
    else:
        cc = cc or (9, 0)
        # Device functions called from a kernel are compiled for the current device's compute
        # capability; without a device, pretend there is one of capability ``cc``.
        from numba.cuda import dispatcher
        patch = mock.patch.object(dispatcher, "get_current_device",
                                  lambda: SimpleNamespace(compute_capability=tuple(cc)))
    out = {}
    with patch:
        for name, fn, sig in ptx_targets(dtypes, dims):
            try:
                out[name] = cuda.compile_ptx(fn, sig, cc=cc)[0]
            except Exception as exc:
                raise RuntimeError(f"Numba-CUDA kernel {name} does not compile: {exc}") from exc
    return out
