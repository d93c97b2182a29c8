"""Fourier / rff / exact-kernel discriminators: config contract, targets, observables, CLI, packing."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastgan
from fastgan.families.kernel import default_history
from fastgan.engine import simulate_ensemble
from fastgan.errors import ConfigError
from fastgan.families.ipm import excess_mass, wasserstein2
from fastgan.targets import make_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("override,key", [
    ({"discriminator.kind": "rff", "target.kind": "circle", "training.beta": 0.1}, "training.beta"),
    ({"training.lam": 0.1}, "training.lam"),
    ({"discriminator.kind": "kernel", "target.kind": "circle", "generator.masses": [1.0, 2.0]}, "generator.masses"),
    ({"generator.masses": [1.0] * 200}, "generator.masses"),
    ({"discriminator.kind": "rff", "target.kind": "circle", "discriminator.kernel": "laplacian"}, "discriminator.kernel"),
    ({"discriminator.kind": "rff", "target.kind": "circle", "discriminator.n_features": 7}, "discriminator.n_features"),
    ({"discriminator.kind": "kernel"}, "target.std"),
    ({"discriminator.kind": "kernel", "target.kind": "circle", "target.std": 0.1}, "target.std"),
    ({"generator.n_particles": 2, "generator.init_points": [[0.0, 0.0]]}, "generator.init_points"),
    ({"generator.n_particles": 1, "generator.init_points": [[0.0, 0.0, 1.0]]}, "generator.init_points"),
    ({"discriminator.kind": "fourier", "target.kind": "sphere", "target.dim": 4}, "discriminator.freq_count"),
    ({"discriminator.kind": "fourier", "discriminator.freq_min": 5.0, "discriminator.freq_max": 1.0}, "discriminator.freq_min"),
    ({"target.dim": 3}, "target.dim"),
    ({"target.kind": "circle", "target.n_modes": 3, "target.masses": [1.0, 2.0]}, "target.masses"),
    ({"discriminator.kind": "kernel", "target.kind": "circle", "discriminator.bandwidth": [1.0, -2.0]}, "discriminator.bandwidth"),
    ({"discriminator.kind": "kernel", "target.kind": "circle", "discriminator.bandwidth": "wide"}, "discriminator.bandwidth"),
    ({"discriminator.kind": "svm"}, "discriminator.kind"),
    ({"training.update_order": "random"}, "training.update_order"),
])
def test_bad_linear_config_names_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        fastgan.default_config(**override)
    assert e.value.key == key and "\n" not in str(e.value)


def test_defaults_per_family_and_identity():
    r = fastgan.default_config().resolved.as_dict()
    assert (r["training"]["lr_disc"], r["training"]["lr_gen"], r["training"]["n_disc"]) == (0.25, 0.01, 5)
    assert r["training"]["lam"] is None and r["discriminator"]["gamma"] is None
    k = fastgan.default_config(**{"discriminator.kind": "kernel", "target.kind": "circle",
                                  "generator.n_particles": 4}).resolved.as_dict()
    assert k["training"]["lr_disc"] == 1e-3 and k["training"]["lam"] == 0.01 and k["training"]["n_disc"] == 1
    assert k["generator"]["masses"] == [0.25] * 4 and k["generator"]["init_std"] == pytest.approx(2 ** -0.5)
    assert k["discriminator"]["width"] is None and k["discriminator"]["bandwidth"] == [1.0]
    # the default history keeps every term above 1e-6 (capped)
    assert k["discriminator"]["history"] == 4096
    assert default_history(0.05, 1.0) == 270 and 0.95 ** 270 <= 1e-6 < 0.95 ** 269
    # a number or a list for the bandwidth; other families' keys do not change a run's identity
    a = fastgan.default_config(**{"discriminator.kind": "rff", "target.kind": "circle", "discriminator.bandwidth": 0.5})
    b = fastgan.default_config(**{"discriminator.kind": "rff", "target.kind": "circle", "discriminator.bandwidth": [0.5],
                                  "discriminator.gamma": "exp", "discriminator.width": 7})
    assert a.run_id == b.run_id


def test_circle_and_sphere_targets():
    c = make_target(fastgan.default_config(**{"target.kind": "circle"}))
    np.testing.assert_allclose(np.linalg.norm(c.means, axis=1), 1.0)
    np.testing.assert_allclose(c.means[1], [0.0, 1.0], atol=1e-15)
    cfg = lambda seed: fastgan.default_config(**{"target.kind": "sphere", "target.dim": 10, "training.seed": seed})  # noqa: E731
    s0, s0b, s1 = make_target(cfg(0)), make_target(cfg(0)), make_target(cfg(1))
    assert s0.means.shape == (10, 10) and s0.dim == 10
    np.testing.assert_allclose(np.linalg.norm(s0.means, axis=1), 1.0)
    np.testing.assert_array_equal(s0.means, s0b.means)
    assert not np.allclose(s0.means, s1.means)                         # one trial per seed (Fig. 3)


def test_wasserstein2_exact():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    u = np.full(6, 1 / 6)
    # the assignment and the transport LP agree on equal uniform sets
    w_assign = wasserstein2(x, u, y, u)
    w_lp = wasserstein2(x, u * (1 + 1e-9 * np.arange(6)), y, u)
    assert w_assign == pytest.approx(w_lp, rel=1e-6)
    # translation: W2 = |shift|; a set against itself: 0; two points of unequal masses: closed form
    assert wasserstein2(x, u, x + [3.0, 4.0], u) == pytest.approx(5.0, rel=1e-12)
    assert wasserstein2(x, u, x, u) == pytest.approx(0.0, abs=1e-12)
    w = wasserstein2([[0.0, 0.0]], [1.0], [[1.0, 0.0], [0.0, 2.0]], [0.25, 0.75])
    assert w == pytest.approx(np.sqrt(0.25 * 1 + 0.75 * 4), rel=1e-9)


def test_excess_mass_of_the_fig1_layout():
    cfg = fastgan.load_config(os.path.join(ROOT, "examples", "ipm_regions.toml"))
    t = make_target(cfg)
    x = np.array(cfg.generator.init_points)
    np.testing.assert_allclose(excess_mass(x, cfg.generator.masses, t.means, t.weights), [0.0, -0.25, 0.125, 0.25])


@pytest.mark.slow
def test_ipm_run_records_its_observables_and_cli_writes_h5_and_png(tmp_path):
    out = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-m", "fastgan", "run", os.path.join(ROOT, "examples", "ipm_regions.toml"),
                           "--out", str(out), "--backend", "numpy", "--set", "training.n_iterations=200",
                           "--set", "record.every=50"], capture_output=True, text=True, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "w2 = " in proc.stdout and out.exists() and (tmp_path / "r.png").exists()
    from fastgan.store import read_run
    run = read_run(str(out))
    assert run["observables"]["w2"].shape == (5,) and np.all(np.isfinite(run["observables"]["w2"]))
    np.testing.assert_allclose(run["histograms"]["excess_mass"][0], [0.0, -0.25, 0.125, 0.25])
    assert set(run["discriminator"]) == {"centres", "weights"}


@pytest.mark.filterwarnings("ignore:discriminator.history")   # short histories on purpose
@pytest.mark.parametrize("kind", ["fourier", "rff", "kernel"])
def test_runs_do_not_depend_on_their_ensemble(kind):
    """A run's trajectory is the same alone and packed with runs of other rates / n_disc / seeds."""
    base = {"discriminator.kind": kind, "training.n_iterations": 30, "record.every": 10, "precision": "float64",
            "generator.n_particles": 6, "training.lr_disc": 0.05, "training.lr_gen": 0.05}
    if kind != "fourier":
        base.update({"target.kind": "circle", "discriminator.n_features": 64, "discriminator.history": 20})
    else:
        base.update({"discriminator.freq_count": 5, "training.lr_disc": 1e-3})
    a = fastgan.default_config(**base)
    others = [a.replace(**{"training.seed": 5, "training.n_disc": 3}), a.replace(**{"training.lr_disc": 0.0})]
    alone = fastgan.simulate(a, backend="numpy", progress=False)
    packed = simulate_ensemble([others[0], a, others[1]], backend="numpy", progress=False)[1]
    np.testing.assert_allclose(packed.particles, alone.particles, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(alone.particles))


