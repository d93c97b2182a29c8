"""NumPy reference of target sampling: a weighted mixture of isotropic Gaussians.

Sample m of run b at (iteration, sub_step):
    component  k = #{cum_b[k'] <= U}  with U = uniform(step_key(comp_base_b, it, sub), m)
    position   x = means_b[k] + stds_b[k] * Z,  Z_j = normal(step_key(noise_base_b, it, sub), m d + j)
computed in float64 and rounded to the output dtype. Output is feature-major (B, d, M).
"""

from __future__ import annotations

import numpy as np

from . import rng


def sample_mixture(comp_base, noise_base, iteration, sub_step, means, cum_weights, stds, m, dtype):
    """Draw (B, d, m) samples. means (B, K, d), cum_weights (B, K) (last entry 1), stds (B, K)."""
    kc = rng.np_step_keys(comp_base, iteration, sub_step)
    kn = rng.np_step_keys(noise_base, iteration, sub_step)
    B, K, d = means.shape
    u = rng.np_uniform(kc, m)                                        # (B, m)
    comp = (cum_weights[:, None, :] <= u[:, :, None]).sum(-1)       # (B, m), <= K-1
    comp = np.minimum(comp, K - 1)
    z = rng.np_normal(kn, m * d).reshape(B, m, d)
    rows = np.arange(B)[:, None]
    x = means[rows, comp] + stds[rows, comp][:, :, None] * z         # (B, m, d) float64
    return np.ascontiguousarray(x.transpose(0, 2, 1)).astype(dtype)


def sample_mixture_steps(comp_base, noise_base, iteration, n_sub, means, cum_weights, stds, m, dtype):
    """The batches of sub-steps 0 .. n_sub - 1 of one iteration at once: (n_sub, B, d, m), entry k
    bitwise ``sample_mixture(..., iteration, k, ...)`` (the generator is counter-based)."""
    B, K, d = means.shape
    out = np.empty((n_sub, B, d, m), dtype=dtype)
    for k in range(n_sub):
        out[k] = sample_mixture(comp_base, noise_base, iteration, k, means, cum_weights, stds, m, dtype)
    return out


def normal_init(base, n, dtype=np.float64):
    """(B, n) standard normals from (B,) base keys at (iteration 0, sub-step 0)."""
    return rng.np_normal(rng.np_step_keys(base, 0, 0), n).astype(dtype)


def uniform_init(base, n, dtype=np.float64):
    """(B, n) uniforms in [0, 1) from (B,) base keys at (iteration 0, sub-step 0)."""
    return rng.np_uniform(rng.np_step_keys(base, 0, 0), n).astype(dtype)
