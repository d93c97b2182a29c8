"""What the ``cuda`` backend adds to the op registry (``registry.OPS``; ``ops.load_ops`` builds the table).

Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the arrays are host NumPy arrays
(``xp = numpy``) and every op is its registered ``cuda`` implementation: the Numba-CUDA kernels run
by the simulator, so the whole engine can be tested on a machine without a GPU. On a real GPU the
arrays are CuPy arrays (``xp = cupy``) and an op's ``gpu`` entry, where it has one, is preferred:

* the one-hidden-layer MLP step and grad_x are the hand-written CuPy raw kernels of ``cuda_raw``
  (CUDA C, ``mlp.cu``) where that module imports, else the Numba-CUDA kernels; likewise the engine's
  per-iteration ops (every sub-step's target batch, the coarse coupling, the generator's update with the
  blow-up check: ``cuda_raw_loop``, ``loop.cu``);
  ``FASTGAN_CUDA_KERNELS=numba`` uses the Numba-CUDA kernels instead of the raw ones (comparisons,
  benchmarks);
* the explicit-Gram coupling is a batched ``xp.matmul`` (cuBLAS, :func:`matmul_gram`);
* the one-hidden-layer MLP ops at a data dimension beyond the register-array kernels (``cuda_raw.route``,
  ``cuda_numba_mlp.numba_dim``) are the GEMM formulations :func:`mlp_disc_step_gemm`,
  :func:`mlp_grad_x_gemm`, :func:`mlp_forward_gemm` (written over ``xp``: cuBLAS on a GPU, NumPy under
  the simulator and in the CPU tests);
* likewise every other op whose Numba-CUDA kernels keep O(d) registers, beyond their d (the routers
  ``cuda_numba_linear.numba_dim``: d > 16, ``cuda_numba_misc.spatial_numba_dim``: d > 16,
  ``cuda_numba_kde.numba_dim``: d > 64): the trig features as GEMMs (:func:`trig_disc_step_gemm`,
  :func:`trig_grad_x_gemm`, :func:`trig_forward_gemm`) and the pair reductions over ``xp``
  (:func:`kernel_sum_xp`, :func:`kernel_sum_grad_xp`, :func:`coupled_velocity_spatial_xp`,
  :func:`kde_log_density_xp`, :func:`kde_grad_sum_xp`), so the cuda backend runs every d the CPU
  backends run;
* the deep MLP and d = 2 Fourier-grid ops are written over ``xp`` (cuBLAS matmul) for every backend.

``CHOSEN`` records, after ``load_ops("cuda")``, which implementation serves each op.
"""

from __future__ import annotations

import importlib
import logging
import os

import numpy as np

from .cuda_numba_common import SIMULATOR, array_module, as_xp
from .optim import adapt

log = logging.getLogger("fastgan")

CHOSEN: dict = {}


def array_namespace():
    """The backend's array module: numpy under the simulator, else cupy."""
    if SIMULATOR:
        return np
    import cupy
    return cupy


def _forced_numba() -> bool:
    return os.environ.get("FASTGAN_CUDA_KERNELS", "").strip().lower() == "numba"


def gpu_override(op) -> tuple:
    """(function, note) of an op's ``gpu`` implementation when it serves here, else (None, why not);
    (None, "") for an op without one."""
    if op.gpu is None:
        return None, ""
    if SIMULATOR:
        return None, ""
    module, attr = op.gpu.split(".")
    if module.startswith("cuda_raw") and _forced_numba():       # the raw kernels only: cuBLAS stays
        return None, "FASTGAN_CUDA_KERNELS=numba"
    try:
        fn = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    except Exception as exc:  # noqa: BLE001 - any failure: the registered cuda implementation serves
        log.info("%s is not usable (%s: %s); %s uses %s", op.gpu, type(exc).__name__, exc, op.name, op.cuda)
        return None, f"{op.gpu} unusable: {type(exc).__name__}"
    return fn, op.gpu


def matmul_gram(G, gram):
    """V = (1/N) G Gamma' through cuBLAS (batched matmul, gram broadcast over runs if (1, N, N))."""
    xp = array_module(G)
    gram = xp.asarray(gram, dtype=G.dtype)
    return xp.matmul(G, xp.swapaxes(gram, 1, 2)) / G.dtype.type(G.shape[2])


