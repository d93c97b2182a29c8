import numpy as np
import pytest

from fastgan.dirac import dirac_eigenvalues, dirac_exact, dirac_integrate, dirac_matrix, dirac_sweep


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.9, 2.0, 2.1, 5.0, 30.0])
def test_eigenvalues(beta):
    ev = np.sort_complex(dirac_eigenvalues(beta))
    np.testing.assert_allclose(ev, np.sort_complex(np.linalg.eigvals(dirac_matrix(beta))), atol=1e-7)
    assert np.all(ev.real <= 1e-12)
    if beta == 2.0:
        np.testing.assert_allclose(ev, [-1, -1])


@pytest.mark.parametrize("beta", [0.3, 2.0, 2.0 + 1e-9, 4.0])
def test_exact_matches_integration_and_expm(beta):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    th, ph = dirac_exact(beta, 10.0)
    ref = scipy_linalg.expm(dirac_matrix(beta) * 10.0) @ [1.0, 0.0]
    np.testing.assert_allclose([th, ph], ref, rtol=1e-9, atol=1e-12)
    th2, ph2 = dirac_integrate(beta, 10.0, dt=1e-3)
    np.testing.assert_allclose([th2[0], ph2[0]], ref, rtol=1e-7, atol=1e-10)


def test_fig18_minimum_near_critical_damping():
    for n in (11, 21, 41, 81, 201):          # the paper's kind of log grid
        betas = np.geomspace(0.1, 10, n)
        assert 1.5 <= betas[np.argmin(dirac_sweep(betas, 10.0))] <= 2.5
    fine = np.geomspace(0.1, 10, 4001)       # the phase-space distance has no zero crossings
    assert 1.5 <= fine[np.argmin(dirac_sweep(fine, 10.0, measure="distance"))] <= 2.5
    # the three regimes: far under- and over-damped are both much worse than critical
    crit = dirac_sweep([2.0])[0]
    assert dirac_sweep([0.2])[0] > 50 * crit and dirac_sweep([10.0])[0] > 50 * crit
    # Euler (simultaneous gradient descent-ascent with a small learning rate) agrees
    np.testing.assert_allclose(dirac_sweep([0.5, 2, 5], method="euler", dt=1e-4), dirac_sweep([0.5, 2, 5]), rtol=2e-3)
