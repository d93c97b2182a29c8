"""Checkpoints of a running ensemble (issue: long work survives interruption): the state saved at any
iteration and restored onto a fresh ensemble continues bitwise as if never stopped, in every family
(whatever its bound ops and observers keep between iterations), on numpy and numba; a file of
another ensemble or backend, or a damaged one, is never resumed from; interrupts are deferred to the
end of an iteration, saved, then delivered."""

import json
import os
import signal

import numpy as np
import pytest

from fastgan import checkpoint as ck
from fastgan.engine import Ensemble
from tests.conftest import small_config

FAMILIES = {
    "mlp": {"record.discriminator": True},
    "mlp-deep-beta": {"discriminator.depth": 2, "training.beta": 0.5, "training.n_disc": 2},
    "mlp-adam": {"training.optimizer_disc": "adam", "training.lr_disc": 0.01, "training.beta": 0.2},
    "mlp-deep-rmsprop": {"discriminator.depth": 2, "training.optimizer_disc": "rmsprop", "training.lr_disc": 0.001},
    "fourier": {"discriminator.kind": "fourier", "discriminator.freq_count": 5},
    "rff": {"discriminator.kind": "rff", "target.kind": "circle", "discriminator.n_features": 16,
            "record.discriminator": True},
    "kernel": {"discriminator.kind": "kernel", "target.kind": "circle", "discriminator.history": 7},
    "kde-resample-simultaneous": {"discriminator.kind": "kde", "discriminator.data_resample": True,
                                  "discriminator.bandwidth": 0.3, "training.update_order": "simultaneous"},
    "kde-nsgan-early-stop": {"discriminator.kind": "kde", "discriminator.model": "nsgan", "record.early_stop": True,
                             "record.warmup": 2, "target.kind": "mixture", "target.means": [[-1.0], [1.0]],
                             "target.stds": [0.2, 0.2], "generator.init_mean": [0.0]},
}


def _configs(name, **more):
    keys = dict(FAMILIES[name], precision="float64", **more)
    a = small_config(**{k.replace(".", "__"): v for k, v in keys.items()})
    return [a, a.replace(**{"training.seed": 7, "training.n_disc": 3})]


class At(ck.Checkpoint):
    """Saves after the given iterations (instead of every so many seconds)."""

    def __init__(self, path, iterations, identity=None):
        super().__init__(str(path), 1.0, identity or {"test": 1})
        self.at = set(iterations)

    def due(self, iteration):
        return iteration in self.at


class Stop(Exception):
    pass


def _interrupt_after(ens, iteration):
    """The ensemble stops (raises Stop) once it has advanced past ``iteration``."""
    real = ens.advance

    def advance(st, it):
        if it == iteration:
            raise Stop
        return real(st, it)
    ens.advance = advance


def _same(a, b):
    for x, y in zip(a, b):
        assert x.diverged_at == y.diverged_at
        for k in x.observables:
            np.testing.assert_array_equal(x.observables[k], y.observables[k], err_msg=k)
        for k in x.histograms:
            np.testing.assert_array_equal(x.histograms[k], y.histograms[k], err_msg=k)
        np.testing.assert_array_equal(x.particles, y.particles)
        for k in x.discriminator:
            np.testing.assert_array_equal(x.discriminator[k], y.discriminator[k], err_msg=k)
        for k in x.disc_snapshots:
            np.testing.assert_array_equal(x.disc_snapshots[k], y.disc_snapshots[k], err_msg=k)
        for k in ("early_stop_at", "early_stop_reason"):
            assert x.provenance.get(k) == y.provenance.get(k)


FAST_FAMILIES = ("mlp", "mlp-adam", "kernel", "kde-resample-simultaneous")     # the others in the slow tier


@pytest.mark.filterwarnings("ignore:discriminator.history")       # a short ring buffer: it wraps here
@pytest.mark.parametrize("name", [n if n in FAST_FAMILIES else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(FAMILIES)])
def test_resume_from_a_checkpoint_is_bitwise_the_uninterrupted_run(name, tmp_path):
    cfgs = _configs(name)
    ref = Ensemble(cfgs, "numpy").run(progress=False)
    for stop in (7, 23):                      # between records and snapshots, and after a snapshot
        path = tmp_path / f"{stop}.h5"
        ens = Ensemble(cfgs, "numpy")
        _interrupt_after(ens, stop + 2)
        with pytest.raises(Stop):
            ens.run(progress=False, checkpoint=At(path, {stop}))
        again = At(path, set())
        got = Ensemble(cfgs, "numpy").run(progress=False, checkpoint=again)
        assert again.resumed_at == stop
        _same(ref, got)
        assert got[0].provenance["resumed_at"] == stop


