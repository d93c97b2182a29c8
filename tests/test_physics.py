"""Acceptance physics at the documented defaults (N = 200, W = 2048, ReLU, n_disc = 5, 3000 iterations).

These are the paper's qualitative results reproduced by full-size simulations (numba backend; the
numba twins are checked against the NumPy reference in test_ops_twins / test_engine).
"""

import numpy as np
import pytest

import fastgan

pytestmark = pytest.mark.slow


def _defaults(**dotted):
    base = {"record.snapshots": 0, "record.discriminator": False}
    base.update({k.replace("__", "."): v for k, v in dotted.items()})
    return fastgan.default_config(**base)


def test_defaults_are_the_documented_ones():
    cfg = fastgan.default_config()
    assert (cfg.generator.n_particles, cfg.discriminator.width, cfg.discriminator.activation,
            cfg.training.n_disc, cfg.training.n_iterations) == (200, 2048, "relu", 5, 3000)
    assert (cfg.training.lr_disc, cfg.training.lr_gen) == (0.25, 0.01)


def test_ratio_zero_converges_and_ratio_point_two_collapses():
    runs = fastgan.simulate_ensemble([_defaults(coupling__ratio=0.0), _defaults(coupling__ratio=0.2)],
                                     backend="numba")
    converged, collapsed = (r.average_last("mode_collapse", 4) for r in runs)
    assert not any(r.diverged for r in runs)
    assert converged < 0.1
    assert collapsed > 1.0
    # converged: every mode holds about N/8 particles, close to its centre (inter-mode distance 1.53)
    counts = runs[0].histograms["nearest_mode"][-1]
    assert counts.min() >= 15 and runs[0].observables["nearest_mode_distance"][-1] < 0.1
    assert runs[1].histograms["nearest_mode"][-1].max() > 100          # most particles on one mode
    assert runs[0].observables["log_likelihood"][-1] > runs[1].observables["log_likelihood"][-1]


def test_critical_regularisation_three_regimes_at_defaults():
    """Fig. 9 at the defaults, ratio 0.2: beta = 0.03 converges; ten times smaller stays collapsed
    (under-regularised); a hundred times larger (3) does not converge either: at alpha_D = 0.25
    the explicit discriminator step is unstable for beta >~ 2 (see test below for the over-damped
    regime once the discriminator time is split into smaller steps)."""
    betas = [0.003, 0.03, 3.0]
    runs = fastgan.simulate_ensemble([_defaults(coupling__ratio=0.2, training__beta=b) for b in betas],
                                     backend="numba")
    under, critical, over = runs
    assert critical.average_last("mode_collapse", 4) < 0.2 and not critical.diverged
    assert under.average_last("mode_collapse", 4) > 0.2 and not under.diverged
    assert over.diverged or over.average_last("mode_collapse", 4) > 0.2
