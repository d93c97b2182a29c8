"""Run identities are a contract: stored sweeps resume by run id, so a refactor must not change the run
id of a config whose resolved form is unchanged. These ids were computed before the discriminator
families became plugins (and the config was resolved once); every one must stay as it is."""

import pytest

import fastgan

RUN_IDS = {
    "defaults": ({}, "080cb9519531aeb9"),
    "mlp-deep-tanh": ({"discriminator.depth": 3, "discriminator.activation": "tanh", "coupling.ratio": 0.2},
                      "de2845b15b384013"),
    "mlp-gram-arch": ({"coupling.kind": "gram", "coupling.gram_arch": "erf", "coupling.gram_setting": "deep"},
                      "bc8048e7ac07a082"),
    "fourier": ({"discriminator.kind": "fourier", "discriminator.gamma": "exp"}, "951132a1014584d3"),
    "rff": ({"discriminator.kind": "rff", "target.kind": "circle", "discriminator.bandwidth": [0.5, 2.0]},
            "d4d1a893371554c7"),
    "kernel-rq": ({"discriminator.kind": "kernel", "target.kind": "sphere", "discriminator.kernel": "rq",
                   "discriminator.rq_alpha": 2.0}, "9c7004a95c3ab4dc"),
    "kde-resample": ({"discriminator.kind": "kde", "discriminator.data_resample": True,
                      "discriminator.bandwidth": 0.3}, "b2f5741c03132490"),
    "kde-nsgan-early-stop": ({"discriminator.kind": "kde", "discriminator.model": "nsgan", "record.early_stop": True},
                             "86dc3d2a469d2fc6"),
}


@pytest.mark.parametrize("name", sorted(RUN_IDS))
def test_run_id_is_unchanged(name):
    keys, run_id = RUN_IDS[name]
    assert fastgan.default_config(**keys).run_id == run_id


def test_explicit_defaults_and_other_families_keys_do_not_change_the_identity():
    base = fastgan.default_config()
    assert fastgan.default_config(**{"discriminator.l2": 1 / 2048, "discriminator.init": "paper"}).run_id == base.run_id
    assert fastgan.default_config(**{"discriminator.n_features": 64, "discriminator.gamma": "exp"}).run_id == base.run_id
