"""Every d on the cuda backend: the routers of the Numba-CUDA kernel sets that keep O(d) registers
(``cuda_numba_linear.numba_dim``, ``cuda_numba_misc.spatial_numba_dim``, ``cuda_numba_kde.numba_dim``)
send d beyond the register kernels to the ``cuda_ops`` forms over ``xp``; both sides of each
threshold against the NumPy reference, under the CUDA simulator.

The register side runs the kernels at the threshold with tiny launches and tiny sizes (the simulator
runs each CUDA thread as a Python thread); the other side is NumPy, also at d = 784. Each case
checks which path served it: the path it must not take fails when called.
"""

import math

import numpy as np
import pytest

from fastgan.kernels import coupling_numpy as CREF
from fastgan.kernels import cuda_numba as CN
from fastgan.kernels import cuda_numba_kde as CK
from fastgan.kernels import cuda_numba_linear as CL
from fastgan.kernels import cuda_numba_misc as CM
from fastgan.kernels import cuda_ops
from fastgan.kernels import kde_numpy as KREF
from fastgan.kernels import linear_numpy as LREF
from fastgan.kernels.cuda_numba_common import KERNEL_SETS, ptx_targets
from test_kde_twins import close

F32, F64 = np.float32, np.float64
LINEAR_CASES = [(F64, 16), (F64, 17), (F64, 784), (F32, 64)]     # (dtype, d): register, then cuda_ops
KDE_CASES = [(F64, 64), (F64, 65), (F64, 784), (F32, 96)]


def _fail(*args, **kwargs):
    raise AssertionError("the router took the wrong path")


def _serve(monkeypatch, register, kernels, forms):
    """Make the path the router must not take fail: the cuda_ops ``forms`` where the register kernels
    serve, else the kernel builders ``kernels`` ((module, attribute) pairs)."""
    for module, attr in ([(cuda_ops, f) for f in forms] if register else kernels):
        monkeypatch.setattr(module, attr, _fail)


# ----------------------------------------------------------------------------- the routers

def test_routers_and_compile_targets():
    """The thresholds, and the compile-only targets are exactly the register kernels the routers choose."""
    for dn in ("float32", "float64"):
        for k in ("trig_disc_step", "trig_grad_x", "trig_forward", "kernel_sum", "kernel_sum_grad"):
            assert CL.numba_dim(k, dn, 16) and not CL.numba_dim(k, dn, 17) and not CL.numba_dim(k, dn, 0)
        assert CM.spatial_numba_dim("coupled_velocity_spatial", dn, 16)
        assert not CM.spatial_numba_dim("coupled_velocity_spatial", dn, 17)
        for k in ("log_density", "grad_sum"):
            assert CK.numba_dim(k, dn, 64) and not CK.numba_dim(k, dn, 65)
    assert KERNEL_SETS["linear"].routed is CL.numba_dim and KERNEL_SETS["spatial"].routed is CM.spatial_numba_dim
    dims = (1, 16, 17, 64, 65, 784)
    got = {label for label, _, _ in ptx_targets(dims=dims, sets=["linear", "spatial", "kde"])}
    want = set()
    for dn in ("float32", "float64"):
        for d in dims:
            want |= {f"linear.{k}[{dn},d={d}]" for k in CL.Kernels._fields if CL.numba_dim(k, dn, d)}
            if CM.spatial_numba_dim("coupled_velocity_spatial", dn, d):
                want.add(f"spatial.coupled_velocity_spatial[{dn},d={d}]")
            if CK.numba_dim("log_density", dn, d):
                want.add(f"kde.log_density[{dn},d={d}]")
                c = CK.grad_chunk(dn, d)
                want |= ({f"kde.grad_sum[{dn},d={d}]"} if c >= d else
                         {f"kde.grad_sum_chunk{j}[{dn},d={d}]" for j in range(0, d, c)})
    assert got == want
    for name in ("linear", "spatial", "kde"):
        with pytest.raises(ValueError, match="MAX_DIM"):     # the register kernels themselves still stop there
            CN.check_dim(name, KERNEL_SETS[name].max_dim + 1)


