"""The op table: every hot op of the simulator under one name per backend.

``load_ops(name)`` returns an :class:`Ops` for ``numpy`` (the reference, the oracle), ``numba``
(CPU JIT) or ``cuda`` (GPU). Engines bind an ``Ops`` once and never branch on the backend per
step. Every op takes and returns arrays of the backend's array module ``xp`` with the run axis
first and feature-major samples (B, d, n); see each reference module for the equations.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Ops:
    name: str
    xp: Any                                  # numpy or cupy
    sample_mixture: Callable                 # (comp_base, noise_base, it, sub, means, cum, stds, m, dtype) -> (B, d, m)
    mlp_disc_step: Callable                  # (w, b, a, xg, xt, lr, l2, u, act) in place
    mlp_grad_x: Callable                     # (w, b, a, x, act) -> (B, d, n)
    mlp_forward: Callable                    # (w, b, a, x, act) -> (B, n)
    coupled_velocity_coarse: Callable        # (G, g1, g2) -> V
    coupled_velocity_gram: Callable          # (G, gram) -> V
    coupled_velocity_spatial: Callable       # (G, X, g1, g2, length_scale, kernel) -> V
    mode_stats: Callable                     # (X, modes, weights, stds) -> counts, hq, nearest, loglik (host arrays)
    deep_disc_step: Callable                 # (p, xg, xt, lr, l2, u, act) in place
    deep_grad_x: Callable                    # (p, x, act) -> (B, d, n)
    deep_forward: Callable                   # (p, x, act) -> (B, n)
    trig_disc_step: Callable                 # (theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam) in place
    trig_grad_x: Callable                    # (theta, omega, phase, amp, x) -> (B, d, n)
    trig_forward: Callable                   # (theta, omega, phase, amp, x) -> (B, n)
    kernel_sum: Callable                     # (x, centres, weights, bandwidths, kernel, alpha) -> (B, n)
    kernel_sum_grad: Callable                # (x, centres, weights, bandwidths, kernel, alpha) -> (B, d, n)
    fourier_grid_disc_step: Callable         # (w1, w2, u, v, rate, xg, wg, xt, wt, lr, lam) in place (d = 2 grid)
    fourier_grid_grad_x: Callable            # (w1, w2, u, v, x) -> (B, 2, n)
    fourier_grid_forward: Callable           # (w1, w2, u, v, x) -> (B, n)
    kde_log_density: Callable                # (q, x, logw, bandwidths, logmix) -> (B, n)
    kde_grad_sum: Callable                   # (q, x, logw, la, lb, bandwidths, logmix) -> (B, d, n)

    def asarray(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def to_host(self, x):
        return x if isinstance(x, np.ndarray) or self.xp is np else self.xp.asnumpy(x)


def _reference() -> Ops:
    from . import coupling_numpy as cp_, deep_mlp, kde_numpy, linear_numpy, mlp_numpy, observables_numpy, sampling_numpy
    return Ops(
        name="numpy", xp=np,
        sample_mixture=sampling_numpy.sample_mixture,
        mlp_disc_step=mlp_numpy.mlp_disc_step,
        mlp_grad_x=mlp_numpy.mlp_grad_x,
        mlp_forward=mlp_numpy.mlp_forward,
        coupled_velocity_coarse=cp_.coupled_velocity_coarse,
        coupled_velocity_gram=cp_.coupled_velocity_gram,
        coupled_velocity_spatial=cp_.coupled_velocity_spatial,
        mode_stats=observables_numpy.mode_stats,
        deep_disc_step=deep_mlp.deep_disc_step,
        deep_grad_x=deep_mlp.deep_grad_x,
        deep_forward=deep_mlp.deep_forward,
        **_linear(linear_numpy),
        **_kde(kde_numpy),
    )


def _kde(module) -> dict:
    """The KDE reductions (papers/002, 004) of one implementation module."""
    return {n: getattr(module, n) for n in ("kde_log_density", "kde_grad_sum")}


def _linear(module, grid_module=None) -> dict:
    """The linear-discriminator ops of one implementation: trig features and kernel sums from
    ``module``, the separable d = 2 Fourier grid from ``grid_module`` (default: ``fourier_grid``,
    written over ``xp``, so NumPy BLAS or cuBLAS through CuPy)."""
    if grid_module is None:
        from . import fourier_grid as grid_module
    names = ("trig_disc_step", "trig_grad_x", "trig_forward", "kernel_sum", "kernel_sum_grad")
    grid = ("fourier_grid_disc_step", "fourier_grid_grad_x", "fourier_grid_forward")
    return {n: getattr(module, n) for n in names} | {n: getattr(grid_module, n) for n in grid}


def _numba() -> Ops:
    from . import (coupling_numba, deep_mlp, fourier_grid_numba, kde_numba, linear_numba, mlp_numba, mlp_numpy,
                   observables_numba, sampling_numba)
    return Ops(
        name="numba", xp=np,
        sample_mixture=sampling_numba.sample_mixture,
        mlp_disc_step=mlp_numba.mlp_disc_step,
        mlp_grad_x=mlp_numba.mlp_grad_x,
        mlp_forward=mlp_numpy.mlp_forward,           # not in the loop (plots)
        coupled_velocity_coarse=coupling_numba.coupled_velocity_coarse,
        coupled_velocity_gram=coupling_numba.coupled_velocity_gram,
        coupled_velocity_spatial=coupling_numba.coupled_velocity_spatial,
        mode_stats=observables_numba.mode_stats,
        deep_disc_step=deep_mlp.deep_disc_step,      # BLAS-bound: NumPy matmul is the fast path
        deep_grad_x=deep_mlp.deep_grad_x,
        deep_forward=deep_mlp.deep_forward,
        **_linear(linear_numba, fourier_grid_numba),
        **_kde(kde_numba),
    )


def _cuda() -> Ops:
    from . import cuda_ops
    return cuda_ops.make_ops()


@functools.lru_cache(maxsize=None)
def load_ops(name: str) -> Ops:
    """The op table of a concrete backend (numpy, numba, cuda)."""
    if name == "numpy":
        return _reference()
    if name == "numba":
        return _numba()
    if name == "cuda":
        return _cuda()
    raise ValueError(f"unknown backend {name!r}")
