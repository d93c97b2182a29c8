"""Helpers of the Durr et al. dynamics and regularisation reproductions (Figs. 3, 4, 8, 9, 19)."""

from __future__ import annotations

import math

import numpy as np

import fastgan
from fastgan.reproduce.egan_dynamics import dominant_mode_hops, gyration_radius, paper_coupling, settle_time
from fastgan.reproduce.egan_regularisation import classify_regimes, dirac_critical_beta


def test_paper_coupling_keeps_the_per_particle_velocity_of_2000_particles():
    for n in (50, 200, 2000):
        keys = paper_coupling(n, 0.2)
        c = fastgan.default_config(**{"generator.n_particles": n, **keys}).resolved.coupling
        g1, g2 = c.g1, c.g2
        assert math.isclose((g1 - g2) / n, 0.8) and math.isclose(g2, 400.0)     # V = 0.8 grad D_a + 400 <grad D>
    g1, g2 = paper_coupling(2000, 0.2).values()
    assert math.isclose(g2 / g1, 0.2)                                           # exactly the paper's 1/5 at N = 2000
    assert paper_coupling(200, 0.0) == {"coupling.g1": 200.0, "coupling.g2": 0.0}    # footnote 31: g1 = N, g2 = 0


def test_settle_time_hops_and_radius():
    t = np.arange(0, 60, 10)
    assert settle_time(t, np.array([2.0, 1.0, 0.1, 0.3, 0.1, 0.05])) == 40
    assert settle_time(t, np.array([2.0, 1.0, 0.1, 0.1, 0.1, 0.3])) == math.inf
    assert settle_time(t, np.array([2.0, 0.1, np.nan, 0.1, 0.1, 0.1])) == 30      # NaN (diverged) counts as above
    assert settle_time(t, np.zeros(6)) == 0
    hist = np.array([[9, 1, 0], [8, 2, 0], [1, 9, 0], [0, 1, 9], [-1, -1, -1]])
    assert dominant_mode_hops(hist) == 2
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], 1) * 2.0
    assert np.allclose(gyration_radius(np.stack([ring, ring * 0.1 + 5.0])), [2.0, 0.2])


def test_regimes_from_settling_times():
    table = {"beta": np.array([0.0, 0.01, 0.1, 0.3, 1.0, 5.0]),
             "settle": np.array([np.inf, np.inf, 60.0, 110.0, 400.0, np.inf]),
             "diverged": np.array([0, 0, 0, 0, 0, 1.0])}
    labels, star = classify_regimes(table, every=10)
    assert labels == ["under", "under", "critical", "critical", "over", "unstable"] and star == 0.1
    labels, star = classify_regimes({**table, "settle": np.full(6, np.inf)}, every=10)
    assert math.isnan(star) and labels[0] == "not converged" and labels[-1] == "unstable"
    assert math.isclose(dirac_critical_beta(1.0, 1.0), 2.0) and math.isclose(dirac_critical_beta(0.25, 0.01), 0.4)
