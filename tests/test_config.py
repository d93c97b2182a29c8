import json
import math

import pytest

import fastgan
from fastgan.config import parse_override
from fastgan.runconfig import describe_keys, from_dict, load_config


def coupling_constants(cfg):
    return cfg.resolved.coupling.g1, cfg.resolved.coupling.g2
from fastgan.errors import ConfigError


def test_defaults_validate_and_resolve():
    cfg = fastgan.default_config()
    d = cfg.resolved.as_dict()
    assert d["generator"]["init_mean"] == pytest.approx([math.sqrt(2), math.sqrt(2)])
    assert d["discriminator"]["l2"] == pytest.approx(1 / 2048)
    assert d["training"]["batch_size"] == 200
    assert d["target"]["n_modes"] == 8 and d["target"]["std"] == 0.02


def test_ratio_normalisation():
    cfg = fastgan.default_config(**{"coupling.ratio": 0.2})
    g1, g2 = coupling_constants(cfg)
    assert g1 + g2 * 199 == pytest.approx(200)
    assert g2 / g1 == pytest.approx(0.2)
    assert coupling_constants(fastgan.default_config(**{"coupling.ratio": 1.0})) == pytest.approx((1.0, 1.0))
    assert coupling_constants(fastgan.default_config()) == pytest.approx((200.0, 0.0))


def test_canonical_json_and_run_id():
    a = fastgan.default_config(**{"training.seed": 3})
    b = from_dict({"training": {"seed": 3}, "backend": "numpy"})
    assert a.canonical_json() == b.canonical_json()        # backend is not part of the identity
    assert a.run_id == b.run_id and len(a.run_id) == 16
    c = fastgan.default_config(**{"training.seed": 4})
    assert c.run_id != a.run_id
    parsed = json.loads(a.canonical_json())
    assert "backend" not in parsed and parsed["training"]["seed"] == 3
    # explicit defaults hash like implicit ones
    assert fastgan.default_config(**{"discriminator.l2": 1 / 2048}).run_id == fastgan.default_config().run_id


def test_overrides_parse_toml_values(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[training]\nn_disc = 3\n')
    cfg = load_config(p, ["training.n_disc=7", "target.kind=grid", "generator.init_mean=[0.5, 0.5]",
                          "discriminator.l2=auto"])
    assert cfg.training.n_disc == 7 and cfg.target.kind == "grid"
    assert cfg.generator.init_mean == (0.5, 0.5) and cfg.discriminator.l2 is None
    assert parse_override("a.b = 1.5") == ("a.b", 1.5)


@pytest.mark.parametrize("dotted,value,needle", [
    ("generator.n_particles", 0, "generator.n_particles = 0"),
    ("generator.n_particles", -5, "generator.n_particles = -5"),
    ("training.lr_disc", -0.1, "training.lr_disc = -0.1"),
    ("training.lr_gen", float("nan"), "training.lr_gen = nan"),
    ("coupling.ratio", 1.5, "coupling.ratio = 1.5"),
    ("coupling.ratio", -0.1, "coupling.ratio = -0.1"),
    ("training.n_disc", 0, "training.n_disc = 0"),
    ("training.n_disc", 2.5, "training.n_disc = 2.5"),
    ("training.n_disc", "five", "training.n_disc = 'five'"),
    ("discriminator.activation", "gelu", "discriminator.activation = 'gelu'"),
    ("precision", "float16", "precision = 'float16'"),
    ("training.beta", float("inf"), "training.beta = inf"),
    ("target.n_modes", 10, None),  # fine for a ring
])
def test_bad_values_name_key_and_value(dotted, value, needle):
    if needle is None:
        fastgan.default_config(**{dotted: value})
        return
    with pytest.raises(ConfigError) as e:
        fastgan.default_config(**{dotted: value})
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_unknown_keys_suggest():
    with pytest.raises(ConfigError, match=r"training.ndisc = 3: unknown key \(did you mean training.n_disc\?\)"):
        from_dict({"training": {"ndisc": 3}})
    with pytest.raises(ConfigError, match="trainig = .*unknown key"):
        from_dict({"trainig": {"n_disc": 3}})


def test_cross_key_checks(tmp_path):
    with pytest.raises(ConfigError, match="coupling.ratio = 0.1: give either"):
        from_dict({"coupling": {"ratio": 0.1, "g1": 2.0, "g2": 1.0}})
    with pytest.raises(ConfigError, match="coupling.g2 = None"):
        from_dict({"coupling": {"g1": 2.0}})
    with pytest.raises(ConfigError, match="positive semi-definite"):
        from_dict({"coupling": {"g1": 1.0, "g2": 2.0}})
    with pytest.raises(ConfigError, match="target.n_modes = 8: a grid needs a perfect square"):
        from_dict({"target": {"kind": "grid", "n_modes": 8}})
    with pytest.raises(ConfigError, match="target.means = None: required"):
        from_dict({"target": {"kind": "mixture"}})
    with pytest.raises(ConfigError, match="target.weights"):
        from_dict({"target": {"kind": "mixture", "means": [[0, 0], [1, 1]], "weights": [1.0]}})
    with pytest.raises(ConfigError, match="target.means"):
        from_dict({"target": {"kind": "mixture", "means": [[0, 0], [1]]}})
    with pytest.raises(ConfigError, match="generator.init_mean"):
        from_dict({"generator": {"init_mean": [0.0, 0.0, 0.0]}})
    with pytest.raises(ConfigError, match="target.path = .*file not found"):
        from_dict({"target": {"kind": "file", "path": str(tmp_path / "nope.npy")}})
    with pytest.raises(ConfigError, match="coupling.gram = None"):
        from_dict({"coupling": {"kind": "gram"}})
    with pytest.raises(ConfigError, match="record.snapshots"):
        from_dict({"training": {"n_iterations": 10}, "record": {"snapshots": [0, 20]}})


def test_bad_toml_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[training\nn_disc = 3")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")


def test_replace_and_describe():
    cfg = fastgan.default_config()
    assert cfg.replace(**{"training.seed": 9}).training.seed == 9
    text = describe_keys()
    assert "training.n_disc" in text and "coupling.ratio" in text
