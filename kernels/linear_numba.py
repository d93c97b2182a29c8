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

Transcendentals: numba has no vector math library here (no SVML), and scalar libm cos / exp calls
cost 10-35 ns, far slower than NumPy's SIMD ufuncs. The inner loops therefore call branch-free
cos / sin / exp / log (Cody-Waite range reduction, minimax / Taylor polynomials, exponent bits via
an LLVM bitcast) that LLVM inlines and vectorises: ~1 ulp in float64, ~1-2 ulp for the float32 exp
and an absolute error <= 3e-7 for the float32 cos / sin (one polynomial, see ``_S32``). They are
compiled with fast-math *without* reassociation (``_SAFE``), which would fold the split constants
of the range reduction back together; the calling kernels allow reassociation so that reductions
vectorise. Neither assumes finite values (no ``nnan`` / ``ninf``): a NaN input gives NaN outputs, as
in the reference. Per-run results differ from the reference by float rounding only.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from .launch import CPU_TILE

# fast-math without the no-NaN / no-Inf assumptions, so that a NaN input propagates as in the reference
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_SAFE = FASTMATH - {"reassoc"}                  # the math helpers: no reassociation either (see above)
KERNEL_IDS = {"rbf": 0, "laplacian": 1, "rq": 2}
_RQ1 = 3                                                        # rq with alpha == 1: 1 / base
# rbf / laplacian terms exp(z) with z below this are dropped (e^-60 ~ 1e-26, e^-600 ~ 1e-261: far below
# the rounding of any sum that matters, far above the subnormal range their products would reach)
_CUT = {"float32": -60.0, "float64": -600.0}


# ----------------------------------------------------------------------------- vectorisable math

@intrinsic
def _pow2(typingctx, k):
    """2**k for an integral-valued float k in the normal exponent range (exponent bits, no libm)."""
    if k == types.float64:
        ity, bias, shift = ir.IntType(64), 1023, 52
    elif k == types.float32:
        ity, bias, shift = ir.IntType(32), 127, 23
    else:
        return None

    def codegen(context, builder, sig, args):
        e = builder.add(builder.fptosi(args[0], ity), ir.Constant(ity, bias))
        return builder.bitcast(builder.shl(e, ir.Constant(ity, shift)), context.get_value_type(k))
    return k(k), codegen


