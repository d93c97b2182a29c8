"""Numba-CUDA twins of the discriminators that are linear in their parameters (reference: ``linear_numpy``).

    trig:    f(x) = sum_l theta_l amp_l cos(omega_l . x + phase_l)
    kernel:  f(x) = sum_c w_c sum_s K_s(x, y_c),  K in {rbf, laplacian, rq}

Ops, with the reference's signatures and layouts (run axis first, feature-major samples):
``trig_disc_step`` (in place on theta (B, L); lr == 0 leaves a run bitwise untouched),
``trig_grad_x`` -> (B, d, n), ``trig_forward`` -> (B, n), ``kernel_sum`` -> (B, n),
``kernel_sum_grad`` -> (B, d, n). Every op is one launch for the whole ensemble; every kernel is a
grid-stride loop over its (run, tile) tasks, correct for any (grid, block); launch parameters are
read at call time from ``launch.GPU_BLOCK`` / ``GPU_TILE`` / ``GPU_MAX_BLOCKS``.

``trig_disc_step``  the pattern of the MLP step (``cuda_numba_mlp``) with features instead of hidden
    units: one block per (run, tile of features), one thread per feature l
    (block = ``launch.GPU_BLOCK['trig']``). The run's generated then target samples and their
    weights are streamed through shared memory in tiles of ``launch.GPU_TILE['trig_samples'] <=
    SAMPLE_TILE`` samples (cooperative, coalesced loads; every thread then reads the same address:
    broadcast); each thread keeps omega_l, phase_l in registers and accumulates
    sum_j wg_j cos(.) - sum_i wt_i cos(.). Sums are two-level (a tile's partial in the state
    dtype, tile totals in float64, as the reference's float64 feature sums) and the update is
    formed in float64 and rounded once. Each thread reads then writes only its own theta_l, so
    the update is in place. A run with lr == 0 is skipped by the whole block (uniform control
    flow). No (n, L) temporary: global traffic O(B (n + L) d), arithmetic O(B n L d).

``trig_grad_x`` / ``trig_forward``  one block per (run, chunk of samples), one thread per sample
    (block = ``launch.GPU_BLOCK['trig_x']``); the run's features (omega, phase and c = theta amp)
    are staged through shared memory in tiles of ``launch.GPU_TILE['trig_features'] <=
    FEATURE_TILE`` and each thread reduces over all L features in registers (deterministic, no
    atomics).

``kernel_sum`` / ``kernel_sum_grad``  the tiled N-body pair reduction of the spatial coupling
    (``cuda_numba_misc``): one block per (run, chunk of query points), one thread per point
    (block = ``launch.GPU_BLOCK['kernel_sum']``); the centres and their weights are staged
    through shared memory in tiles of ``launch.GPU_TILE['kernel_cols'] <= CENTRE_TILE``; per
    pair, r^2 is summed coordinate by coordinate (as the reference) and the kernel profile is
    summed over the run's S bandwidths (uniform global reads: broadcast). The gradient uses the
    differences x - y_c (no x sum(gw) - gw @ y cancellation) and g = 0 at r = 0 for the
    Laplacian kernel. The kernel name is dispatched on the host to an integer (uniform branch).

Kernels are specialised per (state dtype, d) (``_kernels``): shared and local array sizes are
compile-time constants, with d fixed the feature loops unroll and the per-coordinate accumulators
live in registers. Routing (:func:`numba_dim`): the register kernels serve d <= ``MAX_DIM``; beyond,
the op is its ``cuda_ops`` form (``trig_*_gemm``: the phases X' Omega and the sums as batched
matmuls; ``kernel_sum*_xp``: r^2 and the gradient from differences over coordinate chunks), written
over ``xp`` (cuBLAS / CuPy on a GPU, NumPy under the simulator), so every d runs. Constants are of
the state dtype so float32 kernels stay in float32 (cosf / expf / powf). ``fastmath`` is off; NVVM
still contracts multiply-adds into FMAs, so on a GPU results differ from the reference by rounding.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import cuda, float64

from . import cuda_numba_tiled as tiled
from . import cuda_ops, launch
from .cuda_numba_common import array_module, as_xp, block, blocks, check_dim, dev, jit_kernel, register_kernels, stream

MAX_DIM = 16          # largest data dimension d of the register kernels (registers / shared memory)
SAMPLE_TILE = 128     # shared-memory capacity of the trig step, in samples (compile-time)
FEATURE_TILE = 128    # shared-memory capacity of trig grad_x / forward, in features
CENTRE_TILE = 128     # shared-memory capacity of the kernel sums, in centres
# Tile lengths actually used: launch.GPU_TILE["trig_samples"] / ["trig_features"] / ["kernel_cols"]
# (runtime, clamped to the capacities above); tests patch them small.


def numba_dim(kernel: str, dtype_name: str, d: int) -> bool:
    """Whether the router sends (kernel, dtype, d) to the Numba-CUDA register kernel (else: ``cuda_ops``)."""
    return 1 <= d <= MAX_DIM


KERNEL_IDS = {"rbf": 0, "laplacian": 1, "rq": 2}


class Kernels(NamedTuple):
    trig_disc_step: object
    trig_grad_x: object
    trig_forward: object
    kernel_sum: object
    kernel_sum_grad: object


def _kernel_id(kernel) -> int:
    try:
        return KERNEL_IDS[kernel]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kernel {kernel!r}") from None


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name: str, D: int):
    """The kernels for state dtype ``dtype_name`` and data dimension ``D`` (both compile-time)."""
    npdt = np.dtype(dtype_name)
    DT = numba.from_dtype(npdt)
    ZERO = npdt.type(0)
    ONE = npdt.type(1)
    TWO = npdt.type(2)
    ST = SAMPLE_TILE
    FT = FEATURE_TILE
    CT = CENTRE_TILE
    XS = D * SAMPLE_TILE

    # ------------------------------------------------------------------ trigonometric features

    @jit_kernel
    def trig_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam, tile):
        B = theta.shape[0]
        L = theta.shape[1]
        N = xg.shape[2]
        M = xt.shape[2]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        xs = cuda.shared.array(XS, DT)
        ws = cuda.shared.array(ST, DT)
        om = cuda.local.array(D, DT)
        ntile = (L + T - 1) // T
        for task in range(cuda.blockIdx.x, B * ntile, cuda.gridDim.x):
            r = task // ntile
            rl = lr[r]
            if rl == 0:                    # uniform over the block
                continue
            l = (task % ntile) * T + tid
            active = l < L
            ph = ZERO
            for j in range(D):
                om[j] = ZERO
            if active:
                ph = phase[r, l]
                for j in range(D):
                    om[j] = omega[r, j, l]
            feat = float64(0.0)            # sum_gen wg cos - sum_tgt wt cos, float64
            for src in range(2):           # 0: generated samples (+), 1: target samples (-)
                gen = src == 0
                n = N if gen else M
                for k0 in range(0, n, tile):
                    cnt = n - k0
                    if cnt > tile:
                        cnt = tile
                    cuda.syncthreads()     # the previous tile is consumed
                    for e in range(tid, D * cnt, T):
                        j = e // cnt
                        k = e - j * cnt
                        if gen:
                            xs[j * ST + k] = xg[r, j, k0 + k]
                        else:
                            xs[j * ST + k] = xt[r, j, k0 + k]
                    for e in range(tid, cnt, T):
                        if gen:
                            ws[e] = wg[r, k0 + e]
                        else:
                            ws[e] = wt[r, k0 + e]
                    cuda.syncthreads()
                    if active:
                        part = ZERO
                        for k in range(cnt):
                            h = xs[k] * om[0]
                            for j in range(1, D):
                                h += xs[j * ST + k] * om[j]
                            h += ph
                            part += ws[k] * math.cos(h)
                        if gen:
                            feat += part
                        else:
                            feat -= part
            if active:
                th = theta[r, l]
                g = float64(amp[r, l]) * feat + lam[r] * th
                theta[r, l] = th - rl * rate[r, l] * g

    def per_sample(stage, pair, finish, n_shared, cap, n):
        return tiled.summed(D, DT, ZERO, stage, pair, finish, n_shared=n_shared, cap=cap, n=n)

    # trig grad_x / forward: per-sample reductions over the features, staged as omega sh[j * FT + q]
    # (j < D), phase sh[D * FT + q] and c = theta amp sh[(D + 1) * FT + q]; src = (theta, omega, phase, amp)
    stage_omega = tiled.stage_points(D, FT)

    @cuda.jit(device=True)
    def stage_features(src, par, r, l0, cnt, tid, T, sh):
        theta, omega, phase, amp = src
        for e in range(tid, cnt, T):
            sh[D * FT + e] = phase[r, l0 + e]
            sh[(D + 1) * FT + e] = theta[r, l0 + e] * amp[r, l0 + e]
        stage_omega(omega, r, l0, cnt, tid, T, sh)

    feature_phase = tiled.affine(D, FT)                    # omega . x + phase

    @cuda.jit(device=True)
    def pair_trig_grad(qv, sh, q, c, k, r, par, part, acc):
        s = math.sin(feature_phase(qv, sh, q)) * sh[(D + 1) * FT + q]
        for j in range(D):
            part[j] += s * sh[j * FT + q]

    @cuda.jit(device=True)
    def pair_trig_fwd(qv, sh, q, c, k, r, par, part, acc):
        part[0] += math.cos(feature_phase(qv, sh, q)) * sh[(D + 1) * FT + q]

    # kernel sums: per-sample reductions over the centres, staged as sh[j * CT + q] (j < D) and their
    # weights sh[D * CT + q]; src = (centres, weights), par = (bandwidths (B, S), kernel id, alpha)
    stage_centres, stage_weights = tiled.stage_points(D, CT), tiled.stage_row(CT, D)

    @cuda.jit(device=True)
    def stage_kernel(src, par, r, c0, cnt, tid, T, sh):
        stage_weights(src[1], r, c0, cnt, tid, T, sh)
        stage_centres(src[0], r, c0, cnt, tid, T, sh)

    @cuda.jit(device=True)
    def profile(r2, sigma, kind, alpha):
        """K(r) and g(r) = -(1/r) dK/dr (grad_x K = -g (x - y)); g = 0 at r = 0 for the Laplacian."""
        s2 = sigma * sigma
        if kind == 0:
            k = math.exp(-r2 / (TWO * s2))
            return k, k / s2
        if kind == 1:
            rr = math.sqrt(r2)
            k = math.exp(-rr / sigma)
            if rr > ZERO:
                return k, k / (sigma * rr)
            return k, ZERO
        base = ONE + r2 / (TWO * alpha * s2)
        k = math.pow(base, -alpha)
        return k, k / (base * s2)

    centre_r2 = tiled.sq_dist(D, CT)

    @cuda.jit(device=True)
    def profile_sums(qv, sh, q, r, par):
        """sum_s K_s and sum_s g_s at the staged centre q."""
        bw = par[0]
        r2 = centre_r2(qv, sh, q)
        ks = ZERO
        gs = ZERO
        for s in range(bw.shape[1]):
            kv, gv = profile(r2, bw[r, s], par[1], par[2])
            ks += kv
            gs += gv
        return ks, gs

    @cuda.jit(device=True)
    def pair_ksum(qv, sh, q, c, k, r, par, part, acc):
        part[0] += profile_sums(qv, sh, q, r, par)[0] * sh[D * CT + q]

    @cuda.jit(device=True)
    def pair_kgrad(qv, sh, q, c, k, r, par, part, acc):
        gw = profile_sums(qv, sh, q, r, par)[1] * sh[D * CT + q]
        for j in range(D):
            part[j] += (qv[j] - sh[j * CT + q]) * gw

    @cuda.jit(device=True)
    def finish_scalar(qv, part, acc, src, par, r, k, out):
        out[r, k] = acc[0]

    @cuda.jit(device=True)
    def finish_minus_vector(qv, part, acc, src, par, r, k, out):
        for j in range(D):
            out[r, j, k] = -acc[j]

    return Kernels(trig_step,
                   per_sample(stage_features, pair_trig_grad, finish_minus_vector, D + 2, FT, D),
                   per_sample(stage_features, pair_trig_fwd, finish_scalar, D + 2, FT, 1),
                   per_sample(stage_kernel, pair_ksum, finish_scalar, D + 1, CT, 1),
                   per_sample(stage_kernel, pair_kgrad, finish_minus_vector, D + 1, CT, D))


def _tile(name: str, cap: int) -> int:
    return max(1, min(cap, int(launch.GPU_TILE[name])))


# ----------------------------------------------------------------------------- host wrappers

def trig_disc_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam):
    """Twin of ``linear_numpy.trig_disc_step``: one descent step for the whole ensemble, in place on theta."""
    xp = array_module(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam)
    B, L = theta.shape
    d = omega.shape[1]
    if omega.shape != (B, d, L) or xg.shape[:2] != (B, d) or xt.shape[:2] != (B, d):
        raise ValueError("trig_disc_step: omega must be (B, d, L) and samples (B, d, n) with (B, L) of theta")
    dt = np.dtype(theta.dtype)
    if not numba_dim("trig_disc_step", dt.name, d):
        return cuda_ops.trig_disc_step_gemm(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam)
    check_dim("linear", d)
    if B == 0 or L == 0:
        return
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    f64 = lambda v: dev(xp, as_xp(xp, v, np.float64))    # noqa: E731
    kern = _kernels(dt.name, d).trig_disc_step
    T = block("trig")
    kern[blocks(B * -(-L // T)), T, stream(xp)](
        dev(xp, theta), c(omega), c(phase), c(amp), c(rate), c(xg), c(wg), c(xt), c(wt), f64(lr), f64(lam),
        _tile("trig_samples", SAMPLE_TILE))


def _trig_per_sample(kind: str, theta, omega, phase, amp, x):
    xp = array_module(theta, omega, phase, amp, x)
    B, L = theta.shape
    d = omega.shape[1]
    if omega.shape != (B, d, L) or x.shape[:2] != (B, d):
        raise ValueError("omega must be (B, d, L) and samples x (B, d, n) with (B, L) of theta")
    dt = np.dtype(theta.dtype)
    if not numba_dim(kind, dt.name, d):
        return getattr(cuda_ops, f"{kind}_gemm")(theta, omega, phase, amp, x)
    check_dim("linear", d)
    n = x.shape[2]
    out = xp.empty((B, d, n) if kind == "trig_grad_x" else (B, n), dtype=dt)
    if out.size == 0:
        return out
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    kern = getattr(_kernels(dt.name, d), kind)
    T = block("trig_x")
    kern[blocks(B * -(-n // T)), T, stream(xp)](
        c(x), (c(theta), c(omega), c(phase), c(amp)), (), L, _tile("trig_features", FEATURE_TILE), dev(xp, out))
    return out


def trig_grad_x(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_grad_x``: grad_x f at x (B, d, n) -> (B, d, n)."""
    return _trig_per_sample("trig_grad_x", theta, omega, phase, amp, x)


