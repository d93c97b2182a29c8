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
live in registers; d is limited to ``MAX_DIM`` (ValueError above). Constants are of the state
dtype so float32 kernels stay in float32 (cosf / expf / powf). ``fastmath`` is off; NVVM still
contracts multiply-adds into FMAs, so on a GPU results differ from the reference by rounding.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda, float64

from . import launch
from .cuda_numba_common import array_module, as_xp, block, blocks, dev, stream

MAX_DIM = 16          # largest data dimension d (registers / shared memory), as the other twins
SAMPLE_TILE = 128     # shared-memory capacity of the trig step, in samples (compile-time)
FEATURE_TILE = 128    # shared-memory capacity of trig grad_x / forward, in features
CENTRE_TILE = 128     # shared-memory capacity of the kernel sums, in centres
# Tile lengths actually used: launch.GPU_TILE["trig_samples"] / ["trig_features"] / ["kernel_cols"]
# (runtime, clamped to the capacities above); tests patch them small.

KERNEL_IDS = {"rbf": 0, "laplacian": 1, "rq": 2}


def check_dim(d: int) -> None:
    if not 1 <= d <= MAX_DIM:
        raise ValueError(f"the Numba-CUDA linear-discriminator kernels support 1 <= d <= MAX_DIM = {MAX_DIM}, "
                         f"got d = {d}")


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
    OS = D * FEATURE_TILE
    YS = D * CENTRE_TILE

    # ------------------------------------------------------------------ trigonometric features

    @cuda.jit
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

    @cuda.jit(device=True)
    def stage_features(theta, omega, phase, amp, r, l0, cnt, tid, T, os_, ps, cs):
        """Cooperatively copy features [l0, l0 + cnt) of run r into shared memory (c = theta amp)."""
        for e in range(tid, cnt, T):
            ps[e] = phase[r, l0 + e]
            cs[e] = theta[r, l0 + e] * amp[r, l0 + e]
        for e in range(tid, D * cnt, T):
            j = e // cnt
            q = e - j * cnt
            os_[j * FT + q] = omega[r, j, l0 + q]

    @cuda.jit
    def trig_grad(theta, omega, phase, amp, x, tile, out):
        B = theta.shape[0]
        L = theta.shape[1]
        n = x.shape[2]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        os_ = cuda.shared.array(OS, DT)
        ps = cuda.shared.array(FT, DT)
        cs = cuda.shared.array(FT, DT)
        xk = cuda.local.array(D, DT)
        pacc = cuda.local.array(D, DT)
        acc = cuda.local.array(D, float64)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            for j in range(D):
                xk[j] = x[r, j, k] if active else ZERO
                acc[j] = 0.0
            for l0 in range(0, L, tile):
                cnt = L - l0
                if cnt > tile:
                    cnt = tile
                cuda.syncthreads()
                stage_features(theta, omega, phase, amp, r, l0, cnt, tid, T, os_, ps, cs)
                cuda.syncthreads()
                if active:
                    for j in range(D):
                        pacc[j] = ZERO
                    for q in range(cnt):
                        h = xk[0] * os_[q]
                        for j in range(1, D):
                            h += xk[j] * os_[j * FT + q]
                        h += ps[q]
                        s = math.sin(h) * cs[q]
                        for j in range(D):
                            pacc[j] += s * os_[j * FT + q]
                    for j in range(D):
                        acc[j] += pacc[j]
            if active:
                for j in range(D):
                    out[r, j, k] = -acc[j]

    @cuda.jit
    def trig_fwd(theta, omega, phase, amp, x, tile, out):
        B = theta.shape[0]
        L = theta.shape[1]
        n = x.shape[2]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        os_ = cuda.shared.array(OS, DT)
        ps = cuda.shared.array(FT, DT)
        cs = cuda.shared.array(FT, DT)
        xk = cuda.local.array(D, DT)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            for j in range(D):
                xk[j] = x[r, j, k] if active else ZERO
            acc = float64(0.0)
            for l0 in range(0, L, tile):
                cnt = L - l0
                if cnt > tile:
                    cnt = tile
                cuda.syncthreads()
                stage_features(theta, omega, phase, amp, r, l0, cnt, tid, T, os_, ps, cs)
                cuda.syncthreads()
                if active:
                    part = ZERO
                    for q in range(cnt):
                        h = xk[0] * os_[q]
                        for j in range(1, D):
                            h += xk[j] * os_[j * FT + q]
                        h += ps[q]
                        part += math.cos(h) * cs[q]
                    acc += part
            if active:
                out[r, k] = acc

    # ------------------------------------------------------------------ kernel sums

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

    @cuda.jit(device=True)
    def stage_centres(centres, weights, r, c0, cnt, tid, T, ys, wsh):
        """Cooperatively copy centres [c0, c0 + cnt) of run r and their weights into shared memory."""
        for e in range(tid, cnt, T):
            wsh[e] = weights[r, c0 + e]
        for e in range(tid, D * cnt, T):
            j = e // cnt
            q = e - j * cnt
            ys[j * CT + q] = centres[r, j, c0 + q]

    @cuda.jit
    def ksum(x, centres, weights, bw, kind, alpha, tile, out):
        B = x.shape[0]
        n = x.shape[2]
        C = centres.shape[2]
        S = bw.shape[1]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        ys = cuda.shared.array(YS, DT)
        wsh = cuda.shared.array(CT, DT)
        xk = cuda.local.array(D, DT)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            for j in range(D):
                xk[j] = x[r, j, k] if active else ZERO
            acc = float64(0.0)
            for c0 in range(0, C, tile):
                cnt = C - c0
                if cnt > tile:
                    cnt = tile
                cuda.syncthreads()
                stage_centres(centres, weights, r, c0, cnt, tid, T, ys, wsh)
                cuda.syncthreads()
                if active:
                    part = ZERO
                    for q in range(cnt):
                        dx = xk[0] - ys[q]
                        r2 = dx * dx
                        for j in range(1, D):
                            dx = xk[j] - ys[j * CT + q]
                            r2 += dx * dx
                        ks = ZERO
                        for s in range(S):
                            kv, gv = profile(r2, bw[r, s], kind, alpha)
                            ks += kv
                        part += ks * wsh[q]
                    acc += part
            if active:
                out[r, k] = acc

    @cuda.jit
    def kgrad(x, centres, weights, bw, kind, alpha, tile, out):
        B = x.shape[0]
        n = x.shape[2]
        C = centres.shape[2]
        S = bw.shape[1]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        ys = cuda.shared.array(YS, DT)
        wsh = cuda.shared.array(CT, DT)
        xk = cuda.local.array(D, DT)
        pacc = cuda.local.array(D, DT)
        acc = cuda.local.array(D, float64)
        nchunk = (n + T - 1) // T
        for task in range(cuda.blockIdx.x, B * nchunk, cuda.gridDim.x):
            r = task // nchunk
            k = (task % nchunk) * T + tid
            active = k < n
            for j in range(D):
                xk[j] = x[r, j, k] if active else ZERO
                acc[j] = 0.0
            for c0 in range(0, C, tile):
                cnt = C - c0
                if cnt > tile:
                    cnt = tile
                cuda.syncthreads()
                stage_centres(centres, weights, r, c0, cnt, tid, T, ys, wsh)
                cuda.syncthreads()
                if active:
                    for j in range(D):
                        pacc[j] = ZERO
                    for q in range(cnt):
                        dx = xk[0] - ys[q]
                        r2 = dx * dx
                        for j in range(1, D):
                            dx = xk[j] - ys[j * CT + q]
                            r2 += dx * dx
                        gs = ZERO
                        for s in range(S):
                            kv, gv = profile(r2, bw[r, s], kind, alpha)
                            gs += gv
                        gw = gs * wsh[q]
                        for j in range(D):
                            pacc[j] += (xk[j] - ys[j * CT + q]) * gw
                    for j in range(D):
                        acc[j] += pacc[j]
            if active:
                for j in range(D):
                    out[r, j, k] = -acc[j]

    return trig_step, trig_grad, trig_fwd, ksum, kgrad


