"""The op registry: every hot op of the simulator declared once.

An :class:`Op` names the op, states its signature, where each backend's implementation lives
(``"module.function"`` in that backend's namespace, see :func:`namespace`), its tolerance against
the reference per dtype and an input generator (random inputs of awkward sizes, for the registry
test that runs every op on every backend). ``ops.load_ops`` builds each backend's table from
:data:`OPS`; a new op is one entry here (and its implementations), and the registry test covers it.

Conventions every op follows: the run axis first (of the outputs too, but for ``Op.run_axis``),
feature-major samples (B, d, n), arrays of the backend's array module; in-place ops update the
caller's arrays and a run whose learning rate is 0 is left bitwise untouched; a NaN input gives NaN outputs for its run, not an exception.

Backends: ``numpy`` (the reference, the oracle), ``numba`` (CPU JIT) and ``cuda`` (Numba-CUDA
kernels, CuPy raw kernels and cuBLAS through CuPy; under ``NUMBA_ENABLE_CUDASIM=1`` the Numba-CUDA
kernels run in the simulator on host arrays). ``Op.gpu`` is the implementation preferred on a real
GPU (never under the simulator), with the ``cuda`` one as its fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
# Agreement with the reference: float32 rounding, ~1e-10 in float64; atol relative to max |reference|.
TOL = {F32: (2e-4, 2e-5), F64: (1e-10, 1e-12)}


class Case(NamedTuple):
    """One call of an op on random inputs.

    args      the positional arguments (numpy arrays; the test moves them to the backend)
    inplace   indices of the arguments the op updates in place (what it returns, if anything, is
              compared too, before them)
    lr        index of the (B,) learning-rate argument (run 1 has lr = 0), or None
    nan       the argument whose run 0 the NaN test poisons: an index, or (index, key) of a dict of
              parameters; None: no NaN test
    exact     indices of outputs that must agree bitwise (integer counts, counter-based samples)
    """

    args: tuple
    inplace: tuple = ()
    lr: int | None = None
    nan: int | tuple | None = None
    exact: tuple = ()


@dataclass(frozen=True)
class Op:
    name: str
    signature: str
    numpy: str
    numba: str
    cuda: str
    inputs: Callable = field(repr=False)        # (rng, dtype, variant, small) -> Case
    variants: tuple = ((),)                     # each a tuple of (key, value) handed to ``inputs``
    gpu: str | None = None
    tol: dict = field(default_factory=lambda: dict(TOL))
    takes_xp: bool = False                      # written over ``xp``: called with xp = the backend's module
    run_axis: int = 0                           # the run axis of its outputs


# --------------------------------------------------------------------------- input generators

def _sizes(small: bool) -> dict:
    """Awkward sizes: not multiples of any tile or block (small: for the CUDA simulator)."""
    return dict(B=3, N=7, M=5, W=6, L=9, K=4, C=8, n=6) if small else dict(B=3, N=23, M=17, W=45, L=37, K=5, C=41, n=19)


# per-run coefficients (b1, b2, eps, r) of the adaptive update (kernels.optim), cycled over runs: Adam at its
# third step, gradient descent as an ensemble with adaptive runs encodes it, RMSProp, Adam at odd settings
ADAPTIVE_COEFS = ((0.9, 0.999, 1e-8, 1 / math.sqrt(1 - 0.999 ** 3)), (0.0, 1.0, 1.0, 0.0), (0.0, 0.99, 1e-8, 1.0),
                  (0.8, 0.99, 1e-6, 2.0))


def adaptive_example(rng, params: dict, dt) -> dict:
    """An ``opt`` state (``kernels.optim``) for parameter arrays ``params`` {name: (B, ...)}: random moments
    (v >= 0) and the coefficients :data:`ADAPTIVE_COEFS` cycled over the runs."""
    out = {}
    for k, x in params.items():
        out["m:" + k] = (0.1 * rng.normal(size=x.shape)).astype(dt)
        out["v:" + k] = (0.01 * rng.random(size=x.shape)).astype(dt)
    B = next(iter(params.values())).shape[0]
    out["coef"] = np.array([ADAPTIVE_COEFS[r % len(ADAPTIVE_COEFS)] for r in range(B)], dtype=dt)
    return out


def _mlp(rng, dt, v, small, what):
    s, d, act = _sizes(small), v.get("d", 2), v.get("act", "relu")
    B, W, N, M = s["B"], s["W"], s["N"], s["M"]
    w = rng.normal(size=(B, d, W)).astype(dt)
    b = (3 * rng.normal(size=(B, W))).astype(dt)
    a = rng.normal(size=(B, W)).astype(dt)
    xg = rng.normal(size=(B, d, N)).astype(dt)
    if what == "step":
        xt = rng.normal(size=(B, d, M)).astype(dt)
        u = (0.1 * rng.normal(size=(B, d, N))).astype(dt) if v.get("u") else None
        lr, l2 = np.array([0.05, 0.0, 0.2]), np.array([1 / W, 0.01, 0.0])
        if v.get("opt"):
            opt = adaptive_example(rng, {"w": w, "b": b, "a": a}, dt)
            return Case((w, b, a, xg, xt, lr, l2, u, act, opt), inplace=(0, 1, 2, 9), lr=5, nan=3)
        return Case((w, b, a, xg, xt, lr, l2, u, act), inplace=(0, 1, 2), lr=5, nan=3)
    # grad_x at a NaN sample is 0 with ReLU (the mask h > 0 is false, in the reference too: the engine
    # never evaluates a run whose particles are not finite); a NaN output weight propagates
    return Case((w, b, a, xg, act), nan=2 if what == "grad" else 3)


def _deep(rng, dt, v, small, what):
    s, d, act = _sizes(small), 2, v.get("act", "relu")
    B, W, N, M = s["B"], s["W"], s["N"], s["M"]
    fans = [d, W, W]
    p = {}
    for layer in (1, 2):
        p[f"W{layer}"] = (rng.normal(size=(B, fans[layer - 1], fans[layer])) / math.sqrt(fans[layer - 1])).astype(dt)
        p[f"b{layer}"] = (0.1 * rng.normal(size=(B, fans[layer]))).astype(dt)
    p["v"] = (rng.normal(size=(B, W)) / math.sqrt(W)).astype(dt)
    p["c"] = rng.normal(size=(B,)).astype(dt)
    xg = rng.normal(size=(B, d, N)).astype(dt)
    if what == "step":
        xt = rng.normal(size=(B, d, M)).astype(dt)
        lr, l2 = np.array([0.05, 0.0, 0.2]), np.array([1 / W, 0.01, 0.0])
        if v.get("opt"):
            return Case((p, xg, xt, lr, l2, None, act, adaptive_example(rng, p, dt)), inplace=(0, 7), lr=3, nan=1)
        return Case((p, xg, xt, lr, l2, None, act), inplace=(0,), lr=3, nan=1)
    return Case((p, xg, act), nan=(0, "v") if what == "grad" else 1)          # as _mlp


def _sampling(rng, dt, v, small):
    from . import rng as R
    s = _sizes(small)
    B, K, d, m = s["B"], s["K"], 3, s["C"]
    means = rng.normal(size=(B, K, d))
    w = rng.random((B, K))
    cum = np.cumsum(w, 1) / w.sum(1, keepdims=True)
    cum[:, -1] = 1
    stds = rng.random((B, K))
    seeds = [1, 7, 2 ** 40]
    cb, nb = R.base_keys(seeds, R.STREAM_TARGET_COMPONENT), R.base_keys(seeds, R.STREAM_TARGET_NOISE)
    # sample_mixture: sub-step 3 of iteration 12; sample_mixture_steps: sub-steps 0, 1, 2 of it
    return Case((cb, nb, 12, 3, means, cum, stds, m, dt), nan=4, exact=(0,))


def _coupling(rng, dt, v, small):
    s = _sizes(small)
    B, N, d = s["B"], s["N"], 2
    G = rng.normal(size=(B, d, N)).astype(dt)
    g1, g2 = np.array([5.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.3])
    kind = v.get("kind", "coarse")
    if kind == "coarse":
        return Case((G, g1, g2), nan=0)
    if kind == "gram":
        A = rng.normal(size=(v.get("runs", B), N, N))
        return Case((G, (A @ A.transpose(0, 2, 1)).astype(dt)), nan=0)
    X = rng.normal(size=(B, d, N)).astype(dt)
    return Case((G, X, g1, g2, np.array([0.5, 1.0, 3.0]), v["kernel"]), nan=1)


def _mode_stats(rng, dt, v, small):
    s = _sizes(small)
    B, d, N, K = s["B"], 2, s["N"] + s["M"], s["K"]
    modes = rng.normal(size=(B, K, d))
    X = (modes[:, rng.integers(0, K, N)].transpose(0, 2, 1) + 0.05 * rng.normal(size=(B, d, N))).astype(dt)
    weights = rng.random((B, K))
    weights /= weights.sum(1, keepdims=True)
    stds = 0.02 + 0.05 * rng.random((B, K))
    return Case((X, modes, weights, stds), nan=0, exact=(0, 1))


def _cosine_stats(rng, dt, v, small):
    s = _sizes(small)
    B, d, N, M = s["B"], 7, s["N"], s["M"]
    points = rng.normal(size=(B, M, d))
    X = rng.normal(size=(B, d, N))
    X[1, :, 2] = points[1, 4]                            # a particle on a point (cos 1)
    X[2, :, 0] = 0.0                                     # a zero particle and a zero point: cos 0 by convention
    points[2, 3] = 0.0
    return Case((X.astype(dt), points), nan=0, exact=(0,))


def _trig(rng, dt, v, small, what):
    s, d = _sizes(small), v.get("d", 2)
    B, L, N, M = s["B"], s["L"], s["N"], s["M"]
    theta = (rng.normal(size=(B, L)) / L).astype(dt)
    omega = (2 * rng.normal(size=(B, d, L))).astype(dt)
    phase = (2 * math.pi * rng.random((B, L))).astype(dt)
    amp = np.full((B, L), math.sqrt(2.0 / L), dtype=dt)
    xg = rng.normal(size=(B, d, N)).astype(dt)
    if what == "step":
        rate = (0.5 + rng.random((B, L))).astype(dt)
        xt = rng.normal(size=(B, d, M)).astype(dt)
        wg = (rng.random((B, N)) / N).astype(dt)
        wt = np.full((B, M), 1.0 / M, dtype=dt)
        lr, lam = np.array([0.05, 0.0, 0.3]), np.array([0.01, 0.1, 0.0])
        return Case((theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam), inplace=(0,), lr=9, nan=5)
    return Case((theta, omega, phase, amp, xg), nan=4)


def _kernel_sum(rng, dt, v, small):
    s, d = _sizes(small), v.get("d", 2)
    B, C, n = s["B"], s["C"], s["n"]
    x = rng.normal(size=(B, d, n)).astype(dt)
    y = rng.normal(size=(B, d, C)).astype(dt)
    y[0, :, 1] = x[0, :, 0]                              # a query on a centre (r = 0)
    w = (rng.normal(size=(B, C)) / C).astype(dt)
    bw = (0.3 + 2 * rng.random((B, 2))).astype(dt)
    return Case((x, y, w, bw, v["kernel"], 1.5), nan=0)


def _fourier_grid(rng, dt, v, small, what):
    s = _sizes(small)
    B, K, N, M = s["B"], s["K"] + 2, s["N"], s["M"]
    u = np.sort(np.geomspace(0.05, 5.0, K) * np.where(rng.random(K) < 0.5, -1, 1))
    axis = np.broadcast_to(u, (B, K)).astype(dt).copy()
    w1 = (rng.normal(size=(B, K, K)) / K).astype(dt)
    w2 = (rng.normal(size=(B, K, K)) / K).astype(dt)
    xg = rng.normal(size=(B, 2, N)).astype(dt)
    if what == "step":
        rate = np.minimum(1e3, (axis[:, :, None] ** 2 + axis[:, None, :] ** 2) ** -1.5).astype(dt)
        xt = rng.normal(size=(B, 2, M)).astype(dt)
        wg = np.full((B, N), 1.0 / N, dtype=dt)
        wt = np.full((B, M), 1.0 / M, dtype=dt)
        lr, lam = np.array([1e-3, 0.0, 3e-3]), np.array([1.0, 0.5, 0.0])
        return Case((w1, w2, axis, axis.copy(), rate, xg, wg, xt, wt, lr, lam), inplace=(0, 1), lr=9, nan=5)
    return Case((w1, w2, axis, axis.copy(), xg), nan=4)


def _kde(rng, dt, v, small, what):
    s, d, S = _sizes(small), v.get("d", 2), 2
    B, n, m = s["B"], s["n"], s["C"]
    q = rng.normal(size=(B, d, n))
    x = rng.normal(size=(B, d, m))
    x[0, :, 1] = q[0, :, 0]
    logw = rng.normal(size=(B, m)) - math.log(m)
    logw[0, 2] = -np.inf
    bw = 0.3 + rng.random((B, S))
    logmix = np.log(rng.dirichlet(np.ones(S), size=B))
    cast = lambda a: None if a is None else a.astype(dt)    # noqa: E731
    if what == "density":
        return Case(tuple(cast(a) for a in (q, x, logw, bw, logmix)), nan=0)
    terms = v.get("terms", "both")
    la = rng.normal(size=(B, m)) if terms in ("la", "both") else None
    lb = rng.normal(size=(B, n)) if terms in ("lb", "both") else None
    return Case(tuple(cast(a) for a in (q, x, logw, la, lb, bw, logmix)), nan=0)


def _update(rng, dt, v, small):
    s, d = _sizes(small), 2
    B, N = s["B"], s["N"]
    X = rng.normal(size=(B, d, N)).astype(dt)
    V = rng.normal(size=(B, d, N)).astype(dt)
    lr = np.array([0.05, 0.0, 0.2], dtype=dt)
    alive = np.array([True, True, v.get("case") != "dead"])
    diverged = np.where(alive, -1, 4).astype(np.int64)
    other = np.float64 if dt == F32 else np.float32
    params = (rng.normal(size=(B, 5)).astype(dt),
              rng.normal(size=(B, 2, 3)).astype(other if v.get("case") == "mixed" else dt))
    if v.get("case") != "dead":
        params[1][2, 0, 1] = np.inf                      # run 2's parameters blow up
    return Case((X, V, lr, alive, diverged, 7, params), inplace=(3, 4), lr=2, nan=0)


def _v(**kw):
    return tuple(sorted(kw.items()))


_ACTS = (_v(act="relu"), _v(act="tanh"))

# --------------------------------------------------------------------------- the registry

OPS: tuple[Op, ...] = (
    Op("sample_mixture", "(comp_base, noise_base, it, sub, means, cum, stds, m, dtype) -> (B, d, m)",
       "sampling_numpy.sample_mixture", "sampling_numba.sample_mixture", "cuda_numba.sample_mixture",
       lambda r, dt, v, s: _sampling(r, dt, v, s)),
    Op("sample_mixture_steps", "(comp_base, noise_base, it, n_sub, means, cum, stds, m, dtype) -> (n_sub, B, d, m)",
       "sampling_numpy.sample_mixture_steps", "sampling_numba.sample_mixture_steps",
       "cuda_numba.sample_mixture_steps", lambda r, dt, v, s: _sampling(r, dt, v, s), run_axis=1,
       gpu="cuda_raw_loop.sample_mixture_steps"),
    Op("mlp_disc_step", "(w, b, a, xg, xt, lr, l2, u, act, opt=None) in place on w (B, d, W), b, a (B, W) (and "
       "opt's moments, kernels.optim)",
       "mlp_numpy.mlp_disc_step", "mlp_numba.mlp_disc_step", "cuda_numba.mlp_disc_step",
       lambda r, dt, v, s: _mlp(r, dt, dict(v), s, "step"),
       variants=tuple(_v(act=a, u=u, d=d) for a in ("relu", "tanh") for u in (False, True) for d in (1, 3))
       + (_v(act="relu", u=True, opt=True), _v(act="tanh", u=True, d=3, opt=True)),    # adaptive: d = 2 relu's own kernel
       gpu="cuda_raw.mlp_disc_step"),
    Op("mlp_grad_x", "(w, b, a, x, act) -> (B, d, n)",
       "mlp_numpy.mlp_grad_x", "mlp_numba.mlp_grad_x", "cuda_numba.mlp_grad_x",
       lambda r, dt, v, s: _mlp(r, dt, dict(v), s, "grad"), variants=_ACTS, gpu="cuda_raw.mlp_grad_x"),
    Op("mlp_forward", "(w, b, a, x, act) -> (B, n)",
       "mlp_numpy.mlp_forward", "mlp_numpy.mlp_forward", "cuda_numba.mlp_forward",
       lambda r, dt, v, s: _mlp(r, dt, dict(v), s, "x"), variants=_ACTS),
    Op("coupled_velocity_coarse", "(G, g1, g2) -> V (B, d, N)",
       "coupling_numpy.coupled_velocity_coarse", "coupling_numba.coupled_velocity_coarse",
       "cuda_numba.coupled_velocity_coarse", lambda r, dt, v, s: _coupling(r, dt, dict(v), s),
       gpu="cuda_raw_loop.coupled_velocity_coarse"),
    Op("coupled_velocity_gram", "(G, gram (B or 1, N, N)) -> V (B, d, N)",
       "coupling_numpy.coupled_velocity_gram", "coupling_numba.coupled_velocity_gram",
       "cuda_numba.coupled_velocity_gram", lambda r, dt, v, s: _coupling(r, dt, dict(v, kind="gram"), s),
       variants=(_v(runs=3), _v(runs=1)), gpu="cuda_ops.matmul_gram"),
    Op("coupled_velocity_spatial", "(G, X, g1, g2, length_scale, kernel) -> V (B, d, N)",
       "coupling_numpy.coupled_velocity_spatial", "coupling_numba.coupled_velocity_spatial",
       "cuda_numba.coupled_velocity_spatial", lambda r, dt, v, s: _coupling(r, dt, dict(v, kind="spatial"), s),
       variants=(_v(kernel="rbf"), _v(kernel="laplacian"))),
    Op("mode_stats", "(X, modes, weights, stds) -> counts, hq (B, K) int, nearest, loglik (B,) (host arrays)",
       "observables_numpy.mode_stats", "observables_numba.mode_stats", "cuda_numba.mode_stats",
       lambda r, dt, v, s: _mode_stats(r, dt, v, s)),
    Op("cosine_stats", "(X, points) -> counts (B, M) int, cos_dist, pair_cos, max_norm (B,) (host arrays)",
       "observables_numpy.cosine_stats", "observables_numba.cosine_stats", "observables_numpy.cosine_stats",
       lambda r, dt, v, s: _cosine_stats(r, dt, v, s)),
    Op("deep_disc_step", "(p, xg, xt, lr, l2, u, act, opt=None, xp) in place on the dict p (and opt's moments)",
       "deep_mlp.deep_disc_step", "deep_mlp.deep_disc_step", "deep_mlp.deep_disc_step",
       lambda r, dt, v, s: _deep(r, dt, dict(v), s, "step"), variants=_ACTS + (_v(act="tanh", opt=True),),
       takes_xp=True),
    Op("deep_grad_x", "(p, x, act, xp) -> (B, d, n)",
       "deep_mlp.deep_grad_x", "deep_mlp.deep_grad_x", "deep_mlp.deep_grad_x",
       lambda r, dt, v, s: _deep(r, dt, dict(v), s, "grad"), variants=_ACTS, takes_xp=True),
    Op("deep_forward", "(p, x, act, xp) -> (B, n)",
       "deep_mlp.deep_forward", "deep_mlp.deep_forward", "deep_mlp.deep_forward",
       lambda r, dt, v, s: _deep(r, dt, dict(v), s, "x"), variants=_ACTS, takes_xp=True),
    Op("trig_disc_step", "(theta, omega, phase, amp, rate, xg, wg, xt, wt, lr, lam) in place on theta (B, L)",
       "linear_numpy.trig_disc_step", "linear_numba.trig_disc_step", "cuda_numba.trig_disc_step",
       lambda r, dt, v, s: _trig(r, dt, dict(v), s, "step"), variants=(_v(d=1), _v(d=3))),
    Op("trig_grad_x", "(theta, omega, phase, amp, x) -> (B, d, n)",
       "linear_numpy.trig_grad_x", "linear_numba.trig_grad_x", "cuda_numba.trig_grad_x",
       lambda r, dt, v, s: _trig(r, dt, dict(v), s, "x"), variants=(_v(d=1), _v(d=3))),
    Op("trig_forward", "(theta, omega, phase, amp, x) -> (B, n)",
       "linear_numpy.trig_forward", "linear_numba.trig_forward", "cuda_numba.trig_forward",
       lambda r, dt, v, s: _trig(r, dt, dict(v), s, "x"), variants=(_v(d=2),)),
    Op("kernel_sum", "(x, centres, weights, bandwidths, kernel, alpha) -> (B, n)",
       "linear_numpy.kernel_sum", "linear_numba.kernel_sum", "cuda_numba.kernel_sum",
       lambda r, dt, v, s: _kernel_sum(r, dt, dict(v), s),
       variants=tuple(_v(kernel=k) for k in ("rbf", "laplacian", "rq"))),
    Op("kernel_sum_grad", "(x, centres, weights, bandwidths, kernel, alpha) -> (B, d, n)",
       "linear_numpy.kernel_sum_grad", "linear_numba.kernel_sum_grad", "cuda_numba.kernel_sum_grad",
       lambda r, dt, v, s: _kernel_sum(r, dt, dict(v), s),
       variants=tuple(_v(kernel=k, d=d) for k in ("rbf", "laplacian", "rq") for d in (1, 3))),
    Op("fourier_grid_disc_step", "(w1, w2, u, v, rate, xg, wg, xt, wt, lr, lam) in place on w1, w2 (B, K1, K2)",
       "fourier_grid.fourier_grid_disc_step", "fourier_grid_numba.fourier_grid_disc_step",
       "fourier_grid.fourier_grid_disc_step", lambda r, dt, v, s: _fourier_grid(r, dt, v, s, "step")),
    Op("fourier_grid_grad_x", "(w1, w2, u, v, x) -> (B, 2, n)",
       "fourier_grid.fourier_grid_grad_x", "fourier_grid_numba.fourier_grid_grad_x",
       "fourier_grid.fourier_grid_grad_x", lambda r, dt, v, s: _fourier_grid(r, dt, v, s, "x")),
    Op("fourier_grid_forward", "(w1, w2, u, v, x) -> (B, n)",
       "fourier_grid.fourier_grid_forward", "fourier_grid_numba.fourier_grid_forward",
       "fourier_grid.fourier_grid_forward", lambda r, dt, v, s: _fourier_grid(r, dt, v, s, "x")),
    Op("kde_log_density", "(q, x, logw, bandwidths, logmix) -> (B, n)",
       "kde_numpy.kde_log_density", "kde_numba.kde_log_density", "cuda_numba.kde_log_density",
       lambda r, dt, v, s: _kde(r, dt, dict(v), s, "density"), variants=(_v(d=1), _v(d=3))),
    Op("kde_grad_sum", "(q, x, logw, la, lb, bandwidths, logmix) -> (B, d, n)",
       "kde_numpy.kde_grad_sum", "kde_numba.kde_grad_sum", "cuda_numba.kde_grad_sum",
       lambda r, dt, v, s: _kde(r, dt, dict(v), s, "grad"),
       variants=tuple(_v(terms=t, d=d) for t in ("la", "lb", "both") for d in (1, 2))),

    Op("generator_update", "(X, V, lr, alive, diverged, iteration, params) -> Xn; in place on alive, diverged",
       "update_numpy.generator_update", "update_numpy.generator_update", "cuda_numba.generator_update",
       lambda r, dt, v, s: _update(r, dt, dict(v), s), variants=(_v(case="blowup"), _v(case="dead"), _v(case="mixed")),
       gpu="cuda_raw_loop.generator_update"),
)

BACKENDS = ("numpy", "numba", "cuda")


# --------------------------------------------------------------------------- implementation namespaces

def namespace(backend: str) -> dict:
    """{module name: module} of a backend's implementations (imported on first use: numba and the
    CUDA modules only when their backend is asked for)."""
    from . import coupling_numpy, deep_mlp, fourier_grid, kde_numpy, linear_numpy, mlp_numpy, observables_numpy
    from . import sampling_numpy, update_numpy
    out = dict(coupling_numpy=coupling_numpy, deep_mlp=deep_mlp, fourier_grid=fourier_grid, kde_numpy=kde_numpy,
               linear_numpy=linear_numpy, mlp_numpy=mlp_numpy, observables_numpy=observables_numpy,
               sampling_numpy=sampling_numpy, update_numpy=update_numpy)
    if backend == "numba":
        from . import (coupling_numba, fourier_grid_numba, kde_numba, linear_numba, mlp_numba, observables_numba,
                       sampling_numba)
        out.update(coupling_numba=coupling_numba, fourier_grid_numba=fourier_grid_numba, kde_numba=kde_numba,
                   linear_numba=linear_numba, mlp_numba=mlp_numba, observables_numba=observables_numba,
                   sampling_numba=sampling_numba)
    elif backend == "cuda":
        from . import cuda_numba, cuda_ops
        out.update(cuda_numba=cuda_numba, cuda_ops=cuda_ops)
    elif backend != "numpy":
        raise ValueError(f"unknown backend {backend!r}")
    return out


def implementation(op: Op, backend: str, ns: dict):
    """The function serving ``op`` on ``backend`` (from the namespace ``ns``)."""
    module, attr = getattr(op, backend).split(".")
    return getattr(ns[module], attr)