def test_resume_on_numba_with_a_diverged_run_is_bitwise(tmp_path):
    a = small_config(precision="float64", training__n_iterations=40)
    cfgs = [a, a.replace(**{"training.lr_gen": 1e6}), a.replace(**{"training.seed": 3})]
    ref = Ensemble(cfgs, "numba").run(progress=False)
    assert ref[1].diverged and not ref[0].diverged
    ens = Ensemble(cfgs, "numba")
    _interrupt_after(ens, 33)
    with pytest.raises(Stop):
        ens.run(progress=False, checkpoint=At(tmp_path / "c.h5", {12, 31}))
    _same(ref, Ensemble(cfgs, "numba").run(progress=False, checkpoint=At(tmp_path / "c.h5", set())))


def test_a_checkpoint_of_other_runs_or_backend_is_not_resumed_and_a_damaged_one_is_refused(tmp_path):
    cfgs = _configs("mlp")
    path = tmp_path / "c.h5"
    ens = Ensemble(cfgs, "numpy")
    _interrupt_after(ens, 12)
    with pytest.raises(Stop):
        ens.run(progress=False, checkpoint=At(path, {10}, {"runs": "a", "backend": "numpy"}))
    other = At(path, set(), {"runs": "a", "backend": "numba"})
    with pytest.warns(UserWarning, match="other runs, another backend"):
        assert other.load() is None
    same = At(path, set(), {"runs": "a", "backend": "numpy"})
    assert same.load()[0] == 10
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="checkpoint .*c.h5'.*changed.*moved to .*c.h5.damaged"):
        assert same.load() is None
    assert (tmp_path / "c.h5.damaged").exists() and not path.exists()


def test_a_checkpoint_lacking_arrays_of_this_version_is_moved_aside_and_the_run_restarts(tmp_path):
    """A checkpoint written before an array was added to the state (here: an observable's record removed
    from it) is not resumed from: moved aside with a warning naming what it lacks, and the run computed
    from iteration 0 equals one never interrupted."""
    import h5py
    cfgs = _configs("mlp")
    ref = Ensemble(cfgs, "numpy").run(progress=False)
    path = tmp_path / "c.h5"
    ens = Ensemble(cfgs, "numpy")
    _interrupt_after(ens, 12)
    with pytest.raises(Stop):
        ens.run(progress=False, checkpoint=At(path, {10}))
    it, arrays, ident = ck.read(str(path))
    del arrays["rec/obs/mode_collapse"]
    ck.write(str(path), it, arrays, ident)
    again = At(path, set())
    with pytest.warns(UserWarning, match="lacks 1 of this version's arrays .rec/obs/mode_collapse.*moved to"):
        got = Ensemble(cfgs, "numpy").run(progress=False, checkpoint=again)
    assert (tmp_path / "c.h5.incompatible").exists() and again.resumed_at == 0
    _same(ref, got)


def test_a_checkpoint_is_not_a_complete_output_and_is_removed_when_done(tmp_path):
    from fastgan import h5io
    h5io.WRITTEN.clear()
    ck.KEPT.clear()
    c = At(tmp_path / "c.h5", {5})
    ens = Ensemble(_configs("mlp"), "numpy")
    ens.run(progress=False, checkpoint=c)
    assert h5io.WRITTEN == [] and c.saved_at == 5 and ck.kept_lines()
    c.remove()
    assert not os.path.exists(tmp_path / "c.h5") and not ck.kept_lines()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_deferred_to_the_end_of_the_iteration_saved_then_delivered(signum, tmp_path, capsys):
    """The signal lands mid-iteration; the loop finishes that iteration, saves it, then the interruption
    happens as it would have (KeyboardInterrupt; SIGTERM through its handler); the resume is bitwise."""
    cfgs = _configs("mlp")
    ref = Ensemble(cfgs, "numpy").run(progress=False)
    ens = Ensemble(cfgs, "numpy")
    real = ens.advance

    def advance(st, it):
        out = real(st, it)
        if it == 16:
            os.kill(os.getpid(), signum)          # delivered between bytecodes: mid-iteration work follows
        return out
    ens.advance = advance
    path = tmp_path / "c.h5"

    def term(s, f):
        raise KeyboardInterrupt("terminated")
    old = signal.signal(signal.SIGTERM, term)
    try:
        with pytest.raises(KeyboardInterrupt):
            ens.run(progress=False, checkpoint=At(path, set()))
    finally:
        signal.signal(signal.SIGTERM, old)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert "saving a checkpoint at the end of this iteration" in capsys.readouterr().err
    c = At(path, set())
    _same(ref, Ensemble(cfgs, "numpy").run(progress=False, checkpoint=c))
    assert c.resumed_at == 17


