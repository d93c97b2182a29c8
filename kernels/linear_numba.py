"""Numba CPU twins of the discriminators that are linear in their parameters (reference: ``linear_numpy``).

    trig:    f(x) = sum_l theta_l amp_l cos(omega_l . x + phase_l)
    kernel:  f(x) = sum_c w_c sum_s K_s(x, y_c),  K in {rbf, laplacian, rq}

Same signatures, layouts and in-place semantics as the reference. Fused: no (n, L) or (n, C)
temporary, only per-task buffers of one feature / centre tile.

``trig_disc_step``  tasks = (run, tile of ``CPU_TILE['trig_features']`` features); each task streams
    all generated then target samples of its run and accumulates, per feature,
    sum_j wg_j cos(.) - sum_i wt_i cos(.): partials over ``CPU_TILE['trig_chunk']`` samples in the
    state dtype, totals in float64 (as the reference's float64 feature sums); the update is formed
    in float64 and rounded once. A task reads and writes only its own features: race-free,
    in place. Runs with lr == 0 are skipped (bitwise untouched).
``trig_grad_x`` / ``trig_forward``  tasks = (run, tile of ``CPU_TILE['trig_x_samples']`` samples); each
    sample reduces over all L features.
``kernel_sum`` / ``kernel_sum_grad``  tasks = (run, tile of ``CPU_TILE['kernel_rows']`` query points);
    each point reduces over the centres in blocks of ``CPU_TILE['kernel_cols']`` (r^2 and the
    bandwidth-summed profile live in L1-sized per-task buffers). The gradient sums the differences
    x - y_c directly (no x sum(g) - sum(g y) cancellation far from the origin); the Laplacian
    subgradient is 0 at r = 0.

d = 2 has fused single-pass loops; other d go through a per-task phase / r^2 buffer so every inner
loop stays a vectorisable loop over features or centres.
The transcendentals are the branch-free, vectorisable ones of ``fastmath`` (~1 ulp in float64);
per-run results differ from the reference by float rounding only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .fastmath import CUT, FASTMATH, vcos, vexp, vlog, vsin, wide_vectors
from .launch import CPU_TILE

KERNEL_IDS = {"rbf": 0, "laplacian": 1, "rq": 2}
_RQ1 = 3                                                        # rq with alpha == 1: 1 / base


# ----------------------------------------------------------------------------- trigonometric features

@njit(cache=True, fastmath=FASTMATH, inline="always")
def _trig_accumulate(acc, part, ph, omega, phase, r, lo, hi, x, w, sign, chunk):
    """acc[l] += sign sum_j w_j cos(omega_{lo+l} . x_j + phase_{lo+l}) for the features lo <= l < hi:
    partial sums over ``chunk`` samples in the state dtype, totals in float64."""
    d = x.shape[0]
    m = hi - lo
    p = phase[r, lo:hi]                     # 1-D C views: the inner loops index from 0 and vectorise
    o0 = omega[r, 0, lo:hi]
    o1 = omega[r, 1 if d > 1 else 0, lo:hi]
    zero = part.dtype.type(0)
    n = x.shape[1]
    for j0 in range(0, n, chunk):
        j1 = min(n, j0 + chunk)
        for l in range(m):
            part[l] = zero
        if d == 2:                          # two samples per pass: half the loads / stores of part
            j = j0
            while j + 1 < j1:
                wa, xa0, xa1 = w[j], x[0, j], x[1, j]
                wb, xb0, xb1 = w[j + 1], x[0, j + 1], x[1, j + 1]
                for l in range(m):
                    part[l] += (wa * vcos(o0[l] * xa0 + o1[l] * xa1 + p[l])
                                + wb * vcos(o0[l] * xb0 + o1[l] * xb1 + p[l]))
                j += 2
            if j < j1:
                wa, xa0, xa1 = w[j], x[0, j], x[1, j]
                for l in range(m):
                    part[l] += wa * vcos(o0[l] * xa0 + o1[l] * xa1 + p[l])
        else:
            for j in range(j0, j1):
                wj = w[j]
                x0 = x[0, j]
                for l in range(m):
                    ph[l] = o0[l] * x0
                for k in range(1, d):
                    ok = omega[r, k, lo:hi]
                    xk = x[k, j]
                    for l in range(m):
                        ph[l] += ok[l] * xk
                for l in range(m):
                    part[l] += wj * vcos(ph[l] + p[l])
        for l in range(m):
            acc[l] += sign * np.float64(part[l])


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _trig_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam, tile, chunk):
    B, L = theta.shape
    ntile = (L + tile - 1) // tile
    for task in prange(B * ntile):
        wide_vectors()
        r = task // ntile
        if lr[r] == 0:
            continue
        lo = (task % ntile) * tile
        hi = min(L, lo + tile)
        m = hi - lo
        acc = np.zeros(m, dtype=np.float64)
        part = np.empty(m, dtype=theta.dtype)
        ph = np.empty(m, dtype=theta.dtype)
        _trig_accumulate(acc, part, ph, omega, phase, r, lo, hi, xg[r], wg[r], 1.0, chunk)
        _trig_accumulate(acc, part, ph, omega, phase, r, lo, hi, xt[r], wt[r], -1.0, chunk)
        th = theta[r, lo:hi]
        a = amp[r, lo:hi]
        rt = rate[r, lo:hi]
        step = lr[r]
        c2 = lam[r]
        for l in range(m):
            ph[l] = acc[l]                                     # feature sums in the state dtype
        for l in range(m):
            t = np.float64(th[l])
            g = np.float64(a[l] * ph[l]) + c2 * t
            th[l] = t - step * np.float64(rt[l]) * g


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _trig_per_sample(theta, omega, phase, amp, x, grad, out, tile):
    """grad: out (B, d, n) = -sum_l c_l sin(.) omega_l; else out (B, 1, n) = sum_l c_l cos(.)."""
    B, L = theta.shape
    d = omega.shape[1]
    n = x.shape[2]
    ntile = (n + tile - 1) // tile
    for task in prange(B * ntile):
        wide_vectors()
        r = task // ntile
        lo = (task % ntile) * tile
        hi = min(n, lo + tile)
        zero = theta.dtype.type(0)
        c = np.empty(L, dtype=theta.dtype)
        ph = np.empty(L, dtype=theta.dtype)
        for l in range(L):
            c[l] = theta[r, l] * amp[r, l]
        om = omega[r]
        p = phase[r]
        for k in range(lo, hi):
            if d == 2:
                x0 = x[r, 0, k]
                x1 = x[r, 1, k]
                o0 = om[0]
                o1 = om[1]
                if grad:
                    a0 = zero
                    a1 = zero
                    for l in range(L):
                        s = c[l] * vsin(o0[l] * x0 + o1[l] * x1 + p[l])
                        a0 += s * o0[l]
                        a1 += s * o1[l]
                    out[r, 0, k] = -a0
                    out[r, 1, k] = -a1
                else:
                    a = zero
                    for l in range(L):
                        a += c[l] * vcos(o0[l] * x0 + o1[l] * x1 + p[l])
                    out[r, 0, k] = a
                continue
            x0 = x[r, 0, k]
            o0 = om[0]
            for l in range(L):
                ph[l] = o0[l] * x0
            for j in range(1, d):
                xj = x[r, j, k]
                oj = om[j]
                for l in range(L):
                    ph[l] += oj[l] * xj
            if grad:
                for l in range(L):
                    ph[l] = c[l] * vsin(ph[l] + p[l])
                for j in range(d):
                    oj = om[j]
                    a = zero
                    for l in range(L):
                        a += ph[l] * oj[l]
                    out[r, j, k] = -a
            else:
                a = zero
                for l in range(L):
                    a += c[l] * vcos(ph[l] + p[l])
                out[r, 0, k] = a


def _trig_args(theta, omega, phase, amp, *rest):
    dt = theta.dtype
    if dt not in (np.float32, np.float64):
        raise TypeError(f"trig ops need float32 or float64 theta, got {dt}")
    B, L = theta.shape
    if omega.shape[0] != B or omega.shape[2] != L:
        raise ValueError("omega must be (B, d, L) with (B, L) of theta")
    return [np.ascontiguousarray(v, dtype=dt) for v in (omega, phase, amp) + rest]


def trig_disc_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam):
    """Twin of ``linear_numpy.trig_disc_step``: one descent step for the whole ensemble, in place on theta."""
    omega, phase, amp, rate, xg, wg, xt, wt = _trig_args(theta, omega, phase, amp, rate, xg, wg, xt, wt)
    lr = np.ascontiguousarray(lr, dtype=np.float64).reshape(-1)
    lam = np.ascontiguousarray(lam, dtype=np.float64).reshape(-1)
    _trig_step(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam, max(1, int(CPU_TILE["trig_features"])),
               max(1, int(CPU_TILE["trig_chunk"])))


def trig_grad_x(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_grad_x``: grad_x f at x (B, d, n) -> (B, d, n)."""
    omega, phase, amp, x = _trig_args(theta, omega, phase, amp, x)
    out = np.empty(x.shape, dtype=theta.dtype)
    _trig_per_sample(theta, omega, phase, amp, x, True, out, max(1, int(CPU_TILE["trig_x_samples"])))
    return out


