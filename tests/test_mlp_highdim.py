"""The one-hidden-layer MLP step and grad_x D at any dimension on the numba backend: the fused kernels
below ``mlp_numba.GEMM_MIN_D``, the GEMM form (BLAS matrix products around one map, runs over worker
threads) from there on; both against the NumPy reference at d = 3, 64 and 784 and on both sides of the
threshold, with the regulariser's cotangent, both activations, the adaptive update, sizes that are not
multiples of anything, skipped runs bitwise untouched and results independent of how runs are packed."""

import numpy as np
import pytest

from fastgan.kernels import mlp_numba as NB
from fastgan.kernels import mlp_numpy as REF
from fastgan.kernels.optim import ONE_LAYER

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _inputs(rng, B, d, W, N, M, dtype):
    w = (rng.normal(size=(B, d, W)) / np.sqrt(d)).astype(dtype)
    b = rng.normal(size=(B, W)).astype(dtype)
    a = rng.normal(size=(B, W)).astype(dtype)
    xg = rng.normal(size=(B, d, N)).astype(dtype)
    xt = rng.normal(size=(B, d, M)).astype(dtype)
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype)
    return w, b, a, xg, xt, u


def _step_both(w, b, a, xg, xt, u, act, dtype, opt=None, **kw):
    B = w.shape[0]
    lr = np.resize(np.array([0.05, 0.0, 0.2]), B).astype(dtype)
    l2 = np.resize(np.array([0.01, 0.02, 0.0]), B).astype(dtype)
    p_ref, p_nb = [x.copy() for x in (w, b, a)], [x.copy() for x in (w, b, a)]
    o_ref = None if opt is None else {k: v.copy() for k, v in opt.items()}
    o_nb = None if opt is None else {k: v.copy() for k, v in opt.items()}
    REF.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act, opt=o_ref)
    NB.mlp_disc_step(*p_nb, xg, xt, lr, l2, u, act, opt=o_nb, **kw)
    return p_ref, p_nb, o_ref, o_nb


CASES = [(3, np.float64), (3, np.float32), (64, np.float64), (64, np.float32), (784, np.float32)]


@pytest.mark.parametrize("d,dtype", CASES)
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("with_u", [False, True])
def test_step_and_grad_x_against_the_reference(rng, d, dtype, act, with_u):
    B, W, N, M = 3, (131 if d == 784 else 67), 29, 23
    w, b, a, xg, xt, u = _inputs(rng, B, d, W, N, M, dtype)
    u = u if with_u else None
    p_ref, p_nb, _, _ = _step_both(w, b, a, xg, xt, u, act, dtype)
    for r_, n_, orig in zip(p_ref, p_nb, (w, b, a)):
        assert n_.dtype == dtype
        np.testing.assert_allclose(n_, r_, **TOL[dtype])
        assert np.array_equal(n_[1], orig[1])                      # lr = 0: bitwise untouched
        assert not np.array_equal(n_[0], orig[0])
    np.testing.assert_allclose(NB.mlp_grad_x(w, b, a, xg, act), REF.mlp_grad_x(w, b, a, xg, act), **TOL[dtype])


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_dispatch_on_both_sides_of_the_threshold(rng, monkeypatch, act):
    """d = GEMM_MIN_D - 1 takes the fused kernels, d = GEMM_MIN_D the GEMM form; both agree with the
    reference (float64)."""
    calls = []
    real_step, real_gx = NB._step_gemm, NB._grad_x_gemm
    monkeypatch.setattr(NB, "_step_gemm", lambda *a: calls.append("step") or real_step(*a))
    monkeypatch.setattr(NB, "_grad_x_gemm", lambda *a: calls.append("grad_x") or real_gx(*a))
    for d, gemm in ((NB.GEMM_MIN_D - 1, False), (NB.GEMM_MIN_D, True)):
        calls.clear()
        w, b, a, xg, xt, u = _inputs(rng, 3, d, 45, 17, 19, np.float64)
        p_ref, p_nb, _, _ = _step_both(w, b, a, xg, xt, u, act, np.float64)
        for r_, n_ in zip(p_ref, p_nb):
            np.testing.assert_allclose(n_, r_, **TOL[np.float64])
        np.testing.assert_allclose(NB.mlp_grad_x(w, b, a, xg, act), REF.mlp_grad_x(w, b, a, xg, act),
                                   **TOL[np.float64])
        assert calls == (["step", "grad_x"] if gemm else []), (d, calls)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_adaptive_update_on_the_gemm_form(rng, act):
    """Adam-like moments (per-run coefficients, one run gradient descent) on the GEMM form at d = 64:
    parameters and moments to rounding of the reference; a skipped run untouched."""
    B, d, W, N, M = 3, 64, 37, 21, 15
    w, b, a, xg, xt, u = _inputs(rng, B, d, W, N, M, np.float64)
    opt = {k: np.abs(rng.normal(size=(w if k.endswith("w") else b).shape)) * (0.1 if k[0] == "v" else 1.0)
           for k in ONE_LAYER}
    opt["coef"] = np.array([[0.9, 0.999, 1e-8, 1.2], [0.0, 0.99, 1e-8, 1.0], [0.0, 1.0, 1.0, 0.0]])
    p_ref, p_nb, o_ref, o_nb = _step_both(w, b, a, xg, xt, u, act, np.float64, opt=opt)
    for k in ONE_LAYER:
        np.testing.assert_allclose(o_nb[k], o_ref[k], **TOL[np.float64], err_msg=k)
        assert np.array_equal(o_nb[k][1], opt[k][1])
    for r_, n_ in zip(p_ref, p_nb):
        np.testing.assert_allclose(n_, r_, **TOL[np.float64])