# ----------------------------------------------------------------------------- trig features

def _trig_inputs(rng, B, d, L, dtype):
    theta = rng.normal(size=(B, L))
    omega = 1.5 * rng.normal(size=(B, d, L)) / math.sqrt(d)        # phases of order 1 at every d
    phase = np.where(rng.random((B, L)) < 0.5, -math.pi / 2, 2 * math.pi * rng.random((B, L)))
    amp, rate = 0.5 + rng.random((B, L)), 0.1 + rng.random((B, L))
    return tuple(a.astype(dtype) for a in (theta, omega, phase, amp, rate))


@pytest.mark.parametrize("dtype,d", LINEAR_CASES)
def test_trig_features(rng, tiny_launch, monkeypatch, dtype, d):
    register = CL.numba_dim("trig_disc_step", np.dtype(dtype).name, d)
    assert register == (d <= 16)
    _serve(monkeypatch, register, [(CL, "_kernels")], ("trig_disc_step_gemm", "trig_grad_x_gemm", "trig_forward_gemm"))
    B, L, N, M = 3, 7, 5, 3
    theta, omega, phase, amp, rate = _trig_inputs(rng, B, d, L, dtype)
    xg, xt = rng.normal(size=(B, d, N)).astype(dtype), rng.normal(size=(B, d, M)).astype(dtype)
    wg, wt = (rng.random((B, N)) / N).astype(dtype), (rng.random((B, M)) / M).astype(dtype)
    lr, lam = np.array([0.05, 0.0, 0.2]), np.array([0.01, 0.1, 0.0])
    for lr_, lam_ in ((lr, lam), (lr.astype(dtype), lam.astype(dtype))):
        ref, got = theta.copy(), theta.copy()
        LREF.trig_disc_step(ref, omega, phase, amp, rate, xg, wg, xt, wt, lr_, lam_)
        CN.trig_disc_step(got, omega, phase, amp, rate, xg, wg, xt, wt, lr_, lam_)
        assert got.dtype == dtype and not np.array_equal(got[0], theta[0])      # in the caller's array
        close(got, ref, dtype)
        assert np.array_equal(got[1], theta[1])                                  # lr = 0: bitwise untouched
    x = rng.normal(size=(B - 1, d, 5)).astype(dtype)
    args = tuple(a[:B - 1] for a in (theta, omega, phase, amp)) + (x,)
    g = CN.trig_grad_x(*args)
    assert g.shape == x.shape and g.dtype == dtype
    close(g, LREF.trig_grad_x(*args), dtype)
    f = CN.trig_forward(*args)
    assert f.shape == (B - 1, 5) and f.dtype == dtype
    close(f, LREF.trig_forward(*args), dtype)


# ----------------------------------------------------------------------------- kernel sums

def _kernel_inputs(rng, B, d, n, C, S, dtype):
    x = rng.normal(size=(B, d, n))
    centres = rng.normal(size=(B, d, C))
    centres[0, :, 1] = x[0, :, 2]                       # a centre on a query point: r = 0
    weights = rng.normal(size=(B, C))
    bandwidths = (0.5 + rng.random((B, S))) * math.sqrt(d)    # r ~ sqrt(2 d): kernels of order 1
    return tuple(a.astype(dtype) for a in (x, centres, weights, bandwidths))


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "rq"])
@pytest.mark.parametrize("dtype,d", LINEAR_CASES)
def test_kernel_sums(rng, tiny_launch, monkeypatch, kernel, dtype, d):
    register = CL.numba_dim("kernel_sum", np.dtype(dtype).name, d)
    assert register == (d <= 16) == CL.numba_dim("kernel_sum_grad", np.dtype(dtype).name, d)
    _serve(monkeypatch, register, [(CL, "_kernels")], ("kernel_sum_xp", "kernel_sum_grad_xp"))
    x, centres, weights, bw = _kernel_inputs(rng, 2, d, 5, 3, 2, dtype)
    alpha = 0.7 if kernel == "rq" else 1.0
    f = CN.kernel_sum(x, centres, weights, bw, kernel, alpha)
    assert f.shape == (2, 5) and f.dtype == dtype
    close(f, LREF.kernel_sum(x, centres, weights, bw, kernel, alpha), dtype)
    g = CN.kernel_sum_grad(x, centres, weights, bw, kernel, alpha)
    assert g.shape == x.shape and g.dtype == dtype and np.all(np.isfinite(g))    # laplacian: g = 0 at r = 0
    close(g, LREF.kernel_sum_grad(x, centres, weights, bw, kernel, alpha), dtype)


