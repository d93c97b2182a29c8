"""Every registered op on every backend available against the NumPy reference (``kernels/registry.py``).

For each op, variant and dtype, on random inputs of awkward sizes (no size a multiple of a tile, with
tiles patched small): the result agrees with the reference within the op's tolerance (bitwise where
the op promises it), has the reference's dtype and shape; a zero learning rate leaves a run's state
bitwise untouched; a NaN in one run's input gives NaN in that run's output, no exception, and leaves
the other runs exactly as they were. A new op is covered by registering it.

Here: numpy and numba. The cuda backend runs the same checks under the CUDA simulator
(``tests/cudasim/test_op_registry_cuda.py``, with tiny launch parameters).
"""

import numpy as np
import pytest

from fastgan.kernels import launch, registry
from fastgan.kernels.ops import load_ops

DTYPES = (np.float32, np.float64)
CASES = [pytest.param(op, dict(v), dt, id=f"{op.name}-{'-'.join(f'{k}={x}' for k, x in v) or 'base'}-{np.dtype(dt).name}")
         for op in registry.OPS for v in op.variants for dt in DTYPES]


def _to(xp, a):
    if isinstance(a, dict):
        return {k: _to(xp, v) for k, v in a.items()}
    if isinstance(a, tuple):
        return tuple(_to(xp, v) for v in a)
    if isinstance(a, np.ndarray):
        return xp.asarray(a.copy())
    return a


def _host(ops, a):
    if isinstance(a, dict):
        return {k: _host(ops, v) for k, v in a.items()}
    return np.asarray(ops.to_host(a))


def _flat(results) -> list:
    """The result arrays in a fixed order (dicts of parameters flattened by key)."""
    out = []
    for r in results:
        if isinstance(r, dict):
            out += [r[k] for k in sorted(r)]
        else:
            out.append(r)
    return out


def call(ops, op, case: registry.Case) -> list:
    """Run ``op`` on ``ops`` with (copies of) the case's inputs; its results as host arrays (the in-place
    arguments after the call, or what it returns)."""
    args = [_to(ops.xp, a) for a in case.args]
    out = getattr(ops, op.name)(*args, **({"xp": ops.xp} if op.takes_xp else {}))
    got = [] if out is None else [_host(ops, o) for o in (out if isinstance(out, tuple) else (out,))]
    return _flat(got + [_host(ops, args[i]) for i in case.inplace])


def _poison(case: registry.Case) -> registry.Case:
    args = list(case.args)
    i, key = case.nan if isinstance(case.nan, tuple) else (case.nan, None)
    if key is None:
        args[i] = np.array(args[i], copy=True)
        args[i][0] = np.nan
    else:
        args[i] = {k: np.array(v, copy=True) for k, v in args[i].items()}
        args[i][key][0] = np.nan
    return case._replace(args=tuple(args))


def check(backend: str, op, variant: dict, dtype, small: bool = False) -> None:
    dtype = np.dtype(dtype)
    case = op.inputs(np.random.default_rng(20261205), dtype, variant, small)
    ref = call(load_ops("numpy"), op, case)
    got = call(load_ops(backend), op, case)
    rtol, atol = op.tol[dtype]
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.shape == r.shape and g.dtype == r.dtype, (i, g.shape, g.dtype, r.shape, r.dtype)
        if r.dtype.kind == "f" and i not in case.exact:
            scale = float(np.nanmax(np.abs(r))) if r.size and np.isfinite(r).any() else 1.0
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol * max(1.0, scale), err_msg=f"result {i}")
        else:
            np.testing.assert_array_equal(g, r, err_msg=f"result {i}")
    if case.lr is not None:                          # lr = 0 for run 1: its state is untouched
        assert case.args[case.lr][1] == 0
        before = _flat([case.args[i] for i in case.inplace])
        for g, b in zip(got[len(got) - len(before):], before):
            np.testing.assert_array_equal(g[1], b[1])
    if case.nan is not None:                         # NaN in run 0: NaN out for run 0, the others unchanged
        bad = call(load_ops(backend), op, _poison(case))
        check_poisoned(op, bad, got)


def check_poisoned(op, bad, got) -> None:
    """The outputs ``bad`` of a call with run 0 poisoned by a NaN: NaN in run 0, the other runs as in ``got``."""
    run0 = lambda a: np.take(a, [0], axis=op.run_axis)                     # noqa: E731
    rest = lambda a: np.take(a, np.arange(1, a.shape[op.run_axis]), axis=op.run_axis)   # noqa: E731
    assert any(np.isnan(run0(b)).any() for b in bad if b.dtype.kind == "f"), "a NaN input gave no NaN output"
    for b, g in zip(bad, got):
        np.testing.assert_array_equal(rest(b), rest(g), err_msg="a NaN in run 0 changed another run")


@pytest.fixture
def small_cpu_tiles(monkeypatch):
    for k in launch.CPU_TILE:
        monkeypatch.setitem(launch.CPU_TILE, k, 3 + (len(k) % 3) * 2)       # 3, 5 or 7


@pytest.mark.parametrize("op,variant,dtype", CASES)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_op_matches_the_reference(small_cpu_tiles, backend, op, variant, dtype):
    check(backend, op, variant, dtype)


def test_every_backend_table_is_the_registry():
    names = [op.name for op in registry.OPS]
    assert len(set(names)) == len(names)
    for backend in ("numpy", "numba"):
        ops = load_ops(backend)
        assert set(ops.chosen) == set(names)
        for op in registry.OPS:
            assert callable(getattr(ops, op.name)) and op.signature
            assert ops.chosen[op.name] == getattr(op, backend)
    assert load_ops("numpy").mlp_disc_step.__module__.endswith("mlp_numpy")
