"""Engine: packing independence (bitwise), reproducibility, n_disc masking, divergence handling."""

import numpy as np
import pytest

import fastgan
from conftest import small_config


def _vary(i):
    return {"training__seed": 100 + i, "coupling__ratio": [0.0, 0.05, 0.2, 1.0][i % 4],
            "training__n_disc": 1 + i % 4, "training__lr_disc": 0.1 + 0.05 * i, "training__lr_gen": 0.01 * (1 + i % 3),
            "training__beta": [0.0, 0.5][i % 2], "generator__init_std": 0.1 + 0.01 * i}


def _same(a, b):
    assert np.array_equal(a.particles, b.particles)
    for k in a.observables:
        np.testing.assert_array_equal(a.observables[k], b.observables[k])
    for k in a.discriminator:
        assert np.array_equal(a.discriminator[k], b.discriminator[k])
    assert a.diverged_at == b.diverged_at


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_run_bitwise_identical_alone_and_in_ensemble(backend, activation):
    target = small_config(training__seed=7, training__n_disc=3, coupling__ratio=0.1, training__beta=0.3,
                          discriminator__activation=activation)
    others = [small_config(discriminator__activation=activation, **_vary(i)) for i in range(7)]
    alone = fastgan.simulate(target, backend=backend)
    packed = fastgan.simulate_ensemble(others[:3] + [target] + others[3:], backend=backend)
    _same(alone, packed[3])
    again = fastgan.simulate(target, backend=backend)          # second invocation, same seed
    _same(alone, again)


def test_deep_mlp_bitwise_in_ensemble():
    kw = dict(discriminator__depth=3, discriminator__width=16, training__n_iterations=10, training__lr_disc=0.02)
    target = small_config(training__seed=5, training__beta=0.2, **kw)
    others = [small_config(training__seed=s, training__n_disc=1 + s % 3, **kw) for s in range(3)]
    alone = fastgan.simulate(target, backend="numpy")
    assert not alone.diverged
    packed = fastgan.simulate_ensemble([others[0], target, others[1], others[2]], backend="numpy")
    _same(alone, packed[1])


def test_seed_changes_trajectory():
    a = fastgan.simulate(small_config(training__seed=1), backend="numpy")
    b = fastgan.simulate(small_config(training__seed=2), backend="numpy")
    assert not np.array_equal(a.particles, b.particles)


def test_divergence_is_flagged_per_run_and_others_continue():
    good = small_config(training__seed=1, training__lr_gen=0.01)
    bad = small_config(training__seed=1, training__lr_gen=1e30, training__lr_disc=1e3)
    res = fastgan.simulate_ensemble([good, bad], backend="numpy")
    assert not res[0].diverged and res[0].diverged_at == -1
    assert res[1].diverged and 1 <= res[1].diverged_at <= good.training.n_iterations
    assert np.all(np.isfinite(res[1].particles))                 # frozen at the last finite state
    assert np.array_equal(res[1].particles[-1], res[1].particles[-2]) or res[1].diverged_at > res[1].particles_time[-2]
    t = res[1].time
    after = t >= res[1].diverged_at
    assert np.all(np.isnan(res[1].observables["mode_collapse"][after]))
    assert np.all(res[1].histograms["nearest_mode"][after] == -1)
    assert np.all(np.isfinite(res[0].observables["mode_collapse"]))
    alone = fastgan.simulate(good, backend="numpy")
    _same(alone, res[0])


def test_record_schedule_and_snapshots():
    cfg = small_config(training__n_iterations=23, record__every=5, record__snapshots=[0, 7, 23])
    r = fastgan.simulate(cfg, backend="numpy")
    assert list(r.time) == [0, 5, 10, 15, 20, 23]
    assert list(r.particles_time) == [0, 7, 23]
    assert r.particles.shape == (3, 24, 2)
    assert r.disc_snapshots["w"].shape == (3, 64, 2)
    np.testing.assert_array_equal(r.disc_snapshots["w"][-1], r.discriminator["w"])
    for k in ("mode_collapse", "log_likelihood", "nearest_mode_distance", "modes_covered",
              "high_quality_fraction", "kl_uniform"):
        assert r.observables[k].shape == (6,)
    assert r.histograms["nearest_mode"].shape == (6, 8)
    assert np.all(r.histograms["nearest_mode"].sum(1) == 24)
    # at t = 0 every particle sits near the 45-degree mode (index 1): full collapse
    assert r.observables["mode_collapse"][0] == pytest.approx(np.log(8))
    assert r.histograms["nearest_mode"][0, 1] == 24


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_numba_matches_numpy_over_200_iterations(activation):
    """Whole-trajectory agreement (backends issue): 1e-9 in float64, float32 rounding in float32."""
    for precision, atol in (("float64", 1e-9), ("float32", 2e-4)):
        cfg = small_config(precision=precision, training__n_iterations=200, training__beta=0.3,
                           coupling__ratio=0.1, discriminator__activation=activation, record__snapshots=5)
        a = fastgan.simulate(cfg, backend="numpy")
        b = fastgan.simulate(cfg, backend="numba")
        assert not a.diverged and not b.diverged
        np.testing.assert_allclose(b.particles, a.particles, rtol=0, atol=atol)
        np.testing.assert_allclose(b.observables["nearest_mode_distance"], a.observables["nearest_mode_distance"],
                                   rtol=0, atol=10 * atol)
        assert np.abs(a.particles[-1] - a.particles[0]).max() > 0.1


@pytest.mark.slow
def test_numba_matches_numpy_at_paper_size():
    """200 iterations at N = 200, W = 2048 (float64): the fused kernels agree with the reference."""
    cfg = fastgan.default_config(**{"precision": "float64", "training.n_iterations": 200, "coupling.ratio": 0.05,
                                    "record.snapshots": 3, "record.discriminator": False})
    a = fastgan.simulate(cfg, backend="numpy")
    b = fastgan.simulate(cfg, backend="numba")
    np.testing.assert_allclose(b.particles, a.particles, rtol=0, atol=1e-9)


def test_an_ensemble_of_different_shapes_names_what_differs():
    from fastgan.engine import Ensemble
    a = small_config()
    with pytest.raises(ValueError, match="these differ: discriminator.width"):
        Ensemble([a, a.replace(**{"discriminator.width": 32})], "numpy")
    with pytest.raises(ValueError, match="these differ: generator.n_particles"):
        Ensemble([a, a.replace(**{"generator.n_particles": 12})], "numpy")
    with pytest.raises(ValueError, match="these differ: discriminator.kind"):
        Ensemble([a, a.replace(**{"discriminator.kind": "fourier"})], "numpy")
