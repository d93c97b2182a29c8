"""Numba-CUDA twins of the one-hidden-layer MLP ops (reference: ``mlp_numpy``).

    D(x) = s sum_i a_i sigma(w_i . x + b_i),  s = sqrt(2 / W)       (s rounded to the state dtype)

Ops: ``mlp_disc_step`` (in place), ``mlp_grad_x`` -> (B, d, n), ``mlp_forward`` -> (B, n), with the
reference's signatures and layouts: w (B, d, W), b, a (B, W), samples (B, d, n), lr, l2 (B,)
(lr == 0 leaves a run untouched), u (B, d, N) or None, act 'relu' or 'tanh'.

Design (for an H100; every kernel is one launch for the whole ensemble, run axis inside the grid):

``mlp_disc_step``  one block per (run, tile of hidden units), one thread per hidden unit
    (block = ``launch.GPU_BLOCK['mlp_units']``; a grid-stride loop walks the B * ceil(W / block)
    tasks). The block streams the run's target then generated samples (and the cotangent u)
    through shared memory in tiles of ``launch.GPU_TILE['mlp_samples'] <= SAMPLE_TILE`` samples, loaded
    cooperatively and coalesced; every thread keeps its unit's parameters and the handful of
    per-unit sums the gradient needs (sum sigma, sum sigma', sum sigma' x, and with u: sum
    sigma'(u.w), sum sigma''(u.w), sum sigma''(u.w) x + sigma' u) in registers. No (B, n, W)
    temporary exists; global traffic is O(B (n + W) d) per step, arithmetic O(B n W d). Sums are
    two-level: a tile's partial sums in the state dtype, tile totals in float64 (so float32 runs
    do not lose accuracy over long sample loops), and the update is formed in float64 and
    rounded once. Each thread reads and then writes only its own unit, so the update is in
    place. A run with lr == 0 is skipped by the whole block (uniform control flow: every thread
    of a block reaches every barrier, threads past W just do no arithmetic).

``mlp_grad_x`` / ``mlp_forward``  one block per (run, chunk of samples), one thread per sample
    (block = ``launch.GPU_BLOCK['grad_x']``). The run's hidden units (w, b, a) are staged
    through shared memory in tiles of ``launch.GPU_TILE['grad_x_units'] <= UNIT_TILE`` units (every thread
    then reads the same address: broadcast, no bank conflicts) and each thread reduces over all
    W units for its sample in registers (per-thread reduction: deterministic, no atomics).
    Parallelism is B * n threads; very small ensembles of few particles leave the GPU idle.

Kernels are specialised per (state dtype, d) (``_kernels``): shared and local array sizes must be
compile-time constants in Numba-CUDA, and with d fixed the loops over features unroll and the
per-feature accumulators live in registers. Routing (:func:`numba_dim`): a kernel serves d up to
``REG_DIM[(kernel, dtype)]`` (the largest d it compiles spill-free with room to spare: the float64
step spills at d = 16); beyond, the op is the GEMM formulation of ``cuda_ops`` (cuBLAS on a GPU,
NumPy under the simulator), so every d runs.
Activation and "u given" are runtime flags (uniform branches). ``fastmath`` is off; NVVM still
contracts multiply-adds into FMAs, so on a GPU results differ from the reference by rounding.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import cuda, float64

from . import cuda_numba_tiled as tiled
from . import launch
from .cuda_numba_common import array_module, as_xp, block, blocks, check_dim, dev, jit_kernel, register_kernels, stream

MAX_DIM = 16          # largest data dimension d of the MLP kernels (registers / shared memory)
# largest d each register kernel serves (ptxas sm_90: step float64 d = 12 uses 248 registers, d = 16 spills)
REG_DIM = {("step", "float32"): 16, ("step", "float64"): 8}


def numba_dim(kernel: str, dtype_name: str, d: int) -> bool:
    """Whether the router sends (kernel, dtype, d) to the Numba-CUDA register kernel (else: GEMM)."""
    return 1 <= d <= REG_DIM.get((kernel, dtype_name), MAX_DIM)
SAMPLE_TILE = 128     # shared-memory capacity of the MLP step, in samples (compile-time)
UNIT_TILE = 128       # shared-memory capacity of grad_x / forward, in hidden units (compile-time)
# Tile lengths actually used are launch.GPU_TILE["mlp_samples"] / ["grad_x_units"] (runtime, clamped
# to the capacities above); tests patch them small.


def _activation_flag(act) -> bool:
    if act == "relu":
        return False
    if act == "tanh":
        return True
    raise ValueError(f"unknown activation {act!r}")


class Kernels(NamedTuple):
    step: object
    grad_x: object
    forward: object


@functools.lru_cache(maxsize=None)
def _kernels(dtype_name: str, D: int):
    """The MLP kernels for state dtype ``dtype_name`` and data dimension ``D`` (both compile-time)."""
    npdt = np.dtype(dtype_name)
    DT = numba.from_dtype(npdt)
    ZERO = npdt.type(0)
    ONE = npdt.type(1)
    TWO = npdt.type(2)
    TINY = float(np.finfo(npdt).tiny)
    XS = D * SAMPLE_TILE
    ST = SAMPLE_TILE
    UT = UNIT_TILE

    @cuda.jit(device=True)
    def act3(h, tanh):
        """sigma, sigma', sigma'' at h."""
        if tanh:
            t = math.tanh(h)
            d1 = ONE - t * t
            return t, d1, -TWO * t * d1
        if h > ZERO:
            return h, ONE, ZERO
        return ZERO, ZERO, ZERO

    @cuda.jit(device=True)
    def adapt(x, g, m, v, rate, oc, r):
        """The adaptive update (``kernels.optim``) of one parameter x, gradient g, in float64: (x, m, v)."""
        b1 = float64(oc[r, 0])
        b2 = float64(oc[r, 1])
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * (g * g)
        x = x - rate * m / (math.sqrt(v) * oc[r, 3] + oc[r, 2])
        # what the state dtype cannot hold as a normal number flushes to zero (kernels.optim)
        return (0.0 if abs(x) < TINY else x), (0.0 if abs(m) < TINY else m), (0.0 if v < TINY else v)   # NaN stays

    @jit_kernel
    def step(w, b, a, xg, xt, lr, l2, u, has_u, tanh, s, tile, opt_on, st):
        B = w.shape[0]
        W = w.shape[2]
        N = xg.shape[2]
        M = xt.shape[2]
        T = cuda.blockDim.x
        tid = cuda.threadIdx.x
        xs = cuda.shared.array(XS, DT)
        us = cuda.shared.array(XS, DT)
        wi = cuda.local.array(D, DT)
        px = cuda.local.array(D, DT)       # tile partials
        pq = cuda.local.array(D, DT)
        kx = cuda.local.array(D, float64)  # <sigma' x>_gen - <sigma' x>_tgt
        kq = cuda.local.array(D, float64)  # sum_gen sigma''(u.w) x + sigma' u
        inv_n = 1.0 / N
        inv_m = 1.0 / M
        ntile = (W + T - 1) // T
        mw, mb, ma, vw, vb, va, oc = st    # the adaptive optimiser's moments and coefficients (opt_on)
        for task in range(cuda.blockIdx.x, B * ntile, cuda.gridDim.x):
            r = task // ntile
            rate = lr[r]
            if rate == 0:                  # uniform over the block
                continue
            i = (task % ntile) * T + tid
            active = i < W
            bi = ZERO
            ai = ZERO
            for j in range(D):
                wi[j] = ZERO
                kx[j] = 0.0
                kq[j] = 0.0
            if active:
                bi = b[r, i]
                ai = a[r, i]
                for j in range(D):
                    wi[j] = w[r, j, i]
            k_sig = 0.0                    # <sigma>_gen - <sigma>_tgt
            k_d1 = 0.0                     # <sigma'>_gen - <sigma'>_tgt
            p1 = 0.0                       # sum_gen sigma' (u.w)
            p2 = 0.0                       # sum_gen sigma'' (u.w)
            for phase in range(2):         # 0: target samples (weight -1/M), 1: generated (+1/N)
                gen = phase == 1
                n = N if gen else M
                wt = inv_n if gen else -inv_m
                use_u = gen and has_u
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
                        if use_u:
                            us[j * ST + k] = u[r, j, k0 + k]
                    cuda.syncthreads()
                    if active:
                        ps = ZERO
                        pd = ZERO
                        pp1 = ZERO
                        pp2 = ZERO
                        for j in range(D):
                            px[j] = ZERO
                            pq[j] = ZERO
                        for k in range(cnt):
                            h = xs[k] * wi[0]
                            for j in range(1, D):
                                h += xs[j * ST + k] * wi[j]
                            h += bi
                            sg, d1, d2 = act3(h, tanh)
                            ps += sg
                            pd += d1
                            for j in range(D):
                                px[j] += d1 * xs[j * ST + k]
                            if use_u:
                                uw = us[k] * wi[0]
                                for j in range(1, D):
                                    uw += us[j * ST + k] * wi[j]
                                pp1 += d1 * uw
                                pp2 += d2 * uw
                                for j in range(D):
                                    pq[j] += d2 * uw * xs[j * ST + k] + d1 * us[j * ST + k]
                        k_sig += wt * ps
                        k_d1 += wt * pd
                        for j in range(D):
                            kx[j] += wt * px[j]
                        if use_u:
                            p1 += pp1
                            p2 += pp2
                            for j in range(D):
                                kq[j] += pq[j]
            if active and opt_on:
                c2 = 2.0 * l2[r]
                sa = s * ai
                xn, mn, vn = adapt(ai, s * (k_sig + p1) + c2 * ai, ma[r, i], va[r, i], rate, oc, r)
                a[r, i] = xn
                ma[r, i] = mn
                va[r, i] = vn
                xn, mn, vn = adapt(bi, sa * (k_d1 + p2) + c2 * bi, mb[r, i], vb[r, i], rate, oc, r)
                b[r, i] = xn
                mb[r, i] = mn
                vb[r, i] = vn
                for j in range(D):
                    xn, mn, vn = adapt(wi[j], sa * (kx[j] + kq[j]) + c2 * wi[j], mw[r, j, i], vw[r, j, i], rate, oc, r)
                    w[r, j, i] = xn
                    mw[r, j, i] = mn
                    vw[r, j, i] = vn
            elif active:
                c2 = 2.0 * l2[r]
                sa = s * ai
                a[r, i] = ai - rate * (s * (k_sig + p1) + c2 * ai)
                b[r, i] = bi - rate * (sa * (k_d1 + p2) + c2 * bi)
                for j in range(D):
                    w[r, j, i] = wi[j] - rate * (sa * (kx[j] + kq[j]) + c2 * wi[j])

    # grad_x / forward: tiled per-sample reductions over the hidden units (w_i, b_i, a_i staged as
    # sh[j * UT + i] (j < D), sh[D * UT + i], sh[(D + 1) * UT + i]); par = (tanh, s)
    stage_w, stage_b, stage_a = tiled.stage_points(D, UT), tiled.stage_row(UT, D), tiled.stage_row(UT, D + 1)

    @cuda.jit(device=True)
    def stage_units(src, par, r, c0, cnt, tid, T, sh):
        stage_b(src[1], r, c0, cnt, tid, T, sh)
        stage_a(src[2], r, c0, cnt, tid, T, sh)
        stage_w(src[0], r, c0, cnt, tid, T, sh)

    pre = tiled.affine(D, UT)                              # w . x + b

    @cuda.jit(device=True)
    def pair_grad(qv, sh, q, c, k, r, par, part, acc):
        h = pre(qv, sh, q)
        if par[0]:
            t = math.tanh(h)
            g = sh[(D + 1) * UT + q] * (ONE - t * t)
        else:
            g = sh[(D + 1) * UT + q] if h > ZERO else ZERO
        for j in range(D):
            part[j] += g * sh[j * UT + q]

    @cuda.jit(device=True)
    def finish_grad(qv, part, acc, src, par, r, k, out):
        for j in range(D):
            out[r, j, k] = par[1] * acc[j]

    @cuda.jit(device=True)
    def pair_forward(qv, sh, q, c, k, r, par, part, acc):
        h = pre(qv, sh, q)
        if par[0]:
            part[0] += sh[(D + 1) * UT + q] * math.tanh(h)
        elif h > ZERO:
            part[0] += sh[(D + 1) * UT + q] * h
        elif h != h:                         # relu(NaN) = NaN, as the reference's h * (h > 0)
            part[0] += h

    @cuda.jit(device=True)
    def finish_forward(qv, part, acc, src, par, r, k, out):
        out[r, k] = par[1] * acc[0]

    return Kernels(step,
                   tiled.summed(D, DT, ZERO, stage_units, pair_grad, finish_grad, n_shared=D + 2, cap=UT, n=D),
                   tiled.summed(D, DT, ZERO, stage_units, pair_forward, finish_forward, n_shared=D + 2, cap=UT, n=1))



