"""Every registered op on a real GPU against the NumPy reference (skipped without one).

For each op, variant and precision, at the default and at odd launch sizes, on the registry's random
inputs of awkward sizes with ReLU samples kept off the kinks (``device_inputs``):

- agreement with the reference within the op's registered tolerance (float32 rounding; 1e-10 in
  float64), which FMA contraction, libdevice's transcendentals and reordered sums stay within;
  integer outputs (mode counts) exactly. Counter-based samples, bitwise on the CPU twins, are compared
  to rounding here: libdevice's log / cos are not glibc's;
- a zero learning rate leaves a run bitwise untouched; a NaN in one run gives NaN there and leaves the
  other runs exactly as they were;
- a rerun gives the same bits;
- a run alone (B = 1) gives the same bits as that run inside the ensemble of 3 for the custom kernels;
  for the ops served by cuBLAS (deep MLP, separable Fourier grid, explicit Gram coupling) only to
  rounding, since cuBLAS may pick another algorithm for another batch count.

The Numba-CUDA fallbacks of the ops that prefer another implementation on a GPU (the CUDA C MLP
kernels, cuBLAS for the Gram coupling) are checked the same way.
"""

import numpy as np
import pytest

from .device_inputs import cases, cublas_served, device_case, run_slice
from fastgan.kernels import registry
from test_op_registry import _flat, _poison, call, check_poisoned

pytestmark = pytest.mark.gpu

CASES = [pytest.param(op, v, dt, id=cid) for op, v, dt, cid in cases()]
FALLBACK = [pytest.param(op, v, dt, id=cid) for op, v, dt, cid in cases() if op.gpu is not None]


def _cuda():
    from fastgan.kernels.ops import load_ops
    return load_ops("cuda")


def _fallback_ops():
    """The cuda op table with every ``gpu`` override replaced by the op's registered Numba-CUDA twin."""
    from fastgan.kernels.ops import Ops
    ops = _cuda()
    ns = registry.namespace("cuda")
    table = {op.name: getattr(ops, op.name) for op in registry.OPS}
    chosen = dict(ops.chosen)
    for op in registry.OPS:
        if op.gpu is not None:
            table[op.name] = registry.implementation(op, "cuda", ns)
            chosen[op.name] = op.cuda
    return Ops("cuda", ops.xp, table, chosen)


def _agree(got, ref, op, dtype, what):
    rtol, atol = op.tol[np.dtype(dtype)]
    assert len(got) == len(ref), what
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.shape == r.shape and g.dtype == r.dtype, (what, i, g.shape, g.dtype, r.shape, r.dtype)
        if r.dtype.kind == "f":
            scale = float(np.nanmax(np.abs(r))) if r.size and np.isfinite(r).any() else 1.0
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol * max(1.0, scale), equal_nan=True,
                                       err_msg=f"{what}: result {i}")
        else:
            np.testing.assert_array_equal(g, r, err_msg=f"{what}: result {i}")


def _bitwise(a, b, what):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(x, y, err_msg=f"{what}: result {i}")


def check_on_device(ops, op, variant, dtype):
    case = device_case(op, variant, dtype)
    ref = call(_ref(), op, case)
    got = call(ops, op, case)
    _agree(got, ref, op, dtype, f"{op.name} on {ops.chosen[op.name]} vs the NumPy reference")
    _bitwise(call(ops, op, case), got, "rerun")
    if case.lr is not None:                          # lr = 0 for run 1: its state is untouched
        before = _flat([case.args[i] for i in case.inplace])
        for g, b in zip(got[len(got) - len(before):], before):
            np.testing.assert_array_equal(g[1], b[1], err_msg="a run with lr = 0 changed")
    if case.nan is not None:                         # NaN in run 0: NaN out for run 0, the others unchanged
        check_poisoned(op, call(ops, op, _poison(case)), got)
    B = 3
    alone = call(ops, op, run_slice(case, 1, B))
    inside = [np.take(g, [1], axis=op.run_axis) for g in got]
    if cublas_served(op, ops.chosen[op.name]):
        # cuBLAS may choose another algorithm for batch count 1 than for 3: the same run to rounding only
        _agree(alone, inside, op, dtype, "run 1 alone vs inside the ensemble of 3 (cuBLAS: to rounding)")
    else:
        _bitwise(alone, inside, "run 1 alone vs inside the ensemble of 3")


def _ref():
    from fastgan.kernels.ops import load_ops
    return load_ops("numpy")


@pytest.mark.parametrize("op,variant,dtype", CASES)
def test_op_on_device(launch_sizes, op, variant, dtype):
    check_on_device(_cuda(), op, variant, dtype)


@pytest.mark.parametrize("op,variant,dtype", FALLBACK)
def test_numba_cuda_fallback_on_device(launch_sizes, op, variant, dtype):
    check_on_device(_fallback_ops(), op, variant, dtype)


def test_gpu_implementations_are_chosen():
    """On a GPU the CUDA C MLP kernels and cuBLAS serve the ops that prefer them (unless forced off)."""
    import os
    ops = _cuda()
    assert ops.xp.__name__ == "cupy"
    forced = os.environ.get("FASTGAN_CUDA_KERNELS", "").strip().lower() == "numba"
    for op in registry.OPS:
        if op.gpu is None:
            assert ops.chosen[op.name] == op.cuda
        elif op.gpu.startswith("cuda_raw") and forced:
            assert ops.chosen[op.name].startswith(op.cuda)
        else:
            assert ops.chosen[op.name] == op.gpu, (op.name, ops.chosen[op.name])