@intrinsic
def _split64(typingctx, x):
    """(m, e) with x = m 2**e, m in [1, 2), for a positive normal float64 (bits, no libm)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        dbl = ir.DoubleType()
        bits = builder.bitcast(args[0], i64)
        e = builder.sub(builder.lshr(bits, ir.Constant(i64, 52)), ir.Constant(i64, 1023))
        mb = builder.or_(builder.and_(bits, ir.Constant(i64, (1 << 52) - 1)), ir.Constant(i64, 1023 << 52))
        tup = context.make_tuple(builder, sig.return_type,
                                 (builder.bitcast(mb, dbl), builder.sitofp(e, dbl)))
        return tup
    return types.UniTuple(types.float64, 2)(x), codegen


@intrinsic
def wide_vectors(typingctx):
    """Call first thing in a kernel's (prange) body: marks the LLVM function it is compiled into with
    ``"prefer-vector-width"="512"``, so that on AVX-512 machines LLVM vectorises its loops with 512-bit
    registers. LLVM's tuning for AVX-512 server cores prefers 256 bits (to avoid the clock drop of
    older cores), and NUMBA_CPU_FEATURES=-prefer-256-bit would change that for every numba function
    in the process; the function attribute scopes it to the compute-bound transcendental kernels,
    where it measured 1.5x (float32 RFF step). Without AVX-512 the attribute changes nothing.
    (llvmlite's attribute set only accepts flag attributes; this key-value one is added past its check.)"""
    def codegen(context, builder, sig, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()
    return types.none(), codegen


def _cos(x):
    raise NotImplementedError


def _sin(x):
    raise NotImplementedError


def _exp(x):
    raise NotImplementedError


def _log(x):
    raise NotImplementedError


def _tanh(x):
    raise NotImplementedError


# float64: fdlibm kernels on |r| <= pi/4, pi/2 split in three 33-bit pieces (k * piece exact).
_P1_64, _P2_64, _P3_64 = 1.57079632673412561417e+00, 6.07710050630396597660e-11, 2.02226624879595063154e-21


@njit(cache=True, fastmath=_SAFE, inline="never")
def _reduce64(x):
    k = np.floor(x * 0.63661977236758134308 + 0.5)
    r = ((x - k * _P1_64) - k * _P2_64) - k * _P3_64
    z = r * r
    s = r + r * z * (-1.66666666666666324348e-01 + z * (8.33333333332248946124e-03 + z * (
        -1.98412698298579493134e-04 + z * (2.75573137070700676789e-06 + z * (
            -2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))))
    c = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * (
        2.48015872894767294178e-05 + z * (-2.75573143513906633035e-07 + z * (
            2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))))
    q = k - 4.0 * np.floor(k * 0.25)              # quadrant 0..3
    return q, s, c


@njit(cache=True, fastmath=_SAFE, inline="never")
def _cos_from(q, s, c):
    v = s if (q == 1 or q == 3) else c              # cos(r + q pi/2)
    return -v if (q == 1 or q == 2) else v


@njit(cache=True, fastmath=_SAFE, inline="never")
def _sin_from(q, s, c):
    v = c if (q == 1 or q == 3) else s              # sin(r + q pi/2)
    return -v if q >= 2 else v


# float32: one odd polynomial on [-pi/2, pi/2] (degree 9, fitted to |error| < 3.4e-9) after a
# reduction to r in [-pi, pi] by whole turns (2 pi = 6.28125 + 1.9353071795864769e-3: k * 6.28125 is
# exact for |k| < 2**16) and a reflection: cos x = P(pi/2 - |r|), sin x = P(sign(r) (pi/2 - ||r| - pi/2|)).
# One polynomial and no quadrant selects: ~3x the throughput of the two-polynomial quadrant scheme;
# absolute error <= 3e-7 for |x| < 4e5 (rounding of r and of the reflection), below the rounding of the float32
# phase omega . x + b itself whenever |phase| > 2.
_T1_32, _T2_32 = np.float32(6.28125), np.float32(1.9353071795864769e-3)
_INV_2PI_32, _HALF_PI_32 = np.float32(0.15915494309189535), np.float32(1.5707963267948966)
_S32 = tuple(np.float32(c) for c in (0.9999999765895061, -0.16666647634399068, 0.008332899819278247,
                                     -0.0001980089751242777, 2.5904879951401333e-06))


@njit(cache=True, fastmath=_SAFE, inline="always")
def _turns32(x):
    k = np.floor(x * _INV_2PI_32 + np.float32(0.5))
    return (x - k * _T1_32) - k * _T2_32


@njit(cache=True, fastmath=_SAFE, inline="always")
def _sinpoly32(t):
    z = t * t
    return t * (_S32[0] + z * (_S32[1] + z * (_S32[2] + z * (_S32[3] + z * _S32[4]))))


@overload(_cos, jit_options={"fastmath": _SAFE})
def _ov_cos(x):
    if x == types.float32:
        def impl(x):
            return _sinpoly32(_HALF_PI_32 - np.abs(_turns32(x)))
        return impl
    if x == types.float64:
        def impl(x):
            q, s, c = _reduce64(x)
            return _cos_from(q, s, c)
        return impl


@overload(_sin, jit_options={"fastmath": _SAFE})
def _ov_sin(x):
    if x == types.float32:
        def impl(x):
            r = _turns32(x)
            t = _HALF_PI_32 - np.abs(np.abs(r) - _HALF_PI_32)
            return _sinpoly32(t if r >= np.float32(0) else -t)
        return impl
    if x == types.float64:
        def impl(x):
            q, s, c = _reduce64(x)
            return _sin_from(q, s, c)
        return impl


@njit(cache=True, fastmath=_SAFE, inline="never")
def _exp64(x):
    xc = -708.0 if x < -708.0 else (709.0 if x > 709.0 else x)           # NaN stays NaN
    k = np.floor(xc * 1.44269504088896338700 + 0.5)
    r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10    # |r| <= ln2 / 2
    p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (
        1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
            1 / 479001600 + r * (1 / 6227020800)))))))))))))
    v = p * _pow2(k)
    return 0.0 if x < -708.0 else v


@njit(cache=True, fastmath=_SAFE, inline="never")
def _exp32(x):
    xc = np.float32(-87.0) if x < np.float32(-87.0) else (np.float32(88.0) if x > np.float32(88.0) else x)
    k = np.floor(xc * np.float32(1.44269504088896341) + np.float32(0.5))
    r = (xc - k * np.float32(0.693359375)) - k * np.float32(-2.12194440e-4)
    p = ((((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r + np.float32(8.3334519073e-3)) * r
             + np.float32(4.1665795894e-2)) * r + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1))
         * (r * r) + r + np.float32(1.0))
    v = p * _pow2(k)
    return np.float32(0.0) if x < np.float32(-87.0) else v


def _per_dtype(generic, f32, f64) -> None:
    """Register ``generic(x)`` in numba code as ``f32(x)`` for float32 and ``f64(x)`` for float64."""
    @overload(generic, jit_options={"fastmath": _SAFE})
    def impl(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)


_per_dtype(_exp, _exp32, _exp64)


@njit(cache=True, fastmath=_SAFE, inline="never")
def _log64(x):
    """log x for a positive normal float64 (fdlibm e_log kernel)."""
    m, e = _split64(x)
    big = m > 1.41421356237309504880
    m = 0.5 * m if big else m
    e = e + 1.0 if big else e
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01))
    t2 = z * (6.666666666666735130e-01 + w * (2.857142874366239149e-01 + w * (
        1.818357216161805012e-01 + w * 1.479819860511658591e-01)))
    hfsq = 0.5 * f * f
    return e * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + t1 + t2) + e * 1.90821492927058770002e-10)) - f)