# --------------------------------------------------------------------------- MLP ops as GEMMs (large d)
# The register-array kernels keep O(d) accumulators per thread and spill beyond a few dozen dimensions;
# these forms keep the (runs, n, W) pre-activations in memory instead (chunks of runs bounded by
# GEMM_TEMP elements) and do the O(n W d) work as batched matmuls. Same semantics as mlp_numpy (lr == 0
# leaves a run bitwise untouched, in place on the caller's arrays); sums are matmul-ordered, so results
# agree with the reference to rounding.

GEMM_TEMP = 1 << 24


def _gemm_chunks(B, per_run):
    step = max(1, GEMM_TEMP // max(1, per_run))
    return [slice(i, min(B, i + step)) for i in range(0, B, step)]


def _act(xp, h, act, order):
    """sigma, sigma', sigma'' of pre-activations h (the first ``order`` + 1 of them)."""
    if act == "relu":
        on = (h > 0).astype(h.dtype)
        return (h * on, on, xp.zeros_like(h))[:order + 1]
    if act == "tanh":
        t = xp.tanh(h)
        d1 = 1 - t * t
        return (t, d1, -2 * t * d1)[:order + 1]
    raise ValueError(f"unknown activation {act!r}")


def _pre(xp, w, b, x):
    """(B, n, W) pre-activations x' w + b."""
    return xp.matmul(xp.swapaxes(x, 1, 2), w) + b[:, None, :]


def mlp_grad_x_gemm(w, b, a, x, act):
    """Twin of ``mlp_numpy.mlp_grad_x`` as GEMMs: s W (a sigma'(X'W + b))' -> (B, d, n)."""
    xp = array_module(w, b, a, x)
    dt = np.dtype(w.dtype)
    B, d, W = w.shape
    x = xp.asarray(x, dtype=dt)
    out = xp.empty((B, d, x.shape[2]), dtype=dt)
    if out.size == 0:
        return out
    s = dt.type(np.sqrt(2.0 / W)) if W else dt.type(0)
    for c in _gemm_chunks(B, x.shape[2] * W):
        d1 = _act(xp, _pre(xp, w[c], b[c], x[c]), act, 1)[1]
        out[c] = s * xp.matmul(w[c], xp.swapaxes(d1 * a[c][:, None, :], 1, 2))
    return out


def mlp_forward_gemm(w, b, a, x, act):
    """Twin of ``mlp_numpy.mlp_forward`` as a GEMM: s sum_i a_i sigma(w_i . x + b_i) -> (B, n)."""
    xp = array_module(w, b, a, x)
    dt = np.dtype(w.dtype)
    B, d, W = w.shape
    out = xp.empty((B, x.shape[2]), dtype=dt)
    if out.size == 0:
        return out
    s = dt.type(np.sqrt(2.0 / W)) if W else dt.type(0)
    for c in _gemm_chunks(B, x.shape[2] * W):
        sig = _act(xp, _pre(xp, w[c], b[c], xp.asarray(x[c], dtype=dt)), act, 0)[0]
        out[c] = s * xp.matmul(sig, a[c][:, :, None])[:, :, 0]
    return out


def mlp_disc_step_gemm(w, b, a, xg, xt, lr, l2, u, act, opt=None):
    """Twin of ``mlp_numpy.mlp_disc_step`` as GEMMs (one step on L_D, + R through u), in place; ``opt``: the
    adaptive update's state (``kernels.optim``)."""
    xp = array_module(w, b, a, xg, xt, u)
    dt = np.dtype(w.dtype)
    B, d, W = w.shape
    if B == 0 or W == 0:
        return
    N, M = xg.shape[2], xt.shape[2]
    lr = xp.asarray(lr, dtype=dt).reshape(B)
    two = (2 * xp.asarray(l2).reshape(B)).astype(dt)
    s = dt.type(np.sqrt(2.0 / W))
    for c in _gemm_chunks(B, (2 * N + M) * W):
        wc, bc, ac = w[c], b[c], a[c]
        xgc, xtc = xp.asarray(xg[c], dtype=dt), xp.asarray(xt[c], dtype=dt)
        sg, d1g, d2g = _act(xp, _pre(xp, wc, bc, xgc), act, 2)
        st, d1t = _act(xp, _pre(xp, wc, bc, xtc), act, 1)
        sa = s * ac
        ga = s * (sg.sum(1) / dt.type(N) - st.sum(1) / dt.type(M))
        gb = sa * (d1g.sum(1) / dt.type(N) - d1t.sum(1) / dt.type(M))
        gw = sa[:, None, :] * (xp.matmul(xgc, d1g) / dt.type(N) - xp.matmul(xtc, d1t) / dt.type(M))
        if u is not None:
            uc = xp.asarray(u[c], dtype=dt)
            uw = xp.matmul(xp.swapaxes(uc, 1, 2), wc)                  # u_a . w_i  (runs, N, W)
            ga = ga + s * (d1g * uw).sum(1)
            gb = gb + sa * (d2g * uw).sum(1)
            gw = gw + sa[:, None, :] * (xp.matmul(xgc, d2g * uw) + xp.matmul(uc, d1g))
        tc, rate = two[c], lr[c]
        live = rate != 0                                               # lr == 0: untouched (w - 0 == w)
        if opt is not None:
            coef = xp.asarray(opt["coef"], dtype=dt)[c]
            for k, x, g in (("a", ac, ga), ("b", bc, gb), ("w", wc, gw)):
                adapt(xp, x, g + tc.reshape((-1,) + (1,) * (x.ndim - 1)) * x, opt["m:" + k][c], opt["v:" + k][c],
                      rate, coef, live)
            continue
        step = lambda g, p, k: xp.where(live.reshape((-1,) + (1,) * k), rate.reshape((-1,) + (1,) * k)  # noqa: E731
                                        * (g + tc.reshape((-1,) + (1,) * k) * p), dt.type(0))
        a[c] = ac - step(ga, ac, 1)
        b[c] = bc - step(gb, bc, 1)
        w[c] = wc - step(gw, wc, 2)


# --------------------------------------------------------------------------- pair blocks (large d)
# The per-query reductions below (trig features, kernel sums, spatial coupling, KDE) are the fallbacks of
# Numba-CUDA kernels that keep O(d) registers per thread. They work on (runs, queries) blocks whose
# temporaries hold at most GEMM_TEMP elements each (a handful of them at a time): whole runs where a run
# fits, else one run in chunks of queries (one query's row of L, C, N or S m values is the floor). Pair
# distances and the gradients' sums over sources come from differences, in passes over chunks of at least
# COORD_CHUNK coordinates (every d where the block allows): exact like the references (r = 0 stays 0, no
# cancellation for near or far points), but O(n m d) elementwise work and memory traffic, not a GEMM.

COORD_CHUNK = 16      # coordinates per pass of the difference sums, at least (where d has them)


def _pair_blocks(B, n, per_query):
    """(runs, queries) slices covering B x n with runs * queries * per_query <= GEMM_TEMP (one query at least)."""
    per_run = n * per_query
    if per_run <= GEMM_TEMP:
        return [(c, slice(0, n)) for c in _gemm_chunks(B, per_run)]
    step = max(1, GEMM_TEMP // max(1, per_query))
    return [(slice(r, r + 1), slice(s, min(n, s + step))) for r in range(B) for s in range(0, n, step)]


def _per_pair(m, d):
    """Elements per (run, query) of a pair block: the (chunk, COORD_CHUNK, m) differences dominate."""
    return max(1, m) * max(1, min(d, COORD_CHUNK))


def _coords(d, pairs):
    """Coordinate chunks for difference temporaries of pairs * chunk <= GEMM_TEMP elements."""
    step = max(1, GEMM_TEMP // max(1, pairs))
    return [slice(j, min(d, j + step)) for j in range(0, d, step)]


def _sq_dist(xp, q, x):
    """|q_k - x_i|^2 (R, n, m) of q (R, d, n) and x (R, d, m), in their dtype: the differences squared and
    summed over chunks of coordinates (the reference's form; not |q|^2 + |x|^2 - 2 q.x, which cancels
    catastrophically for near points and loses r = 0)."""
    R, d, n = q.shape
    r2 = xp.zeros((R, n, x.shape[2]), dtype=q.dtype)
    for j in _coords(d, r2.size):
        diff = q[:, j, :, None] - x[:, j, None, :]
        r2 += (diff * diff).sum(1)
    return r2


def _diff_sums(xp, q, x, g):
    """sum_i (x_ji - q_jk) g_ki -> (R, d, n) for q (R, d, n), x (R, d, m), g (R, n, m): the differences summed
    directly over chunks of coordinates (not x g' - q sum(g): no cancellation far from the origin)."""
    R, d, n = q.shape
    out = xp.empty((R, d, n), dtype=g.dtype)
    for j in _coords(d, g.size):
        out[:, j] = ((x[:, j, None, :] - q[:, j, :, None]) * g[:, None]).sum(-1)
    return out


# --------------------------------------------------------------------------- trig features as GEMMs (large d)
# f(x) = sum_l theta_l amp_l cos(omega_l . x + phase_l): the phases of a block are one batched matmul
# X' Omega (n, L), the feature and sample sums matmuls. Same semantics as linear_numpy (lr == 0 leaves a run
# bitwise untouched, in place on theta; feature sums in float64); sums are matmul-ordered, so results agree
# with the reference to rounding (the phases, sums of d products, as the reference's einsum).

def _trig_args(xp, dt, *arrays):
    return tuple(as_xp(xp, a, dt) for a in arrays)


def _phases(xp, omega, phase, x):
    """omega_l . x_k + phase_l: (R, n, L)."""
    return xp.matmul(xp.swapaxes(x, 1, 2), omega) + phase[:, None, :]


def trig_forward_gemm(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_forward`` as GEMMs: cos(X' Omega + phase) (theta amp) -> (B, n)."""
    xp = array_module(theta, omega, phase, amp, x)
    dt = np.dtype(theta.dtype)
    omega, phase, x = _trig_args(xp, dt, omega, phase, x)
    B, L = theta.shape
    out = xp.empty((B, x.shape[2]), dtype=dt)
    if out.size == 0:
        return out
    c = (theta * as_xp(xp, amp, dt))[:, :, None]
    for r, k in _pair_blocks(B, x.shape[2], L):
        out[r, k] = xp.matmul(xp.cos(_phases(xp, omega[r], phase[r], x[r, :, k])), c[r])[:, :, 0]
    return out


def trig_grad_x_gemm(theta, omega, phase, amp, x):
    """Twin of ``linear_numpy.trig_grad_x`` as GEMMs: -Omega (sin(X' Omega + phase) diag(theta amp))' -> (B, d, n)."""
    xp = array_module(theta, omega, phase, amp, x)
    dt = np.dtype(theta.dtype)
    omega, phase, x = _trig_args(xp, dt, omega, phase, x)
    B, L = theta.shape
    out = xp.empty(x.shape, dtype=dt)
    if out.size == 0:
        return out
    c = (theta * as_xp(xp, amp, dt))[:, None, :]
    for r, k in _pair_blocks(B, x.shape[2], L):
        s = xp.sin(_phases(xp, omega[r], phase[r], x[r, :, k])) * c[r]
        out[r, :, k] = -xp.matmul(omega[r], xp.swapaxes(s, 1, 2))
    return out


def trig_disc_step_gemm(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam):
    """Twin of ``linear_numpy.trig_disc_step`` as GEMMs, in place on theta (B, L): the float64 feature sums
    sum_j wg_j cos(.xg_j) - sum_i wt_i cos(.xt_i) as (1, n) x (n, L) matmuls, then the reference's update
    (lr and lam in their own dtype, as the reference's scalars)."""
    xp = array_module(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam)
    dt = np.dtype(theta.dtype)
    B, L = theta.shape
    if B == 0 or L == 0:
        return
    omega, phase, amp, rate, xg, wg, xt, wt = _trig_args(xp, dt, omega, phase, amp, rate, xg, wg, xt, wt)
    f64 = np.float64
    feat = xp.zeros((B, L), dtype=f64)
    for x, w, sign in ((xg, wg, 1), (xt, wt, -1)):
        for r, k in _pair_blocks(B, x.shape[2], L):
            cos = xp.cos(_phases(xp, omega[r], phase[r], x[r, :, k])).astype(f64)
            part = xp.matmul(w[r, None, k].astype(f64), cos)[:, 0, :]
            if sign > 0:
                feat[r] += part
            else:
                feat[r] -= part
    lr = as_xp(xp, lr).reshape(B)[:, None]
    lam = as_xp(xp, lam).reshape(B)[:, None]
    grad = amp * feat.astype(dt) + lam * theta
    new = (theta - lr * rate * grad).astype(dt)
    theta[...] = xp.where(lr != 0, new, theta)          # lr == 0: untouched


# --------------------------------------------------------------------------- kernel sums (large d)
# f(x) = sum_c w_c sum_s K_s(x, y_c): per (runs, queries) block r^2 from differences (_sq_dist), the
# reference's kernel_profile expressions elementwise, the centre sum of f a matmul with the weights, the
# gradient's sum over centres the differences y_c - x times sum_s g_s w_c (_diff_sums). O(n C d) elementwise
# work and traffic (not a GEMM: that would be the |x|^2 + |y|^2 - 2 x.y form), bounded temporaries.

def _profile(xp, r2, sigma, kernel, alpha, grad):
    """``linear_numpy.kernel_profile`` (the same expressions) for sigma (R, 1, 1): K, or g = -(1/r) dK/dr
    (0 at r = 0 for the Laplacian)."""
    dt = r2.dtype.type
    if kernel == "rbf":
        k = xp.exp(-r2 / (2 * sigma * sigma))
        return k / (sigma * sigma) if grad else k
    if kernel == "laplacian":
        r = xp.sqrt(r2)
        k = xp.exp(-r / sigma)
        if not grad:
            return k
        pos = r > 0
        return xp.where(pos, k / (sigma * xp.where(pos, r, dt(1))), dt(0))
    if kernel == "rq":
        base = 1 + r2 / (dt(2 * alpha) * sigma * sigma)
        k = base ** dt(-alpha)
        return k / (base * sigma * sigma) if grad else k
    raise ValueError(f"unknown kernel {kernel!r}")


def _kernel_args(which, x, centres, weights, bandwidths, kernel):
    if kernel not in ("rbf", "laplacian", "rq"):
        raise ValueError(f"unknown kernel {kernel!r}")
    xp = array_module(x, centres, weights, bandwidths)
    dt = np.dtype(x.dtype)
    B, d, n = x.shape
    out = xp.zeros((B, d, n) if which == "grad" else (B, n), dtype=dt)
    bw = as_xp(xp, bandwidths, dt).reshape(B, -1)
    return xp, out, as_xp(xp, centres, dt), as_xp(xp, weights, dt), bw


def _kernel_blocks(xp, x, centres):
    """(runs r, queries k, the block's queries x[r, :, k], their r^2 to the centres) over the pair blocks."""
    B, d, n = x.shape
    for r, k in _pair_blocks(B, n, _per_pair(centres.shape[2], d)):
        xr = x[r, :, k]
        yield r, k, xr, _sq_dist(xp, xr, centres[r])


def kernel_sum_xp(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum`` over ``xp``: sum_s K_s(r) @ w per block -> (B, n)."""
    xp, out, centres, weights, bw = _kernel_args("sum", x, centres, weights, bandwidths, kernel)
    if out.size == 0 or centres.shape[2] == 0:
        return out
    for r, k, _, r2 in _kernel_blocks(xp, x, centres):
        w = weights[r][:, :, None]
        for s in range(bw.shape[1]):
            out[r, k] += xp.matmul(_profile(xp, r2, bw[r, s][:, None, None], kernel, alpha, False), w)[:, :, 0]
    return out


def kernel_sum_grad_xp(x, centres, weights, bandwidths, kernel, alpha=1.0):
    """Twin of ``linear_numpy.kernel_sum_grad`` over ``xp``: sum_c (y_c - x) w_c sum_s g_s(r) -> (B, d, n)."""
    xp, out, centres, weights, bw = _kernel_args("grad", x, centres, weights, bandwidths, kernel)
    if out.size == 0 or centres.shape[2] == 0:
        return out
    for r, k, xr, r2 in _kernel_blocks(xp, x, centres):
        gw = xp.zeros_like(r2)
        for s in range(bw.shape[1]):
            gw += _profile(xp, r2, bw[r, s][:, None, None], kernel, alpha, True)
        gw *= weights[r][:, None, :]
        out[r, :, k] = _diff_sums(xp, xr, centres[r], gw)
    return out


# --------------------------------------------------------------------------- spatial coupling (large d)

def coupled_velocity_spatial_xp(G, X, g1, g2, length_scale, kernel):
    """Twin of ``coupling_numpy.coupled_velocity_spatial`` over ``xp``, float64 like the reference: per
    (runs, particles a) block the Gram rows g1 delta_ab + g2 k(|X_a - X_b| / l) (1 - delta_ab) from
    differences (_sq_dist), then V_a = (1/N) G Gamma_a' as a batched matmul -> (B, d, N) of G's dtype."""
    if kernel not in ("rbf", "laplacian"):
        raise ValueError(f"unknown spatial kernel {kernel!r}")
    xp = array_module(G, X, g1, g2, length_scale)
    f64 = np.float64
    B, d, N = G.shape
    out = xp.empty(G.shape, dtype=G.dtype)
    if out.size == 0:
        return out
    X = as_xp(xp, X).astype(f64)
    G64 = as_xp(xp, G).astype(f64)
    g1, g2 = (as_xp(xp, v, f64).reshape(B)[:, None, None] for v in (g1, g2))
    ell2 = as_xp(xp, length_scale, f64).reshape(B)[:, None, None] ** 2
    cols = xp.arange(N)[None, :]
    for r, a in _pair_blocks(B, N, _per_pair(N, d)):
        r2 = _sq_dist(xp, X[r, :, a], X[r]) / ell2[r]
        k = xp.exp(-0.5 * r2) if kernel == "rbf" else xp.exp(-xp.sqrt(r2))
        eye = xp.arange(a.start, a.stop)[:, None] == cols
        gram = g2[r] * xp.where(eye, 0.0, k) + g1[r] * eye
        out[r, :, a] = (xp.matmul(G64[r], xp.swapaxes(gram, 1, 2)) / N).astype(G.dtype)
    return out


# --------------------------------------------------------------------------- KDE reductions (large d)
# Per (runs, queries) block: r^2 from differences (_sq_dist), the S x m log terms (c_s - r^2 h_s) + logw_i
# with the per-run constants of ``kde_numba.bandwidth_terms`` (the Numba-CUDA kernels' expression, so the
# log density and the gradient's weights share their rounding), a log-sum-exp over (s, i) shifted by its
# max (the reference's _logsumexp) or the weights times the differences x_i - q (_diff_sums).

def _kde_terms(xp, q, x, logw, cs, hs):
    """(R, S, n, m) log terms (c_s - r^2 h_s) + logw_i."""
    r2 = _sq_dist(xp, q, x)[:, None]
    return (cs[:, :, None, None] - r2 * hs[:, :, None, None]) + logw[:, None, None, :]


def _kde_args(q, x, logw, la, lb, bandwidths, logmix):
    from .kde_numba import bandwidth_terms
    xp = array_module(q, x, logw, la, lb, bandwidths, logmix)
    dt = np.dtype(q.dtype)
    cast = lambda v: None if v is None else as_xp(xp, v, dt)       # noqa: E731
    terms = bandwidth_terms(xp, as_xp(xp, bandwidths), as_xp(xp, logmix), q.shape[1], dt)
    return xp, dt, cast(q), cast(x), cast(logw), cast(la), cast(lb), terms


def kde_log_density_xp(q, x, logw, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_log_density`` over ``xp``: max + log sum exp(terms - max) over (s, i) -> (B, n);
    -inf where every weight is -inf (or there is no centre), NaN for a NaN term."""
    xp, dt, q, x, logw, _, _, (cs, hs, _) = _kde_args(q, x, logw, None, None, bandwidths, logmix)
    B, d, n = q.shape
    m, S = x.shape[2], cs.shape[1]
    out = xp.full((B, n), -np.inf, dtype=dt)
    if out.size == 0 or m == 0 or S == 0:
        return out
    for r, k in _pair_blocks(B, n, max(_per_pair(m, d), S * m)):
        t = _kde_terms(xp, q[r, :, k], x[r], logw[r], cs[r], hs[r])
        top = t.max(axis=(1, 3))
        top = xp.where(xp.isfinite(top), top, dt.type(0))
        with np.errstate(divide="ignore"):                      # every term -inf: log 0 = -inf
            out[r, k] = xp.log(xp.exp(t - top[:, None, :, None]).sum(axis=(1, 3))) + top
    return out


def kde_grad_sum_xp(q, x, logw, la, lb, bandwidths, logmix):
    """Twin of ``kde_numpy.kde_grad_sum`` over ``xp``: sum_i (x_i - q) sum_s [exp(term + la_i) + exp(term + lb)]
    / sigma_s^2 -> (B, d, n); la or lb None leaves its term out."""
    if la is None and lb is None:
        raise ValueError("kde_grad_sum needs la, lb or both")
    xp, dt, q, x, logw, la, lb, (cs, hs, is2) = _kde_args(q, x, logw, la, lb, bandwidths, logmix)
    B, d, n = q.shape
    m = x.shape[2]
    out = xp.zeros((B, d, n), dtype=dt)
    if out.size == 0 or m == 0:
        return out
    for r, k in _pair_blocks(B, n, max(_per_pair(m, d), cs.shape[1] * m)):
        qr = q[r, :, k]
        t = _kde_terms(xp, qr, x[r], logw[r], cs[r], hs[r])
        w = xp.zeros_like(t)
        if la is not None:
            w += xp.exp(t + la[r][:, None, None, :])
        if lb is not None:
            w += xp.exp(t + lb[r, None, k, None])
        out[r, :, k] = _diff_sums(xp, qr, x[r], (w * is2[r][:, :, None, None]).sum(1))
    return out
