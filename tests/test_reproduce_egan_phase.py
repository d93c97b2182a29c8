"""The phase-boundary analysis behind egan-fig5-6, -fig13, -fig10-11 and -fig16-17, on synthetic
diagrams whose boundary is known: a power law and an exponential are told apart, the crossing is
found to the interpolation accuracy, replicate spreads and row interpolation behave."""

from __future__ import annotations

import numpy as np
import pytest

from fastgan.reproduce.egan_phase import THRESHOLD, Boundary, _at_row, boundary

RATIOS = np.geomspace(1e-3, 3.0, 70)
ROWS = np.array([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 16.0])


def _diagram(ratio_c, reps: int = 1, shift=0.0) -> np.ndarray:
    """Mode collapse (ratio, row, rep): a smooth step from 0 to log 8 at ratio_c(row) in log g2/g1."""
    rc = ratio_c(ROWS)[None, :, None] * np.exp(shift * np.arange(reps))[None, None, :]
    return np.log(8) / (1 + np.exp(-(np.log(RATIOS)[:, None, None] - np.log(rc)) / 0.05))


def test_power_law_boundary_is_recognised():
    b = boundary(RATIOS, ROWS, _diagram(lambda n: 0.01 * n ** (1 / 0.6)))
    assert np.all(np.isfinite(b.ratio))
    np.testing.assert_allclose(b.ratio, 0.01 * ROWS ** (1 / 0.6), rtol=0.02)
    assert b.fits.best == "power" and b.fits.delta_aic > 10
    assert b.fits.power.slope == pytest.approx(0.6, rel=0.03)


def test_exponential_boundary_is_recognised():
    b = boundary(RATIOS, ROWS, _diagram(lambda n: 0.05 + np.log(n) / 10))
    assert b.fits.best == "exponential" and b.fits.delta_aic > 10
    assert b.fits.exponential.slope == pytest.approx(10.0, rel=0.05)


def test_replicate_spread_and_missing_rows():
    mc = _diagram(lambda n: 0.01 * n, reps=2, shift=0.1)
    mc[:, -1, :] = 0.0                                  # the last row never collapses: no crossing
    b = boundary(RATIOS, ROWS, mc)
    assert np.isnan(b.ratio[-1]) and np.all(np.isfinite(b.ratio[:-1]))
    # two replicates at rc and rc e^0.1: spread = std of the pair (ddof 1)
    np.testing.assert_allclose(b.spread[:-1], 0.01 * ROWS[:-1] * (np.exp(0.1) - 1) / np.sqrt(2), rtol=0.05)
    assert b.fits is not None and b.fits.power.n == len(ROWS) - 1
    assert np.all(np.nanmean(mc, -1)[0] < THRESHOLD)


def test_too_few_crossings_gives_no_fit():
    mc = np.zeros((len(RATIOS), len(ROWS), 1))
    mc[:, :2, 0] = _diagram(lambda n: 0.01 * n)[:, :2, 0]
    assert boundary(RATIOS, ROWS, mc).fits is None


def test_at_row_takes_the_grid_row_or_interpolates_log_log():
    b = Boundary(np.array([4.0, 8.0, 16.0]), np.array([0.02, 0.04, np.nan]), np.full(3, np.nan), None)
    assert _at_row(b, 8.0) == 0.04
    assert _at_row(b, np.sqrt(32.0)) == pytest.approx(np.sqrt(0.02 * 0.04))
    assert np.isnan(_at_row(b, 12.0)) and np.isnan(_at_row(b, 2.0))
