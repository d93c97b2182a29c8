"""The discriminator optimisers (training.optimizer_disc = sgd | rmsprop | adam).

Twins of torch.optim on the same gradients (the step ops with the engine's per-step coefficients, numpy
and numba); closed forms of the first adaptive step; gradient descent inside an adaptive ensemble is
bitwise plain gradient descent; the config's errors and run identities. Checkpoints with the moments:
tests/test_checkpoint.py; the CUDA C kernel: tests/test_cuda_c.py; Numba-CUDA and the GEMM path under the
simulator: the op registry's adaptive variants and tests/cudasim.
"""

import numpy as np
import pytest

from fastgan.engine import Ensemble
from fastgan.errors import ConfigError
from fastgan.kernels import mlp_numba, mlp_numpy
from fastgan.kernels.deep_mlp import deep_disc_step, deep_loss_grads
from fastgan.optim import DiscOptimiser
from tests.conftest import small_config
from twin_inputs import mlp_inputs

TORCH = {"adam": "Adam", "rmsprop": "RMSprop"}


def _optimiser(kind, n_disc, lr, dtype=np.float64, **keys):
    cfg = small_config(**{"training__optimizer_disc": kind, "training__n_disc": n_disc, "training__lr_disc": lr,
                          **{f"training__optimizer_{k}": v for k, v in keys.items()}})
    return DiscOptimiser([cfg.resolved], np.array([n_disc]), np.array([lr]), np, dtype), cfg.resolved


def _torch_optimiser(torch, kind, params, lr, r):
    tr = r.training
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(tr.optimizer_beta1, tr.optimizer_beta2), eps=tr.optimizer_eps)
    return torch.optim.RMSprop(params, lr=lr, alpha=tr.optimizer_beta2, eps=tr.optimizer_eps)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("kind,keys", [("adam", {}), ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-6}),
                                       ("rmsprop", {}), ("rmsprop", {"beta2": 0.9})],
                         ids=["adam", "adam-odd", "rmsprop", "rmsprop-odd"])
def test_one_layer_step_is_torch_optim_on_the_same_gradients(backend, kind, keys, rng):
    """Eight steps (two iterations of n_disc = 4: the bias corrections' count runs across iterations) of the
    fused step against torch.optim fed the reference's gradients (the L2 term inside, as torch's
    weight_decay adds it), float64; relu d = 2 (numba's own kernel) with the regulariser's cotangent."""
    torch = pytest.importorskip("torch")
    step = (mlp_numpy if backend == "numpy" else mlp_numba).mlp_disc_step
    B, d, W, N, M, lr, l2, n_disc = 1, 2, 37, 19, 13, 0.01, 1 / 37, 4
    w, b, a, xg, xt = mlp_inputs(rng, B, d, W, N, M, np.float64)
    u = 0.1 * rng.normal(size=(B, d, N))
    opt, r = _optimiser(kind, n_disc, lr, **keys)
    state = opt.moments({"w": w, "b": b, "a": a})
    tw = [torch.tensor(x.copy()) for x in (w, b, a)]
    topt = _torch_optimiser(torch, kind, tw, lr, r)
    for it in range(2):
        rates, coef = opt.tables(it)
        for k in range(n_disc):
            grads = mlp_numpy.mlp_loss_grads(*[t.numpy()[None].copy()[0] for t in tw], xg, xt, np.array([l2]), u,
                                             "relu")
            for t, g in zip(tw, grads):
                t.grad = torch.tensor(g)
            topt.step()
            step(w, b, a, xg, xt, rates[k], np.array([l2]), u, "relu", {**state, "coef": coef[k]})
            for x, t in zip((w, b, a), tw):
                np.testing.assert_allclose(x, t.numpy(), rtol=1e-11, atol=1e-13)


