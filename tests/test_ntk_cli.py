"""`fastgan ntk measure` and simulations with measured / analytic Gram couplings."""

import importlib.util
import subprocess
import sys

import h5py
import numpy as np
import pytest

import fastgan
from fastgan.ntk_gram import write_gram


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fastgan", *map(str, args)], capture_output=True, text=True)


def test_measure_writes_a_gram_file_the_simulator_reads(tmp_path):
    out = tmp_path / "g.h5"
    proc = _cli("ntk", "measure", "--n", 16, "--dim", 64, "--out", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        g = f["gram"][()]
        assert g.shape == (16, 16) and np.allclose(g, g.T)
        assert f.attrs["g1"] == pytest.approx(np.diag(g).mean()) and f.attrs["setting"] == "appendix-g"
    before = out.read_bytes()
    again = _cli("ntk", "measure", "--n", 16, "--out", out)
    assert again.returncode == 2 and "file exists" in again.stderr and out.read_bytes() == before
    bad = _cli("ntk", "measure", "--n", 0, "--out", tmp_path / "x.h5")
    assert bad.returncode == 2 and "--n" in bad.stderr and not (tmp_path / "x.h5").exists()
    cfg = fastgan.default_config(**{"generator.n_particles": 16, "discriminator.width": 32, "training.n_iterations": 20,
                                    "coupling.kind": "gram", "coupling.gram": str(out), "coupling.normalize": True,
                                    "record.snapshots": 2})
    r = fastgan.simulate(cfg, backend="numpy")
    assert not r.diverged and np.abs(r.particles[-1] - r.particles[0]).max() > 0


def test_measured_network_gram(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "e.h5"
    proc = _cli("ntk", "measure", "--act", "erf", "--n", 12, "--dim", 32, "--width", 2048, "--out", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        assert f.attrs["width"] == 2048 and np.allclose(f["gram"][()], f["gram"][()].T)


def test_gram_with_equal_off_diagonals_reproduces_the_coarse_coupling(tmp_path):
    """Issue 8 acceptance: a Gram matrix with g1 on the diagonal and g2 everywhere else gives the
    coarse (g1, g2) dynamics (float64, up to summation order)."""
    N, g1, g2 = 24, 3.0, 0.7
    gram = np.full((N, N), g2)
    np.fill_diagonal(gram, g1)
    write_gram(str(tmp_path / "c.h5"), gram, {"g1": g1, "g2": g2})
    base = {"generator.n_particles": N, "discriminator.width": 32, "training.n_iterations": 60,
            "precision": "float64", "record.snapshots": 3}
    coarse = fastgan.simulate(fastgan.default_config(**base, **{"coupling.g1": g1, "coupling.g2": g2}), backend="numpy")
    full = fastgan.simulate(fastgan.default_config(**base, **{"coupling.kind": "gram", "coupling.gram": str(tmp_path / "c.h5")}),
                            backend="numpy")
    np.testing.assert_allclose(full.particles, coarse.particles, rtol=0, atol=1e-11)
    assert np.abs(coarse.particles[-1] - coarse.particles[0]).max() > 1e-3


@pytest.mark.slow
def test_measure_deep_network(tmp_path):
    """--setting deep: the μ-parametrised network of Fig. 21 (inputs on the sphere of radius sqrt(dim));
    analytic file = the infinite-width recursion at those seeds, a finite network lands near it."""
    from fastgan.ntk import sample_sphere
    from fastgan.ntk_deep import DeepSetup, analytic_ntk_deep
    out = tmp_path / "deep.h5"
    proc = _cli("ntk", "measure", "--setting", "deep", "--depth", 3, "--mu", 0.7, "--n", 10, "--dim", 32,
                "--seed", 4, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "depth 3, mu 0.7" in proc.stdout
    setup = DeepSetup.mu_param(0.7, 3)
    X = sample_sphere(10, 32, np.sqrt(32), seed=4)
    norms = np.linalg.norm(X, axis=1)
    cos = np.clip((X @ X.T) / np.outer(norms, norms), -1, 1)
    expected = analytic_ntk_deep(setup, cos, norms[:, None], norms[None, :], 32)
    with h5py.File(out) as f:
        assert f.attrs["setting"] == "deep" and f.attrs["depth"] == 3 and f.attrs["mu"] == pytest.approx(0.7)
        assert f.attrs["radius"] == pytest.approx(np.sqrt(32))
        np.testing.assert_allclose(f["gram"][()], expected, rtol=1e-9)
        analytic = f["gram"][()]
    if importlib.util.find_spec("torch") is not None:
        emp = tmp_path / "deep_w.h5"
        proc = _cli("ntk", "measure", "--setting", "deep", "--depth", 3, "--mu", 0.7, "--n", 10, "--dim", 32,
                    "--seed", 4, "--width", 2048, "--out", emp)
        assert proc.returncode == 0, proc.stderr
        with h5py.File(emp) as f:
            g = f["gram"][()]
        assert np.allclose(g, g.T) and np.abs(g / analytic - 1).max() < 0.08


@pytest.mark.parametrize("args, key", [(("--setting", "deep", "--mu", 1.5), "--mu"),
                                       (("--depth", 3), "--depth"),
                                       (("--setting", "deep", "--depth", 0), "--depth"),
                                       (("--n", 1), "--n")])
def test_measure_rejects_bad_deep_options(tmp_path, args, key):
    base = {"--n": 8}
    base.update(dict(zip(args[::2], args[1::2])))
    flat = [x for kv in base.items() for x in kv]
    proc = _cli("ntk", "measure", *flat, "--out", tmp_path / "x.h5")
    assert proc.returncode == 2 and key in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()