# ----------------------------------------------------------------------------- spatial coupling

@pytest.mark.parametrize("dtype,d", LINEAR_CASES)
def test_spatial_coupling(rng, tiny_launch, monkeypatch, dtype, d):
    register = CM.spatial_numba_dim("coupled_velocity_spatial", np.dtype(dtype).name, d)
    assert register == (d <= 16)
    _serve(monkeypatch, register, [(CM, "_spatial_kernel")], ("coupled_velocity_spatial_xp",))
    B, N = 2, 7
    G, X = rng.normal(size=(B, d, N)).astype(dtype), rng.normal(size=(B, d, N)).astype(dtype)
    X[1, :, 4] = X[1, :, 2]                             # two particles on one point: k = 1 off the diagonal
    g1, g2, ell = np.array([5.0, 2.0]), np.array([0.7, 0.3]), np.array([0.7, 1.5]) * math.sqrt(d)
    for kernel in ("rbf", "laplacian"):
        got = CN.coupled_velocity_spatial(G, X, g1, g2, ell, kernel)
        assert got.shape == G.shape and got.dtype == dtype
        close(got, CREF.coupled_velocity_spatial(G, X, g1, g2, ell, kernel), dtype)


# ----------------------------------------------------------------------------- KDE

def _kde_inputs(rng, B, d, n, m, S, dtype):
    """As test_kde_twins.kde_inputs (r = 0 at query 0 of run 0, masked centres), with bandwidths ~ sqrt(d)
    and log mixture weights that cancel the normalisation -(d/2) log(2 pi sigma^2), so the weights are of
    order 1 at every d (no underflow to an all-zero gradient)."""
    q, x = rng.normal(size=(B, d, n)), rng.normal(size=(B, d, m))
    x[0, :, 1] = q[0, :, 0]
    logw = rng.normal(size=(B, m)) - math.log(m)
    logw[0, 2] = logw[B - 1, m - 1] = -np.inf
    la, lb = rng.normal(size=(B, m)), rng.normal(size=(B, n))
    bw = ((0.8 + 0.6 * rng.random((B, S))) * math.sqrt(d)).astype(dtype).astype(F64)
    logmix = np.log(rng.dirichlet(np.ones(S), size=B)) + 0.5 * d * np.log(2 * math.pi * bw * bw)
    return tuple(a.astype(dtype) for a in (q, x, logw, la, lb, bw, logmix))


@pytest.mark.parametrize("dtype,d", KDE_CASES)
def test_kde(rng, tiny_launch, monkeypatch, dtype, d):
    register = CK.numba_dim("log_density", np.dtype(dtype).name, d)
    assert register == (d <= 64) == CK.numba_dim("grad_sum", np.dtype(dtype).name, d)
    _serve(monkeypatch, register, [(CK, "_kernels"), (CK, "_grad_chunk")], ("kde_log_density_xp", "kde_grad_sum_xp"))
    q, x, logw, la, lb, bw, lm = _kde_inputs(rng, 2, d, 5, 7, 2, dtype)
    ld = CN.kde_log_density(q, x, logw, bw, lm)
    want = KREF.kde_log_density(q, x, logw, bw, lm)
    assert ld.shape == (2, 5) and ld.dtype == dtype and np.all(np.isfinite(want))
    close(ld, want, dtype)
    for a, b in ((la, lb), (la, None), (None, -want)):          # -log p: the normalised mean shift
        g = CN.kde_grad_sum(q, x, logw, a, b, bw, lm)
        want_g = KREF.kde_grad_sum(q, x, logw, a, b, bw, lm)
        assert g.shape == q.shape and g.dtype == dtype and np.abs(want_g).max() > 1e-3
        close(g, want_g, dtype)


