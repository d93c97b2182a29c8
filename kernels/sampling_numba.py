"""Numba CPU twin of target sampling (reference: ``sampling_numpy``)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import rng
from .launch import CPU_TILE

_R = rng.build(njit(cache=True))
step_key, uniform_at, normal_pair_at = _R.step_key, _R.uniform_at, _R.normal_pair_at


@njit(parallel=True, cache=True)
def _sample(comp_base, noise_base, iteration, sub_step, means, cum, stds, out, chunk):
    B, K, d = means.shape
    m = out.shape[2]
    nchunk = (m + chunk - 1) // chunk
    for task in prange(B * nchunk):
        r = task // nchunk
        lo = (task % nchunk) * chunk
        hi = min(m, lo + chunk)
        kc = step_key(comp_base[r], iteration, sub_step)
        kn = step_key(noise_base[r], iteration, sub_step)
        for k in range(lo, hi):
            u = uniform_at(kc, k)
            c = 0
            while c < K - 1 and cum[r, c] <= u:
                c += 1
            sd = stds[r, c]
            j = 0
            while j < d:                      # one Box-Muller evaluation serves both members of a pair
                f = k * d + j
                zc, zs = normal_pair_at(kn, f >> 1)
                if f & 1:                     # odd flat index: the sine member
                    out[r, j, k] = means[r, c, j] + sd * zs
                    j += 1
                else:
                    out[r, j, k] = means[r, c, j] + sd * zc
                    if j + 1 < d:
                        out[r, j + 1, k] = means[r, c, j + 1] + sd * zs
                    j += 2


def sample_mixture(comp_base, noise_base, iteration, sub_step, means, cum_weights, stds, m, dtype):
    """Twin of ``sampling_numpy.sample_mixture``: (B, d, m) samples."""
    return sample_mixture_steps(comp_base, noise_base, iteration, 1, means, cum_weights, stds, m, dtype,
                                first=sub_step)[0]


def sample_mixture_steps(comp_base, noise_base, iteration, n_sub, means, cum_weights, stds, m, dtype, first=0):
    """Twin of ``sampling_numpy.sample_mixture_steps``: (n_sub, B, d, m), the batches of sub-steps
    ``first`` .. ``first + n_sub - 1``."""
    B, K, d = means.shape
    out = np.empty((n_sub, B, d, m), dtype=dtype)
    args = (np.asarray(comp_base, dtype=np.uint64), np.asarray(noise_base, dtype=np.uint64), int(iteration))
    consts = (np.ascontiguousarray(means, dtype=np.float64), np.ascontiguousarray(cum_weights, dtype=np.float64),
              np.ascontiguousarray(stds, dtype=np.float64))
    for k in range(n_sub):
        _sample(*args, first + k, *consts, out[k], CPU_TILE["samples"])
    return out
