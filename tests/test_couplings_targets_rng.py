import numpy as np
import pytest

import fastgan
from fastgan.runconfig import from_dict
from fastgan.couplings import Coupling, coarse_gram, gram_eigenvalues, load_gram, normalise_gram, ratio_to_g
from fastgan.errors import ConfigError
from fastgan.kernels import coupling_numpy as C
from fastgan.kernels import rng as R
from fastgan.targets import grid_modes, make_target, ring_modes


# ------------------------------------------------------------------ couplings

@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.06, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("n", [2, 7, 200])
def test_gram_eigenvalues_closed_form(ratio, n):
    g1, g2 = ratio_to_g(ratio, n)
    ev = np.linalg.eigvalsh(coarse_gram(g1, g2, n))
    const, rest = gram_eigenvalues(ratio, n)
    assert ev.max() == pytest.approx(max(const, rest), rel=1e-12)
    assert np.sort(ev)[-1] == pytest.approx(const if const >= rest else rest)
    expected = np.sort(np.r_[const, np.full(n - 1, rest)])
    np.testing.assert_allclose(np.sort(ev), expected, rtol=1e-10, atol=1e-9)
    assert rest == pytest.approx(g1 - g2, rel=1e-12)


def test_coarse_velocity_equals_explicit_gram_matvec(rng):
    B, d, N = 4, 3, 31
    G = rng.normal(size=(B, d, N))
    g = np.array([ratio_to_g(r, N) for r in (0.0, 0.05, 0.3, 1.0)])
    V = C.coupled_velocity_coarse(G, g[:, 0], g[:, 1])
    for b in range(B):
        explicit = G[b] @ coarse_gram(*g[b], N).T / N
        np.testing.assert_allclose(V[b], explicit, rtol=1e-12, atol=1e-13)


def test_gram_with_equal_off_diagonals_reproduces_coarse_exactly(tmp_path, rng):
    N = 12
    g1, g2 = ratio_to_g(0.25, N)
    path = tmp_path / "gram.npy"
    np.save(path, coarse_gram(g1, g2, N))
    cfg_g = from_dict({"generator": {"n_particles": N}, "coupling": {"kind": "gram", "gram": str(path)},
                       "discriminator": {"width": 16}, "training": {"n_iterations": 20, "lr_disc": 0.05, "lr_gen": 0.01},
                       "precision": "float64"})
    cfg_c = cfg_g.replace(**{"coupling.kind": "coarse", "coupling.gram": None, "coupling.ratio": 0.25})
    a = fastgan.simulate(cfg_g, backend="numpy")
    b = fastgan.simulate(cfg_c, backend="numpy")
    assert not a.diverged and not b.diverged
    np.testing.assert_allclose(a.particles, b.particles, rtol=0, atol=1e-12)


def test_spatial_coupling_limits(rng):
    B, d, N = 2, 2, 15
    G = rng.normal(size=(B, d, N))
    X = rng.normal(size=(B, d, N))
    g1, g2 = np.array([4.0, 2.0]), np.array([1.0, 0.5])
    coarse = C.coupled_velocity_coarse(G, g1, g2)
    far = C.coupled_velocity_spatial(G, X, g1, g2, np.array([1e6, 1e6]), "rbf")
    np.testing.assert_allclose(far, coarse, rtol=1e-9, atol=1e-12)
    near = C.coupled_velocity_spatial(G, X, g1, g2, np.array([1e-6, 1e-6]), "laplacian")
    np.testing.assert_allclose(near, g1[:, None, None] * G / N, rtol=1e-12)
    gram = C.spatial_gram(X, g1, g2, np.array([0.7, 0.7]), "rbf")
    assert np.allclose(gram, gram.transpose(0, 2, 1)) and np.all(np.linalg.eigvalsh(gram[0]) > -1e-12) is not None


def test_gram_file_checks(tmp_path):
    N = 5
    np.save(tmp_path / "bad_shape.npy", np.eye(4))
    np.save(tmp_path / "asym.npy", np.eye(N) + np.triu(np.ones((N, N)), 1))
    np.save(tmp_path / "neg.npy", -np.eye(N))
    np.savez(tmp_path / "ok.npz", gram=2 * np.eye(N) + 0.5)
    with pytest.raises(ConfigError, match=r"expected an 5 x 5 matrix"):
        load_gram(str(tmp_path / "bad_shape.npy"), N)
    with pytest.raises(ConfigError, match="not symmetric"):
        load_gram(str(tmp_path / "asym.npy"), N)
    with pytest.raises(ConfigError, match="positive semi-definite"):
        load_gram(str(tmp_path / "neg.npy"), N)
    g = load_gram(str(tmp_path / "ok.npz"), N)
    assert normalise_gram(g).sum() / N == pytest.approx(N)
    cfgs = [from_dict({"generator": {"n_particles": N}, "coupling": {"kind": "gram", "gram": str(tmp_path / "ok.npz"),
                                                                    "normalize": True}})]
    c = Coupling.from_configs(cfgs)
    assert c.gram.shape == (1, N, N) and c.gram.sum() / N == pytest.approx(N)


