"""The fault suite: every promised failure behaviour, provoked.

The promises (README): bad input ends with one line ``fastgan: error: ...``, exit 2, before anything is
written; an I/O failure is one line, exit 1, and every complete output stays as it was; no traceback
reaches a user; a run that blows up is flagged while the others of its ensemble continue; a sweep
folder is owned by one process at a time, damaged parts are computed again, and status works from the
parts. Each class below provokes its faults and fails on a traceback, a lost complete file or a
temporary file left behind. Memory bombs run in a subprocess under a lowered address-space limit.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import fastgan
from fastgan.cli import main
from fastgan.engine import simulate_ensemble
from fastgan.errors import ConfigError, FastganError
from fastgan.families.ipm import wasserstein2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"generator.n_particles": 6, "training.n_iterations": 12, "record.every": 3, "record.snapshots": 2,
         "discriminator.width": 16}
FAMILIES = {"mlp": {}, "deep": {"discriminator.depth": 2, "training.lr_disc": 0.01},
            "fourier": {"discriminator.kind": "fourier", "discriminator.freq_count": 4},
            "rff": {"discriminator.kind": "rff", "target.kind": "circle", "discriminator.n_features": 16},
            "kernel": {"discriminator.kind": "kernel", "target.kind": "circle", "discriminator.history": 4},
            "kde": {"discriminator.kind": "kde"}}


def cli(*args, cwd=None, env=None, timeout=300, preexec=None, stdin=None):
    """``python -m fastgan ARGS`` as a user runs it: (exit code, stdout, stderr)."""
    e = dict(os.environ, FASTGAN_PROGRESS="0", **(env or {}))
    e.pop("FASTGAN_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "fastgan", *map(str, args)], cwd=cwd, env=e, capture_output=True,
                       text=True, timeout=timeout, preexec_fn=preexec, stdin=stdin)
    return p.returncode, p.stdout, p.stderr


def one_line(code, err, want=2, needle=None):
    """The promised error: the exit code, no traceback, exactly one line on stderr (after warnings)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("fastgan: error:")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err
    assert code == want, (code, err)
    if needle:
        assert needle in lines[0], lines[0]


def files(folder) -> dict:
    """{relative path: (size, mtime)} of everything under ``folder``."""
    out = {}
    for d, _, fs in os.walk(folder):
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, folder)] = (os.path.getsize(p), os.path.getmtime(p))
    return out


def no_temporaries(folder):
    leftovers = [p for p in files(folder) if os.path.basename(p).startswith(".tmp-")]
    assert not leftovers, leftovers


def write_toml(path, sections: dict):
    lines = []
    for sec, vals in sections.items():
        lines.append(f"[{sec}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in vals.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


RUN = {"generator": {"n_particles": 8}, "discriminator": {"width": 16},
       "training": {"n_iterations": 6}, "record": {"every": 2, "snapshots": 2}}


# --------------------------------------------------------------------------- blow-ups, per family

@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_run_that_blows_up_is_flagged_and_the_others_match_their_solo_runs(family, backend):
    good = fastgan.default_config(**SMALL, **FAMILIES[family], **{"training.seed": 1})
    with np.errstate(all="ignore"):
        for lr in (1e200, 1e308):
            bad = good.replace(**{"training.lr_gen": lr, "training.seed": 2})
            a, b = simulate_ensemble([good, bad], backend=backend, progress=False)
            solo = simulate_ensemble([good], backend=backend, progress=False)[0]
            assert b.diverged and b.diverged_at > 0 and not a.diverged
            assert all(np.isnan(v[-1]) for v in b.observables.values())
            assert np.array_equal(a.particles, solo.particles)
            for k in a.observables:
                assert np.array_equal(a.observables[k], solo.observables[k], equal_nan=True), k


@pytest.mark.parametrize("family", ["rff", "kernel"])
def test_huge_but_finite_particles_do_not_crash_the_w2_observable(family):
    cfg = fastgan.default_config(**{**SMALL, **FAMILIES[family], "generator.n_particles": 4,
                                    "training.lr_gen": 1e20})
    with np.errstate(all="ignore"):
        r = fastgan.simulate(cfg, backend="numpy", progress=False)
    assert r.observables["w2"].shape == r.time.shape


def test_w2_is_nan_for_non_finite_input_scales_huge_input_and_agrees_across_solvers(monkeypatch):
    rng = np.random.default_rng(3)
    x, y, p, q = rng.normal(size=(30, 2)), rng.normal(size=(4, 2)), rng.random(30), rng.random(4)
    ref = wasserstein2(x, p, y, q)
    assert wasserstein2(x * 1e200, p, y * 1e200, q) == pytest.approx(1e200 * ref, rel=1e-12)
    bad = x.copy()
    bad[3, 1] = np.nan
    assert np.isnan(wasserstein2(bad, p, y, q)) and np.isnan(wasserstein2(x, p * 0, y, q))
    assert np.isnan(wasserstein2(x, p, y, [np.inf, 1, 1, 1]))
    import builtins
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError) if name == "ot" else real(name, *a, **k))
    assert wasserstein2(x, p, y, q) == pytest.approx(ref, rel=1e-9, abs=1e-12)     # the sparse LP
    n = 400                                                                        # N K = 1.6e5 variables
    assert np.isfinite(wasserstein2(rng.normal(size=(n, 2)), rng.random(n), rng.normal(size=(n, 2)), rng.random(n)))