def trig_forward(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_forward``: f at x (B, d, n) -> (B, n)."""
    omega, phase, amp, x = _trig_args(theta, omega, phase, amp, x)
    out = np.empty((x.shape[0], 1, x.shape[2]), dtype=theta.dtype)
    _trig_per_sample(theta, omega, phase, amp, x, False, out, max(1, int(CPU_TILE["trig_x_samples"])))
    return out[:, 0]


# ----------------------------------------------------------------------------- kernel sums

@njit(cache=True, fastmath=FASTMATH, inline="always")
def _profile_sum(r2, gb, m, bw, kind, alpha, grad, cut):
    """gb[c] = sum_s K_s(r_c) (value) or sum_s g_s(r_c) (grad, g = -(1/r) dK/dr), c < m.

    Exponentials of arguments below ``cut`` count as 0 (``CUT``): their products with weights and
    differences would be subnormal, which costs ~100x per operation on x86."""
    one = r2.dtype.type(1)
    zero = r2.dtype.type(0)
    for c in range(m):
        gb[c] = zero
    for s in range(bw.shape[0]):
        sig = bw[s]
        is2 = one / (sig * sig)
        if kind == 0:                                           # rbf
            h = is2 * r2.dtype.type(0.5)
            if grad:
                for c in range(m):
                    z = -(r2[c] * h)
                    gb[c] += zero if z < cut else vexp(z) * is2
            else:
                for c in range(m):
                    z = -(r2[c] * h)
                    gb[c] += zero if z < cut else vexp(z)
        elif kind == 1:                                         # laplacian
            inv = one / sig
            if grad:
                for c in range(m):
                    rr = math.sqrt(r2[c])
                    z = -(rr * inv)
                    nil = rr == zero
                    g = vexp(z) / (sig * (one if nil else rr))
                    gb[c] += zero if (nil or z < cut) else g    # subgradient 0 at r = 0
            else:
                for c in range(m):
                    z = -(math.sqrt(r2[c]) * inv)
                    gb[c] += zero if z < cut else vexp(z)
        else:                                                   # rq
            h = is2 / (alpha + alpha)
            if kind == _RQ1:
                if grad:
                    for c in range(m):
                        ib = one / (one + r2[c] * h)
                        gb[c] += ib * ib * is2
                else:
                    for c in range(m):
                        gb[c] += one / (one + r2[c] * h)
            else:
                na = -np.float64(alpha)
                for c in range(m):
                    base = one + r2[c] * h
                    k = r2.dtype.type(vexp(na * vlog(np.float64(base))))
                    gb[c] += k * is2 / base if grad else k


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _kernel_sums(x, centres, weights, bw, kind, alpha, grad, cut, out, rows, cols):
    """grad: out (B, d, n) = -sum_c w_c sum_s g_s (x - y_c); else out (B, 1, n) = sum_c w_c sum_s K_s."""
    B, d, n = x.shape
    C = centres.shape[2]
    ntile = (n + rows - 1) // rows
    for task in prange(B * ntile):
        wide_vectors()
        r = task // ntile
        lo = (task % ntile) * rows
        hi = min(n, lo + rows)
        zero = x.dtype.type(0)
        r2 = np.empty(cols, dtype=x.dtype)
        gb = np.empty(cols, dtype=x.dtype)
        accs = np.zeros((hi - lo, d), dtype=x.dtype)
        fused = grad and kind == 0 and d == 2 and bw.shape[1] == 1
        is0 = x.dtype.type(1) / (bw[r, 0] * bw[r, 0])
        h0 = is0 * x.dtype.type(0.5)
        # centre blocks outermost: each block is read from memory once per task and reused from L1/L2
        # for all the task's query points (10^6 centres do not fit in cache); per query the blocks
        # are still summed in order, so the result does not depend on the tiling
        for c0 in range(0, C, cols):
            c1 = min(C, c0 + cols)
            m = c1 - c0
            wv = weights[r, c0:c1]                              # 1-D C views indexed from 0: vectorisable
            y0 = centres[r, 0, c0:c1]
            y1 = centres[r, 1 if d > 1 else 0, c0:c1]
            for k in range(lo, hi):
                acc = accs[k - lo]
                x0 = x[r, 0, k]
                x1 = x[r, 1 if d > 1 else 0, k]
                if fused:
                    pass
                elif d == 2:
                    for c in range(m):
                        u = x0 - y0[c]
                        v = x1 - y1[c]
                        r2[c] = u * u + v * v
                else:
                    for c in range(m):
                        u = x0 - y0[c]
                        r2[c] = u * u
                    for j in range(1, d):
                        xj = x[r, j, k]
                        yj = centres[r, j, c0:c1]
                        for c in range(m):
                            u = xj - yj[c]
                            r2[c] += u * u
                if fused:                   # rbf, one bandwidth, d = 2: one pass, no r^2 / profile buffers
                    a0 = zero
                    a1 = zero
                    for c in range(m):
                        u = x0 - y0[c]
                        v = x1 - y1[c]
                        z = -((u * u + v * v) * h0)
                        gw = zero if z < cut else vexp(z) * wv[c]
                        a0 += u * gw
                        a1 += v * gw
                    acc[0] += a0 * is0
                    acc[1] += a1 * is0
                    continue
                _profile_sum(r2, gb, m, bw[r], kind, alpha, grad, cut)
                if grad:
                    if d == 2:
                        a0 = zero
                        a1 = zero
                        for c in range(m):
                            gw = gb[c] * wv[c]
                            a0 += (x0 - y0[c]) * gw
                            a1 += (x1 - y1[c]) * gw
                        acc[0] += a0
                        acc[1] += a1
                    else:
                        for c in range(m):
                            gb[c] *= wv[c]
                        for j in range(d):
                            xj = x[r, j, k]
                            yj = centres[r, j, c0:c1]
                            a = zero
                            for c in range(m):
                                a += (xj - yj[c]) * gb[c]
                            acc[j] += a
                else:
                    a = zero
                    for c in range(m):
                        a += gb[c] * wv[c]
                    acc[0] += a
        for k in range(lo, hi):
            if grad:
                for j in range(d):
                    out[r, j, k] = -accs[k - lo, j]
            else:
                out[r, 0, k] = accs[k - lo, 0]


def _kernel_call(x, centres, weights, bandwidths, kernel, alpha, grad):
    try:
        kind = KERNEL_IDS[kernel]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kernel {kernel!r}") from None
    dt = x.dtype
    if dt not in (np.float32, np.float64):
        raise TypeError(f"kernel sums need float32 or float64 samples, got {dt}")
    B, d, n = x.shape
    if centres.shape[:2] != (B, d) or weights.shape != (B, centres.shape[2]) or bandwidths.shape[0] != B:
        raise ValueError("kernel sums: centres must be (B, d, C), weights (B, C), bandwidths (B, S) with (B, d) of x")
    if kind == KERNEL_IDS["rq"] and float(alpha) == 1.0:
        kind = _RQ1
    c = lambda v: np.ascontiguousarray(v, dtype=dt)            # noqa: E731
    out = np.empty((B, d if grad else 1, n), dtype=dt)
    _kernel_sums(c(x), c(centres), c(weights), c(np.reshape(bandwidths, (B, -1))), kind, dt.type(alpha), grad,
                 dt.type(CUT[dt.name]), out,
                 max(1, int(CPU_TILE["kernel_rows"])), max(1, int(CPU_TILE["kernel_cols"])))
    return out if grad else out[:, 0]


def kernel_sum(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum``: f(x_j) = sum_c w_c sum_s K_s(x_j, y_c) -> (B, n)."""
    return _kernel_call(x, centres, weights, bandwidths, kernel, alpha, False)


def kernel_sum_grad(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum_grad``: grad_x f(x_j) = -sum_c w_c sum_s g_s (x_j - y_c) -> (B, d, n)."""
    return _kernel_call(x, centres, weights, bandwidths, kernel, alpha, True)