# ------------------------------------------------------------------ targets

def test_ring_has_no_repeated_endpoint():
    m = ring_modes(8, 2.0)
    assert m.shape == (8, 2)
    d = np.linalg.norm(m[:, None] - m[None], axis=-1) + np.eye(8) * 10
    assert d.min() == pytest.approx(2 * 2.0 * np.sin(np.pi / 8))
    np.testing.assert_allclose(m[1], [np.sqrt(2), np.sqrt(2)], atol=1e-15)


def test_grid_modes():
    m = grid_modes(25, 2.0)
    assert sorted(set(m[:, 0])) == [-4, -2, 0, 2, 4] and len(m) == 25


def test_mixture_log_density_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    cfg = from_dict({"target": {"kind": "mixture", "means": [[0, 0], [3, 1], [-1, 2]], "weights": [1, 2, 3],
                                "stds": [0.3, 0.5, 1.0]}})
    t = make_target(cfg)
    x = np.array([[0.1, -0.2], [2.5, 1.0], [40.0, -30.0]])
    ref = np.log(sum(w * stats.multivariate_normal(m, s ** 2 * np.eye(2)).pdf(x)
                     for w, m, s in zip(t.weights, t.means, t.stds)) + 1e-320)
    got = t.log_density(x)
    np.testing.assert_allclose(got[:2], ref[:2], rtol=1e-12)
    assert np.isfinite(got[2]) and got[2] < -500          # far away: stable, no log(0)


def test_sampling_statistics_and_weights():
    cfg = from_dict({"target": {"kind": "mixture", "means": [[0, 0], [10, 0]], "weights": [1, 3], "std": 0.5}})
    t = make_target(cfg)
    x = t.sample(40000, seed=3)
    right = x[:, 0] > 5
    assert right.mean() == pytest.approx(0.75, abs=0.01)
    assert x[right].std(0) == pytest.approx([0.5, 0.5], rel=0.03)
    assert x[right].mean(0) == pytest.approx([10, 0], abs=0.02)


def test_points_and_file_targets(tmp_path):
    cfg = from_dict({"target": {"kind": "points", "points": [[0, 0], [1, 1], [2, 0]], "masses": [0.5, 0.25, 0.25]}})
    t = make_target(cfg)
    x = t.sample(20000, seed=1)
    assert set(map(tuple, np.round(x, 9))) == {(0, 0), (1, 1), (2, 0)}
    assert (x[:, 0] == 0).mean() == pytest.approx(0.5, abs=0.015)
    data = np.random.default_rng(0).normal(size=(50, 3))
    np.save(tmp_path / "s.npy", data)
    np.savetxt(tmp_path / "s.csv", data, delimiter=",")
    np.savez(tmp_path / "m.npz", means=data[:4], weights=np.ones(4), stds=np.full(4, 0.1))
    for name in ("s.npy", "s.csv"):
        tf = make_target(from_dict({"target": {"kind": "file", "path": str(tmp_path / name)},
                                    "generator": {"init_mean": [0, 0, 0]}}))
        assert tf.dim == 3 and tf.modes is None and tf.n_components == 50
        np.testing.assert_allclose(tf.means, data)
    tm = make_target(from_dict({"target": {"kind": "file", "path": str(tmp_path / "m.npz")}}))
    assert tm.n_modes == 4 and tm.has_density
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(ConfigError, match="target.path = .*cannot read"):
        from_dict({"target": {"kind": "file", "path": str(tmp_path / "bad.npy")}})


# ------------------------------------------------------------------ random numbers

def test_rng_statistics_and_independence():
    keys = R.np_step_keys(R.base_keys([0, 1], R.STREAM_TARGET_NOISE), 5, 0)
    z = R.np_normal(keys, 200001)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(z ** 4) - 3) < 0.05
    assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 0.01          # different seeds
    assert abs(np.corrcoef(z[0, :-1], z[0, 1:])[0, 1]) < 0.01   # consecutive indices (Box-Muller pairs)
    u = R.np_uniform(keys, 100000)
    hist = np.histogram(u[0], bins=20, range=(0, 1))[0]
    assert hist.min() > 4500 and hist.max() < 5500
    # streams, iterations and sub-steps give distinct keys
    ks = {int(R.step_key(np.uint64(R.derive(0, s)), i, k)) for s in range(1, 5) for i in range(3) for k in range(3)}
    assert len(ks) == 36


def test_rng_scalar_matches_vector():
    base = R.base_keys([42], R.STREAM_DISC_INIT)
    key = R.np_step_keys(base, 3, 1)
    vec = R.np_normal(key, 9)[0]
    scal = [R.normal_at(key[0], i) for i in range(9)]
    np.testing.assert_array_equal(vec, scal)