# --------------------------------------------------------------------------- outputs, before compute

def test_run_outputs_are_checked_before_any_compute(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", {**RUN, "training": {"n_iterations": 10 ** 6}})   # hours if it ran
    keep = tmp_path / "keep.h5"
    keep.write_bytes(b"complete data")
    cases = [(["--out", tmp_path / "nowhere" / "r.h5"], "does not exist"),
             (["--out", tmp_path / "r.h5", "--plot", tmp_path / "nowhere" / "r.png"], "does not exist"),
             (["--out", tmp_path / "same.png", "--plot", tmp_path / "same.png"], "named like a picture"),
             (["--out", tmp_path / "same.h5", "--plot", tmp_path / "same.h5"], "picture needs"),
             (["--out", tmp_path / "r.h5", "--plot", tmp_path / "r.h5.png", "--plot", tmp_path / "r.h5"],
              "picture needs"),
             (["--out", tmp_path], "is a directory"),
             (["--out", keep], "file exists"),
             (["--out", keep / "x.h5"], "does not exist")]
    before = files(tmp_path)
    for args, needle in cases:
        code, _, err = cli("run", cfg, *args, "--quiet", timeout=60)
        one_line(code, err, 2, needle)
    assert files(tmp_path) == before and keep.read_bytes() == b"complete data"


def test_plot_outputs_are_checked_before_drawing(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", RUN)
    code, _, err = cli("run", cfg, "--out", tmp_path / "r.h5", "--no-plot", "--backend", "numpy", "--quiet")
    assert code == 0, err
    before = files(tmp_path)
    for args, needle in [(["--out", tmp_path / "no" / "p.png"], "does not exist"),
                         (["--out", tmp_path / "r.h5"], "file exists"),
                         (["--out", tmp_path / "r.h5", "--force"], "picture needs")]:
        one_line(*cli("plot", tmp_path / "r.h5", *args)[::2], 2, needle)
    not_h5 = tmp_path / "c.toml"
    one_line(*cli("plot", not_h5, "--out", tmp_path / "x.png")[::2], 2, "not a fastgan run file")
    with h5py.File(tmp_path / "damaged.h5", "w") as f:
        f.attrs["format"] = "fastgan-run"                   # a run file missing everything else
    one_line(*cli("plot", tmp_path / "damaged.h5", "--out", tmp_path / "d.png")[::2], 2, "damaged run file")
    assert {k: v for k, v in files(tmp_path).items() if k != "damaged.h5"} == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_before_compute(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", RUN)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        one_line(*cli("run", cfg, "--out", ro / "r.h5", "--quiet")[::2], 2, "not writable")
        assert not list(ro.iterdir())
    finally:
        ro.chmod(0o755)


@pytest.mark.slow
def test_reproduce_force_replaces_only_its_own_folders(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("years of work")
    one_line(*cli("reproduce", "egan-fig18", "--tiny", "--out", foreign, "--force", "--quiet")[::2], 2, "marker")
    assert (foreign / "thesis.txt").read_text() == "years of work" and len(list(foreign.iterdir())) == 1
    own = tmp_path / "own"
    assert cli("reproduce", "egan-fig18", "--tiny", "--out", own, "--quiet")[0] == 0
    assert cli("reproduce", "egan-fig18", "--tiny", "--out", own, "--force", "--quiet")[0] == 0
    (own / "notes.txt").write_text("mine")
    one_line(*cli("reproduce", "egan-fig18", "--tiny", "--out", own, "--force", "--quiet")[::2], 2, "notes.txt")
    assert (own / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- disk full / I-O errors

def _fsize_limit(nbytes):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # writes beyond the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit


def test_a_full_disk_is_one_line_and_loses_nothing(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", RUN)
    code, _, err = cli("run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet", "--no-plot")
    assert code == 0, err
    old = (tmp_path / "r.h5").read_bytes()
    for args in (["--out", tmp_path / "new.h5", "--no-plot"],                 # a new file
                 ["--out", tmp_path / "r.h5", "--no-plot", "--force"],         # replacing a complete one
                 ["--out", tmp_path / "p.h5", "--plot", tmp_path / "p.png"]):
        code, _, err = cli("run", cfg, *args, "--backend", "numpy", "--quiet", preexec=_fsize_limit(4096))
        one_line(code, err, 1, "cannot write")
    assert (tmp_path / "r.h5").read_bytes() == old
    assert not (tmp_path / "new.h5").exists()
    no_temporaries(tmp_path)


def _sweep_spec(path, n_disc_values):
    path.write_text(textwrap.dedent(f"""\
        [sweep]
        name = "faults"
        max_ensemble = 1
        [sweep.base.generator]
        n_particles = 8
        [sweep.base.discriminator]
        width = 16
        [sweep.base.training]
        n_iterations = 20
        [sweep.base.record]
        every = 10
        snapshots = 0
        [[sweep.axes]]
        key = "training.n_disc"
        values = {json.dumps(n_disc_values)}
        """))
    return path


@pytest.mark.slow
def test_a_full_disk_during_a_sweep_keeps_every_complete_part(tmp_path):
    out = tmp_path / "out"
    assert cli("sweep", _sweep_spec(tmp_path / "s.toml", [1, 2]), "--out", out, "--backend", "numpy",
               "--quiet")[0] == 0
    before = {k: v for k, v in files(out).items() if k.startswith("parts")}
    code, _, err = cli("sweep", _sweep_spec(tmp_path / "s.toml", [1, 2, 3, 4]), "--out", out, "--backend", "numpy",
                       "--quiet", preexec=_fsize_limit(2048))
    one_line(code, err, 1, "cannot write")
    after = files(out)
    assert all(after[k] == v for k, v in before.items())
    no_temporaries(out)
    # room for parts but not for the consolidated file: the new parts stay, the old sweep.h5 too
    sizes = files(out)
    room = max(v[0] for k, v in sizes.items() if k.startswith("parts")) + 512
    assert room < sizes["sweep.h5"][0]
    code, _, err = cli("sweep", tmp_path / "s.toml", "--out", out, "--backend", "numpy", "--quiet",
                       preexec=_fsize_limit(room))
    one_line(code, err, 1, "sweep.h5")
    assert files(out)["sweep.h5"] == sizes["sweep.h5"] and len(list((out / "parts").glob("*.h5"))) == 4
    no_temporaries(out)
    assert cli("sweep", tmp_path / "s.toml", "--out", out, "--backend", "numpy", "--quiet")[0] == 0   # then resumes
    assert int(fastgan.open_sweep(str(out)).attrs["runs_complete"]) == 4


def test_a_failing_writer_in_process_leaves_no_file(tmp_path, monkeypatch):
    from fastgan import h5io
    from fastgan.errors import StorageError

    def broken(path, data, *, replace=True):
        def write(tmp):
            with open(tmp, "wb") as fh:
                fh.write(data[: len(data) // 2])
                raise OSError(28, "No space left on device")
        return h5io.atomic_write(path, write, replace=replace)
    monkeypatch.setattr(h5io, "atomic_bytes", broken)
    with pytest.raises(StorageError, match="No space left on device"):
        h5io.atomic_h5(str(tmp_path / "x.h5"), lambda f: f.create_dataset("a", data=np.arange(100)))
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- sweep folders

LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from fastgan.sweep_spec import load_spec
    from fastgan.sweep_store import SweepStore
    store = SweepStore(sys.argv[2], load_spec(sys.argv[1]))
    store.prepare()                      # creates the folder and takes its lock
    print("locked", flush=True)
    time.sleep(600)
""")


def test_one_process_owns_a_sweep_folder_and_a_killed_one_leaves_no_stuck_lock(tmp_path):
    spec, out = _sweep_spec(tmp_path / "s.toml", [1, 2]), tmp_path / "out"
    owner = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(spec), str(out)], stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, FASTGAN_PROGRESS="0"))
    try:
        assert owner.stdout.readline().strip() == "locked"
        before = files(out)
        code, _, err = cli("sweep", spec, "--out", out, "--backend", "numpy", "--quiet")
        one_line(code, err, 2, f"in use by another fastgan process (pid {owner.pid})")
        assert files(out) == before                                # nothing touched, nothing deleted
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    code, _, err = cli("sweep", spec, "--out", out, "--backend", "numpy", "--quiet")   # the lock died with it
    assert code == 0, err
    assert int(fastgan.open_sweep(str(out)).attrs["runs_complete"]) == 2
    no_temporaries(out)


def _damage(out, how):
    part = sorted((out / "parts").glob("*.h5"))[0]
    if how == "flipped bit":
        with h5py.File(part, "r") as f:
            off = f["observables/mode_collapse"].id.get_offset()
        data = bytearray(part.read_bytes())
        data[off] ^= 0x40
        part.write_bytes(bytes(data))
    elif how in ("no run_ids", "no observables"):
        with h5py.File(part, "a") as f:
            del f["run_ids" if how == "no run_ids" else "observables"]
    elif how == "truncated part":
        part.write_bytes(part.read_bytes()[:300])
    elif how == "truncated sweep.json":
        (out / "sweep.json").write_text((out / "sweep.json").read_text()[:40])
    elif how == "truncated sweep.h5":
        (out / "sweep.h5").write_bytes((out / "sweep.h5").read_bytes()[:500])
    elif how == "no sweep.json":
        (out / "sweep.json").unlink()
    return part


def _main(capsys, *args):
    """The CLI entry in-process (it catches everything a user could see as a traceback)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


@pytest.mark.parametrize("how", ["flipped bit", "no run_ids", "no observables", "truncated part",
                                 "truncated sweep.json", "truncated sweep.h5", "no sweep.json"])
def test_damaged_sweep_folders_are_read_from_the_parts_and_repaired(tmp_path, capsys, how):
    spec = _sweep_spec(tmp_path / "s.toml", [1, 2, 3])
    out = tmp_path / "out"
    assert _main(capsys, "sweep", spec, "--out", out, "--backend", "numpy", "--quiet")[0] == 0
    ref = fastgan.open_sweep(str(out))
    _damage(out, how)
    code, text, err = _main(capsys, "status", out)
    assert code == 0, err
    part_damaged = how in ("flipped bit", "no run_ids", "no observables", "truncated part")
    assert ("2/3 runs complete" in text and "1 damaged part" in text) if part_damaged else "3/3" in text, text
    assert int(fastgan.open_sweep(str(out)).attrs["runs_complete"]) == (2 if part_damaged else 3)
    code, _, err = _main(capsys, "sweep", spec, "--out", out, "--backend", "numpy", "--quiet")
    assert code == 0, err
    again = fastgan.open_sweep(str(out))
    assert int(again.attrs["runs_complete"]) == 3
    np.testing.assert_array_equal(again["mode_collapse"].values, ref["mode_collapse"].values)
    assert "damaged part" not in _main(capsys, "status", out)[1]


def test_a_sweep_folder_whose_parts_is_a_file_is_one_line(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "parts").write_text("not a folder")
    code, _, err = cli("sweep", _sweep_spec(tmp_path / "s.toml", [1]), "--out", out, "--backend", "numpy")
    one_line(code, err, 2, "'parts' in it is not a folder")


@pytest.mark.parametrize("address", ["local:0", "bogus",
                                     pytest.param("tcp://127.0.0.1:9", marks=pytest.mark.slow)])   # a 3 s timeout
def test_a_bad_dask_address_writes_nothing(tmp_path, address):
    out = tmp_path / "out"
    code, _, err = cli("sweep", _sweep_spec(tmp_path / "s.toml", [1]), "--out", out, "--dask", address, timeout=120,
                       env={"FASTGAN_DASK_TIMEOUT": "2"})
    one_line(code, err, 2, "--dask")
    assert not out.exists()


# --------------------------------------------------------------------------- sizes and memory bombs

BOMBS = {"generator.n_particles": 10 ** 10, "discriminator.width": 10 ** 12, "discriminator.depth": 10 ** 6,
         "training.n_iterations": 10 ** 12, "training.batch_size": 10 ** 11, "training.n_disc": 10 ** 12,
         "record.snapshots": 10 ** 12, "target.n_modes": 10 ** 12,
         "target.dim": {"target.kind": "sphere", "target.dim": 10 ** 11},
         "discriminator.n_features": {"discriminator.kind": "rff", "target.kind": "circle",
                                      "discriminator.n_features": 10 ** 12},
         "discriminator.history": {"discriminator.kind": "kernel", "target.kind": "circle",
                                   "discriminator.history": 10 ** 10},
         "coupling.gram_dim": {"coupling.kind": "gram", "coupling.gram_arch": "relu", "coupling.gram_dim": 10 ** 12},
         "coupling.gram_depth": {"coupling.kind": "gram", "coupling.gram_arch": "relu",
                                 "coupling.gram_setting": "deep", "coupling.gram_depth": 10 ** 12}}

BOMB_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2 ** 30, resource.RLIM_INFINITY))
    import fastgan
    from fastgan.errors import FastganError
    keys = json.loads(sys.argv[1])
    out = {}
    for name, kw in keys.items():
        try:
            fastgan.simulate(fastgan.default_config(**kw), backend="numpy", progress=False)
            out[name] = "ran"
        except FastganError as exc:
            out[name] = "error: " + str(exc)
        except BaseException as exc:
            out[name] = "CRASH " + type(exc).__name__ + ": " + str(exc)[:200]
    print(json.dumps(out))
""")


def test_huge_sizes_are_refused_before_any_allocation():
    small = {"training.n_iterations": 20, "discriminator.width": 64, "generator.n_particles": 24}
    cases = {k: {**small, **(v if isinstance(v, dict) else {k: v})} for k, v in BOMBS.items()}
    p = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, json.dumps(cases)], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, FASTGAN_PROGRESS="0"))
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for name, outcome in got.items():
        if name == "record.snapshots":                          # more snapshots than iterations: every one
            assert outcome == "ran", (name, outcome)
            continue
        assert outcome.startswith("error: ") and "\n" not in outcome, (name, outcome)
        assert name.split(".")[-1] in outcome or "target.dim" in outcome, (name, outcome)


@pytest.mark.parametrize("axes,replicates,needle", [
    ([{"key": "coupling.ratio", "linspace": [0, 1, 10 ** 9]}], 1, "values on one axis"),
    ([{"key": "coupling.ratio", "values": [0.1, 0.2]}], 10 ** 8, "sweep.replicates"),
])
def test_huge_sweeps_are_refused_before_they_are_built(tmp_path, axes, replicates, needle):
    from fastgan.sweep_spec import SweepError, parse_spec
    t0 = time.process_time()
    with pytest.raises(SweepError, match=needle):
        parse_spec({"sweep": {"name": "big", "replicates": replicates, "axes": axes}})
    assert time.process_time() - t0 < 5                       # refused, not built (CPU seconds, generous)


def test_the_work_bound_has_an_explicit_override(monkeypatch):
    cfg = fastgan.default_config(**{"training.n_disc": 10 ** 9, "training.n_iterations": 1})
    from fastgan.resources import ResourceError, check_run
    with pytest.raises(ResourceError, match="training.n_disc = 1000000000.*FASTGAN_ALLOW_HUGE"):
        check_run(cfg.resolved)
    monkeypatch.setenv("FASTGAN_ALLOW_HUGE", "1")
    check_run(cfg.resolved)


# --------------------------------------------------------------------------- loaders and small commands

def test_bad_files_and_small_commands_are_one_line(tmp_path):
    good = write_toml(tmp_path / "good.toml", RUN)
    (tmp_path / "u16.toml").write_bytes("[training]\nn_disc = 3\n".encode("utf-16"))
    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    with h5py.File(tmp_path / "group.h5", "w") as f:
        f.create_group("gram")
    with h5py.File(tmp_path / "strings.h5", "w") as f:
        f["gram"] = np.full((8, 8), b"a", dtype="S1")
    np.save(tmp_path / "complex.npy", np.eye(8) * (1 + 1j))
    np.save(tmp_path / "samples3d.npy", np.zeros((10, 3)))
    gram = ["--set", "coupling.kind='gram'", "--set"]
    cases = [
        (["config", tmp_path / "u16.toml"], "not a UTF-8 text file"),
        (["config", tmp_path / "bin.toml"], "not a UTF-8 text file"),
        (["config", good, *gram, f"coupling.gram='{tmp_path / 'group.h5'}'"], "HDF5 group"),
        (["config", good, *gram, f"coupling.gram='{tmp_path / 'strings.h5'}'"], "expected numbers"),
        (["config", good, *gram, f"coupling.gram='{tmp_path / 'complex.npy'}'"], "complex"),
        (["config", good, "--set", "target.kind='file'", "--set", f"target.path='{tmp_path / 'samples3d.npy'}'",
          "--set", "generator.init_mean=[0.0, 0.0]"], "generator.init_mean"),
        (["ntk", "measure", "--n", "8", "--radius", "inf", "--out", tmp_path / "g.h5"], "--radius"),
        (["ntk", "measure", "--n", "1000000000", "--out", tmp_path / "g.h5"], "--n = 1000000000"),
        (["dirac", "--n", "0"], "--n = 0"),
        (["dirac", "--n", "-3"], "--n = -3"),
        (["config", "--set", ".seed=1"], ".seed = 1"),
        (["config", good, "--set", "training.n\ndisc=3"], "training.n\\ndisc"),
    ]
    for args, needle in cases:
        one_line(*cli(*args)[::2], 2, needle)
    (tmp_path / "spec.toml").write_text(_sweep_spec(tmp_path / "s.toml", [1]).read_text()
                                        .replace('name = "faults"', 'name = "faults"\nobservables = ["nope"]'))
    one_line(*cli("sweep", tmp_path / "spec.toml", "--out", tmp_path / "o")[::2], 2, "'nope'")
    assert not (tmp_path / "o").exists() and not (tmp_path / "g.h5").exists()


def test_a_closed_pipe_is_not_a_traceback():
    p = subprocess.run(f"{sys.executable} -m fastgan config --keys | head -n 1", shell=True, capture_output=True,
                       text=True, env=dict(os.environ, FASTGAN_PROGRESS="0"))
    assert p.stdout.split() == ["key", "type", "default", "meaning"], p.stdout     # the table's header line
    assert "Traceback" not in p.stderr and "Error" not in p.stderr, p.stderr


# --------------------------------------------------------------------------- fuzzed configs over every key

FUZZ = [float("nan"), float("inf"), float("-inf"), -1, 0, 10 ** 13, 1e300, "x", [1, 2], True, "auto", {"a": 1}]


def _fuzz_cases():
    from fastgan.runconfig import schema
    return [(k, v) for k in schema().known for v in FUZZ]


def test_every_key_with_every_bad_value_is_a_one_line_error_or_runs_its_checks(capsys):
    """Every key of ``fastgan config --keys`` with NaN, Inf, negative, zero, huge and wrong-type values,
    through the CLI entry in-process: exit 0 or 2, never a traceback, one line. Configs that validate also
    pass the pre-compute checks (resources, files) or fail them with one FastganError line."""
    from fastgan.resources import check_run
    tried = errors = 0
    for key, value in _fuzz_cases():
        tried += 1
        text = json.dumps(value).replace("NaN", "nan").replace("Infinity", "inf")
        code = main(["config", "--set", f"{key}={text}"])
        out, err = capsys.readouterr()
        assert code in (0, 2) and "Traceback" not in err, (key, value, err)
        if code == 2:
            errors += 1
            assert len(err.strip().splitlines()) == 1 and err.startswith("fastgan: error:"), (key, value, err)
            continue
        try:
            cfg = fastgan.default_config(**{key: value})
        except ConfigError:
            continue
        try:
            check_run(cfg.resolved)
        except FastganError as exc:
            assert "\n" not in str(exc)
    assert tried == len(_fuzz_cases()) and errors > tried // 2
