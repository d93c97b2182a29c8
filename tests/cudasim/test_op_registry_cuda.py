"""The op registry test (``tests/test_op_registry.py``) on the cuda backend under the CUDA simulator:
every registered op against the NumPy reference with tiny, odd launch parameters and small inputs."""

import numpy as np
import pytest

from test_op_registry import CASES, check


@pytest.mark.parametrize("op,variant,dtype", CASES)
def test_op_matches_the_reference_on_cuda(tiny_launch, op, variant, dtype):
    check("cuda", op, variant, dtype, small=True)


def test_cuda_table_is_the_registry():
    from fastgan.kernels import registry
    from fastgan.kernels.ops import load_ops
    ops = load_ops("cuda")
    assert ops.xp is np and set(ops.chosen) == {op.name for op in registry.OPS}
    assert all(ops.chosen[op.name] == op.cuda for op in registry.OPS)     # no GPU override under the simulator