def test_progress_ticks_count_run_iterations(tmp_path):
    got = []
    cfgs = _configs("mlp")
    Ensemble(cfgs, "numpy").run(tick=got.append)
    assert got == [2] * 30


def _sweep_kill_spec(tmp_path):
    import json

    from tests.test_sweep import BASE, _write_spec
    base = json.loads(json.dumps(BASE))
    base["training"]["n_iterations"], base["generator"]["n_particles"] = 2000, 24
    base["discriminator"]["width"], base["record"]["every"] = 32, 100
    return _write_spec(tmp_path, base=base)                  # 8 runs, one ensemble, ~2.5 s on numpy


def _checkpoint_iteration(folder):
    files = list((folder / "checkpoints").glob("*.numpy.h5")) if (folder / "checkpoints").exists() else []
    return ck.read(str(files[0]))[0] if files else 0


@pytest.mark.slow
def test_a_single_ensemble_sweep_killed_mid_ensemble_resumes_bitwise(tmp_path):
    """SIGKILL twice and SIGINT twice, each at a random moment after a checkpoint of the one
    ensemble was written; every restart continues from the checkpoint (the saved iteration only grows:
    at most one interval is lost), SIGINT saves the iteration it interrupts and says so, and the finished
    sweep is bitwise the uninterrupted one; no checkpoint is left behind."""
    import subprocess
    import sys
    import time

    import fastgan
    from tests.test_sweep import _arrays, _cli, _same
    spec = _sweep_kill_spec(tmp_path)
    ref_dir, out = tmp_path / "ref", tmp_path / "out"
    assert _cli("sweep", spec, "--out", ref_dir, "--backend", "numpy", "--quiet",
                "--checkpoint-every", "0").returncode == 0
    rng = np.random.default_rng(1)
    saved = [0]
    for signum in (signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGINT):
        proc = subprocess.Popen([sys.executable, "-m", "fastgan", "sweep", str(spec), "--out", str(out), "--backend",
                                 "numpy", "--quiet", "--checkpoint-every", "0.15"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while proc.poll() is None and _checkpoint_iteration(out) <= saved[-1] and time.time() - t0 < 60:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read()          # still computing its one ensemble
        time.sleep(float(rng.uniform(0.0, 0.2)))
        proc.send_signal(signum)
        err = proc.communicate()[1]
        at = _checkpoint_iteration(out)
        assert at > saved[-1], (saved, at)                      # resumed from the last checkpoint, and went on
        if signum == signal.SIGINT:
            assert proc.returncode == 130 and f"at iteration {at}/2000 in " in err, err
        saved.append(at)
        assert not list((out / "parts").glob("*.h5"))         # mid-ensemble: nothing complete yet
    st = _cli("status", out)
    assert f"(8 runs) at iteration {saved[-1]} (numpy) (resumed by the next run" in st.stdout, st.stdout
    done = _cli("sweep", spec, "--out", out, "--backend", "numpy", "--checkpoint-every", "0.15")
    assert done.returncode == 0 and f"from its checkpoint at iteration {saved[-1]}" in done.stderr, done.stderr
    _same(_arrays(fastgan.open_sweep(str(ref_dir))), _arrays(fastgan.open_sweep(str(out))))
    assert not list((out / "checkpoints").iterdir())


def test_fastgan_run_interrupted_resumes_bitwise_and_refuses_another_runs_checkpoint(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the middle of `fastgan run`: exit 130, the message names the checkpoint, no run file;
    the same command resumes from it (bitwise the uninterrupted run) and removes it; a checkpoint of
    another config under the same --out is refused in one line (its work is not thrown away) unless
    --force."""
    from test_faults import RUN
    from test_faults import _main as run_main
    from test_faults import write_toml

    import fastgan
    from fastgan import engine
    doc = {k: dict(v) for k, v in RUN.items()}
    doc["training"]["n_iterations"] = 40
    cfg = write_toml(tmp_path / "c.toml", doc)
    common = ("--backend", "numpy", "--quiet", "--no-plot", "--checkpoint-every", "1000")
    assert run_main(capsys, "run", cfg, "--out", tmp_path / "ref.h5", *common)[0] == 0
    real = engine.Ensemble.advance

    def advance(self, st, it):
        out = real(self, st, it)
        if it == 25:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(engine.Ensemble, "advance", advance)
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", *common)
    ckpt = tmp_path / "r.h5.checkpoint"
    assert code == 130 and f"at iteration 26/40 in {ckpt}" in err and "the same command resumes" in err, err
    assert not (tmp_path / "r.h5").exists() and ckpt.exists()
    monkeypatch.setattr(engine.Ensemble, "advance", real)
    other = write_toml(tmp_path / "o.toml", dict(doc, training=dict(doc["training"], seed=9)))
    code, _, err = run_main(capsys, "run", other, "--out", tmp_path / "r.h5", *common)
    assert code == 2 and "holds the checkpoint of run" in err and len(err.strip().splitlines()) == 1, err
    assert ckpt.exists()
    saved = ckpt.read_bytes()
    code, out, err = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--no-plot",
                              "--checkpoint-every", "1000")
    assert code == 0 and "resuming run" in err and "(resumed at iteration 26)" in out, (out, err)
    a, b = fastgan.store.read_run(str(tmp_path / "r.h5")), fastgan.store.read_run(str(tmp_path / "ref.h5"))
    for k in a["observables"]:
        np.testing.assert_array_equal(a["observables"][k], b["observables"][k])
    np.testing.assert_array_equal(a["particles"], b["particles"])
    assert not ckpt.exists()
    (tmp_path / "x.h5.checkpoint").write_bytes(saved)          # --force: another run starts afresh over it
    assert run_main(capsys, "run", other, "--out", tmp_path / "x.h5", *common)[0] == 2
    assert run_main(capsys, "run", other, "--out", tmp_path / "x.h5", "--force", *common)[0] == 0
    assert not (tmp_path / "x.h5.checkpoint").exists()
    (tmp_path / "y.h5.checkpoint").write_bytes(b"not a checkpoint")   # damaged: moved aside, computed afresh
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "y.h5", *common[:-3], "--checkpoint-every", "1000")
    assert code == 0 and "moved to" in err and (tmp_path / "y.h5.checkpoint.damaged").exists(), err


def test_a_sweep_bar_counts_run_iterations_inside_one_ensemble_and_is_quiet_off_a_terminal(tmp_path, capsys,
                                                                                          monkeypatch):
    """Progress of the whole sweep in run-iterations, redrawn within an ensemble (all 8 runs in one here),
    with the runs done, the rate and an ETA; nothing at all when stderr is not a terminal."""
    import re

    from fastgan import progress
    from fastgan.sweep import execute, parse_spec
    from tests.test_sweep import _spec
    sw = parse_spec(_spec())                                   # 8 runs x 60 iterations, one ensemble
    execute(sw, str(tmp_path / "quiet"), backend="numpy")
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0.0)
    execute(sw, str(tmp_path / "bar"), backend="numpy", progress=True)
    frames = capsys.readouterr().err.split("\r")
    counts = [int(m.group(1).replace(",", "")) for f in frames if (m := re.search(r"\] ([\d,]+)/480 run-it", f))]
    assert counts[:3] == [8, 16, 24] and counts[-1] == 480             # every iteration of the one ensemble
    assert "0/8 runs" in frames[5] and "8/8 runs" in frames[-1] and "ETA" in frames[5] and "run-it/s" in frames[5]


def test_a_checkpoint_that_cannot_be_written_is_one_warning_and_the_run_goes_on(tmp_path, monkeypatch):
    """A full disk at a checkpoint: one warning, no further attempt, the results unchanged."""
    from fastgan import h5io
    from fastgan.errors import StorageError
    cfgs = _configs("mlp")
    ref = Ensemble(cfgs, "numpy").run(progress=False)
    calls = []

    def full(path, data, **kw):
        calls.append(path)
        raise StorageError(f"cannot write {path!r}: No space left on device")
    monkeypatch.setattr(h5io, "atomic_bytes", full)
    c = At(tmp_path / "c.h5", {5, 10, 15})
    with pytest.warns(UserWarning, match="could not be written.*No space left.*goes on without checkpoints"):
        got = Ensemble(cfgs, "numpy").run(progress=False, checkpoint=c)
    _same(ref, got)
    assert len(calls) == 1 and c.failed and not (tmp_path / "c.h5").exists()


def test_a_checkpoint_whose_runs_got_stored_otherwise_is_removed(tmp_path):
    """An interrupted ensemble's checkpoint, then the sweep computed with another packing (or on Dask): the
    checkpoint of runs now stored is removed; one of runs still to do would be kept."""
    from fastgan.sweep import execute, parse_spec
    from tests.test_sweep import _spec
    sw = parse_spec(_spec())
    out = tmp_path / "s"
    execute(sw, str(out), backend="numpy", progress=False)
    ck_dir = out / "checkpoints"
    ids = [r.run_id for r in sw.runs[:3]]
    ck.write(str(ck_dir / "x.numba.h5"), 5, {"X": np.zeros(3)}, json.dumps({"runs": ids, "backend": "numba"}))
    ck.write(str(ck_dir / "y.numba.h5"), 5, {"X": np.zeros(3)}, json.dumps({"runs": ["0" * 16], "backend": "numba"}))
    assert execute(sw, str(out), backend="numpy", progress=False)["runs_computed"] == 0
    assert [p.name for p in ck_dir.iterdir()] == ["y.numba.h5"]
