"""fastgan reproduce: the registry, the CLI contract, and a tiny-scale smoke run of every experiment
(its outputs exist, its data and reported numbers are finite)."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import h5py
import numpy as np
import pytest

from fastgan import reproduce
from fastgan.cli import main

NAMES = list(reproduce.experiments())


def _float_datasets(path):
    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
            out.append((name, obj))
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: visit(n, o))
        for name, ds in out:
            yield name, ds[()], bool(ds.attrs.get("allow_nonfinite", False))


def test_registry_names_and_list(capsys):
    assert len(NAMES) == len(set(NAMES))
    for e in reproduce.experiments().values():
        assert e.paper in ("000", "001", "002", "004"), e
        assert e.title and e.figures
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for n in NAMES:
        assert n in out


def test_unknown_name_and_existing_output(tmp_path, capsys):
    assert main(["reproduce", "egan-fig99", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "egan-fig99" in err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["reproduce", "egan-fig18", "--tiny", "--out", str(full), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (full / "keep.txt").read_text() == "mine" and os.listdir(full) == ["keep.txt"]
    assert main(["reproduce", "egan-fig18", "--tiny", "--out", str(tmp_path / "nope" / "x")]) == 2
    assert not os.path.exists(tmp_path / "nope")


def test_failed_experiment_leaves_nothing(tmp_path, monkeypatch):
    from fastgan.reproduce.common import REGISTRY, Experiment

    def boom(ctx):
        ctx.save_h5({"x": np.zeros(3)})
        raise RuntimeError("blow-up")
    monkeypatch.setitem(REGISTRY, "boom-test", Experiment("boom-test", "001", "Fig. 0", "test", boom))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        reproduce.run("boom-test", "tiny", str(out))
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_tiny_smoke(name, tmp_path):
    exp = reproduce.get(name)
    for mod in exp.needs:
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"needs {mod}")
    out = tmp_path / name
    ctx = reproduce.run(name, "tiny", str(out), progress=False)
    files = os.listdir(out)
    assert "report.txt" in files and "report.json" in files
    assert any(f.endswith(".png") for f in files), files
    h5s = [f for f in files if f.endswith(".h5")]
    assert h5s, files
    for f in h5s:
        n = 0
        for dname, arr, ok in _float_datasets(out / f):
            n += 1
            assert ok or np.all(np.isfinite(arr)), f"{f}:{dname} holds NaN/Inf"
        assert n > 0, f"{f} holds no float data"
    doc = json.loads((out / "report.json").read_text())
    assert doc["experiment"] == name and doc["values"], "the report records no numbers"
    assert all(math.isfinite(v) for v in doc["values"].values())
    assert doc["comparisons"], "the report compares nothing with the paper"
    assert all(os.path.exists(p) for p in ctx.outputs)
