"""The benchmark scripts run and check every backend against the reference before timing (tiny sizes)."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


# float64 only: float32 runs the same benchmark code and the twin tests cover both dtypes (the float32
# variant cost ~35 s of cold numba compilation in the full suite)
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float64])
def test_linear_and_other_op_benchmarks_agree_with_the_reference(dtype):
    import bench_kde
    import bench_linear
    import bench_ops
    rows = (bench_ops.bench(B=2, N=20, W=32, dtype=dtype, min_time=0.001)
            + bench_linear.bench(B=2, dtype=dtype, min_time=0.001, big=False)
            + bench_linear.bench_fourier(B=2, dtype=dtype, min_time=0.001)
            + bench_kde.bench(B=2, dtype=dtype, min_time=0.001, big=False))
    assert rows and all(r.get("ok") is True for r in rows), [r for r in rows if r.get("ok") is not True]
    assert all(r["s_per_run_step"] > 0 for r in rows)
    assert {r["backend"] for r in rows} >= {"numpy", "numba", "numpy (separable)", "numba (separable)"}


def test_a_wrong_backend_result_is_flagged():
    from common import compare_and_time
    from fastgan.kernels.ops import load_ops

    good = load_ops("numpy").kernel_sum
    host = {"x": np.zeros((1, 2, 3)), "c": np.ones((1, 2, 4)), "w": np.ones((1, 4)), "s": np.ones((1, 1))}

    def call(ops, v):   # the numba "twin" returns twice the reference
        out = good(v["x"], v["c"], v["w"], v["s"], "rbf")
        return out if ops.name == "numpy" else 2 * out
    rows = compare_and_time([("kernel_sum", "tiny", host, call, None)], ("numpy", "numba"), 1, np.float64, 0.001)
    assert [r["ok"] for r in rows] == [True, False]
