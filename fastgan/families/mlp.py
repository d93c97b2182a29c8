"""The ``mlp`` family: the wide one-hidden-layer network of eq. 23 (Durr et al., Effective Dynamics of
GANs, Appendix A) and deep MLPs (Figs. 3-4), trained by gradient descent on eq. 24 with the optional
gradient regulariser of eq. 28-29.

depth 1   D(x) = sqrt(2/W) sum_i a_i sigma(w_i . x + b_i)                       (eq. 23, Appendix A)
          paper init: a_i, w_ij ~ N(0, weight_std^2), b_i ~ N(0, bias_std^2) (1 and 3: variance 9)
          params: w (B, d, W), b (B, W), a (B, W)
depth L   L hidden layers of width W, Glorot-uniform weights, zero biases (Figs. 3-4)
          params: W1 (B, d, W), Wl (B, W, W), b_l (B, W), v (B, W), c (B,)
"""

from __future__ import annotations

import math

import numpy as np

from ..config import ALWAYS, AUTO, NONNEG, Field, ge
from ..kernels import rng
from ..kernels.sampling_numpy import normal_init, uniform_init
from .base import Family, host, rates
from .common import OPTIMIZER_KEYS, resolve_optimizer, validate_optimizer

KEYS = {
    "discriminator": {
        "width": Field("int", 2048, "hidden width W", ge(1)),
        "depth": Field("int", 1, "number of hidden layers (1: eq. 23; 4 x 512 for Figs. 3-4)", ge(1)),
        "activation": Field("str", "relu", "hidden activation", choices=("relu", "tanh")),
        "l2": Field("float", AUTO, "L2 coefficient c of eq. 24, L += c * sum(phi^2) (default 1/width)",
                    NONNEG, optional=True),
        "init": Field("str", AUTO, "initialisation: paper (a, w ~ N(0, weight_std^2), b ~ N(0, bias_std^2)) or "
                      "glorot (uniform weights, zero biases); default paper for depth 1, glorot deeper",
                      choices=("paper", "glorot"), optional=True),
        "weight_std": Field("float", 1.0, "std of a and w in the paper initialisation", NONNEG),
        "bias_std": Field("float", 3.0, "std of b in the paper initialisation (variance 9)", NONNEG),
    },
    "training": {
        "beta": Field("float", 0.0, "gradient-regulariser strength (eq. 28-29)", NONNEG, identity=ALWAYS,
                      foreign="the gradient regulariser is defined for mlp discriminators, not "
                      "discriminator.kind = {kind}"),
        **OPTIMIZER_KEYS,
    },
}