@pytest.mark.filterwarnings("ignore:discriminator.history")   # short histories on purpose
@pytest.mark.parametrize("kind", ["fourier", "rff", "kernel"])
def test_numba_backend_follows_numpy(kind):
    base = {"discriminator.kind": kind, "training.n_iterations": 40, "record.every": 10, "precision": "float64",
            "generator.n_particles": 5, "training.lr_disc": 0.05, "training.lr_gen": 0.05}
    if kind != "fourier":
        base.update({"target.kind": "circle", "discriminator.n_features": 32, "discriminator.history": 30,
                     "discriminator.bandwidth": [0.5, 2.0]})
    else:
        base.update({"discriminator.freq_count": 6, "training.lr_disc": 1e-3, "coupling.ratio": 0.2})
    cfg = fastgan.default_config(**base)
    ref = fastgan.simulate(cfg, backend="numpy", progress=False)
    nb = fastgan.simulate(cfg, backend="numba", progress=False)
    np.testing.assert_allclose(nb.particles, ref.particles, rtol=1e-9, atol=1e-9)


def test_truncated_history_is_reported():
    cfg = fastgan.default_config(**{"discriminator.kind": "kernel", "target.kind": "circle",
                                    "generator.n_particles": 4, "training.n_iterations": 2})
    with pytest.warns(UserWarning, match="discriminator.history = 4096 drops kernel terms"):
        r = fastgan.simulate(cfg, backend="numpy", progress=False)
    assert r.provenance["history_tail_weight"] == pytest.approx((1 - 1e-5) ** 4096)
    ok = fastgan.simulate(cfg.replace(**{"training.lam": 1.0, "training.lr_disc": 0.05}), backend="numpy", progress=False)
    assert ok.provenance["history_tail_weight"] <= 1e-6


def test_state_size_per_family():
    from fastgan.shapes import ensemble_memory_bytes
    k = fastgan.default_config(**{"discriminator.kind": "kernel", "target.kind": "circle", "generator.n_particles": 4,
                                  "discriminator.history": 100, "precision": "float64"})
    assert ensemble_memory_bytes(k) == 8 * ((4 + 100 * 4) * 3 + 3 * 4 * 2)
    f = fastgan.default_config(**{"discriminator.kind": "fourier"})
    assert ensemble_memory_bytes(f) == 4 * (2500 * 5 + 3 * 200 * 2)
    r = fastgan.default_config(**{"discriminator.kind": "rff", "target.kind": "circle", "discriminator.bandwidth": [1, 2]})
    assert ensemble_memory_bytes(r) == 4 * (2 * 1024 * 6 + 3 * 200 * 2)
