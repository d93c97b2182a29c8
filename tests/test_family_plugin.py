"""A discriminator family defined outside fastgan runs through everything (config, engine, store, plots,
sweep planner) once registered: the proof that no other module names a family.

The toy family ``meanmatch`` is a linear discriminator D(x) = theta . x trained on
L = <D>_gen - <D>_target + (lam / 2) |theta|^2, so theta -> (mean_target - mean_gen) / lam and the
particles, moving along grad D = theta, drift until the cloud's centre is the target's mean: a fixed
point the test checks.
"""

import numpy as np
import pytest

import fastgan
from fastgan import families
from fastgan.config import NONNEG, Field
from fastgan.errors import ConfigError
from fastgan.families.base import Family, Observer


class _Model:
    samples_target = True
    target_points = False

    def __init__(self, ens):
        self.ens = ens

    def init(self, dtype):
        return {"theta": np.zeros((self.ens.B, self.ens.dim), dtype=dtype)}

    def penalty(self):
        return np.array([r.discriminator.mean_penalty for r in self.ens.resolved], dtype=np.float64)

    def bind(self, ops, env):
        xp = ops.xp

        class Bound:
            def step(self, p, xg, xt, lr, lam, u):
                th = p["theta"]
                g = xg.mean(2) - xt.mean(2) + xp.asarray(lam)[:, None] * th
                th -= (xp.asarray(lr)[:, None] * g).astype(th.dtype)

            def grad_x(self, p, x):
                return xp.ascontiguousarray(xp.broadcast_to(p["theta"][:, :, None], x.shape))

            def forward(self, p, x):
                return (p["theta"][:, :, None] * x).sum(1)

            def observer(self):
                return _Observer()
        return Bound()

    def export(self, p, run):
        return {"theta": np.asarray(p["theta"][run]).copy()}


class _Observer(Observer):
    scalars = ("theta_norm",)

    def take(self, t, p, X, alive):
        return {"theta_norm": np.sqrt((np.asarray(p["theta"], dtype=np.float64) ** 2).sum(1))}, {}


class MeanMatching(Family):
    name = "meanmatch"
    summary = "toy: a linear discriminator D(x) = theta . x"
    keys = {"discriminator": {"mean_penalty": Field("float", 0.5, "meanmatch: lam of (lam / 2)|theta|^2", NONNEG,
                                                    foreign="only meanmatch discriminators take a mean_penalty")}}
    defaults = {"generator.init_std": 0.1, "training.n_disc": 1, "training.lr_disc": 0.5, "training.lr_gen": 0.2}
    plot_observables = ("mode_collapse", "theta_norm")

    def state_params(self, r, target):
        return target.dim

    def model(self, ens):
        return _Model(ens)

    def overlay(self, params, r, pts, particles=None):
        return np.asarray(pts) @ np.asarray(params["theta"])

    def title(self, r, ratio):
        return f"meanmatch lam={r.discriminator.mean_penalty:g} N={r.generator.n_particles}"


TOY = {"discriminator.kind": "meanmatch", "target.kind": "mixture", "target.means": [[1.0, -0.5]],
       "target.std": 0.1, "generator.init_mean": [0.0, 0.0], "generator.n_particles": 16, "training.n_iterations": 300,
       "record.every": 50, "record.snapshots": 3}


@pytest.fixture
def toy():
    before = fastgan.default_config().run_id
    families.register(MeanMatching())
    yield before
    families.unregister("meanmatch")


def test_a_registered_family_runs_through_engine_store_plots_and_planner(toy, tmp_path):
    from fastgan.plots import plot_run
    from fastgan.shapes import ensemble_memory_bytes, shape_key
    from fastgan.store import read_run, write_run
    from fastgan.sweep_spec import parse_spec, plan

    cfg = fastgan.default_config(**TOY)
    assert cfg.resolved.discriminator.mean_penalty == 0.5 and cfg.resolved.training.lr_gen == 0.2
    assert fastgan.default_config().run_id == toy            # a new family's key changes no other run's identity
    res = fastgan.simulate(cfg, backend="numpy", progress=False)
    assert not res.diverged
    centre = res.particles[-1].mean(0)
    np.testing.assert_allclose(centre, [1.0, -0.5], atol=0.05)  # the fixed point: the target's mean
    assert res.observables["theta_norm"][-1] < res.observables["theta_norm"][1]
    nb = fastgan.simulate(cfg, backend="numba", progress=False)
    np.testing.assert_allclose(nb.particles, res.particles, rtol=1e-5, atol=1e-6)

    path = tmp_path / "toy.h5"
    write_run(str(path), res)
    run = read_run(str(path))
    assert run["config"].run_id == cfg.run_id and "theta" in run["discriminator"]
    assert plot_run(run, str(tmp_path / "toy.png")) and (tmp_path / "toy.png").stat().st_size > 0

    assert shape_key(cfg) == shape_key(cfg.replace(**{"discriminator.mean_penalty": 2.0}))
    assert ensemble_memory_bytes(cfg) > 0
    base: dict = {}
    for k, v in TOY.items():
        base.setdefault(k.split(".")[0], {})[k.split(".")[1]] = v
    spec = parse_spec({"sweep": {"name": "toy", "base": base, "replicates": 2,
                                 "axes": [{"key": "discriminator.mean_penalty", "values": [0.1, 1.0, 2.0]}]}})
    assert [len(e) for e in plan(spec.runs, max_ensemble=4)] == [4, 2]      # one shape: packed together


def test_a_registered_familys_keys_are_checked(toy):
    with pytest.raises(ConfigError, match="discriminator.mean_penalty = 1.0: only meanmatch"):
        fastgan.default_config(**{"discriminator.mean_penalty": 1.0})
    with pytest.raises(ConfigError, match="discriminator.mean_penalty = -1"):
        fastgan.default_config(**{**TOY, "discriminator.mean_penalty": -1.0})
    from fastgan.runconfig import describe_keys
    assert "discriminator.mean_penalty" in describe_keys() and "meanmatch" in describe_keys()


def test_unregistered_the_kind_is_unknown_again(toy):
    families.unregister("meanmatch")
    try:
        with pytest.raises(ConfigError, match="discriminator.kind = 'meanmatch': must be one of"):
            fastgan.default_config(**TOY)
    finally:
        families.register(MeanMatching())


def test_a_family_whose_keys_clash_is_refused_and_configs_pickle_across_registrations(toy):
    import pickle
    before = fastgan.default_config(**{"training.seed": 3})

    class Clash(Family):
        name = "clash"
        keys = {"discriminator": {"width": Field("int", 3, "another width")}}
    with pytest.raises(AssertionError, match="discriminator.width is declared twice"):
        families.register(Clash())
    assert "clash" not in families.FAMILIES and fastgan.default_config().run_id     # the registry still works
    families.unregister("meanmatch")
    try:
        again = pickle.loads(pickle.dumps(before))
        assert again == before and again.run_id == before.run_id
    finally:
        families.register(MeanMatching())


def test_a_model_that_sees_the_points_must_give_their_masses(toy):
    class PointsModel(_Model):
        samples_target = False
        target_points = True

    class Points(MeanMatching):
        name = "meanpoints"

        def model(self, ens):
            return PointsModel(ens)
    families.register(Points())
    try:
        cfg = fastgan.default_config(**{**TOY, "discriminator.kind": "meanpoints"})
        with pytest.raises(TypeError, match="generated_masses"):
            fastgan.simulate(cfg, backend="numpy", progress=False)
    finally:
        families.unregister("meanpoints")
