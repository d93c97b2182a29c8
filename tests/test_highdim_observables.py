"""The high-dimensional observables of Durr et al.'s MNIST experiments (issue 20): cosine mode collapse, cosine
distance to the data, mean pairwise |cos| of the particles and the runaway flag. Closed forms, the zero-vector
convention, the numba twin against the NumPy reference (and both against a slow loop oracle) on awkward
sizes, and their recording by the engine, which leaves every other observable bitwise as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastgan
from fastgan import engine, observables
from fastgan.kernels import launch, observables_numpy
from fastgan.kernels.ops import load_ops
from fastgan.labels import OBSERVABLES
from fastgan.observables import COSINE_SCALARS, RUNAWAY_FACTOR, from_cosine_stats
from fastgan.xr import variable_attrs

BACKENDS = ("numpy", "numba")


def _stats(backend, X, points, dtype=np.float64):
    """The observables (B,) of particles X (B, N, d) (user layout) against points (B, M, d)."""
    Xf = np.ascontiguousarray(np.asarray(X, dtype=dtype).transpose(0, 2, 1))
    pts = np.asarray(points, dtype=np.float64)
    out = load_ops(backend).cosine_stats(Xf, pts)
    return out, from_cosine_stats(*out, np.sqrt((pts * pts).sum(2)).max(1))


def _cos(x, y):
    nx, ny = math.sqrt(float(x @ x)), math.sqrt(float(y @ y))
    return 0.0 if nx == 0 or ny == 0 else float(x @ y) / (nx * ny)


def oracle(X, points):
    """Slow, obviously correct loops: X (B, N, d), points (B, M, d) -> (counts, cos_dist, pair_cos, max_norm)."""
    X, P = np.asarray(X, dtype=np.float64), np.asarray(points, dtype=np.float64)
    B, N, _ = X.shape
    M = P.shape[1]
    counts = np.zeros((B, M), dtype=np.int64)
    dist, pair, big = np.zeros(B), np.full(B, np.nan), np.zeros(B)
    for b in range(B):
        for a in range(N):
            cs = [_cos(X[b, a], P[b, i]) for i in range(M)]
            best = max(range(M), key=lambda i: (cs[i], -i))          # the largest cosine, the lowest index on ties
            counts[b, best] += 1
            dist[b] += (1 - cs[best]) / N
        if N > 1:
            pair[b] = np.mean([abs(_cos(X[b, a], X[b, c])) for a in range(N) for c in range(a + 1, N)])
        big[b] = max(math.sqrt(float(x @ x)) for x in X[b])
    return counts, dist, pair, big


# --------------------------------------------------------------------------- closed forms

@pytest.mark.parametrize("backend", BACKENDS)
def test_every_particle_on_one_data_point_is_full_collapse(backend, rng):
    M, N, d = 7, 13, 10
    pts = rng.normal(size=(2, M, d))
    X = np.stack([np.repeat(pts[0, 3][None], N, 0), np.repeat(2.5 * pts[1, 5][None], N, 0)])  # on the ray of a point
    (counts, *_), obs = _stats(backend, X, pts)
    assert counts[0, 3] == N and counts[1, 5] == N and counts.sum() == 2 * N
    np.testing.assert_allclose(obs["cosine_mode_collapse"], math.log(M), rtol=0, atol=1e-12)
    np.testing.assert_allclose(obs["cosine_distance"], 0.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(obs["particle_cosine"], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(obs["runaway"], 0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_particle_on_each_data_point_is_an_even_spread(backend, rng):
    M, d = 9, 12
    pts = rng.normal(size=(1, M, d))
    X = pts[:, rng.permutation(M)] * rng.uniform(0.5, 2.0, size=(1, M, 1))
    (counts, *_), obs = _stats(backend, X, pts)
    np.testing.assert_array_equal(counts, np.ones((1, M)))
    assert obs["cosine_mode_collapse"][0] == pytest.approx(0.0, abs=1e-12)
    assert obs["cosine_distance"][0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < obs["particle_cosine"][0] < 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_orthogonal_particles_have_no_pairwise_cosine(backend):
    d = 6
    scale = np.arange(1.0, d + 1) * (-1.0) ** np.arange(d)                  # scaled basis vectors, some negated
    X = np.eye(d)[None] * scale[None, :, None]
    (_, _, pair, _), obs = _stats(backend, X, np.ones((1, 2, d)))
    assert obs["particle_cosine"][0] == 0.0
    # pairs of opposite particles count as aligned: |cos| = 1
    Y = np.stack([np.eye(d)[0], -np.eye(d)[0]])[None]
    assert _stats(backend, Y, np.ones((1, 1, d)))[1]["particle_cosine"][0] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_runaway_flag_is_set_beyond_the_factor(backend, rng):
    d = 5
    pts = rng.normal(size=(3, 4, d))
    biggest = np.sqrt((pts * pts).sum(2)).max(1)
    X = 0.1 * rng.normal(size=(3, 6, d))
    X[0, 2] = 0.0
    X[0, 2, 0] = 1.01 * RUNAWAY_FACTOR * biggest[0]                    # just beyond the factor: runaway
    X[1, 4, 1] = 0.99 * RUNAWAY_FACTOR * biggest[1]                    # just inside it: not
    (_, _, _, max_norm), obs = _stats(backend, X, pts)
    np.testing.assert_array_equal(obs["runaway"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(max_norm, np.sqrt((X * X).sum(2)).max(1), rtol=1e-15)
    assert RUNAWAY_FACTOR == 10.0 and str(int(RUNAWAY_FACTOR)) in OBSERVABLES["runaway"].description
    flags = from_cosine_stats(np.ones((2, 3), dtype=np.int64), np.zeros(2), np.zeros(2), np.array([10.0, 10.000001]),
                              np.array([1.0, 1.0]))["runaway"]
    np.testing.assert_array_equal(flags, [0.0, 1.0])                 # strictly beyond


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_zero_vector_has_cosine_zero_with_everything(backend):
    d = 4
    pts = np.array([[[1.0, 0, 0, 0], [0.0, 0, 0, 0], [-1.0, 0, 0, 0]]])    # the middle point is 0
    X = np.array([[[0.0, 0, 0, 0],            # a zero particle: cos 0 with every point, the first (index 0) wins
                   [-2.0, 0, 0, 0],           # on point 2
                   [0.0, 3.0, 0, 0],          # orthogonal to every point: ties at 0, index 0
                   [1.0, 1.0, 0, 0]]])        # 45 degrees from point 0
    (counts, cos_dist, pair, _), obs = _stats(backend, X, pts)
    np.testing.assert_array_equal(counts, [[3, 0, 1]])
    want_dist = (1.0 + 0.0 + 1.0 + (1 - math.sqrt(0.5))) / 4
    assert cos_dist[0] == pytest.approx(want_dist, abs=1e-15)
    # pairs: (0, *) are 0; (1, 2) 0; (1, 3) |cos| = sqrt(1/2); (2, 3) sqrt(1/2)
    assert pair[0] == pytest.approx(2 * math.sqrt(0.5) / 6, abs=1e-15)
    # a particle facing a negative cosine with every non-zero point goes to the zero point (cos 0 > -1)
    (counts, *_), _ = _stats(backend, np.array([[[-5.0, 0, 0, 0]]]), np.array([[[1.0, 0, 0, 0], [0.0, 0, 0, 0]]]))
    np.testing.assert_array_equal(counts, [[0, 1]])
    # every particle zero: no NaN, cosine distance 1, no pair aligned
    (counts, cos_dist, pair, max_norm), obs = _stats(backend, np.zeros((1, 3, d)), pts)
    np.testing.assert_array_equal(counts, [[3, 0, 0]])
    assert cos_dist[0] == 1.0 and pair[0] == 0.0 and max_norm[0] == 0.0
    assert np.all(np.isfinite([obs[k][0] for k in COSINE_SCALARS]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_particle_has_no_pair(backend):
    (_, _, pair, _), obs = _stats(backend, np.ones((2, 1, 3)), np.ones((2, 2, 3)))
    assert np.all(np.isnan(pair)) and np.all(np.isnan(obs["particle_cosine"]))
    np.testing.assert_allclose(obs["cosine_distance"], [0.0, 0.0], rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- the twin against the reference

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B,N,M,d", [(3, 23, 17, 7), (1, 37, 5, 64), (2, 2, 41, 3), (2, 11, 1, 9)])
def test_numba_twin_and_reference_agree_with_the_loop_oracle(monkeypatch, rng, dtype, B, N, M, d):
    monkeypatch.setitem(launch.CPU_TILE, "cosine_rows", 5)               # tiles that do not divide N
    monkeypatch.setattr(observables_numpy, "COSINE_BLOCK", 3 * max(M, N))  # reference blocks of 3 rows
    pts = rng.normal(size=(B, M, d))
    X = rng.normal(size=(B, d, N)).astype(dtype)
    X[0, :, 1] = pts[0, 0]                                               # a particle on a point
    X[-1, :, 0] = 0.0                                                    # a zero particle
    if M > 1:
        pts[-1, 1] = 0.0                                                 # a zero point
    ref = load_ops("numpy").cosine_stats(X, pts)
    nb = load_ops("numba").cosine_stats(X, pts)
    slow = oracle(X.transpose(0, 2, 1), pts)
    tol = dict(rtol=1e-12, atol=1e-12)                                   # both compute in float64
    for got in (ref, nb):
        np.testing.assert_array_equal(got[0], slow[0])
        assert got[0].dtype == np.int64 and got[0].shape == (B, M)
        for g, s in zip(got[1:], slow[1:]):
            assert g.dtype == np.float64 and g.shape == (B,)
            np.testing.assert_allclose(g, s, **tol)


def test_a_nan_run_gives_nan_and_leaves_the_others_alone(rng):
    pts = rng.normal(size=(3, 4, 5))
    X = rng.normal(size=(3, 5, 9))
    good = [load_ops(b).cosine_stats(X, pts) for b in BACKENDS]
    X[1, 2, 3] = np.nan
    for backend, ok in zip(BACKENDS, good):
        counts, dist, pair, big = load_ops(backend).cosine_stats(X, pts)
        assert np.isnan(dist[1]) and np.isnan(pair[1]) and np.isnan(big[1]), backend
        for a, b in zip((counts, dist, pair, big), ok):
            np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])


# --------------------------------------------------------------------------- recording

def _highdim_config(**over):
    base = {"target.kind": "sphere", "target.dim": 5, "target.n_modes": 6, "discriminator.width": 32,
            "generator.n_particles": 17, "training.n_iterations": 12, "record.every": 4, "record.snapshots": [0, 8, 12],
            "precision": "float64"}
    base.update(over)
    return fastgan.default_config(**base)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_high_dimensional_run_records_them_at_every_recording(backend):
    cfg = _highdim_config()
    r = fastgan.simulate(cfg, backend=backend)
    assert list(r.time) == [0, 4, 8, 12]
    for k in COSINE_SCALARS:
        assert r.observables[k].shape == (4,) and np.all(np.isfinite(r.observables[k])), k
    pts = fastgan.targets.make_target(cfg).means
    for s, t in enumerate(r.particles_time):                    # snapshots at recorded times: recompute
        i = list(r.time).index(t)
        _, want = _stats("numpy", r.particles[s][None], pts[None])
        for k in COSINE_SCALARS:
            np.testing.assert_allclose(r.observables[k][i], want[k][0], rtol=1e-12, atol=1e-12, err_msg=k)
    # at t = 0 the cloud is a small ball around the origin: spread in direction, far from any point
    assert r.observables["cosine_distance"][0] > 0.3 and r.observables["particle_cosine"][0] < 0.9
    assert r.observables["runaway"][0] == 0.0


def test_recording_them_leaves_every_other_observable_bitwise_unchanged(monkeypatch):
    cfg = _highdim_config(**{"precision": "float32"})
    with_cos = fastgan.simulate(cfg, backend="numpy")
    monkeypatch.setattr(engine, "records_cosine", lambda dim: False)
    without = fastgan.simulate(cfg, backend="numpy")
    assert set(with_cos.observables) == set(without.observables) | set(COSINE_SCALARS)
    assert not set(COSINE_SCALARS) & set(without.observables)
    for k, v in without.observables.items():
        np.testing.assert_array_equal(with_cos.observables[k], v, err_msg=k)
    for k, v in without.histograms.items():
        np.testing.assert_array_equal(with_cos.histograms[k], v, err_msg=k)
    np.testing.assert_array_equal(with_cos.particles, without.particles)


def test_two_dimensional_runs_do_not_record_them():
    r = fastgan.simulate(fastgan.default_config(**{"training.n_iterations": 3, "discriminator.width": 16,
                                                   "generator.n_particles": 8}), backend="numpy")
    assert not set(COSINE_SCALARS) & set(r.observables)
    assert observables.records_cosine(2) is False and observables.records_cosine(3) is True
    assert observables.records_cosine(None) is True                 # a file target, not loaded yet: it may


def test_a_diverged_run_records_nan_after_divergence():
    cfg = _highdim_config(**{"training.lr_gen": 1e300, "training.n_iterations": 8, "record.snapshots": 2})
    r = fastgan.simulate(cfg, backend="numpy")
    assert r.diverged
    after = r.time > r.diverged_at
    assert after.any()
    for k in COSINE_SCALARS:
        assert np.all(np.isnan(r.observables[k][after])), k


def test_they_have_labels_and_sweeps_may_keep_them(tmp_path):
    for k in COSINE_SCALARS:
        attrs = variable_attrs(k)
        assert attrs["long_name"] != k.replace("_", " ") and attrs["description"], k
    from fastgan.sweep_spec import SweepError, parse_spec
    spec = {"sweep": {"name": "s", "observables": ["cosine_distance", "runaway"],
                      "base": {"target": {"kind": "sphere", "dim": 4}, "discriminator": {"kind": "kernel"}},
                      "axes": [{"key": "training.seed", "values": [0, 1]}]}}
    assert parse_spec(spec).observables == ("cosine_distance", "runaway")
    spec["sweep"]["base"] = {"target": {"kind": "ring"}}
    with pytest.raises(SweepError, match="'cosine_distance' is not an observable of these runs"):
        parse_spec(spec)