def test_results_do_not_depend_on_how_runs_are_packed(rng):
    """A run stepped alone (calling thread, BLAS's own threads) and inside ensembles of 2 and 5 (worker
    threads, one-thread BLAS; chunks of runs) gives the same numbers bitwise."""
    d, W, N, M = 40, 53, 31, 27
    w, b, a, xg, xt, u = _inputs(rng, 5, d, W, N, M, np.float32)
    lr, l2 = np.full(5, 0.1, np.float32), np.full(5, 0.01, np.float32)
    out = {}
    for B in (1, 2, 5):
        p = [x[:B].copy() for x in (w, b, a)]
        NB.mlp_disc_step(*p, xg[:B], xt[:B], lr[:B], l2[:B], u[:B], "tanh")
        out[B] = [x[0] for x in p] + [NB.mlp_grad_x(w[:B], b[:B], a[:B], xg[:B], "relu")[0]]
    for B in (2, 5):
        for x, y in zip(out[1], out[B]):
            assert np.array_equal(x, y)


def test_chunks_of_runs_bound_the_temporaries(rng, monkeypatch):
    """With a temporaries bound that fits one run per chunk the step gives the same numbers."""
    w, b, a, xg, xt, u = _inputs(rng, 4, 24, 33, 13, 11, np.float64)
    lr, l2 = np.full(4, 0.1), np.full(4, 0.01)
    p1 = [x.copy() for x in (w, b, a)]
    NB.mlp_disc_step(*p1, xg, xt, lr, l2, u, "relu")
    monkeypatch.setattr(NB, "GEMM_TEMP", 1)
    p2 = [x.copy() for x in (w, b, a)]
    NB.mlp_disc_step(*p2, xg, xt, lr, l2, u, "relu")
    for x, y in zip(p1, p2):
        np.testing.assert_array_equal(x, y)


def test_a_high_dimensional_run_agrees_across_backends():
    """A whole run at d = 64 (points on the sphere, gradient regulariser on, float64): numba's GEMM form
    against the NumPy reference, trajectory and observables to rounding."""
    import fastgan
    cfg = fastgan.default_config(**{
        "precision": "float64", "target.kind": "sphere", "target.dim": 64, "target.n_modes": 10,
        "target.std": 0.05, "generator.n_particles": 23, "discriminator.width": 96, "training.n_iterations": 12,
        "training.beta": 0.1, "training.n_disc": 2, "record.every": 4, "record.snapshots": 2})
    ref, fast = (fastgan.simulate_ensemble([cfg], backend=b)[0] for b in ("numpy", "numba"))
    assert ref.particles.shape[-1] == 64 and not ref.diverged
    np.testing.assert_allclose(fast.particles, ref.particles, rtol=1e-9, atol=1e-11)
    for k, v in ref.observables.items():
        np.testing.assert_allclose(fast.observables[k], v, rtol=1e-8, atol=1e-10, err_msg=k)


@pytest.mark.parametrize("coupling", ["coarse", "spatial"])
def test_a_run_at_d_784_agrees_across_backends(coupling):
    """d = 784 end to end (points on the sphere, the regulariser on, a coarse or a spatial coupling, every
    observable of d >= 3): numba against the reference, float64."""
    import fastgan
    cfg = fastgan.default_config(**{
        "precision": "float64", "target.kind": "sphere", "target.dim": 784, "target.n_modes": 7,
        "target.std": 0.05, "generator.n_particles": 11, "discriminator.width": 24, "training.n_iterations": 5,
        "training.beta": 0.1, "training.n_disc": 2, "record.every": 2, "record.snapshots": 2,
        "coupling.kind": coupling, "coupling.ratio": 0.2})
    ref, fast = (fastgan.simulate_ensemble([cfg], backend=b)[0] for b in ("numpy", "numba"))
    assert ref.particles.shape[-1] == 784 and not ref.diverged
    np.testing.assert_allclose(fast.particles, ref.particles, rtol=1e-9, atol=1e-11)
    assert {"cosine_mode_collapse", "particle_cosine", "runaway"} <= set(ref.observables)
    for k, v in ref.observables.items():
        np.testing.assert_allclose(fast.observables[k], v, rtol=1e-8, atol=1e-10, err_msg=k)


def test_a_forked_child_steps_with_its_own_worker_threads(rng):
    """After the parent has used the GEMM form's worker threads, a forked child (no threads of them) still
    steps, with the parent's numbers."""
    import multiprocessing
    w, b, a, xg, xt, u = _inputs(rng, 3, 16, 33, 13, 11, np.float64)
    lr, l2 = np.full(3, 0.1), np.full(3, 0.01)
    p = [x.copy() for x in (w, b, a)]
    NB.mlp_disc_step(*p, xg, xt, lr, l2, u, "relu")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:                   # a child waiting on threads it has not got would hang: bounded
        child = pool.apply_async(_step_copy, ((w, b, a, xg, xt, lr, l2, u),)).get(timeout=120)
    for x, y in zip(p, child):
        np.testing.assert_array_equal(x, y)


def _step_copy(args):
    w, b, a, xg, xt, lr, l2, u = args
    p = [x.copy() for x in (w, b, a)]
    NB.mlp_disc_step(*p, xg, xt, lr, l2, u, "relu")
    return p