@overload(_log, jit_options={"fastmath": _SAFE})
def _ov_log(x):
    if x == types.float64:
        return lambda x: _log64(x)


# tanh: the odd Taylor series tanh x = x (1 + sum_k c_k x^2k) for small |x| (remainder < 5e-8 relative in
# float32 below 0.55 with terms to x^15, < 2e-16 in float64 below 0.3 with terms to x^23), else
# sign(x) (1 - 2 / (exp(2|x|) + 1)) (at most ~1.3 bits lost to the subtraction above those thresholds);
# tanh = +-1 beyond |x| = 9 (float32) / 19 (float64) anyway, where the exponent is clamped. NaN stays NaN.
_TANH_C = (-1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075, -929569 / 638512875,
           6404582 / 10854718875, -443861162 / 1856156927625, 18888466084 / 194896477400625,
           -113927491862 / 2900518163668125)
_TANH_C32 = tuple(np.float32(c) for c in _TANH_C[:7])


@njit(cache=True, fastmath=_SAFE, inline="always")
def _tanh32(x):
    ax = np.abs(x)
    z = x * x
    c = _TANH_C32
    small = x + x * z * (c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * (c[4] + z * (c[5] + z * c[6]))))))
    e = _exp32(np.float32(2) * (np.float32(9) if ax > np.float32(9) else ax))
    big = np.float32(1) - np.float32(2) / (e + np.float32(1))
    big = -big if x < np.float32(0) else big
    return small if ax < np.float32(0.55) else big


@njit(cache=True, fastmath=_SAFE, inline="always")
def _tanh64(x):
    ax = np.abs(x)
    z = x * x
    c = _TANH_C
    small = x + x * z * (c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * (c[4] + z * (c[5] + z * (c[6] + z * (
        c[7] + z * (c[8] + z * (c[9] + z * c[10]))))))))))
    e = _exp64(2.0 * (19.0 if ax > 19.0 else ax))
    big = 1.0 - 2.0 / (e + 1.0)
    big = -big if x < 0.0 else big
    return small if ax < 0.3 else big


_per_dtype(_tanh, _tanh32, _tanh64)


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
                    part[l] += (wa * _cos(o0[l] * xa0 + o1[l] * xa1 + p[l])
                                + wb * _cos(o0[l] * xb0 + o1[l] * xb1 + p[l]))
                j += 2
            if j < j1:
                wa, xa0, xa1 = w[j], x[0, j], x[1, j]
                for l in range(m):
                    part[l] += wa * _cos(o0[l] * xa0 + o1[l] * xa1 + p[l])
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
                    part[l] += wj * _cos(ph[l] + p[l])
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
                        s = c[l] * _sin(o0[l] * x0 + o1[l] * x1 + p[l])
                        a0 += s * o0[l]
                        a1 += s * o1[l]
                    out[r, 0, k] = -a0
                    out[r, 1, k] = -a1
                else:
                    a = zero
                    for l in range(L):
                        a += c[l] * _cos(o0[l] * x0 + o1[l] * x1 + p[l])
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
                    ph[l] = c[l] * _sin(ph[l] + p[l])
                for j in range(d):
                    oj = om[j]
                    a = zero
                    for l in range(L):
                        a += ph[l] * oj[l]
                    out[r, j, k] = -a
            else:
                a = zero
                for l in range(L):
                    a += c[l] * _cos(ph[l] + p[l])
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

    Exponentials of arguments below ``cut`` count as 0 (``_CUT``): their products with weights and
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
                    gb[c] += zero if z < cut else _exp(z) * is2
            else:
                for c in range(m):
                    z = -(r2[c] * h)
                    gb[c] += zero if z < cut else _exp(z)
        elif kind == 1:                                         # laplacian
            inv = one / sig
            if grad:
                for c in range(m):
                    rr = math.sqrt(r2[c])
                    z = -(rr * inv)
                    nil = rr == zero
                    g = _exp(z) / (sig * (one if nil else rr))
                    gb[c] += zero if (nil or z < cut) else g    # subgradient 0 at r = 0
            else:
                for c in range(m):
                    z = -(math.sqrt(r2[c]) * inv)
                    gb[c] += zero if z < cut else _exp(z)
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
                    k = r2.dtype.type(_exp(na * _log(np.float64(base))))
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
                        gw = zero if z < cut else _exp(z) * wv[c]
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
                 dt.type(_CUT[dt.name]), out,
                 max(1, int(CPU_TILE["kernel_rows"])), max(1, int(CPU_TILE["kernel_cols"])))
    return out if grad else out[:, 0]


def kernel_sum(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum``: f(x_j) = sum_c w_c sum_s K_s(x_j, y_c) -> (B, n)."""
    return _kernel_call(x, centres, weights, bandwidths, kernel, alpha, False)


def kernel_sum_grad(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum_grad``: grad_x f(x_j) = -sum_c w_c sum_s g_s (x_j - y_c) -> (B, d, n)."""
    return _kernel_call(x, centres, weights, bandwidths, kernel, alpha, True)
