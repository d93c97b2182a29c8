"""The ``cuda`` backend's op table (see ``ops.load_ops``).

Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the arrays are host NumPy arrays
(``xp = numpy``) and every op is a Numba-CUDA kernel run by the simulator, so the whole engine can
be tested on a machine without a GPU. On a real GPU the arrays are CuPy arrays (``xp = cupy``):

* the one-hidden-layer MLP step and grad_x are the hand-written CuPy raw kernels of
  ``cuda_raw`` (CUDA C, ``mlp.cu``) where that module imports, else the Numba-CUDA kernels;
  the hook is ``RAW_OPS`` (op name -> attribute of ``cuda_raw``), and ``FASTGAN_CUDA_KERNELS=numba``
  forces the Numba-CUDA kernels everywhere (for comparisons and benchmarks);
* the explicit-Gram coupling is a batched ``xp.matmul`` (cuBLAS) instead of its Numba kernel;
* the deep MLP ops are ``deep_mlp`` with ``xp = cupy`` (matmul-bound: cuBLAS);
* everything else is Numba-CUDA (``cuda_numba``), the linear discriminators (trig features,
  kernel sums) included; the d = 2 Fourier grid ops are ``fourier_grid`` with ``xp`` (cuBLAS matmul).

``CHOSEN`` records, after ``make_ops()``, which implementation serves each op.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .cuda_numba_common import SIMULATOR

log = logging.getLogger("fastgan")

# Hook points: ops that a CuPy raw-kernel implementation in ``cuda_raw`` may serve on a real GPU
# (op name -> function name in cuda_raw, same signature and semantics as the reference).
RAW_OPS = {"mlp_disc_step": "mlp_disc_step", "mlp_grad_x": "mlp_grad_x"}

CHOSEN: dict = {}


def raw_ops() -> dict:
    """{op name: function} of the CuPy raw kernels usable here; empty under the simulator, when
    ``FASTGAN_CUDA_KERNELS=numba``, or when ``cuda_raw`` is missing or fails to import."""
    if SIMULATOR or os.environ.get("FASTGAN_CUDA_KERNELS", "").strip().lower() == "numba":
        return {}
    try:
        from . import cuda_raw
    except Exception as exc:  # noqa: BLE001 - any failure: fall back to the Numba-CUDA kernels
        log.info("cuda_raw is not usable (%s: %s); the MLP ops use the Numba-CUDA kernels", type(exc).__name__, exc)
        return {}
    out = {}
    for op, attr in RAW_OPS.items():
        fn = getattr(cuda_raw, attr, None)
        if callable(fn):
            out[op] = fn
    return out


def _matmul_gram(xp):
    def coupled_velocity_gram(G, gram):
        """V = (1/N) G Gamma' through cuBLAS (batched matmul, gram broadcast over runs if (1, N, N))."""
        gram = xp.asarray(gram, dtype=G.dtype)
        return xp.matmul(G, xp.swapaxes(gram, 1, 2)) / G.dtype.type(G.shape[2])
    return coupled_velocity_gram


def make_ops():
    """The :class:`ops.Ops` of the ``cuda`` backend (see the module docstring)."""
    from . import cuda_numba as cn
    from . import deep_mlp, fourier_grid
    from .ops import Ops

    if SIMULATOR:
        xp = np
    else:
        import cupy as xp
    impl = {
        "sample_mixture": cn.sample_mixture,
        "mlp_disc_step": cn.mlp_disc_step,
        "mlp_grad_x": cn.mlp_grad_x,
        "mlp_forward": cn.mlp_forward,
        "coupled_velocity_coarse": cn.coupled_velocity_coarse,
        "coupled_velocity_gram": cn.coupled_velocity_gram if xp is np else _matmul_gram(xp),
        "coupled_velocity_spatial": cn.coupled_velocity_spatial,
        "mode_stats": cn.mode_stats,
        "trig_disc_step": cn.trig_disc_step,
        "trig_grad_x": cn.trig_grad_x,
        "trig_forward": cn.trig_forward,
        "kernel_sum": cn.kernel_sum,
        "kernel_sum_grad": cn.kernel_sum_grad,
        "kde_log_density": cn.kde_log_density,
        "kde_grad_sum": cn.kde_grad_sum,
    }
    CHOSEN.clear()
    CHOSEN.update({k: "numba-cuda" + (" (simulator)" if SIMULATOR else "") for k in impl})
    if xp is not np:
        CHOSEN["coupled_velocity_gram"] = "cupy.matmul (cuBLAS)"
    for op, fn in raw_ops().items():
        impl[op] = fn
        CHOSEN[op] = "cuda_raw (CuPy raw kernel)"
    CHOSEN.update({k: "deep_mlp (xp matmul)" for k in ("deep_disc_step", "deep_grad_x", "deep_forward")})
    grid = {k: getattr(fourier_grid, k) for k in ("fourier_grid_disc_step", "fourier_grid_grad_x", "fourier_grid_forward")}

    CHOSEN.update({k: "fourier_grid (xp matmul)" for k in grid})
    return Ops(name="cuda", xp=xp, deep_disc_step=deep_mlp.deep_disc_step, deep_grad_x=deep_mlp.deep_grad_x,
               deep_forward=deep_mlp.deep_forward, **impl, **grid)