def _tile(name: str, cap: int) -> int:
    return max(1, min(cap, int(launch.GPU_TILE[name])))


# ----------------------------------------------------------------------------- host wrappers

def trig_disc_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam):
    """Twin of ``linear_numpy.trig_disc_step``: one descent step for the whole ensemble, in place on theta."""
    xp = array_module(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam)
    B, L = theta.shape
    d = omega.shape[1]
    check_dim(d)
    if omega.shape != (B, d, L) or xg.shape[:2] != (B, d) or xt.shape[:2] != (B, d):
        raise ValueError("trig_disc_step: omega must be (B, d, L) and samples (B, d, n) with (B, L) of theta")
    if B == 0 or L == 0:
        return
    dt = np.dtype(theta.dtype)
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    f64 = lambda v: dev(xp, as_xp(xp, v, np.float64))    # noqa: E731
    kern = _kernels(dt.name, d)[0]
    T = block("trig")
    kern[blocks(B * -(-L // T)), T, stream(xp)](
        dev(xp, theta), c(omega), c(phase), c(amp), c(rate), c(xg), c(wg), c(xt), c(wt), f64(lr), f64(lam),
        _tile("trig_samples", SAMPLE_TILE))


def _trig_per_sample(kind, theta, omega, phase, amp, x):
    xp = array_module(theta, omega, phase, amp, x)
    B, L = theta.shape
    d = omega.shape[1]
    check_dim(d)
    if omega.shape != (B, d, L) or x.shape[:2] != (B, d):
        raise ValueError("omega must be (B, d, L) and samples x (B, d, n) with (B, L) of theta")
    dt = np.dtype(theta.dtype)
    n = x.shape[2]
    out = xp.empty((B, d, n) if kind == 1 else (B, n), dtype=dt)
    if out.size == 0:
        return out
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    kern = _kernels(dt.name, d)[kind]
    T = block("trig_x")
    kern[blocks(B * -(-n // T)), T, stream(xp)](
        c(theta), c(omega), c(phase), c(amp), c(x), _tile("trig_features", FEATURE_TILE), dev(xp, out))
    return out


def trig_grad_x(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_grad_x``: grad_x f at x (B, d, n) -> (B, d, n)."""
    return _trig_per_sample(1, theta, omega, phase, amp, x)


def trig_forward(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_forward``: f at x (B, d, n) -> (B, n)."""
    return _trig_per_sample(2, theta, omega, phase, amp, x)


def _kernel_per_sample(which, x, centres, weights, bandwidths, kernel, alpha):
    kind = _kernel_id(kernel)
    xp = array_module(x, centres, weights, bandwidths)
    B, d, n = x.shape
    check_dim(d)
    if centres.shape[:2] != (B, d) or weights.shape != (B, centres.shape[2]) or bandwidths.shape[0] != B:
        raise ValueError("kernel sums: centres must be (B, d, C), weights (B, C), bandwidths (B, S) "
                         "with (B, d) of x")
    dt = np.dtype(x.dtype)
    out = xp.empty((B, d, n) if which == 4 else (B, n), dtype=dt)
    if out.size == 0:
        return out
    c = lambda v: dev(xp, as_xp(xp, v, dt))              # noqa: E731
    kern = _kernels(dt.name, d)[which]
    T = block("kernel_sum")
    kern[blocks(B * -(-n // T)), T, stream(xp)](
        dev(xp, x), c(centres), c(weights), c(bandwidths), kind, dt.type(alpha), _tile("kernel_cols", CENTRE_TILE),
        dev(xp, out))
    return out


def kernel_sum(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum``: f(x_j) = sum_c w_c sum_s K_s(x_j, y_c) -> (B, n)."""
    return _kernel_per_sample(3, x, centres, weights, bandwidths, kernel, alpha)


def kernel_sum_grad(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum_grad``: grad_x f(x_j) -> (B, d, n)."""
    return _kernel_per_sample(4, x, centres, weights, bandwidths, kernel, alpha)


def ptx_targets(dtypes=("float32", "float64"), dims=(1, 2, 3)):
    """(name, python function, signature) of every linear-discriminator kernel, for compile-only checks."""
    from numba import types
    f64_1 = types.Array(types.float64, 1, "C")
    out = []
    for dn in dtypes:
        ty = numba.from_dtype(np.dtype(dn))
        a2, a3 = (types.Array(ty, k, "C") for k in (2, 3))
        for d in dims:
            step, grad, fwd, ks, kg = _kernels(dn, d)
            out.append((f"trig_disc_step[{dn},d={d}]", step.py_func,
                        (a2, a3, a2, a2, a2, a3, a2, a3, a2, f64_1, f64_1, types.int64)))
            out.append((f"trig_grad_x[{dn},d={d}]", grad.py_func, (a2, a3, a2, a2, a3, types.int64, a3)))
            out.append((f"trig_forward[{dn},d={d}]", fwd.py_func, (a2, a3, a2, a2, a3, types.int64, a2)))
            out.append((f"kernel_sum[{dn},d={d}]", ks.py_func,
                        (a3, a3, a2, a2, types.int64, ty, types.int64, a2)))
            out.append((f"kernel_sum_grad[{dn},d={d}]", kg.py_func,
                        (a3, a3, a2, a2, types.int64, ty, types.int64, a3)))
    return out
