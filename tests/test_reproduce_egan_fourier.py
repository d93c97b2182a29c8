"""egan-fig14 / egan-fig15 on a synthetic phase diagram with a known boundary: the bisection, the
orientation of the fit (n_disc against g2/g1) and the slope units, without simulating."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

import fastgan
from fastgan import reproduce


def _fake_ensemble(boundary, log_width):
    """simulate_ensemble stand-in: MC = log 8 * sigmoid(distance past the boundary ratio), constant
    in time, so that MC crosses (1/2) log 8 exactly at g2/g1 = boundary(n_disc)."""
    def simulate(configs, backend=None, progress=None):
        out = []
        for c in configs:
            rb, r = boundary(c.training.n_disc), c.coupling.ratio
            z = (math.log(r) - math.log(rb)) / 0.1 if log_width else (r - rb) / 0.02
            time = np.arange(0, c.training.n_iterations + 1, c.record.every)
            mc = np.full(time.shape, math.log(8) / (1 + math.exp(-z)))
            out.append(SimpleNamespace(time=time, diverged=False,
                                       observables={"mode_collapse": mc, "nearest_mode_distance": 0 * mc}))
        return out
    return simulate


@pytest.mark.parametrize("name, kind, slope, boundary, log_width", [
    ("egan-fig14", "power", 4.9, lambda nd: 0.05 * nd ** (1 / 4.9), True),
    ("egan-fig15", "exponential", 8.0, lambda nd: 0.2 + math.log(nd) / 8.0, False),
])
def test_recovers_a_known_boundary(name, kind, slope, boundary, log_width, tmp_path, monkeypatch):
    monkeypatch.setattr(fastgan, "simulate_ensemble", _fake_ensemble(boundary, log_width))
    reproduce.run(name, "quick", str(tmp_path / name), progress=False)
    doc = json.loads((tmp_path / name / "report.json").read_text())
    v = doc["values"]
    assert v["lines_bracketed"] == 5
    for nd in (1, 2, 4, 8, 16):
        assert v[f"boundary_ratio_n_disc_{nd}"] == pytest.approx(boundary(nd), rel=0.02)
    assert v[f"{kind}_slope"] == pytest.approx(slope, rel=0.03)
    assert v[f"{kind}_r2"] > 0.99
    shape = next(c for c in doc["comparisons"] if c["quantity"].startswith("preferred"))
    assert shape["agree"] is True and shape["ours"].startswith(kind)  # True needs dAIC >= 2