class MLP(Family):
    name = "mlp"
    legacy_identity = True
    summary = "the wide network of eq. 23 (depth 1) or a deep MLP"
    keys = KEYS
    defaults = {"generator.init_std": 0.1, "training.n_disc": 5, "training.lr_disc": 0.25, "training.lr_gen": 0.01}

    def validate(self, cfg, dim):
        validate_optimizer(cfg)

    def resolve(self, d, cfg, dim):
        resolve_optimizer(d)
        disc = d["discriminator"]
        if disc["l2"] is None:
            disc["l2"] = 1.0 / disc["width"]
        if disc["init"] is None:
            disc["init"] = "paper" if disc["depth"] == 1 else "glorot"

    def shape_key(self, r, target):
        disc = r.discriminator
        return {"discriminator.width": disc.width, "discriminator.depth": disc.depth,
                "discriminator.activation": disc.activation, "discriminator.init": disc.init}

    def state_params(self, r, target):
        """The parameters, and their two moments under an adaptive optimiser."""
        W, L, d = r.discriminator.width, r.discriminator.depth, target.dim
        n = W * (d + 2) if L == 1 else d * W + (L - 1) * W * W + L * W + W + 1
        return n * (1 if r.training.optimizer_disc == "sgd" else 3)

    def sample_work(self, r, target):
        return self.state_params(r, target) // (1 if r.training.optimizer_disc == "sgd" else 3)

    def scratch_memory(self, r, target, backend, runs):
        """The reference one-layer kernels hold a few (runs, samples, W) temporaries at once, chunked over
        runs (at least one whole run); the deep network (numpy arithmetic on the host for numpy and
        numba) keeps every layer's activations, derivatives and tangents of every run."""
        W, L = r.discriminator.width, r.discriminator.depth
        n = r.generator.n_particles + r.training.batch_size
        item = 8 if r.precision == "float64" else 4
        if L > 1:
            return 0 if backend == "cuda" else 8 * L * runs * n * W * item
        if backend == "numpy":
            from ..kernels.mlp_numpy import TEMP_ELEMENTS
            return 6 * item * max(n * W, min(runs * n * W, TEMP_ELEMENTS))
        if backend == "numba":
            from ..kernels import mlp_numba
            d = target.dim
            if d < mlp_numba.GEMM_MIN_D:
                return 0
            # the GEMM form: per worker thread a chunk of runs' coefficients, samples and products (kept for
            # reuse), bounded by GEMM_TEMP elements but at least one run; the adaptive update's gradients
            k = n + r.generator.n_particles
            per_run = k * W + (k + W) * (d + 1) + (0 if r.training.optimizer_disc == "sgd" else (d + 2) * W)
            workers = mlp_numba._n_workers()
            per_worker = -(-runs // workers)
            return workers * item * max(per_run, min(per_worker * per_run, mlp_numba.GEMM_TEMP))
        return 0

    def model(self, ens):
        return OneHiddenLayer(ens) if ens.resolved[0].discriminator.depth == 1 else Deep(ens)

    def overlay(self, params, r, pts, particles=None):
        """D at pts (n, d) in float64: the one-layer network as the reference's sums (pre-activations in
        its order) with the output reduction a BLAS dot over blocks of points; deep networks by matmuls."""
        from ..kernels.deep_mlp import deep_forward
        act = r.discriminator.activation
        pts = np.asarray(pts, dtype=np.float64)
        if "w" not in params:
            p = {k: np.asarray(v, dtype=np.float64)[None] for k, v in params.items()}
            return deep_forward(p, pts.T[None], act)[0]
        w = np.asarray(params["w"], dtype=np.float64)                          # (W, d)
        b, a = np.asarray(params["b"], np.float64), np.asarray(params["a"], np.float64)
        rows = max(1, (1 << 16) // len(b))                                   # an L2-sized block of h
        out = np.empty(len(pts))
        h = np.empty((min(rows, len(pts)), len(b)))
        for i in range(0, len(pts), rows):
            x = pts[i:i + rows]
            hh = h[:len(x)]
            np.multiply(x[:, 0, None], w[None, :, 0], out=hh)
            for j in range(1, w.shape[1]):
                hh += x[:, j, None] * w[None, :, j]
            hh += b
            if act == "relu":
                np.maximum(hh, 0.0, out=hh)
            else:
                np.tanh(hh, out=hh)
            out[i:i + len(x)] = hh @ a
        return np.sqrt(2.0 / len(b)) * out

    def title(self, r, ratio):
        d = r.discriminator
        return (f"{d.activation} W={d.width} N={r.generator.n_particles} g2/g1={ratio:.3g} {rates(r)} "
                f"beta={r.training.beta:g}")


class _Model:
    """What both MLP models share: sampled target batches, the shape of the ensemble's first run and
    the L2 coefficient c of eq. 24 (resolved: default 1/W)."""

    samples_target = True
    target_points = False

    def __init__(self, ens):
        r0 = ens.resolved[0].discriminator
        self.ens = ens
        self.width, self.depth, self.dim, self.activation, self.scheme = (r0.width, r0.depth, ens.dim,
                                                                           r0.activation, r0.init)

    def penalty(self) -> np.ndarray:
        return np.array([r.discriminator.l2 for r in self.ens.resolved], dtype=np.float64)


class OneHiddenLayer(_Model):
    """The wide one-hidden-layer MLP with fused ops."""

    def init(self, dtype) -> dict:
        W, d = self.width, self.dim
        res = self.ens.resolved
        base = rng.base_keys(self.ens.seeds, rng.STREAM_DISC_INIT)
        if self.scheme == "paper":
            z = normal_init(base, W * d + 2 * W)
            ws = np.array([r.discriminator.weight_std for r in res])[:, None]
            bs = np.array([r.discriminator.bias_std for r in res])[:, None]
            w = (z[:, : W * d] * ws).reshape(-1, d, W)
            b = z[:, W * d: W * d + W] * bs
            a = z[:, W * d + W:] * ws
        else:  # glorot for a single hidden layer: w ~ U(+-sqrt(6/(d+W))), a ~ U(+-sqrt(6/(W+1))), b = 0
            u = uniform_init(base, W * d + W)
            lw, la = math.sqrt(6.0 / (d + W)), math.sqrt(6.0 / (W + 1))
            w = ((2 * u[:, : W * d] - 1) * lw).reshape(-1, d, W)
            a = (2 * u[:, W * d:] - 1) * la / math.sqrt(2.0 / W)   # D carries the sqrt(2/W) factor
            b = np.zeros_like(a)
        return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in (("w", w), ("b", b), ("a", a))}

    def bind(self, ops, env=None):
        act = self.activation

        class Bound:
            def step(self, p, xg, xt, lr, l2, u, opt=None):
                ops.mlp_disc_step(p["w"], p["b"], p["a"], xg, xt, lr, l2, u, act, opt)

            def grad_x(self, p, x):
                return ops.mlp_grad_x(p["w"], p["b"], p["a"], x, act)

            def forward(self, p, x):
                return ops.mlp_forward(p["w"], p["b"], p["a"], x, act)

        return Bound()

    @staticmethod
    def export(p: dict, run: int) -> dict:
        """One run's parameters as host arrays in user layout: w (W, d), b (W,), a (W,)."""
        return {"w": host(p["w"][run]).T.copy(), "b": host(p["b"][run]).copy(), "a": host(p["a"][run]).copy()}


class Deep(_Model):
    """A deep MLP (matmul-bound: NumPy/cuBLAS)."""

    def shapes(self):
        fans = [self.dim] + [self.width] * self.depth
        out = {}
        for l in range(1, self.depth + 1):
            out[f"W{l}"] = (fans[l - 1], fans[l])
            out[f"b{l}"] = (fans[l],)
        out["v"] = (self.width,)
        out["c"] = ()
        return out

    def init(self, dtype) -> dict:
        shapes = self.shapes()
        sizes = {k: int(np.prod(s)) for k, s in shapes.items()}
        total = sum(sizes.values())
        res = self.ens.resolved
        base = rng.base_keys(self.ens.seeds, rng.STREAM_DISC_INIT)
        glorot = self.scheme == "glorot"
        z = uniform_init(base, total) if glorot else normal_init(base, total)
        B = len(res)
        out, off = {}, 0
        for k, shape in shapes.items():
            chunk = z[:, off: off + sizes[k]].reshape((B,) + shape)
            off += sizes[k]
            if k.startswith("b") or k == "c":
                if glorot:
                    chunk = np.zeros_like(chunk)
                else:
                    chunk = chunk * np.array([r.discriminator.bias_std for r in res]).reshape((B,) + (1,) * len(shape))
            else:
                fan_in, fan_out = (shape if len(shape) == 2 else (shape[0], 1))
                if glorot:
                    chunk = (2 * chunk - 1) * math.sqrt(6.0 / (fan_in + fan_out))
                else:  # paper-style normal init scaled by 1/sqrt(fan_in)
                    ws = np.array([r.discriminator.weight_std for r in res]).reshape((B,) + (1,) * len(shape))
                    chunk = chunk * ws / math.sqrt(fan_in)
            out[k] = np.ascontiguousarray(chunk, dtype=dtype)
        return out

    def bind(self, ops, env=None):
        act = self.activation

        class Bound:
            def step(self, p, xg, xt, lr, l2, u, opt=None):
                ops.deep_disc_step(p, xg, xt, lr, l2, u, act, opt, xp=ops.xp)

            def grad_x(self, p, x):
                return ops.deep_grad_x(p, x, act, xp=ops.xp)

            def forward(self, p, x):
                return ops.deep_forward(p, x, act, xp=ops.xp)

        return Bound()

    @staticmethod
    def export(p: dict, run: int) -> dict:
        return {k: host(v[run]).copy() for k, v in p.items()}


FAMILY = MLP()
