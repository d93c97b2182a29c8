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
    r = fastgan.default_config().resolved.as_dict()
    assert (r["generator"]["n_particles"], r["discriminator"]["width"], r["discriminator"]["activation"],
            r["training"]["n_disc"], r["training"]["n_iterations"]) == (200, 2048, "relu", 5, 3000)
    assert (r["training"]["lr_disc"], r["training"]["lr_gen"]) == (0.25, 0.01)


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


def _settle_time(run, threshold=0.2):
    """First recorded iteration after which the mode-collapse metric stays below threshold (inf if never)."""
    above = np.nonzero(run.observables["mode_collapse"] >= threshold)[0]
    if above.size == 0:
        return 0
    return np.inf if above[-1] + 1 >= len(run.time) else int(run.time[above[-1] + 1])


def test_critical_regularisation_three_regimes_fixed_budget():
    """Fig. 9 at the defaults, ratio 0.2, a fixed budget of 150 iterations: beta = 0.1 converges;
    ten times smaller stays collapsed (under-regularised, mode hopping), ten and a hundred times
    larger have not converged (over-regularised: the regulariser flattens D at the particles and
    slows them; at beta = 10 the explicit discriminator step may also become unstable)."""
    betas = [0.01, 0.1, 1.0, 10.0]
    runs = fastgan.simulate_ensemble([_defaults(coupling__ratio=0.2, training__beta=b, training__n_iterations=150)
                                      for b in betas], backend="numba")
    under, critical, over, far_over = runs
    assert critical.average_last("mode_collapse", 4) < 0.2 and not critical.diverged
    assert under.average_last("mode_collapse", 4) > 1.0 and not under.diverged
    assert over.average_last("mode_collapse", 4) > 0.2 and not over.diverged
    assert far_over.diverged or far_over.average_last("mode_collapse", 4) > 0.2


def test_regularised_settling_time_is_shortest_near_critical_beta():
    """The damped-oscillator picture: the time to converge is minimal at an intermediate beta and
    grows on both sides (never converging for the smallest beta)."""
    betas = [0.01, 0.03, 0.1, 1.0]
    runs = fastgan.simulate_ensemble([_defaults(coupling__ratio=0.2, training__beta=b, training__n_iterations=600,
                                                record__every=10) for b in betas], backend="numba")
    t = [_settle_time(r) for r in runs]
    assert not any(r.diverged for r in runs)
    assert t[0] == np.inf                       # under-regularised: still collapsed after 600 iterations
    assert t[2] < t[1] and t[2] < t[3]          # fastest at beta = 0.1
    assert t[2] <= 100 and t[3] >= 2 * t[2]
