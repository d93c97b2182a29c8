"""Numba-CUDA twins of target sampling, the coupled velocity and the in-loop observables.

References: ``sampling_numpy``, ``coupling_numpy``, ``observables_numpy`` (same signatures and
semantics). Every op is one launch for the whole ensemble; every kernel is a grid-stride loop,
correct for any (grid, block) (``launch.GPU_BLOCK`` / ``GPU_MAX_BLOCKS``, read at call time).

sample_mixture   one thread per (sub-step, run, sample), coalesced stores: ``sample_mixture_steps`` draws
                 every sub-step's batch of an iteration in one launch (``sample_mixture``: one of them).
                 The counter-based generator is ``rng.build(cuda.jit(device=True))``: the same
                 source as the reference. Mixture
                 means + std * normal goes through ``mul_rn`` (no FMA contraction) in float64 and
                 is rounded once to the state dtype, as in the reference. Under the simulator the
                 samples are bitwise those of the reference; on a GPU the integer part (keys,
                 uniforms, component choice) is exact, while the normals use libdevice's
                 log/sin/cos (<= 2 ulp in float64) and can differ from the host's libm in the last
                 float64 bit (float32 samples almost always agree).
coarse           one block per (run, feature) row: a deterministic block reduction (fixed-shape
                 tree in shared memory) gives the row mean, then V = kappa G + g2 <G>. O(N d).
gram             one thread per output element (run, feature, particle), float64 accumulation.
                 This is the simulator / fallback path: on a real GPU ``cuda_ops`` routes the
                 explicit-Gram coupling to cuBLAS (``xp.matmul``).
spatial          N-body style: one block per (run, chunk of particles a), one thread per a; the
                 partner particles c (positions and gradients) are staged through shared memory in
                 tiles of ``launch.GPU_TILE['pair_cols'] <= PAIR_TILE``; per-thread float64 accumulators in
                 registers (kernels specialised per d). O(N^2 d) arithmetic, O(N d) traffic per tile.
                 Routing (:func:`spatial_numba_dim`): the kernel serves d <= ``MAX_DIM``; beyond, the op
                 is ``cuda_ops.coupled_velocity_spatial_xp`` (Gram rows from differences, a batched
                 matmul), so every d runs.
mode_stats       one block per run, one thread per particle (strided): integer histograms by global
                 atomics (exact, order-free), float sums (nearest distance, log-likelihood) by a
                 deterministic block reduction. Squared distances use ``mul_rn`` so that the
                 nearest mode and the 3-std test are decided exactly as in the reference.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple

import numpy as np
from numba import cuda, float64

from . import cuda_numba_tiled as tiled
from . import launch, rng
from .cuda_numba_common import (MAX_THREADS, SIMULATOR, array_module, as_xp, block, blocks, check_dim, dev, jit_kernel,
                                mul_rn, register_kernels, stream)
from .observables_numpy import HQ_STDS

PAIR_TILE = 128       # shared-memory capacity of the spatial coupling, in partner particles
MAX_DIM = 16          # largest d of the spatial coupling kernels (per-thread accumulators)
# tile length actually used: launch.GPU_TILE["pair_cols"] (clamped to PAIR_TILE); tests patch it small

_R = rng.build(cuda.jit(device=True))
_step_key, _uniform_at, _normal_at = _R.step_key, _R.uniform_at, _R.normal_at


# ----------------------------------------------------------------------------- device helpers

@cuda.jit(device=True)
def _block_sum(part, val, tid, T):
    """Sum of ``val`` over the block's T threads, returned to every thread.

    Deterministic for a given T: a pairwise tree over the shared array ``part`` (length >= T).
    Every thread of the block must call it (it contains barriers)."""
    cuda.syncthreads()           # earlier readers of part are done
    part[tid] = val
    stride = 1
    while stride < T:
        cuda.syncthreads()
        if tid % (2 * stride) == 0 and tid + stride < T:
            part[tid] += part[tid + stride]
        stride *= 2
    cuda.syncthreads()
    return part[0]


# ----------------------------------------------------------------------------- sampling

@jit_kernel
def _sample(comp_base, noise_base, iteration, first, means, cum, stds, out):
    """out (S, B, d, m): the batches of sub-steps first .. first + S - 1, one thread per (sub-step, run,
    sample)."""
    B, K, d = means.shape
    S, m = out.shape[0], out.shape[3]
    for t in range(cuda.grid(1), S * B * m, cuda.gridsize(1)):
        s = t // (B * m)
        r = (t // m) % B
        k = t % m
        kc = _step_key(comp_base[r], iteration, first + s)
        kn = _step_key(noise_base[r], iteration, first + s)
        u = _uniform_at(kc, k)
        c = 0
        for q in range(K):               # count of cum <= u, as the reference
            if cum[r, q] <= u:
                c += 1
        if c > K - 1:
            c = K - 1
        sd = stds[r, c]
        for j in range(d):
            out[s, r, j, k] = means[r, c, j] + mul_rn(sd, _normal_at(kn, k * d + j))


def sample_mixture_steps(comp_base, noise_base, iteration, n_sub, means, cum_weights, stds, m, dtype, first=0):
    """Twin of ``sampling_numpy.sample_mixture_steps``: every sub-step's batch of one iteration in one
    launch, (n_sub, B, d, m) of the state dtype (sub-steps ``first`` ..)."""
    xp = array_module(comp_base, noise_base, means, cum_weights, stds)
    means = as_xp(xp, means, np.float64)
    B, K, d = means.shape
    out = xp.empty((n_sub, B, d, m), dtype=dtype)
    if out.size == 0:
        return out
    T = block("elementwise")
    args = (dev(xp, as_xp(xp, comp_base, np.uint64)), dev(xp, as_xp(xp, noise_base, np.uint64)),
            np.int64(iteration), np.int64(first), dev(xp, means),
            dev(xp, as_xp(xp, cum_weights, np.float64)), dev(xp, as_xp(xp, stds, np.float64)), dev(xp, out))
    grid = blocks(-(-n_sub * B * m // T))
    if SIMULATOR:   # NumPy warns on the intended uint64 wrap-around of scalar arithmetic
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
            _sample[grid, T, stream(xp)](*args)
    else:
        _sample[grid, T, stream(xp)](*args)
    return out


def sample_mixture(comp_base, noise_base, iteration, sub_step, means, cum_weights, stds, m, dtype):
    """Twin of ``sampling_numpy.sample_mixture``: (B, d, m) samples of the state dtype."""
    return sample_mixture_steps(comp_base, noise_base, iteration, 1, means, cum_weights, stds, m, dtype,
                                first=sub_step)[0]


# ----------------------------------------------------------------------------- couplings

@jit_kernel
def _coarse(G, g1, g2, out):
    B, d, N = G.shape
    T = cuda.blockDim.x
    tid = cuda.threadIdx.x
    part = cuda.shared.array(MAX_THREADS, float64)
    for row in range(cuda.blockIdx.x, B * d, cuda.gridDim.x):
        r = row // d
        j = row - r * d
        acc = 0.0
        for c in range(tid, N, T):
            acc += G[r, j, c]
        mean = _block_sum(part, acc, tid, T) / N
        kappa = (g1[r] - g2[r]) / N
        for c in range(tid, N, T):
            out[r, j, c] = kappa * G[r, j, c] + g2[r] * mean


def coupled_velocity_coarse(G, g1, g2):
    """Twin of ``coupling_numpy.coupled_velocity_coarse``."""
    xp = array_module(G, g1, g2)
    B, d, N = G.shape
    G = xp.ascontiguousarray(G)            # e.g. the deep MLP's grad_x is a strided view
    out = xp.empty_like(G)
    if G.size == 0:
        return out
    T = block("elementwise")
    _coarse[blocks(B * d), T, stream(xp)](dev(xp, G), dev(xp, as_xp(xp, g1, np.float64)),
                                          dev(xp, as_xp(xp, g2, np.float64)), dev(xp, out))
    return out


@jit_kernel
def _gram(G, gram, out):
    B, d, N = G.shape
    shared = gram.shape[0] == 1
    for t in range(cuda.grid(1), B * d * N, cuda.gridsize(1)):
        r = t // (d * N)
        rem = t - r * d * N
        j = rem // N
        a = rem - j * N
        g = 0 if shared else r
        acc = 0.0
        for c in range(N):
            acc += gram[g, a, c] * G[r, j, c]
        out[r, j, a] = acc / N


def coupled_velocity_gram(G, gram):
    """Twin of ``coupling_numpy.coupled_velocity_gram``; gram (B, N, N) or (1, N, N)."""
    xp = array_module(G, gram)
    B, d, N = G.shape
    gram = as_xp(xp, gram, G.dtype)
    if gram.ndim != 3 or gram.shape[1:] != (N, N) or gram.shape[0] not in (1, B):
        raise ValueError(f"gram must be (B, N, N) or (1, N, N) with N = {N}, got {gram.shape}")
    out = xp.empty_like(G)
    if G.size == 0:
        return out
    T = block("pair_rows")
    _gram[blocks(-(-B * d * N // T)), T, stream(xp)](dev(xp, G), dev(xp, gram), dev(xp, out))
    return out


@functools.lru_cache(maxsize=None)
def _spatial_kernel(D: int):
    """The spatial coupling for dimension D: a tiled per-particle reduction over the partner particles
    (positions sh[j * PT + q], gradients sh[(D + j) * PT + q], float64), float64 accumulators, the
    particle itself skipped; src = (X, G), par = (g1, g2, ell, laplacian); qv = (x_a, ell^2)."""
    PT = PAIR_TILE
    stage_x, stage_g = tiled.stage_points(D, PT), tiled.stage_points(D, PT, slot=D)

    @cuda.jit(device=True)
    def load(x, par, r, a, active, qv):
        ell = par[2]
        for j in range(D):
            qv[j] = x[r, j, a] if active else 0.0
        qv[D] = ell[r] * ell[r]

    @cuda.jit(device=True)
    def stage(src, par, r, c0, cnt, tid, T, sh):
        stage_x(src[0], r, c0, cnt, tid, T, sh)
        stage_g(src[1], r, c0, cnt, tid, T, sh)

    @cuda.jit(device=True)
    def pair(qv, sh, q, c, a, r, par, part, acc):
        if c != a:
            r2 = 0.0
            for j in range(D):
                dx = qv[j] - sh[j * PT + q]
                r2 += dx * dx
            r2 = r2 / qv[D]
            kv = math.exp(-math.sqrt(r2)) if par[3] else math.exp(-0.5 * r2)
            for j in range(D):
                acc[j] += kv * sh[(D + j) * PT + q]

    @cuda.jit(device=True)
    def finish(qv, part, acc, src, par, r, a, out):
        G = src[1]
        N = G.shape[2]
        for j in range(D):
            out[r, j, a] = (par[0][r] * G[r, j, a] + par[1][r] * acc[j]) / N

    fns = tiled.Reduction(load, tiled.zero_acc(D), stage, tiled.nothing, pair, tiled.nothing, finish)
    return tiled.query_reduction(fns, sdt=float64, n_shared=2 * D, cap=PT, qdt=float64, n_query=D + 1,
                                 pdt=float64, n_part=1, n_acc=D)


def spatial_numba_dim(kernel: str, dtype_name: str, d: int) -> bool:
    """Whether the router sends (kernel, dtype, d) to the Numba-CUDA spatial kernel (else: ``cuda_ops``)."""
    return 1 <= d <= MAX_DIM


def coupled_velocity_spatial(G, X, g1, g2, length_scale, kernel):
    """Twin of ``coupling_numpy.coupled_velocity_spatial`` (kernel 'rbf' or 'laplacian')."""
    if kernel not in ("rbf", "laplacian"):
        raise ValueError(f"unknown spatial kernel {kernel!r}")
    xp = array_module(G, X, g1, g2, length_scale)
    B, d, N = G.shape
    if X.shape != G.shape:
        raise ValueError("X and G must both be (B, d, N)")
    if not spatial_numba_dim("coupled_velocity_spatial", np.dtype(G.dtype).name, d):
        from . import cuda_ops
        return cuda_ops.coupled_velocity_spatial_xp(G, X, g1, g2, length_scale, kernel)
    check_dim("spatial", d)
    out = xp.empty_like(G)
    if G.size == 0:
        return out
    T = block("pair_rows")
    tile = max(1, min(PAIR_TILE, int(launch.GPU_TILE["pair_cols"])))
    f64 = lambda v: dev(xp, as_xp(xp, v, np.float64))  # noqa: E731
    _spatial_kernel(d)[blocks(B * -(-N // T)), T, stream(xp)](
        dev(xp, X), (dev(xp, X), dev(xp, G)), (f64(g1), f64(g2), f64(length_scale), kernel == "laplacian"), N, tile,
        dev(xp, out))
    return out


# ----------------------------------------------------------------------------- observables

@jit_kernel
def _mode_stats(X, modes, logw, stds, density, hq_stds, counts, hq, nearest, loglik):
    B, d, N = X.shape
    K = modes.shape[1]
    T = cuda.blockDim.x
    tid = cuda.threadIdx.x
    part = cuda.shared.array(MAX_THREADS, float64)
    for r in range(cuda.blockIdx.x, B, cuda.gridDim.x):
        dens = density[r] != 0
        dsum = 0.0
        lsum = 0.0
        for a in range(tid, N, T):
            best = math.inf
            arg = 0
            mx = -math.inf
            se = 0.0
            for k in range(K):
                d2 = 0.0
                for j in range(d):
                    dx = float64(X[r, j, a]) - modes[r, k, j]
                    d2 = d2 + mul_rn(dx, dx)
                if d2 < best or (d2 != d2 and best == best):   # ties: the lowest index; the first NaN wins
                    best = d2
                    arg = k
                if dens:
                    s2 = stds[r, k] * stds[r, k]
                    v = logw[r, k] - 0.5 * d * math.log(2.0 * math.pi * s2) - d2 / (2.0 * s2)
                    if v > mx:
                        se = se * math.exp(mx - v) + 1.0 if mx > -math.inf else 1.0
                        mx = v
                    elif v > -math.inf:
                        se += math.exp(v - mx)
            dist = math.sqrt(best)
            cuda.atomic.add(counts, (r, arg), 1)
            if dist <= hq_stds * stds[r, arg]:
                cuda.atomic.add(hq, (r, arg), 1)
            dsum += dist
            if dens:
                lsum += mx + math.log(se) if best == best else math.nan   # a NaN position has no density
        dtot = _block_sum(part, dsum, tid, T)
        ltot = _block_sum(part, lsum, tid, T)
        if tid == 0:
            nearest[r] = dtot / N
            loglik[r] = ltot / N if dens else math.nan


def mode_stats(X, modes, weights, stds):
    """Twin of ``observables_numpy.mode_stats``: host (counts, hq, nearest, loglik)."""
    xp = array_module(X, modes, weights, stds)
    B, d, N = X.shape
    modes = as_xp(xp, modes, np.float64)
    K = modes.shape[1]
    stds = as_xp(xp, stds, np.float64)
    with np.errstate(divide="ignore"):
        logw = xp.log(as_xp(xp, weights, np.float64))
    density = xp.all(stds > 0, axis=1).astype(np.uint8)     # per run: a zero-width mode has no density
    counts = xp.zeros((B, K), dtype=np.int64)
    hq = xp.zeros((B, K), dtype=np.int64)
    nearest = xp.empty(B, dtype=np.float64)
    loglik = xp.empty(B, dtype=np.float64)
    T = block("elementwise")
    _mode_stats[blocks(B), T, stream(xp)](dev(xp, X), dev(xp, modes), dev(xp, logw), dev(xp, stds), dev(xp, density),
                                          np.float64(HQ_STDS), dev(xp, counts), dev(xp, hq), dev(xp, nearest),
                                          dev(xp, loglik))
    if xp is np:
        return counts, hq, nearest, loglik
    return tuple(v.get() for v in (counts, hq, nearest, loglik))


class Kernels(NamedTuple):
    sample_mixture: object
    coupled_velocity_coarse: object
    coupled_velocity_gram: object
    mode_stats: object


class Spatial(NamedTuple):
    coupled_velocity_spatial: object


def _examples(dn: str, d) -> dict:
    """Example arguments of every kernel (their numba types are the compiled signatures)."""
    dt = np.dtype(dn)
    f1, f2, f3 = np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1, 1))
    u64, i2, u8, a3 = np.zeros(1, np.uint64), np.zeros((1, 1), np.int64), np.zeros(1, np.uint8), np.zeros((1, 1, 1), dt)
    return {"sample_mixture": (u64, u64, 0, 0, f3, f2, f2, np.zeros((1, 1, 1, 1), dt)),
            "coupled_velocity_coarse": (a3, f1, f1, a3),
            "coupled_velocity_gram": (a3, a3, a3),
            "mode_stats": (a3, f3, f2, f2, u8, np.float64(1), i2, i2, f1, f1)}


def _spatial_examples(dn: str, d: int) -> dict:
    a3 = np.zeros((1, d, 1), np.dtype(dn))
    f1 = np.zeros(1)
    return {"coupled_velocity_spatial": (a3, (a3, a3), (f1, f1, f1, True), 1, 1, a3)}


register_kernels("misc", lambda dn, d: Kernels(_sample, _coarse, _gram, _mode_stats), _examples)
register_kernels("spatial", lambda dn, d: Spatial(_spatial_kernel(d)), _spatial_examples, MAX_DIM,
                 routed=spatial_numba_dim)
