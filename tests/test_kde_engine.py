"""The kde discriminator family in the engine, the CLI and the run file (Sinn & Rawat's Kernel GAN and
the NSGAN of the fitting-to-collapse paper)."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

import fastgan
from fastgan.engine import simulate_ensemble
from fastgan.families.kde_maths import steepness_1d

TWO_MODES_1D = {"target.kind": "mixture", "target.means": [[-1.0], [1.0]], "target.std": 0.1,
                "generator.n_particles": 120, "generator.init_mean": [0.0], "generator.init_std": 0.3,
                "discriminator.kind": "kde", "discriminator.model": "nsgan", "discriminator.bandwidth": 0.1,
                "training.n_iterations": 200, "record.every": 10, "record.snapshots": 0,
                "record.early_stop": True, "record.warmup": 20, "precision": "float64"}


def _cfg(**kw):
    base = dict(TWO_MODES_1D)
    base.update({k.replace("__", "."): v for k, v in kw.items()})
    return fastgan.default_config(**base)


def test_nsgan_fits_both_modes_uncoupled_and_the_early_stop_rule_fires_when_coupled():
    """Fitting to collapse: uncoupled particles follow grad log d* onto both modes (q_d decays, the steepness of
    the seed -> particle map grows: the fitting phase); strongly NTK-coupled ones cannot split, collapse
    onto one mode, and q_d stays above k_d / (2 sigma) = 2 / 0.2: the rule fires after the warm-up."""
    free, coupled = simulate_ensemble([_cfg(), _cfg(coupling__ratio=0.3)], backend="numpy", progress=False)
    assert free.average_last("mode_collapse", 4) < 0.05 and coupled.average_last("mode_collapse", 4) > 0.6
    assert free.observables["q_d"][-1] < 0.1 * free.observables["q_d"][0]
    assert free.observables["steepness"][-1] > 100 * free.observables["steepness"][0]
    assert free.provenance["early_stop_at"] == -1
    assert coupled.provenance["early_stop_at"] == 30 and coupled.provenance["early_stop_reason"] == "q_d"
    assert coupled.provenance["early_stop_threshold"] == pytest.approx(10.0)


def test_steepness_of_a_linear_map_and_its_seed_order():
    z = np.random.default_rng(0).normal(size=50)
    X = np.stack([3.0 * z, -0.5 * z])[:, None, :]                       # (B = 2, d = 1, N)
    np.testing.assert_allclose(steepness_1d(X, np.stack([z, z])), [3.0, 0.5], rtol=1e-12)
    X[0, 0, :2] = X[0, 0, 1::-1]                                        # a fold: two particles swap places
    assert steepness_1d(X, np.stack([z, z]))[0] > 3.0


@pytest.mark.slow
def test_kernel_gan_with_a_schedule_covers_every_mode(tmp_path):
    """The Sinn & Rawat toy at a small scale: a 3 x 3 grid, bandwidth halved twice with its own steps.
    The run file records the bandwidth in force at every snapshot and the kde observables."""
    out = tmp_path / "kg.h5"
    cmd = [sys.executable, "-m", "fastgan", "run", "examples/kde_mog.toml", "--out", str(out), "--backend", "numpy",
           "--set", "target.n_modes=9", "--set", "generator.n_particles=90", "--set", "training.batch_size=90",
           "--set", "discriminator.schedule=[[0, 0.4, 8.0], [150, 0.2, 1.0], [300, 0.1, 0.4]]",
           "--set", "training.n_iterations=450", "--set", "record.snapshots=[0, 100, 200, 449]"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "kg.png").exists()
    with h5py.File(out) as f:
        obs = f["observables"]
        assert obs["modes_covered"][-1] == 9 and obs["high_quality_fraction"][-1] > 0.8
        k = obs["kernel_gan_objective"][()]
        assert np.all(np.isfinite(k)) and k[-1] < k[0] and k[-1] > -np.log(4) - 1e-3
        assert np.all(np.isfinite(obs["q_d"][()]))
        np.testing.assert_allclose(f["discriminator_snapshots/bandwidth"][()][:, 0], [0.4, 0.4, 0.2, 0.1])
        assert f["discriminator/data"].shape == (90, 2)


def test_a_run_does_not_depend_on_its_ensemble():
    a = _cfg(training__n_iterations=40, discriminator__model="kernel_gan", discriminator__floor=1e-3)
    others = [_cfg(training__n_iterations=40, discriminator__model="kernel_gan", training__seed=5),
              _cfg(training__n_iterations=40, discriminator__model="kernel_gan", discriminator__bandwidth=0.3)]
    alone = fastgan.simulate(a, backend="numpy", progress=False)
    packed = simulate_ensemble([others[0], a, others[1]], backend="numpy", progress=False)[1]
    for k in alone.observables:
        np.testing.assert_array_equal(alone.observables[k], packed.observables[k])


@pytest.mark.parametrize("override,key", [
    ("discriminator.schedule=[[0, 0.5], [10, [0.2, 0.1]]]", "discriminator.schedule"),
    ("discriminator.schedule=[[10, 0.5], [5, 0.2]]", "discriminator.schedule"),
    ("discriminator.schedule=[[0, -0.5]]", "discriminator.schedule"),
    ("discriminator.schedule=[[0, 0.5, 0.0]]", "discriminator.schedule"),
    ("discriminator.data_density=exact", "discriminator.data_density"),
    ("training.lam=0.1", "training.lam"),
    ("discriminator.floor=-1", "discriminator.floor"),
    ("discriminator.model=wgan", "discriminator.model"),
    ("record.q_modes=0", "record.q_modes"),
])
def test_bad_kde_config_names_the_key(tmp_path, override, key):
    out = tmp_path / "x.h5"
    out.write_bytes(b"keep")
    cmd = [sys.executable, "-m", "fastgan", "run", "examples/kde_mog.toml", "--out", str(out), "--force",
           "--set", override]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], proc.stderr
    assert out.read_bytes() == b"keep"


def test_schedule_only_for_kde_and_exact_needs_a_density():
    from fastgan.errors import ConfigError
    with pytest.raises(ConfigError, match="discriminator.schedule"):
        fastgan.default_config(**{"discriminator.schedule": [[0, 0.5]]})
    with pytest.raises(ConfigError, match="discriminator.data_density"):
        fastgan.default_config(**{"discriminator.kind": "kde", "discriminator.model": "nsgan",
                                  "discriminator.data_density": "exact", "target.kind": "points",
                                  "target.points": [[0.0, 0.0], [1.0, 1.0]]})


@pytest.mark.parametrize("model,precision", [("kernel_gan", "float64"), ("nsgan", "float64"), ("kernel_gan", "float32")])
def test_numba_backend_follows_numpy(model, precision):
    """200 iterations on a 2-D mixture with a bandwidth-mixture schedule and NTK coupling: the numba
    twins give the reference trajectory within 1e-9 (float64) or float32 rounding."""
    cfg = fastgan.default_config(**{
        "discriminator.kind": "kde", "discriminator.model": model, "discriminator.bandwidth": [0.3, 1.0],
        "discriminator.schedule": [[0, [0.3, 1.0]], [100, [0.2, 0.6]]], "generator.n_particles": 37,
        "training.batch_size": 41, "training.n_iterations": 200, "record.every": 50, "record.snapshots": 3,
        "precision": precision, "coupling.ratio": 0.05, "generator.init_std": 1.0, "target.n_modes": 4})
    ref = fastgan.simulate(cfg, backend="numpy", progress=False)
    nb = fastgan.simulate(cfg, backend="numba", progress=False)
    tol = dict(rtol=1e-9, atol=1e-9) if precision == "float64" else dict(rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(nb.particles, ref.particles, **tol)
    assert np.abs(ref.particles[-1] - ref.particles[0]).max() > 0.1
    for k in ("kernel_gan_objective", "q_d"):
        np.testing.assert_allclose(nb.observables[k], ref.observables[k], rtol=1e-6 if precision == "float64" else 1e-2)


def test_data_resample_draws_a_fresh_batch_every_iteration():
    """Sinn & Rawat Algorithm 1 line 3 (discriminator.data_resample): for a target whose every draw is the
    same point, the redrawn batch has the fixed sample's KDE and the run is the fixed-sample run; on a
    two-mode mixture the redrawn data change the trajectory, identically on every backend and whatever
    the ensemble; keys: the fixed-sample run ids do not change."""
    one = {"target.kind": "points", "target.points": [[0.5, -0.2]], "generator.n_particles": 30,
           "generator.init_mean": [0.0, 0.0], "generator.init_std": 0.5, "discriminator.kind": "kde",
           "discriminator.bandwidth": 0.4, "training.batch_size": 17, "training.n_iterations": 60,
           "record.every": 20, "record.snapshots": 3, "precision": "float64"}
    fixed = fastgan.simulate(fastgan.default_config(**one), backend="numpy", progress=False)
    redrawn = fastgan.simulate(fastgan.default_config(**one, **{"discriminator.data_resample": True}), backend="numpy",
                               progress=False)
    np.testing.assert_allclose(redrawn.particles, fixed.particles, rtol=0, atol=1e-12)
    assert np.abs(fixed.particles[-1] - fixed.particles[0]).max() > 0.05

    def mixture(**kw):
        return fastgan.default_config(**{**TWO_MODES_1D, "record.early_stop": False, "training.n_iterations": 60,
                                         "discriminator.model": "kernel_gan", "training.batch_size": 50,
                                         "record.snapshots": 2, **kw})
    a = fastgan.simulate(mixture(), backend="numpy", progress=False)
    cfg = mixture(**{"discriminator.data_resample": True})
    b = fastgan.simulate(cfg, backend="numpy", progress=False)
    assert np.all(np.isfinite(b.particles)) and np.abs(b.particles[-1] - a.particles[-1]).max() > 1e-3
    nb = fastgan.simulate(cfg, backend="numba", progress=False)
    np.testing.assert_allclose(nb.particles, b.particles, rtol=1e-9, atol=1e-9)
    packed = simulate_ensemble([mixture(**{"discriminator.data_resample": True, "training.seed": 9}), cfg],
                               backend="numpy", progress=False)[1]
    np.testing.assert_array_equal(packed.particles, b.particles)
    assert cfg.run_id != mixture().run_id
    assert "data_resample" not in mixture().resolved.as_dict()["discriminator"]


def test_data_resample_needs_a_kde_sample():
    from fastgan.errors import ConfigError
    with pytest.raises(ConfigError, match="discriminator.data_resample"):
        fastgan.default_config(**{"discriminator.data_resample": True})                  # mlp
    with pytest.raises(ConfigError, match="discriminator.data_resample"):
        _cfg(discriminator__data_resample=True)                                          # nsgan: exact density
    assert _cfg(discriminator__data_resample=True, discriminator__data_density="kde").discriminator.data_resample


def test_kde_runs_with_and_without_a_target_density_are_never_packed_together():
    """A target with widths is represented by a drawn sample of batch_size points, a point set by its K
    points: different data shapes, so different ensembles (they used to share one and fail)."""
    from fastgan.sweep_spec import RunSpec, plan
    keys = {"discriminator.kind": "kde", "target.kind": "mixture", "target.means": [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
            "generator.n_particles": 8, "training.n_iterations": 3, "record.snapshots": 0}
    runs = [RunSpec((i,), 0, fastgan.default_config(**{**keys, "target.std": s})) for i, s in enumerate((0.1, 0.0))]
    assert [len(e) for e in plan(runs)] == [1, 1]
    with pytest.raises(ValueError, match="these differ: target density"):
        simulate_ensemble([r.config for r in runs], backend="numpy", progress=False)
    for r in runs:
        assert np.all(np.isfinite(fastgan.simulate(r.config, backend="numpy", progress=False).particles))
