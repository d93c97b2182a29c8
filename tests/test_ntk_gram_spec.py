"""coupling.kind = gram with an analytic NTK spec (coupling.gram_arch ...) instead of a file."""

import numpy as np
import pytest

import fastgan
from fastgan.errors import ConfigError
from fastgan.couplings import Coupling, normalise_gram
from fastgan.ntk import analytic_gram, extract_g1_g2, sample_sphere
from fastgan.ntk_gram import LATENT_STREAM, preset_setup, spec_gram

BASE = {"generator.n_particles": 20, "discriminator.width": 32, "training.n_iterations": 30, "record.snapshots": 2}


def _cfg(**kw):
    return fastgan.default_config(**BASE, **{"coupling.kind": "gram", **kw})


def test_spec_gram_is_the_analytic_kernel_at_seeds_from_the_run_seed():
    g = spec_gram("relu", "deep", 20, 64, seed=3, depth=4, mu=0.3)
    X = sample_sphere(20, 64, 8.0, seed=[LATENT_STREAM, 3])
    np.testing.assert_array_equal(g, analytic_gram(preset_setup("deep", "relu", 4, 0.3), X))
    assert not np.array_equal(g, spec_gram("relu", "deep", 20, 64, seed=4, depth=4, mu=0.3))
    ag = spec_gram("erf", "appendix-g", 30, 256, seed=0)
    st = extract_g1_g2(ag)
    assert st.g1 == pytest.approx(10.64, abs=0.01) and st.g2 == pytest.approx(5.25, abs=0.05)


def test_config_builds_the_gram_coupling():
    cfg = _cfg(**{"coupling.gram_arch": "erf", "coupling.gram_setting": "deep", "coupling.gram_mu": 0.1,
                  "coupling.gram_dim": 64, "coupling.normalize": True, "training.seed": 5})
    c = Coupling.from_configs([cfg, cfg.replace(**{"training.seed": 6})])
    want = normalise_gram(spec_gram("erf", "deep", 20, 64, seed=5, depth=6, mu=0.1))
    np.testing.assert_allclose(c.gram[0], want, rtol=1e-13)
    assert c.gram.shape == (2, 20, 20) and not np.allclose(c.gram[0], c.gram[1])
    # the resolved config carries the defaults, and the run simulates
    cp = cfg.resolved.as_dict()["coupling"]
    assert (cp["gram_setting"], cp["gram_depth"], cp["gram_dim"]) == ("deep", 6, 64)
    r = fastgan.simulate(cfg, backend="numpy")
    assert not r.diverged and np.abs(r.particles[-1] - r.particles[0]).max() > 0


def test_defaults_and_identity():
    cfg = _cfg(**{"coupling.gram_arch": "relu"})
    cp = cfg.resolved.as_dict()["coupling"]
    assert (cp["gram_setting"], cp["gram_dim"], cp["gram_depth"], cp["gram_mu"]) == ("appendix-g", 256, None, None)
    # runs without an analytic Gram keep their identity (the new keys are not part of it)
    assert "gram_arch" not in fastgan.default_config().resolved.as_dict()["coupling"]
    assert cfg.run_id != _cfg(**{"coupling.gram_arch": "erf"}).run_id


@pytest.mark.parametrize("kw, key", [
    ({"coupling.gram_arch": "relu", "coupling.kind": "coarse"}, "coupling.gram_arch"),
    ({"coupling.gram_arch": "relu", "coupling.gram": "g.h5"}, "coupling.gram_arch"),
    ({"coupling.gram_mu": 0.5}, "coupling.gram_mu"),
    ({"coupling.gram_arch": "relu", "coupling.gram_depth": 3}, "coupling.gram_depth"),
    ({"coupling.gram_arch": "relu", "coupling.gram_setting": "deep", "coupling.gram_mu": 1.5}, "coupling.gram_mu"),
    ({"coupling.gram_arch": "tanh"}, "coupling.gram_arch"),
    ({"coupling.gram_arch": "relu", "coupling.gram_dim": 1}, "coupling.gram_dim"),
    ({}, "coupling.gram"),
])
def test_errors_name_the_key(kw, key):
    with pytest.raises(ConfigError) as e:
        _cfg(**kw)
    msg = str(e.value)
    assert key in msg and "\n" not in msg


def test_keys_listed():
    from fastgan.runconfig import describe_keys
    text = describe_keys()
    for k in ("gram_arch", "gram_setting", "gram_dim", "gram_depth", "gram_mu"):
        assert f"coupling.{k}" in text
