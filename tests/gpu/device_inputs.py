"""Inputs of the device suite and of the GPU check's launch-every-kernel driver (benchmarks/gpu_kernels.py).

- ``LAUNCHES`` / :func:`set_launch`: the default launch parameters and an odd set (kernels/launch.py);
- :func:`device_case`: the registry's random inputs of an op (awkward sizes, ``kernels/registry.py``) with
  every ReLU pre-activation kept at least ``KINK_MARGIN`` off 0: FMA contraction rounds ``w.x + b``
  differently from NumPy, and a sample on the kink would flip its mask (a true, O(1) difference);
- :func:`run_slice`: one run's inputs out of an ensemble case (a run alone against the same run in the
  ensemble);
- :func:`cublas_served`: whether an op goes through cuBLAS on a GPU (batched matmul), whose algorithm
  may depend on the batch size, so its bits may change with the ensemble size.
"""

from __future__ import annotations

import numpy as np

LAUNCHES = ("default", "odd")
# the odd set: no size a multiple of a warp; blocks of one partial warp (grad_x: a sub-warp tree
# reduction) and of two (the rest); tiles smaller and larger than blocks; a grid cap that sends every
# grid-stride loop round several times
ODD_BLOCK = 37
ODD_BLOCKS = {"mlp_units": 19, "grad_x": 5}
ODD_TILES = {"mlp_samples": 13, "grad_x_units": 11, "grad_x_samples": 3, "pair_cols": 9, "trig_samples": 13,
             "trig_features": 11, "kernel_cols": 9, "kde_cols": 9}
ODD_MAX_BLOCKS = 3
KINK_MARGIN = 1e-3
SEED = 20261205


def set_launch(which: str, setitem, setattr_) -> None:
    """Set the launch parameters ``which`` ('default' leaves them) with ``setitem(dict, key, value)`` and
    ``setattr_(module, name, value)`` (pytest's monkeypatch methods, or plain ones)."""
    if which == "default":
        return
    if which != "odd":
        raise ValueError(f"unknown launch set {which!r}")
    from fastgan.kernels import launch
    for k in list(launch.GPU_BLOCK):
        setitem(launch.GPU_BLOCK, k, ODD_BLOCKS.get(k, ODD_BLOCK))
    for k, v in ODD_TILES.items():
        if k in launch.GPU_TILE:
            setitem(launch.GPU_TILE, k, v)
    setattr_(launch, "GPU_MAX_BLOCKS", ODD_MAX_BLOCKS)


def cases(ops=None):
    """(op, variant dict, dtype, id) of every registered op, variant and precision."""
    from fastgan.kernels import registry
    out = []
    for op in registry.OPS:
        if ops and op.name not in ops:
            continue
        for v in op.variants:
            for dt in (np.float32, np.float64):
                vid = "-".join(f"{k}={x}" for k, x in v) or "base"
                out.append((op, dict(v), np.dtype(dt), f"{op.name}-{vid}-{np.dtype(dt).name}"))
    return out


def _relu(op, variant) -> bool:
    return op.name.startswith(("mlp_", "deep_")) and variant.get("act", "relu") == "relu"


def _nudge(h, bias, margin):
    """Shift bias (B, W) so that |h + bias| >= margin for every sample; h (B, W, n) without the bias."""
    out = bias.copy()
    shifts = [0.0] + [s * k * margin for k in range(2, 200, 2) for s in (1, -1)]
    for b in range(h.shape[0]):
        for i in range(h.shape[1]):
            for s in shifts:
                trial = out.dtype.type(float(bias[b, i]) + s)
                if np.min(np.abs(h[b, i] + np.float64(trial))) >= margin:
                    out[b, i] = trial
                    break
            else:                                            # pragma: no cover - needs ~200 samples per unit
                raise RuntimeError("no bias shift keeps the samples off the ReLU kink")
    return out


def off_kinks(op, variant, case, margin=KINK_MARGIN):
    """A copy of ``case`` whose ReLU pre-activations are all >= margin in magnitude (biases shifted)."""
    if not _relu(op, variant):
        return case
    args = list(case.args)
    step = op.name.endswith("disc_step")
    if op.name.startswith("mlp_"):
        w, b = args[0], args[1]
        X = np.concatenate([args[3]] + ([args[4]] if step else []), axis=2).astype(np.float64)
        h = np.einsum("bdw,bdn->bwn", w.astype(np.float64), X)
        args[1] = _nudge(h, b, margin)
    else:
        p = {k: v.copy() for k, v in args[0].items()}
        a = np.concatenate([args[1]] + ([args[2]] if step else []), axis=2).astype(np.float64).transpose(0, 2, 1)
        layer = 1
        while f"W{layer}" in p:
            h = np.matmul(a, p[f"W{layer}"].astype(np.float64)).transpose(0, 2, 1)      # (B, W, n)
            p[f"b{layer}"] = _nudge(h, p[f"b{layer}"], margin)
            a = np.maximum(h + p[f"b{layer}"].astype(np.float64)[:, :, None], 0).transpose(0, 2, 1)
            layer += 1
        args[0] = p
    return case._replace(args=tuple(args))


def device_case(op, variant, dtype, seed=SEED):
    """The registry's inputs of ``op`` (full awkward sizes), kept off the ReLU kinks."""
    return off_kinks(op, variant, op.inputs(np.random.default_rng(seed), np.dtype(dtype), variant, False))


def run_slice(case, b: int, B: int):
    """The inputs of run ``b`` alone (B = 1): every array (or dict of arrays) whose first axis is the run
    axis is sliced; shared arguments (a (1, N, N) Gram, scalars, strings) pass as they are."""
    def cut(a):
        if isinstance(a, dict):
            return {k: cut(v) for k, v in a.items()}
        if isinstance(a, tuple):
            return tuple(cut(v) for v in a)
        if isinstance(a, np.ndarray) and a.ndim >= 1 and a.shape[0] == B:
            return a[b:b + 1].copy()
        return a
    return case._replace(args=tuple(cut(a) for a in case.args))


def cublas_served(op, chosen: str) -> bool:
    """Whether the GPU implementation serving ``op`` (``chosen``, from ``Ops.chosen``) is a cuBLAS batched
    matmul through CuPy (deep MLP, separable Fourier grid, explicit Gram coupling, the cosine observables)."""
    return op.takes_xp or chosen.startswith(("fourier_grid.", "deep_mlp.", "cuda_ops.matmul",
                                             "observables_numpy.cosine_stats"))
