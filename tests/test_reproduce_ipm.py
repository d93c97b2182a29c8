"""Reproductions of the isolated points model, Becker et al. (fastgan/reproduce/ipm.py): the theory helpers
against closed forms, the Fig. 1 setting against examples/ipm_regions.toml, and the Fig. 2 end-state
classifier."""

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

import fastgan
from fastgan.reproduce import ipm

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def test_ring_radius_closed_forms():
    # n = 2: rho^2 = (2/3) ln(2 p~ / p); n = 3 with p = 2 p~: e^{rho^2} = 3/2; n = 4 with p = 2 p~: u = e^{-rho^2/2}, u + u^3 = 1
    assert ipm.ring_radius(2, 1.0, 1.0) == pytest.approx(math.sqrt(2 / 3 * math.log(2)), rel=1e-10)
    assert ipm.ring_radius(3, 0.25, 0.125) == pytest.approx(math.sqrt(math.log(1.5)), rel=1e-10)
    u = ipm.ring_radius(4, 0.25, 0.125)
    u = math.exp(-u * u / 2)
    assert u + u ** 3 == pytest.approx(1.0, rel=1e-10)
    assert math.isnan(ipm.ring_radius(2, 1.0, 0.4))            # n p~ < p: no ring (the points converge)


def test_travelling_speed_limits():
    # lam -> 0: v -> p~ sqrt(eta_d eta_g); no travelling wave when mu p~^2 < (lam sigma)^2
    assert ipm.travelling_speed(0.05, 0.05, 0.01, 1.0, 1.0) == pytest.approx(0.05, rel=0.01)
    assert ipm.travelling_speed(1e-3, 1e-3, 1e-4, 0.5, 0.25) == pytest.approx(0.25e-3, rel=0.01)
    assert math.isnan(ipm.travelling_speed(0.05, 0.2, 0.5, 0.5, 0.125))        # mu p~^2 / (lam sigma)^2 = 1
    assert ipm.travelling_speed(0.05, 0.5, 0.5, 0.5, 0.125) == pytest.approx(0.010975, rel=1e-3)


def test_fig1_setting_is_the_example():
    ex = fastgan.load_config(os.path.join(EXAMPLES, "ipm_regions.toml"))
    ours = fastgan.default_config(**ipm.REGIONS, **{"training.n_iterations": ex.training.n_iterations,
                                                    "record.every": ex.record.every, "record.snapshots": ex.record.snapshots})
    assert ours.to_dict() == ex.to_dict()


def _fake_run(X_end, w2=0.5, escaped=0.0):
    """A RunResult stand-in on the unit-circle target."""
    modes = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    return SimpleNamespace(diverged=False, modes=modes, particles=np.stack([np.zeros_like(X_end), X_end]),
                           observables={"w2": np.array([1.0, w2]), "escaped_fraction": np.array([0.0, escaped])})


def test_fig2_outcomes():
    pair = np.array([[1.05, 0.0], [0.95, 0.02], [-1.0, 0.0], [0.3, -0.2]])
    assert ipm._outcome(_fake_run(pair)) == "collapsed"
    assert ipm._outcome(_fake_run(pair, w2=0.01)) == "converged"
    assert ipm._outcome(_fake_run(pair, escaped=0.25)) == "diverged"
    loose = pair + [[0.0, 0.0], [-0.3, 0.0], [0.0, 0.0], [0.0, 0.0]]          # the second point 0.35 from x_1
    assert ipm._outcome(_fake_run(loose)) == "unsettled"
    spread = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    assert ipm._outcome(_fake_run(spread)) == "unsettled"
