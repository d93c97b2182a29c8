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


def _sweep_experiment(monkeypatch):
    """A registered experiment that runs one 6-run sweep (one ensemble of 40 iterations) and saves its data."""
    from fastgan.reproduce.common import REGISTRY, Experiment
    from fastgan.reproduce.egan_phase import _base, _sweep

    def sweep_exp(ctx):
        base = _base("relu", 40, width=16)
        base["generator"]["n_particles"] = 8
        ds = _sweep(ctx, "sweep", base, [{"key": "coupling.ratio", "values": [0.0, 0.1, 0.3]},
                                         {"key": "training.n_disc", "values": [1, 2]}])
        ctx.save_h5({"mode_collapse": ds["mode_collapse"].values})
        ctx.report.value("runs", float(ds["mode_collapse"].size))
    monkeypatch.setitem(REGISTRY, "sweep-test", Experiment("sweep-test", "001", "Fig. 0", "test", sweep_exp))


def test_an_interrupted_reproduction_resumes_its_sweep(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the middle of a reproduction's sweep: exit 130, the work folder (checkpoint included) stays;
    the same command resumes from the checkpoint (only the remaining iterations are computed) and ends bitwise
    the uninterrupted reproduction, with no work folder left; a stale work folder of an older version (random
    suffix) is removed, not resumed."""
    import signal

    from fastgan import engine
    _sweep_experiment(monkeypatch)
    ref = tmp_path / "ref"
    assert main(["reproduce", "sweep-test", "--tiny", "--out", str(ref), "--quiet", "--backend", "numpy"]) == 0
    real = engine.Ensemble.advance
    done = []

    def advance(self, st, it):
        out = real(self, st, it)
        done.append(it)
        if it == 25 and len(done) == 26:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(engine.Ensemble, "advance", advance)
    (tmp_path / ".rep-abc123.partial").mkdir()                          # an older version's leftover
    out = tmp_path / "rep"
    code = main(["reproduce", "sweep-test", "--tiny", "--out", str(out), "--quiet", "--backend", "numpy"])
    err = capsys.readouterr().err
    work = tmp_path / ".rep-sweep-test-tiny.partial"
    assert code == 130 and "the same command resumes" in err and str(work) in err, err
    assert work.is_dir() and not out.exists() and any((work / "sweep" / "checkpoints").iterdir())
    done.clear()
    assert main(["reproduce", "sweep-test", "--tiny", "--out", str(out), "--quiet", "--backend", "numpy"]) == 0
    assert done == list(range(26, 40))                                  # resumed after iteration 26 of 40
    assert sorted(os.listdir(tmp_path)) == ["ref", "rep"]               # no work folder, the stale one gone
    with h5py.File(out / "data.h5") as a, h5py.File(ref / "data.h5") as b:
        np.testing.assert_array_equal(a["mode_collapse"][()], b["mode_collapse"][()])
    meta = json.loads((out / "report.json").read_text())
    assert meta["resumed"] is True and "after resuming an interrupted run" in (out / "report.txt").read_text()


def test_a_second_reproduction_into_the_same_folder_is_refused_while_one_runs(tmp_path, monkeypatch, capsys):
    import fcntl
    _sweep_experiment(monkeypatch)
    work = tmp_path / ".rep-sweep-test-tiny.partial"
    work.mkdir()
    fd = os.open(work, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)                  # as a running reproduction holds it
        assert main(["reproduce", "sweep-test", "--tiny", "--out", str(tmp_path / "rep"), "--quiet"]) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is running now" in err and str(work) in err
    assert sorted(os.listdir(tmp_path)) == [work.name] and not any(work.iterdir())


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


def test_the_report_records_the_commit_that_ran_and_one_that_changed_meanwhile(tmp_path, monkeypatch):
    """The commit is taken when the experiment starts (the code imported then); a checkout that moved
    while it ran is recorded beside it, in report.json and in the report's header."""
    from fastgan import store
    commits = iter(["aaa111", "bbb222"])
    monkeypatch.setattr(store, "git_commit", lambda: next(commits))
    reproduce.run("egan-fig18", "tiny", str(tmp_path / "x"), progress=False)
    doc = json.loads((tmp_path / "x" / "report.json").read_text())
    assert doc["git_commit"] == "aaa111" and doc["git_commit_at_end"] == "bbb222"
    head = (tmp_path / "x" / "report.txt").read_text().splitlines()[1]
    assert "aaa111" in head and "checkout was at bbb222 when it ended" in head


def test_report_verdicts_say_what_was_found():
    """Besides agrees / DISAGREES / no verdict: the paper's words holding ('agrees qualitatively'), a number that
    depends on a parameter the paper leaves open ('not comparable'), a number fastgan calibrated to ('calibrated
    to it', not a check); anything else is refused; report.json carries the verdict's words."""
    from fastgan.reproduce.common import Report
    r = Report()
    r.compare("a", "1", "1", True)
    r.compare("b", "x", "y", "qualitative")
    r.compare("c", "x", "y", "not comparable", "depends on lambda")
    r.compare("d", "0.06", "≈ 0.06", "calibrated")
    r.compare("e", "2", "1", 0)
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        r.compare("f", "x", "y", "maybe")
    text = r.text("header")
    for words in ("[agrees]", "[agrees qualitatively]", "[not comparable] -- depends on lambda", "[calibrated to it]",
                  "[DISAGREES]"):
        assert words in text
    got = json.loads(r.as_json({}))["comparisons"]
    assert [c["verdict"] for c in got] == ["agrees", "agrees qualitatively", "not comparable", "calibrated to it",
                                           "DISAGREES"]
    assert [c["agree"] for c in got] == [True, "qualitative", "not comparable", "calibrated", False]


def test_report_parameters_and_sensitivity_scans():
    """A report names the parameters the paper states and those it leaves open; a scan of an open one keeps its
    raw numbers in report.json and turns the comparison into 'not comparable' with the range and whether the
    paper's number lies inside; a scan of an undeclared parameter is refused."""
    from fastgan.reproduce.common import Report
    r = Report()
    r.parameters({"N": 200}, {"training.lam": "1: the paper's App. C gives none"})
    with pytest.raises(ValueError, match="not among the declared parameters"):
        r.scan("slope", "training.lr_disc", [1], [2])
    sc = r.scan("Fig. 14 slope", "training.lam", [0.1, 0.25, 1.0], [8.9, float("nan"), 1.56], paper=4.9)
    assert sc.covers_paper() is True and sc.span() == "1.56 to 8.9"
    r.compare_scanned("Fig. 14 slope", "1.56", "4.90", sc)
    text = r.text("h")
    assert "Parameters the paper states:" in text and "training.lam: 1: the paper's App. C gives none" in text
    assert "[not comparable] -- depends on the unstated training.lam: 1.56 to 8.9 over the scan; the paper's 4.9 " \
           "lies inside that range" in text
    doc = json.loads(r.as_json({}))
    assert doc["parameters"]["stated"] == {"N": "200"}
    assert doc["sensitivity"][0]["results"] == [8.9, None, 1.56] and doc["sensitivity"][0]["paper_inside"] is True
    assert r.scan("x", "training.lam", [1], [3.0], paper=4.9).covers_paper() is False
    r.scan("unmeasured", "training.lam", [1], [float("nan")], paper=4.9)     # every run diverged: no claim
    line = next(ln for ln in r.text("h").splitlines() if "unmeasured against" in ln)
    assert line.endswith("not measured (paper 4.9)")
