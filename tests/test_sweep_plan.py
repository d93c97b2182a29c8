"""Plan before compute (`fastgan sweep --dry-run`) and stored runs outside a changed grid."""

import numpy as np
import pytest

import fastgan
from fastgan import sweep_report
from fastgan.sweep import execute, parse_spec
from tests.test_sweep import _spec, _write_spec
from test_faults import _main as run_main


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(sweep_report, "CALIBRATION_S", 0.05)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys, quick):
    spec = _write_spec(tmp_path, max_ensemble=3)             # 8 runs: ensembles of 3, 3 and 2
    out = tmp_path / "out"
    code, text, err = run_main(capsys, "sweep", spec, "--out", out, "--backend", "numpy", "--dry-run")
    assert code == 0, err
    assert not out.exists()
    assert "8 runs (2 x 2 grid x 2 replicates); 0 stored, 8 to compute in 3 ensembles [numpy]" in text
    rows = [ln.split() for ln in text.splitlines() if ln.startswith("  ") and "ensemble" not in ln]
    assert [r[1] for r in rows] == ["3", "3", "2"] and all(r[2] == "60" for r in rows)
    assert "memory: the largest ensemble holds about" in text and "GiB are available" in text
    assert "estimated compute:" in text and "nothing was written (--dry-run)" in text
    assert all(r[-1] == "s" and float(r[-2]) > 0 for r in rows)      # every ensemble has an estimate
    code, _, err = run_main(capsys, "sweep", spec, "--out", out, "--dry-run", "--refine")
    assert code == 2 and "--dry-run with --refine" in err and not out.exists()


def test_shrinking_an_axis_says_which_stored_runs_lie_outside_and_extending_brings_them_back(tmp_path, capsys,
                                                                                           quick):
    out = str(tmp_path / "out")
    full = parse_spec(_spec())
    execute(full, out, backend="numpy", progress=False)
    ref = fastgan.open_sweep(out)
    shrunk = _write_spec(tmp_path, "shrunk.toml", axes=[{"key": "coupling.ratio", "values": [0.0]},
                                                        {"key": "training.n_disc", "values": [1, 3]}], replicates=1)
    code, text, _ = run_main(capsys, "sweep", shrunk, "--out", out, "--backend", "numpy", "--dry-run")
    assert code == 0 and "2 stored, 0 to compute" in text
    assert "6 stored runs of this folder lie outside this grid (coupling.ratio = 0.2; replicate = 1)" in text, text
    code, text, _ = run_main(capsys, "sweep", shrunk, "--out", out, "--backend", "numpy")
    assert code == 0 and "0 of 2 runs computed now" in text and "6 stored runs" in text
    assert fastgan.open_sweep(out).sizes["g2_over_g1"] == 1
    again = execute(full, out, backend="numpy", progress=False)
    assert again["runs_computed"] == 0 and again["outside"] == []
    np.testing.assert_array_equal(fastgan.open_sweep(out)["mode_collapse"].values, ref["mode_collapse"].values)
