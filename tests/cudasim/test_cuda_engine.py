"""A whole (tiny) simulation on the cuda backend under the simulator matches the NumPy reference."""

import numpy as np
import pytest

import fastgan
from fastgan.kernels import cuda_ops, registry
from fastgan.kernels.ops import load_ops


def _cfg(**kw):
    base = {"discriminator.width": 16, "generator.n_particles": 12, "training.n_iterations": 6,
            "record.every": 2, "record.snapshots": 3, "precision": "float64", "training.n_disc": 2,
            "training.beta": 0.5, "coupling.ratio": 0.1, "training.seed": 3}
    base.update(kw)
    return fastgan.default_config(**base)


def test_cuda_op_table_under_simulator():
    ops = load_ops("cuda")
    assert ops.name == "cuda" and ops.xp is np
    # under the simulator every MLP op is the Numba-CUDA kernel (never cuda_raw / CuPy)
    assert all(cuda_ops.gpu_override(op) == (None, "") for op in registry.OPS)
    assert all(cuda_ops.CHOSEN[k] == f"cuda_numba.{k}" for k in ("mlp_disc_step", "mlp_grad_x", "coupled_velocity_gram"))
    assert ops.chosen == cuda_ops.CHOSEN


@pytest.mark.parametrize("activation,coupling", [("relu", "coarse"), ("tanh", "spatial")])
def test_short_simulation_matches_numpy(tiny_launch, activation, coupling):
    tiny_launch(block=5, max_blocks=3, sample_tile=7, unit_tile=6, pair_tile=5)
    cfg = _cfg(**{"discriminator.activation": activation, "coupling.kind": coupling})
    ref = fastgan.simulate(cfg, backend="numpy")
    got = fastgan.simulate(cfg, backend="cuda")
    assert got.provenance["backend"] == "cuda"
    assert not ref.diverged and not got.diverged
    assert got.particles.shape == ref.particles.shape == (3, 12, 2)
    np.testing.assert_allclose(got.particles, ref.particles, rtol=0, atol=1e-9)
    assert not np.array_equal(ref.particles[0], ref.particles[-1])       # the particles did move
    for k in ref.discriminator:
        np.testing.assert_allclose(got.discriminator[k], ref.discriminator[k], rtol=1e-9, atol=1e-9)
    for k in ref.histograms:
        np.testing.assert_array_equal(got.histograms[k], ref.histograms[k])
    for k in ref.observables:
        np.testing.assert_allclose(got.observables[k], ref.observables[k], rtol=1e-9, atol=1e-12)


def test_80_iteration_trajectory_matches_numpy(tiny_launch):
    """A whole trajectory on the cuda backend (simulator): 80 iterations, float64, within 1e-9 of the NumPy
    reference (tiny sizes: the simulator runs every thread in Python, six launches per iteration)."""
    tiny_launch(block=8, max_blocks=4, sample_tile=8, unit_tile=8, pair_tile=8)
    cfg = _cfg(**{"discriminator.width": 8, "generator.n_particles": 8, "training.n_iterations": 80,
                  "training.n_disc": 1, "training.beta": 0.0, "record.every": 20, "record.snapshots": 4})
    ref = fastgan.simulate(cfg, backend="numpy")
    got = fastgan.simulate(cfg, backend="cuda")
    assert not ref.diverged and not got.diverged
    np.testing.assert_allclose(got.particles, ref.particles, rtol=0, atol=1e-9)
    assert np.abs(ref.particles[-1] - ref.particles[0]).max() > 0.1      # a real trajectory


@pytest.mark.parametrize("kind", ["fourier", "rff", "kernel"])
def test_linear_discriminator_simulation_matches_numpy(tiny_launch, kind):
    """Algorithm 2 and the isolated points model on the cuda backend (simulator) follow the reference."""
    tiny_launch(block=5, max_blocks=3, sample_tile=7, unit_tile=6, pair_tile=5)
    base = {"discriminator.kind": kind, "generator.n_particles": 5, "training.n_iterations": 12, "record.every": 4,
            "record.snapshots": 3, "precision": "float64", "training.lr_disc": 0.05, "training.lr_gen": 0.05}
    if kind == "fourier":
        base.update({"discriminator.freq_count": 4, "training.lr_disc": 1e-3, "coupling.ratio": 0.2,
                     "training.n_disc": 2})
    else:
        base.update({"target.kind": "circle", "discriminator.n_features": 10, "discriminator.history": 7,
                     "discriminator.bandwidth": [0.5, 2.0], "training.update_order": "simultaneous"})
    cfg = fastgan.default_config(**base)
    ref = fastgan.simulate(cfg, backend="numpy")
    got = fastgan.simulate(cfg, backend="cuda")
    np.testing.assert_allclose(got.particles, ref.particles, rtol=0, atol=1e-9)
    assert np.abs(ref.particles[-1] - ref.particles[0]).max() > 1e-4
    for k in ref.observables:
        np.testing.assert_allclose(got.observables[k], ref.observables[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("model", ["kernel_gan", "nsgan"])
def test_kde_simulation_matches_numpy(tiny_launch, model):
    """The kde family (Sinn & Rawat; fitting to collapse) on the cuda backend (simulator): a bandwidth-mixture schedule
    with per-phase steps, NTK coupling, KDE data density."""
    tiny_launch(block=5, max_blocks=3, sample_tile=7, unit_tile=6, pair_tile=5)
    cfg = fastgan.default_config(**{
        "discriminator.kind": "kde", "discriminator.model": model, "discriminator.bandwidth": [0.4, 1.0],
        "discriminator.schedule": [[0, [0.4, 1.0], 0.5], [4, [0.3, 0.7], 0.2]], "discriminator.floor": 1e-3,
        "discriminator.data_density": "kde", "generator.n_particles": 7, "training.batch_size": 9,
        "training.n_iterations": 8, "record.every": 4, "record.snapshots": 3, "precision": "float64",
        "coupling.ratio": 0.1, "generator.init_std": 1.0})
    ref = fastgan.simulate(cfg, backend="numpy")
    got = fastgan.simulate(cfg, backend="cuda")
    np.testing.assert_allclose(got.particles, ref.particles, rtol=0, atol=1e-9)
    assert np.abs(ref.particles[-1] - ref.particles[0]).max() > 1e-3
    for k in ref.observables:
        np.testing.assert_allclose(got.observables[k], ref.observables[k], rtol=1e-9, atol=1e-12)


def test_adaptive_optimisers_match_numpy(tiny_launch):
    """Adam and RMSProp in one ensemble (the moments on the device, the coefficients of every sub-step from
    the iteration) against the NumPy reference (gradient descent packed with them: tests/test_optimizers.py)."""
    tiny_launch(block=5, max_blocks=3, sample_tile=7, unit_tile=6, pair_tile=5)
    cfgs = [_cfg(**{"training.optimizer_disc": k, "training.lr_disc": 0.01, "training.seed": s,
                    "discriminator.width": 8, "generator.n_particles": 8, "training.n_iterations": 2,
                    "record.every": 2, "record.snapshots": 2})
            for s, k in ((3, "adam"), (4, "rmsprop"))]
    ref = fastgan.simulate_ensemble(cfgs, backend="numpy")
    got = fastgan.simulate_ensemble(cfgs, backend="cuda")
    for x, y in zip(ref, got):
        assert not x.diverged and not y.diverged
        np.testing.assert_allclose(y.particles, x.particles, rtol=0, atol=1e-9)
        for k in x.discriminator:
            np.testing.assert_allclose(y.discriminator[k], x.discriminator[k], rtol=1e-9, atol=1e-9)
