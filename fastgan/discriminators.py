"""Discriminator families for Algorithm 1 (SPEC §1.2): initialisation and the bound ops.

``make_family(configs)`` returns the family of an ensemble; ``family.init(configs, dtype)`` the
host parameter arrays (identical for every backend: drawn from the counter-based generator), and
``family.bind(ops, act)`` an object with ``step``, ``grad_x``, ``forward`` over device arrays.

mlp, depth 1   D(x) = sqrt(2/W) sum_i a_i sigma(w_i . x + b_i)                       (eq. 23, A1)
               paper init: a_i, w_ij ~ N(0, 1), b_i ~ N(0, 9)
               params: w (B, d, W), b (B, W), a (B, W)
mlp, depth L   L hidden layers of width W, Glorot-uniform weights, zero biases (Figs. 3-4)
               params: W1 (B, d, W), Wl (B, W, W), b_l (B, W), v (B, W), c (B,)
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import rng
from .kernels.sampling_numpy import normal_init, uniform_init


def _init_scheme(cfg) -> str:
    return cfg.discriminator.init or ("paper" if cfg.discriminator.depth == 1 else "glorot")


class OneHiddenLayer:
    """The wide one-hidden-layer MLP with fused ops."""

    name = "mlp1"
    samples_target = True

    def __init__(self, width: int, dim: int, activation: str):
        self.width, self.dim, self.activation = width, dim, activation

    def init(self, configs, dtype) -> dict:
        W, d = self.width, self.dim
        seeds = [c.training.seed for c in configs]
        base = rng.base_keys(seeds, rng.STREAM_DISC_INIT)
        if all(_init_scheme(c) == "paper" for c in configs):
            z = normal_init(base, W * d + 2 * W)
            ws = np.array([c.discriminator.weight_std for c in configs])[:, None]
            bs = np.array([c.discriminator.bias_std for c in configs])[:, None]
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

    @staticmethod
    def penalty(configs) -> np.ndarray:
        """(B,) L2 coefficient c of eq. 24 (default 1/W)."""
        return np.array([c.discriminator.l2 if c.discriminator.l2 is not None else 1.0 / c.discriminator.width
                         for c in configs], dtype=np.float64)

    def bind(self, ops, env=None):
        act = self.activation

        class Bound:
            def step(self, p, xg, xt, lr, l2, u):
                ops.mlp_disc_step(p["w"], p["b"], p["a"], xg, xt, lr, l2, u, act)

            def grad_x(self, p, x):
                return ops.mlp_grad_x(p["w"], p["b"], p["a"], x, act)

            def forward(self, p, x):
                return ops.mlp_forward(p["w"], p["b"], p["a"], x, act)

        return Bound()

    @staticmethod
    def export(p: dict, run: int) -> dict:
        """One run's parameters as host arrays in user layout: w (W, d), b (W,), a (W,)."""
        return {"w": np.asarray(p["w"][run]).T.copy(), "b": np.asarray(p["b"][run]).copy(),
                "a": np.asarray(p["a"][run]).copy()}


class Deep:
    """A deep MLP (matmul-bound: NumPy/cuBLAS)."""

    name = "deep"
    samples_target = True

    def __init__(self, width: int, depth: int, dim: int, activation: str):
        self.width, self.depth, self.dim, self.activation = width, depth, dim, activation

    def shapes(self):
        fans = [self.dim] + [self.width] * self.depth
        out = {}
        for l in range(1, self.depth + 1):
            out[f"W{l}"] = (fans[l - 1], fans[l])
            out[f"b{l}"] = (fans[l],)
        out["v"] = (self.width,)
        out["c"] = ()
        return out

    def init(self, configs, dtype) -> dict:
        shapes = self.shapes()
        sizes = {k: int(np.prod(s)) for k, s in shapes.items()}
        total = sum(sizes.values())
        seeds = [c.training.seed for c in configs]
        base = rng.base_keys(seeds, rng.STREAM_DISC_INIT)
        scheme = {_init_scheme(c) for c in configs}
        if scheme == {"glorot"}:
            z = uniform_init(base, total)
        else:
            z = normal_init(base, total)
        B = len(configs)
        out, off = {}, 0
        for k, shape in shapes.items():
            chunk = z[:, off: off + sizes[k]].reshape((B,) + shape)
            off += sizes[k]
            if k.startswith("b") or k == "c":
                if scheme == {"glorot"}:
                    chunk = np.zeros_like(chunk)
                else:
                    chunk = chunk * np.array([c.discriminator.bias_std for c in configs]).reshape((B,) + (1,) * len(shape))
            else:
                fan_in, fan_out = (shape if len(shape) == 2 else (shape[0], 1))
                if scheme == {"glorot"}:
                    chunk = (2 * chunk - 1) * math.sqrt(6.0 / (fan_in + fan_out))
                else:  # paper-style normal init scaled by 1/sqrt(fan_in)
                    ws = np.array([c.discriminator.weight_std for c in configs]).reshape((B,) + (1,) * len(shape))
                    chunk = chunk * ws / math.sqrt(fan_in)
            out[k] = np.ascontiguousarray(chunk, dtype=dtype)
        return out

    @staticmethod
    def penalty(configs) -> np.ndarray:
        """(B,) L2 coefficient c of eq. 24 (default 1/W)."""
        return np.array([c.discriminator.l2 if c.discriminator.l2 is not None else 1.0 / c.discriminator.width
                         for c in configs], dtype=np.float64)

    def bind(self, ops, env=None):
        act = self.activation

        class Bound:
            def step(self, p, xg, xt, lr, l2, u):
                ops.deep_disc_step(p, xg, xt, lr, l2, u, act, xp=ops.xp)

            def grad_x(self, p, x):
                return ops.deep_grad_x(p, x, act, xp=ops.xp)

            def forward(self, p, x):
                return ops.deep_forward(p, x, act, xp=ops.xp)

        return Bound()

    @staticmethod
    def export(p: dict, run: int) -> dict:
        return {k: np.asarray(v[run]).copy() for k, v in p.items()}


def make_family(configs, dim: int, points: np.ndarray | None = None, n_particles: int | None = None, targets=None):
    """The discriminator family shared by an ensemble of configs (same kind and shape).
    ``points`` (B, K, d): the targets' points (the exact kernel discriminator keeps them as centres);
    ``targets``: the runs' Target objects (the kde family draws its data sample from them)."""
    keys = {(c.discriminator.kind, c.discriminator.width, c.discriminator.depth, c.discriminator.activation)
            for c in configs}
    if len(keys) != 1:
        raise ValueError("an ensemble needs one discriminator shape")
    kind, width, depth, act = keys.pop()
    if kind == "kde":
        from .kde import KDEFamily
        return KDEFamily(configs, targets, dim, n_particles)
    if kind in ("fourier", "rff", "kernel"):
        from . import linear_families as lf
        if kind == "fourier":
            return lf.Fourier(configs, dim)
        if kind == "rff":
            return lf.RandomFeatures(configs, dim)
        return lf.ExactKernel(configs, dim, points, n_particles)
    if kind == "mlp" and depth == 1:
        return OneHiddenLayer(width, dim, act)
    if kind == "mlp":
        return Deep(width, depth, dim, act)
    raise ValueError(f"unknown discriminator kind {kind!r}")


def params_finite(xp, p: dict) -> np.ndarray:
    """(B,) host bool: every parameter of the run is finite."""
    ok = None
    for v in p.values():
        f = xp.isfinite(v).reshape(v.shape[0], -1).all(axis=1)
        ok = f if ok is None else ok & f
    return np.asarray(ok.get() if hasattr(ok, "get") else ok)