# ----------------------------------------------------------------------------- edges of the cuda_ops forms

def test_large_d_edges_and_blocks(rng, monkeypatch):
    """Empty sizes and all-masked runs as the reference / register kernels; tiny GEMM_TEMP (one run, a few
    queries and coordinates per block) changes nothing but the rounding."""
    d = 100
    x, centres, weights, bw = _kernel_inputs(rng, 2, d, 5, 3, 2, F64)
    np.testing.assert_array_equal(CN.kernel_sum(x, centres[:, :, :0], weights[:, :0], bw, "rbf"), 0.0)
    np.testing.assert_array_equal(CN.kernel_sum_grad(x, centres[:, :, :0], weights[:, :0], bw, "rq"), 0.0)
    assert CN.kernel_sum(x[:, :, :0], centres, weights, bw, "rbf").shape == (2, 0)
    with pytest.raises(ValueError, match="kernel"):
        CN.kernel_sum(x, centres, weights, bw, "cosine")
    q, xk, logw, la, lb, bwk, lm = _kde_inputs(rng, 3, d, 5, 6, 2, F32)
    logw[1] = -np.inf                                   # an empty run: -inf, zero gradient
    xk[2, 0, 3] = np.nan                                # a NaN centre: NaN in its run
    ld = CN.kde_log_density(q, xk, logw, bwk, lm)
    assert np.all(ld[1] == -np.inf) and np.isnan(ld[2]).all() and np.all(np.isfinite(ld[0]))
    g = CN.kde_grad_sum(q, xk, logw, la, lb, bwk, lm)
    assert np.all(g[1] == 0) and np.isnan(g[2]).all()
    assert np.all(CN.kde_log_density(q, xk[:, :, :0], logw[:, :0], bwk, lm) == -np.inf)
    assert CN.kde_grad_sum(q[:, :, :0], xk, logw, None, lb[:, :0], bwk, lm).shape == (3, d, 0)
    with pytest.raises(ValueError, match="la, lb"):
        CN.kde_grad_sum(q, xk, logw, None, None, bwk, lm)
    theta, omega, phase, amp, rate = _trig_inputs(rng, 2, d, 4, F64)
    t = theta.copy()
    xg = rng.normal(size=(2, d, 3))
    w = np.full((2, 3), 1 / 3)
    CN.trig_disc_step(t, omega, phase, amp, rate, xg, w, xg, w, np.zeros(2), np.ones(2))
    assert np.array_equal(t, theta)                     # every run at lr = 0
    assert CN.trig_forward(theta[:, :0], omega[:, :, :0], phase[:, :0], amp[:, :0], xg).tolist() == [[0.0] * 3] * 2
    G = rng.normal(size=(2, d, 0))
    assert CN.coupled_velocity_spatial(G, G, np.ones(2), np.ones(2), np.ones(2), "rbf").shape == (2, d, 0)

    # blocks of one run and one or two queries, a few coordinates per chunk (d = 100: a partial last chunk)
    want = (LREF.kernel_sum_grad(x, centres, weights, bw, "laplacian"), KREF.kde_log_density(q, xk, logw, bwk, lm),
            LREF.trig_grad_x(theta, omega, phase, amp, xg))
    monkeypatch.setattr(cuda_ops, "GEMM_TEMP", 42)
    assert [(r.start, k.start) for r, k in cuda_ops._pair_blocks(2, 5, 21)] == [(0, 0), (0, 2), (0, 4), (1, 0),
                                                                                 (1, 2), (1, 4)]
    close(CN.kernel_sum_grad(x, centres, weights, bw, "laplacian"), want[0], F64)
    got = CN.kde_log_density(q, xk, logw, bwk, lm)
    close(got[0], want[1][0], F32)
    assert np.all(got[1] == -np.inf) and np.isnan(got[2]).all()
    close(CN.trig_grad_x(theta, omega, phase, amp, xg), want[2], F64)