def test_deep_step_is_torch_adam_on_the_same_gradients(rng):
    torch = pytest.importorskip("torch")
    B, d, W, n_disc, lr = 1, 2, 9, 3, 0.02
    p = {"W1": rng.normal(size=(B, d, W)) / np.sqrt(d), "b1": 0.1 * rng.normal(size=(B, W)),
         "W2": rng.normal(size=(B, W, W)) / np.sqrt(W), "b2": 0.1 * rng.normal(size=(B, W)),
         "v": rng.normal(size=(B, W)) / np.sqrt(W), "c": rng.normal(size=(B,))}
    xg, xt = rng.normal(size=(B, d, 11)), rng.normal(size=(B, d, 7))
    opt, r = _optimiser("adam", n_disc, lr)
    state = opt.moments(p)
    tp = {k: torch.tensor(v.copy()) for k, v in p.items()}
    topt = _torch_optimiser(torch, "adam", list(tp.values()), lr, r)
    for it in range(2):
        rates, coef = opt.tables(it)
        for k in range(n_disc):
            grads = deep_loss_grads({k_: t.numpy().copy() for k_, t in tp.items()}, xg, xt, np.array([0.01]), None,
                                    "tanh", np)
            for k_, t in tp.items():
                t.grad = torch.tensor(grads[k_])
            topt.step()
            deep_disc_step(p, xg, xt, rates[k], np.array([0.01]), None, "tanh", {**state, "coef": coef[k]})
            for k_ in p:
                np.testing.assert_allclose(p[k_], tp[k_].numpy(), rtol=1e-11, atol=1e-13, err_msg=k_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_first_adaptive_step_moves_every_parameter_by_its_closed_form(dtype, rng):
    """From zero moments, Adam's first step is lr g / (|g| + eps) ~ lr sign(g) for every parameter, and RMSProp's
    lr g / (sqrt(1 - alpha) |g| + eps) ~ 10 lr sign(g): the units' gradient sizes no longer matter."""
    B, d, W, N, M, lr, eps = 1, 3, 29, 17, 11, 0.003, 1e-8
    for kind, root in (("adam", 1.0), ("rmsprop", np.sqrt(1 - 0.99))):
        w, b, a, xg, xt = mlp_inputs(rng, B, d, W, N, M, dtype)
        g = mlp_numpy.mlp_loss_grads(*(x.astype(np.float64) for x in (w, b, a, xg, xt)), np.array([0.0]), None, "tanh")
        opt, _ = _optimiser(kind, 1, lr, dtype)
        state = opt.moments({"w": w, "b": b, "a": a})
        rates, coef = opt.tables(0)
        before = [x.copy() for x in (w, b, a)]
        mlp_numba.mlp_disc_step(w, b, a, xg, xt, rates[0], np.array([0.0]), None, "tanh", {**state, "coef": coef[0]})
        for x, x0, gx in zip((w, b, a), before, g):
            want = lr * gx / (root * np.abs(gx) + eps)
            np.testing.assert_allclose((x0 - x).astype(np.float64), want,
                                       rtol=1e-9 if dtype == np.float64 else 2e-3, atol=1e-15 if dtype == np.float64 else 1e-8)
            big = np.abs(gx) > 1e-3
            np.testing.assert_allclose(np.abs(x0 - x)[big], lr / root, rtol=1e-4 if dtype == np.float64 else 2e-3)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gradient_descent_in_an_adaptive_ensemble_is_plain_gradient_descent(backend):
    """A run with optimizer_disc = sgd packed with Adam runs (the adaptive update with b1 = 0, b2 = 1, eps = 1,
    r = 0) gives bitwise the trajectory it has alone; the Adam runs move differently."""
    sgd = small_config(training__seed=3, precision="float64", training__n_disc=2)
    adam = [small_config(training__seed=s, training__optimizer_disc="adam", training__lr_disc=0.01,
                         training__n_disc=2, precision="float64") for s in (3, 4)]
    alone = Ensemble([sgd], backend).run(progress=False)[0]
    mixed = Ensemble([adam[0], sgd, adam[1]], backend).run(progress=False)
    np.testing.assert_array_equal(mixed[1].particles, alone.particles)
    for k in alone.discriminator:
        np.testing.assert_array_equal(mixed[1].discriminator[k], alone.discriminator[k])
    assert not np.array_equal(mixed[0].particles, alone.particles)


def test_an_adaptive_ensemble_agrees_across_backends():
    cfgs = [small_config(training__seed=s, training__optimizer_disc=k, training__lr_disc=0.01, precision="float64",
                         discriminator__activation=act)
            for s, k, act in ((0, "adam", "relu"), (1, "rmsprop", "relu"), (2, "sgd", "relu"))]
    ref = Ensemble(cfgs, "numpy").run(progress=False)
    got = Ensemble(cfgs, "numba").run(progress=False)
    for x, y in zip(ref, got):
        np.testing.assert_allclose(y.particles, x.particles, rtol=1e-9, atol=1e-11)


def test_config_keys_errors_and_identity():
    plain = small_config()
    assert "optimizer" not in plain.resolved.canonical          # gradient descent: run ids as before the keys
    assert small_config(training__optimizer_disc="sgd").run_id == plain.run_id
    r = small_config(training__optimizer_disc="rmsprop").resolved
    assert r.training.optimizer_beta2 == 0.99 and '"optimizer_beta2":0.99' in r.canonical
    assert small_config(training__optimizer_disc="adam").resolved.training.optimizer_beta2 == 0.999
    assert small_config(training__optimizer_disc="adam").run_id != \
        small_config(training__optimizer_disc="adam", training__optimizer_beta1=0.5).run_id
    bad = [({"training__optimizer_disc": "adagrad"}, "training.optimizer_disc"),
           ({"training__optimizer_disc": "rmsprop", "training__optimizer_beta1": 0.5}, "training.optimizer_beta1"),
           ({"training__optimizer_beta2": 0.9}, "training.optimizer_beta2"),
           ({"training__optimizer_eps": 1e-6}, "training.optimizer_eps"),
           ({"training__optimizer_disc": "adam", "training__optimizer_beta2": 1.0}, "training.optimizer_beta2"),
           ({"discriminator__kind": "fourier", "training__optimizer_disc": "adam"}, "training.optimizer_disc")]
    for keys, name in bad:
        with pytest.raises(ConfigError) as e:
            small_config(**keys).resolved
        assert str(e.value).startswith(name), (keys, str(e.value))


def test_moments_count_in_the_memory_plan():
    from fastgan.families import get
    fam = get("mlp")
    r_sgd, r_adam = small_config().resolved, small_config(training__optimizer_disc="adam").resolved

    class T:
        dim = 2
    assert fam.state_params(r_adam, T) == 3 * fam.state_params(r_sgd, T)
    assert fam.sample_work(r_adam, T) == fam.sample_work(r_sgd, T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_results_flush_to_zero(dtype):
    """A parameter or moment the update would leave subnormal becomes 0 (reference and numba), as float32 on
    the GPU does: Adam with the L2 term decays dead units' weights geometrically, and subnormal arithmetic
    would slow every later op on a CPU."""
    from fastgan.kernels.optim import adapt
    tiny = np.finfo(dtype).tiny
    x = np.array([[2 * tiny, 2 * tiny, 1.0]], dtype=dtype)
    g = np.array([[1.5 * tiny, -tiny, 0.5]], dtype=dtype)
    m, v = np.zeros_like(x), np.zeros_like(x)
    coef = np.array([[0.0, 1.0, 1.0, 0.0]], dtype=dtype)          # gradient descent: x - rate g
    rate = np.ones(1, dtype=dtype)
    adapt(np, x, g, m, v, rate, coef)
    assert x[0, 0] == 0 and x[0, 1] == 3 * tiny and x[0, 2] == dtype(0.5)
    assert m[0, 0] == dtype(1.5 * tiny) and m[0, 2] == dtype(0.5) and not v.any()   # m = g (normal), v = 0
    got = mlp_numba._adapt(dtype(2 * tiny), dtype(1.5 * tiny), dtype(0), dtype(0), dtype(1), coef, 0)
    assert got[0] == 0
    got = mlp_numba._adapt(dtype(1.0), dtype(0.5 * tiny), dtype(0), dtype(0), dtype(1), coef, 0)
    assert got[1] == 0 and got[0] == dtype(1.0)                    # a subnormal moment flushes too
