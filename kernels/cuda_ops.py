"""What the ``cuda`` backend adds to the op registry (``registry.OPS``; ``ops.load_ops`` builds the table).

Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the arrays are host NumPy arrays
(``xp = numpy``) and every op is its registered ``cuda`` implementation: the Numba-CUDA kernels run
by the simulator, so the whole engine can be tested on a machine without a GPU. On a real GPU the
arrays are CuPy arrays (``xp = cupy``) and an op's ``gpu`` entry, where it has one, is preferred:

* the one-hidden-layer MLP step and grad_x are the hand-written CuPy raw kernels of ``cuda_raw``
  (CUDA C, ``mlp.cu``) where that module imports, else the Numba-CUDA kernels;
  ``FASTGAN_CUDA_KERNELS=numba`` uses the Numba-CUDA kernels instead of the raw ones (comparisons,
  benchmarks);
* the explicit-Gram coupling is a batched ``xp.matmul`` (cuBLAS, :func:`matmul_gram`);
* the one-hidden-layer MLP ops at a data dimension beyond the register-array kernels (``cuda_raw.route``,
  ``cuda_numba_mlp.numba_dim``) are the GEMM formulations :func:`mlp_disc_step_gemm`,
  :func:`mlp_grad_x_gemm`, :func:`mlp_forward_gemm` (written over ``xp``: cuBLAS on a GPU, NumPy under
  the simulator and in the CPU tests);
* the deep MLP and d = 2 Fourier-grid ops are written over ``xp`` (cuBLAS matmul) for every backend.

``CHOSEN`` records, after ``load_ops("cuda")``, which implementation serves each op.
"""

from __future__ import annotations

import importlib
import logging
import os

import numpy as np

from .cuda_numba_common import SIMULATOR, array_module

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
    if module == "cuda_raw" and _forced_numba():       # the raw kernels only: cuBLAS stays
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


def mlp_disc_step_gemm(w, b, a, xg, xt, lr, l2, u, act):
    """Twin of ``mlp_numpy.mlp_disc_step`` as GEMMs (one step on L_D, + R through u), in place."""
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
        step = lambda g, p, k: xp.where(live.reshape((-1,) + (1,) * k), rate.reshape((-1,) + (1,) * k)  # noqa: E731
                                        * (g + tc.reshape((-1,) + (1,) * k) * p), dt.type(0))
        a[c] = ac - step(ga, ac, 1)
        b[c] = bc - step(gb, bc, 1)
        w[c] = wc - step(gw, wc, 2)