def trig_forward(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_forward``: f at x (B, d, n) -> (B, n)."""
    return _trig_per_sample("trig_forward", theta, omega, phase, amp, x)


def _kernel_per_sample(which: str, x, centres, weights, bandwidths, kernel, alpha):
    kind = _kernel_id(kernel)
    xp = array_module(x, centres, weights, bandwidths)
    B, d, n = x.shape
    if centres.shape[:2] != (B, d) or weights.shape != (B, centres.shape[2]) or bandwidths.shape[0] != B:
        raise ValueError("kernel sums: centres must be (B, d, C), weights (B, C), bandwidths (B, S) "
                         "with (B, d) of x")
    dt = np.dtype(x.dtype)
    if not numba_dim(which, dt.name, d):
        return getattr(cuda_ops, f"{which}_xp")(x, centres, weights, bandwidths, kernel, alpha)
    check_dim("linear", d)
    out = xp.empty((B, d, n) if which == "kernel_sum_grad" else (B, n), dtype=dt)
    if out.size == 0:
        return out
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    kern = getattr(_kernels(dt.name, d), which)
    T = block("kernel_sum")
    kern[blocks(B * -(-n // T)), T, stream(xp)](
        dev(xp, x), (c(centres), c(weights)), (c(bandwidths), kind, dt.type(alpha)), centres.shape[2],
        _tile("kernel_cols", CENTRE_TILE), dev(xp, out))
    return out


def kernel_sum(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum``: f(x_j) = sum_c w_c sum_s K_s(x_j, y_c) -> (B, n)."""
    return _kernel_per_sample("kernel_sum", x, centres, weights, bandwidths, kernel, alpha)


def kernel_sum_grad(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum_grad``: grad_x f(x_j) -> (B, d, n)."""
    return _kernel_per_sample("kernel_sum_grad", x, centres, weights, bandwidths, kernel, alpha)


def _examples(dn: str, d: int) -> dict:
    """Example arguments of every kernel (their numba types are the compiled signatures)."""
    dt = np.dtype(dn)
    a2, a3, f64 = np.zeros((1, 1), dt), np.zeros((1, d, 1), dt), np.zeros(1)
    trig = (a2, a3, a2, a2)
    ksum = lambda out: (a3, (a3, a2), (a2, 0, dt.type(1)), 1, 1, out)     # noqa: E731
    return {"trig_disc_step": (*trig, a2, a3, a2, a3, a2, f64, f64, 1),
            "trig_grad_x": (a3, trig, (), 1, 1, a3), "trig_forward": (a3, trig, (), 1, 1, a2),
            "kernel_sum": ksum(a2), "kernel_sum_grad": ksum(a3)}


register_kernels("linear", _kernels, _examples, MAX_DIM, routed=numba_dim)
