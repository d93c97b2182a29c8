"""egan-digits-phase: the authors' MNIST protocol grids, the rate unit's statement, the image tiling, and a
tiny run's report (the open parameters declared, the two qualitative comparisons made)."""

import json

import numpy as np
import pytest

from fastgan.reproduce import egan_digits as D


def test_the_protocol_grids():
    lr = D.protocol_lr_disc()
    assert lr.shape == (26,) and np.all(np.diff(lr) > 0)
    np.testing.assert_allclose(lr[:8], 10.0 ** (-5 + np.arange(8) / 24))
    np.testing.assert_allclose(lr[8:], 10.0 ** (-4 + np.arange(18) / 12))
    assert lr[0] == pytest.approx(1e-5) and lr[-1] == pytest.approx(10 ** (-4 + 17 / 12))
    r = D.protocol_ratios()
    assert r.shape == (26,) and r[0] == 0 and np.all(np.diff(r) > 0)
    assert r[1] == pytest.approx(0.01) and r[-1] == pytest.approx(10 ** (-2 + 1.99))
    # the rate unit puts alpha_G on fastgan's calibrated 2-D value and the grid's top near its alpha_D
    import fastgan
    t = fastgan.default_config().resolved.training
    assert D.ALPHA_G * D.RATE_UNIT == pytest.approx(t.lr_gen)
    assert lr[-1] * D.RATE_UNIT == pytest.approx(t.lr_disc, rel=0.1)


def test_image_tiling_and_extremes():
    from fastgan.plots import image_mosaic                    # the figure's tiling (fastgan plot's)
    ims = np.arange(3 * 64, dtype=float).reshape(3, 64)
    g = image_mosaic(ims, (8, 8), side=2)
    assert g.shape == (17, 17)
    np.testing.assert_array_equal(g[0:8, 0:8], ims[0].reshape(8, 8))
    np.testing.assert_array_equal(g[0:8, 9:17], ims[1].reshape(8, 8))
    np.testing.assert_array_equal(g[9:17, 0:8], ims[2].reshape(8, 8))
    assert np.isnan(g[8]).all() and np.isnan(g[9:17, 9:17]).all()            # gaps and the empty cell
    mc = np.array([[1.0, 4.0], [0.5, 3.0]])
    run = np.array([[0.0, 0.0], [1.0, 0.0]])                                 # (1, 0) ran away: not "spread"
    lo, hi = D._extremes(mc, run)
    assert tuple(lo) == (0, 0) and tuple(hi) == (0, 1)


def test_a_tiny_run_declares_what_the_protocol_leaves_open(tmp_path):
    pytest.importorskip("sklearn")
    from fastgan import reproduce
    reproduce.run("egan-digits-phase", "tiny", str(tmp_path / "d"), progress=False)
    doc = json.loads((tmp_path / "d" / "report.json").read_text())
    for key in ("training.n_disc", "discriminator.width", "training.optimizer_disc", "generator.init_mean",
                "rate unit", "target.normalize"):
        assert key in doc["parameters"]["open"], key
    assert "MNIST protocol" in doc["parameters"]["stated"]
    quantities = " ".join(c["quantity"] for c in doc["comparisons"])
    assert "g2/g1" in quantities and "alpha_D" in quantities
    assert doc["values"]["iterations"] == 40