def _scale(W: int, dtype) -> np.float64:
    """s = sqrt(2 / W) rounded to the state dtype like the reference, carried as float64."""
    return np.float64(np.sqrt(2.0 / W).astype(dtype))


def _tile(name: str, cap: int) -> int:
    return max(1, min(cap, int(launch.GPU_TILE[name])))


def opt_state(xp, w, opt):
    """(opt_on, (mw, mb, ma, vw, vb, va, coef)) as device arrays: the state of ``opt`` (``kernels.optim``),
    or tiny stand-ins of the same types when there is none."""
    dt = np.dtype(w.dtype)
    if opt is None:
        z3, z2 = xp.zeros((1, 1, 1), dtype=dt), xp.zeros((1, 1), dtype=dt)
        return False, (z3, z2, z2, z3, z2, z2, xp.zeros((1, 4), dtype=dt))
    from .optim import one_layer_moments
    return True, one_layer_moments(w, opt) + (xp.ascontiguousarray(as_xp(xp, opt["coef"]), dtype=dt),)


def mlp_disc_step(w, b, a, xg, xt, lr, l2, u, act, opt=None):
    """Twin of ``mlp_numpy.mlp_disc_step``: one step for the whole ensemble, in place."""
    xp = array_module(w, b, a, xg, xt, u, lr, l2)
    tanh = _activation_flag(act)
    B, d, W = w.shape
    if not numba_dim("step", np.dtype(w.dtype).name, d):
        from .cuda_ops import mlp_disc_step_gemm
        return mlp_disc_step_gemm(w, b, a, xg, xt, lr, l2, u, act, opt)
    check_dim("mlp", d)
    if xg.shape[:2] != (B, d) or xt.shape[:2] != (B, d) or (u is not None and u.shape != xg.shape):
        raise ValueError("mlp_disc_step: sample / cotangent shapes do not match w (B, d, W)")
    if B == 0 or W == 0:
        return
    dt = np.dtype(w.dtype)
    lr = as_xp(xp, lr)
    l2 = as_xp(xp, l2)
    has_u = u is not None
    if not has_u:
        u = xp.zeros((1, 1, 1), dtype=dt)
    opt_on, st = opt_state(xp, w, opt)
    step = _kernels(dt.name, d).step
    T = block("mlp_units")
    step[blocks(B * -(-W // T)), T, stream(xp)](
        dev(xp, w), dev(xp, b), dev(xp, a), dev(xp, xg), dev(xp, xt), dev(xp, lr), dev(xp, l2), dev(xp, u),
        has_u, tanh, _scale(W, dt), _tile("mlp_samples", SAMPLE_TILE), opt_on, tuple(dev(xp, x) for x in st))


def _per_sample(kind: str, w, b, a, x, act):
    xp = array_module(w, b, a, x)
    tanh = _activation_flag(act)
    B, d, W = w.shape
    if not numba_dim(kind, np.dtype(w.dtype).name, d):
        from . import cuda_ops
        return getattr(cuda_ops, f"mlp_{kind}_gemm")(w, b, a, x, act)
    check_dim("mlp", d)
    if x.shape[:2] != (B, d):
        raise ValueError("samples x must be (B, d, n) with (B, d) of w")
    dt = np.dtype(w.dtype)
    n = x.shape[2]
    out = xp.empty((B, d, n) if kind == "grad_x" else (B, n), dtype=dt)
    if out.size == 0:
        return out
    kern = getattr(_kernels(dt.name, d), kind)
    T = block("grad_x")
    kern[blocks(B * -(-n // T)), T, stream(xp)](
        dev(xp, x), (dev(xp, w), dev(xp, b), dev(xp, a)), (tanh, _scale(W, dt)), W, _tile("grad_x_units", UNIT_TILE),
        dev(xp, out))
    return out


def mlp_grad_x(w, b, a, x, act):
    """Twin of ``mlp_numpy.mlp_grad_x``: grad_x D at x (B, d, n) -> (B, d, n)."""
    return _per_sample("grad_x", w, b, a, x, act)


def mlp_forward(w, b, a, x, act):
    """Twin of ``mlp_numpy.mlp_forward``: D at x (B, d, n) -> (B, n)."""
    return _per_sample("forward", w, b, a, x, act)


def _examples(dn: str, d: int) -> dict:
    """Example arguments of every kernel (their numba types are the compiled signatures)."""
    dt = np.dtype(dn)
    a1, a2, a3 = np.zeros(1, dt), np.zeros((1, 1), dt), np.zeros((1, d, 1), dt)
    per_sample = lambda out: (a3, (a3, a2, a2), (True, np.float64(1)), 1, 1, out)   # noqa: E731
    return {"step": (a3, a2, a2, a3, a3, a1, a1, a3, True, True, np.float64(1), 1, True, (a3, a2, a2, a3, a2, a2, a2)),
            "grad_x": per_sample(a3), "forward": per_sample(a2)}


register_kernels("mlp", _kernels, _examples, MAX_DIM, routed=numba_dim)
