"""Vectorisable transcendentals for the numba CPU kernels: ``vcos``, ``vsin``, ``vexp``, ``vlog``,
``vtanh`` (float32 and float64 overloads), the exponent-bit helpers ``pow2`` / ``split64`` and the
``wide_vectors`` marker, with the fast-math flag sets the kernels compile with (``FASTMATH``,
``SAFE``) and the exponential cut-offs ``CUT``.

Transcendentals: numba has no vector math library here (no SVML), and scalar libm cos / exp calls
cost 10-35 ns, far slower than NumPy's SIMD ufuncs. The inner loops therefore call branch-free
cos / sin / exp / log (Cody-Waite range reduction, minimax / Taylor polynomials, exponent bits via
an LLVM bitcast) that LLVM inlines and vectorises: ~1 ulp in float64, ~1-2 ulp for the float32 exp
and an absolute error <= 3e-7 for the float32 cos / sin (one polynomial, see ``_S32``). They are
compiled with fast-math *without* reassociation (``SAFE``), which would fold the split constants
of the range reduction back together; the calling kernels allow reassociation so that reductions
vectorise. Neither assumes finite values (no ``nnan`` / ``ninf``): a NaN input gives NaN outputs, as
in the reference. Per-run results differ from the reference by float rounding only.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# fast-math without the no-NaN / no-Inf assumptions, so that a NaN input propagates as in the reference
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
SAFE = FASTMATH - {"reassoc"}                   # the math helpers: no reassociation either (see above)
# rbf / laplacian terms exp(z) with z below this are dropped (e^-60 ~ 1e-26, e^-600 ~ 1e-261: far below
# the rounding of any sum that matters, far above the subnormal range their products would reach)
CUT = {"float32": -60.0, "float64": -600.0}


@intrinsic
def pow2(typingctx, k):
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
def split64(typingctx, x):
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


def vcos(x):
    raise NotImplementedError


def vsin(x):
    raise NotImplementedError


def vexp(x):
    raise NotImplementedError


def vlog(x):
    raise NotImplementedError


def vtanh(x):
    raise NotImplementedError


# float64: fdlibm kernels on |r| <= pi/4, pi/2 split in three 33-bit pieces (k * piece exact).
_P1_64, _P2_64, _P3_64 = 1.57079632673412561417e+00, 6.07710050630396597660e-11, 2.02226624879595063154e-21


@njit(cache=True, fastmath=SAFE, inline="never")
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


@njit(cache=True, fastmath=SAFE, inline="never")
def _cos_from(q, s, c):
    v = s if (q == 1 or q == 3) else c              # cos(r + q pi/2)
    return -v if (q == 1 or q == 2) else v


@njit(cache=True, fastmath=SAFE, inline="never")
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


@njit(cache=True, fastmath=SAFE, inline="always")
def _turns32(x):
    k = np.floor(x * _INV_2PI_32 + np.float32(0.5))
    return (x - k * _T1_32) - k * _T2_32


@njit(cache=True, fastmath=SAFE, inline="always")
def _sinpoly32(t):
    z = t * t
    return t * (_S32[0] + z * (_S32[1] + z * (_S32[2] + z * (_S32[3] + z * _S32[4]))))


@overload(vcos, jit_options={"fastmath": SAFE})
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


@overload(vsin, jit_options={"fastmath": SAFE})
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


@njit(cache=True, fastmath=SAFE, inline="never")
def _exp64(x):
    xc = -708.0 if x < -708.0 else (709.0 if x > 709.0 else x)           # NaN stays NaN
    k = np.floor(xc * 1.44269504088896338700 + 0.5)
    r = (xc - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10    # |r| <= ln2 / 2
    p = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (
        1 / 5040 + r * (1 / 40320 + r * (1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
            1 / 479001600 + r * (1 / 6227020800)))))))))))))
    v = p * pow2(k)
    return 0.0 if x < -708.0 else v


@njit(cache=True, fastmath=SAFE, inline="never")
def _exp32(x):
    xc = np.float32(-87.0) if x < np.float32(-87.0) else (np.float32(88.0) if x > np.float32(88.0) else x)
    k = np.floor(xc * np.float32(1.44269504088896341) + np.float32(0.5))
    r = (xc - k * np.float32(0.693359375)) - k * np.float32(-2.12194440e-4)
    p = ((((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r + np.float32(8.3334519073e-3)) * r
             + np.float32(4.1665795894e-2)) * r + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1))
         * (r * r) + r + np.float32(1.0))
    v = p * pow2(k)
    return np.float32(0.0) if x < np.float32(-87.0) else v


def _per_dtype(generic, f32, f64) -> None:
    """Register ``generic(x)`` in numba code as ``f32(x)`` for float32 and ``f64(x)`` for float64."""
    @overload(generic, jit_options={"fastmath": SAFE})
    def impl(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)


_per_dtype(vexp, _exp32, _exp64)


@njit(cache=True, fastmath=SAFE, inline="never")
def _log64(x):
    """log x for a positive normal float64 (fdlibm e_log kernel), NaN for NaN, inf for inf."""
    m, e = split64(x)
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
    v = e * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + t1 + t2) + e * 1.90821492927058770002e-10)) - f)
    return v if x < np.inf else x                   # NaN stays NaN, log inf = inf (their bits are no normal)


@overload(vlog, jit_options={"fastmath": SAFE})
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


@njit(cache=True, fastmath=SAFE, inline="always")
def _tanh32(x):
    ax = np.abs(x)
    z = x * x
    c = _TANH_C32
    small = x + x * z * (c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * (c[4] + z * (c[5] + z * c[6]))))))
    e = _exp32(np.float32(2) * (np.float32(9) if ax > np.float32(9) else ax))
    big = np.float32(1) - np.float32(2) / (e + np.float32(1))
    big = -big if x < np.float32(0) else big
    return small if ax < np.float32(0.55) else big


@njit(cache=True, fastmath=SAFE, inline="always")
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


_per_dtype(vtanh, _tanh32, _tanh64)
