"""The fault suite, part 2: the command line, the environment, paths, input files, run files, the NTK
and Dirac commands, reproductions, resources per backend and interruptions, each provoked.

Every case asserts the promise of the README: one line ``fastgan: error: ...`` with the exit code of its
class (2 bad input, 1 an I/O failure, 128 + the signal for an interruption), no traceback, nothing
written or changed (no temporary file left), every complete file kept.
"""

import hashlib
import os
import signal
import stat
import subprocess
import sys

import h5py
import numpy as np
import pytest

import fastgan
from fastgan import h5io, resources
from test_faults import RUN, _fsize_limit, cli, files, no_temporaries, one_line, write_toml
from fastgan.cli import main
from test_faults import _main as run_main      # the CLI in-process: (exit code, stdout, stderr), no traceback


def entries(folder) -> dict:
    """{relative path: (mode, size, mtime)} of everything under ``folder``, links as links."""
    out = {}
    for d, dirs, fs in os.walk(folder):
        for name in dirs + fs:
            st = os.lstat(os.path.join(d, name))
            out[os.path.relpath(os.path.join(d, name), folder)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def cfg(tmp_path):
    return write_toml(tmp_path / "c.toml", RUN)


# --------------------------------------------------------------------------- the command line

@pytest.mark.parametrize("args", [["run"], ["run", "c.toml"], ["bogus"], ["ntk"], ["status"], ["plot"],
                                  ["config", "--set"], ["info", "extra"], ["run", "c.toml", "--out", "r.h5", "--bogus"],
                                  ["run", "c.toml", "--out", "r.h5", "--backend", "fortran"],
                                  ["ntk", "measure", "--n", "abc", "--out", "g.h5"],
                                  ["reproduce", "egan-fig18", "--tiny", "--quick"]])
def test_a_command_line_argparse_cannot_read_is_one_line(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line(*run_main(capsys, *args)[::2], 2, "--help")
    assert not list(tmp_path.iterdir())


def test_a_bare_command_shows_what_fastgan_can_do_and_version_says_which(capsys):
    code, out, err = run_main(capsys)
    assert code == 0 and "usage: fastgan" in out and "reproduce" in out and not err
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("fastgan ")


def test_the_main_command_runs_twice_and_plot_redraws_only_its_own_pictures(tmp_path, capsys):
    """The README's main command (sweep, then plot) run twice in a row: the second sweep resumes with
    nothing to do and the second plot redraws phase.png; a picture fastgan did not draw is never replaced
    without --force."""
    from test_faults import _sweep_spec
    spec, out = _sweep_spec(tmp_path / "s.toml", [1, 2]), tmp_path / "out"
    for _ in range(2):
        assert run_main(capsys, "sweep", spec, "--out", out, "--backend", "numpy", "--quiet")[0] == 0
        assert run_main(capsys, "plot", out)[0] == 0
    assert fastgan.h5io.drawn_by_fastgan(str(out / "phase.png"))
    cfg = write_toml(tmp_path / "c.toml", RUN)
    assert run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet")[0] == 0
    assert run_main(capsys, "plot", tmp_path / "r.h5")[0] == 0                  # redraws r.png
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure()
    fig.savefig(tmp_path / "mine.png")                        # drawn by someone else
    plt.close(fig)
    before = (tmp_path / "mine.png").read_bytes()
    one_line(*run_main(capsys, "plot", tmp_path / "r.h5", "--out", tmp_path / "mine.png")[::2], 2, "file exists")
    (tmp_path / "link.png").symlink_to(tmp_path / "r.png")     # a link to fastgan's picture: not its own
    one_line(*run_main(capsys, "plot", tmp_path / "r.h5", "--out", tmp_path / "link.png")[::2], 2, "file exists")
    assert (tmp_path / "mine.png").read_bytes() == before and not fastgan.h5io.drawn_by_fastgan(str(tmp_path / "mine.png"))


def test_the_run_summary_counts_modes_out_of_the_targets(cfg, tmp_path, capsys):
    code, out, _ = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--no-plot")
    assert code == 0 and "modes_covered = " in out and "/8  " in out, out


# --------------------------------------------------------------------------- the environment

@pytest.mark.parametrize("name,value", [("FASTGAN_ALLOW_HUGE", "maybe"), ("FASTGAN_DEBUG", "2"),
                                        ("FASTGAN_PROGRESS", "sometimes"), ("FASTGAN_BACKEND", "fortran"),
                                        ("FASTGAN_DASK_TIMEOUT", "nan"), ("FASTGAN_DASK_TIMEOUT", "-1"),
                                        ("NUMBA_NUM_THREADS", "abc"), ("NUMBA_NUM_THREADS", "0"),
                                        ("NUMBA_THREADING_LAYER", "bogus")])
def test_a_bad_environment_variable_is_one_line_naming_it(name, value, cfg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(name, value)
    one_line(*run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--quiet")[::2], 2, name)
    assert not (tmp_path / "r.h5").exists()


def test_numba_variables_are_checked_before_numba_reads_them(tmp_path):
    """numba parses NUMBA_NUM_THREADS at import and prints a warning with a traceback: fastgan refuses it
    first (a fresh process, as a user meets it)."""
    cfg = write_toml(tmp_path / "c.toml", RUN)
    code, _, err = cli("run", cfg, "--out", tmp_path / "r.h5", "--backend", "numba", env={"NUMBA_NUM_THREADS": "abc"})
    one_line(code, err, 2, "NUMBA_NUM_THREADS")
    assert not (tmp_path / "r.h5").exists()


def test_false_values_of_flags_mean_off(cfg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTGAN_ALLOW_HUGE", "no")           # 'no' is off: the work bound still applies
    one_line(*run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--set", "training.n_disc=1000000000000000",
                       "--backend", "auto")[::2], 2, "FASTGAN_ALLOW_HUGE=1")
    monkeypatch.setenv("FASTGAN_DEBUG", "0")                 # '0' is off: an internal error stays one line
    monkeypatch.setattr(fastgan.cli, "COMMANDS", {**fastgan.cli.COMMANDS, "info": lambda args: 1 / 0})
    code, _, err = run_main(capsys, "info")
    one_line(code, err, 1, "internal error (ZeroDivisionError")


def test_a_terminal_that_cannot_show_a_path_still_gets_its_line(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", RUN)
    code, out, err = cli("run", cfg, "--out", tmp_path / "é.h5", "--no-plot", "--backend", "numpy",
                         env={"PYTHONIOENCODING": "ascii"})
    assert code == 0 and "Traceback" not in err and "\\xe9.h5" in out, (code, out, err)
    code, _, err = cli("run", cfg, "--out", tmp_path / "é.h5", env={"PYTHONIOENCODING": "ascii"})
    one_line(code, err, 2, "\\xe9.h5")


# --------------------------------------------------------------------------- interruptions

def _signal_during(monkeypatch, module, name, signum):
    """Replace ``module.name`` by a function that delivers ``signum`` to this process where it is called."""
    real = getattr(module, name)

    def interrupted(*a, **k):
        os.kill(os.getpid(), signum)
        return real(*a, **k)
    monkeypatch.setattr(module, name, interrupted)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_the_run_writes_nothing_and_says_so(signum, cfg, tmp_path, capsys, monkeypatch):
    from fastgan import engine
    _signal_during(monkeypatch, engine.Ensemble, "_run", signum)
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet")
    assert code == 128 + signum and "interrupted; no output was written" in err, (code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL     # the handlers are put back


def test_a_signal_while_a_file_is_put_in_place_leaves_no_temporary(cfg, tmp_path, capsys, monkeypatch):
    _signal_during(monkeypatch, h5io.os, "replace", signal.SIGTERM)
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet")
    assert code == 128 + signal.SIGTERM, err
    no_temporaries(tmp_path)
    assert not (tmp_path / "r.h5").exists()


def test_a_signal_during_the_picture_names_the_complete_run_file(cfg, tmp_path, capsys, monkeypatch):
    from fastgan import plots
    _signal_during(monkeypatch, plots, "_plot_run", signal.SIGTERM)
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet")
    assert code == 128 + signal.SIGTERM and f"complete outputs were kept: {tmp_path / 'r.h5'}" in err, err
    assert fastgan.store.read_run(str(tmp_path / "r.h5"))["time"].size
    assert not (tmp_path / "r.png").exists()
    no_temporaries(tmp_path)


def test_sigterm_to_a_real_process_removes_its_temporaries(tmp_path):
    """The real signal from outside, while the process writes its file (a sitecustomize hook stops it
    right before the rename, so the moment is certain)."""
    cfg = write_toml(tmp_path / "c.toml", RUN)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, signal\n"
        "import fastgan.h5io as h\n"
        "real = h.os.replace\n"
        "def slow(a, b):\n"
        "    open(os.environ['READY'], 'w').close()\n"
        "    signal.pause()\n"
        "    return real(a, b)\n"
        "h.os.replace = slow\n")
    ready = tmp_path / "ready"
    env = dict(os.environ, PYTHONPATH=f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", READY=str(ready),
               FASTGAN_PROGRESS="0")
    p = subprocess.Popen([sys.executable, "-m", "fastgan", "run", str(cfg), "--out", str(tmp_path / "r.h5"),
                          "--backend", "numpy", "--quiet"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if ready.exists() or p.poll() is not None:
                break
            import time
            time.sleep(0.05)
        assert ready.exists(), p.stderr.read() if p.poll() is not None else "never reached the write"
        assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]   # the temporary file is there now
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=60)[1]
    finally:
        p.kill()
    assert p.returncode == 128 + signal.SIGTERM and "interrupted" in err and "Traceback" not in err, err
    no_temporaries(tmp_path)
    assert not (tmp_path / "r.h5").exists()


# --------------------------------------------------------------------------- paths

def test_output_paths_that_cannot_work_are_refused_before_compute(tmp_path, capsys):
    cfg = write_toml(tmp_path / "c.toml", {**RUN, "training": {"n_iterations": 10 ** 6}})   # hours if it ran
    (tmp_path / "dangling.h5").symlink_to(tmp_path / "nowhere" / "x.h5")
    (tmp_path / "hard.h5").write_bytes(b"complete")
    os.link(tmp_path / "hard.h5", tmp_path / "hard.png")
    long = "x" * 300
    cases = [(["--out", f"{tmp_path}/r.h5/"], "expected a file name"),
             (["--out", ""], "expected a file name"),
             (["--out", tmp_path / f"{long}.h5"], "too long"),
             (["--out", tmp_path / "r.h5", "--plot", tmp_path / f"{long}.png"], "too long"),
             (["--out", tmp_path / "dangling.h5"], "file exists"),
             (["--out", cfg, "--force"], "the same file as the config file"),
             (["--out", tmp_path / "r.h5", "--plot", cfg, "--force"], "picture needs"),
             (["--out", tmp_path / "hard.h5", "--plot", tmp_path / "hard.png", "--force"], "the same file")]
    before = entries(tmp_path)
    for args, needle in cases:
        one_line(*run_main(capsys, "run", cfg, *args, "--quiet")[::2], 2, needle)
    assert entries(tmp_path) == before


def test_input_files_are_never_outputs(tmp_path, capsys):
    target = tmp_path / "t.npy"
    np.save(target, np.random.default_rng(0).normal(size=(20, 2)))
    cfg = write_toml(tmp_path / "c.toml", {**RUN, "target": {"kind": "file", "path": str(target)}})
    one_line(*run_main(capsys, "run", cfg, "--out", target, "--force", "--no-plot")[::2], 2, "target.path")
    assert np.load(target).shape == (20, 2)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_permissions_of_the_umask(umask, cfg, tmp_path, capsys):
    old = os.umask(umask)
    try:
        assert run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet")[0] == 0
    finally:
        os.umask(old)
    for name in ("r.h5", "r.png"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask, name


# --------------------------------------------------------------------------- input files

def _npy_header_only(path, shape):
    """An .npy file whose header claims ``shape`` (float64) with no data behind it."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": shape})


def test_an_input_file_too_big_for_memory_is_refused_from_its_header(tmp_path, capsys):
    from fastgan.arrayfile import check_size
    from fastgan.memory import ResourceError
    _npy_header_only(tmp_path / "huge.npy", (10 ** 6, 10 ** 6))
    with pytest.raises(ResourceError, match="target.path = .*huge.npy.*GiB"):
        check_size(str(tmp_path / "huge.npy"), "target.path")
    cfg = write_toml(tmp_path / "c.toml", {**RUN, "target": {"kind": "file", "path": str(tmp_path / "huge.npy")}})
    one_line(*run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5")[::2], 2, "GiB")
    _npy_header_only(tmp_path / "gram.npy", (10 ** 6, 10 ** 6))
    cfg = write_toml(tmp_path / "g.toml", {**RUN, "coupling": {"kind": "gram", "gram": str(tmp_path / "gram.npy")}})
    one_line(*run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5")[::2], 2, "expected an 8 x 8 matrix")
    assert not (tmp_path / "r.h5").exists()


def test_a_file_targets_size_enters_the_memory_estimate(tmp_path):
    from fastgan.resources import _target_size
    np.save(tmp_path / "t.npy", np.zeros((30, 3)))
    r = fastgan.default_config(**{"target.kind": "file", "target.path": str(tmp_path / "t.npy")}).resolved
    assert _target_size(r) == (30, 3)


@pytest.mark.parametrize("content", ["x = " + "[" * 100000 + "]" * 100000, None])
def test_config_files_that_are_not_configs_are_one_line(content, tmp_path, capsys):
    path = tmp_path / "deep.toml" if content else "/dev/zero"
    if content:
        path.write_text(content)
    one_line(*run_main(capsys, "config", path)[::2], 2, "nested too deeply" if content else "larger than")
    one_line(*run_main(capsys, "config", "--set", "training.seed=" + "[" * 50000 + "]" * 50000)[::2], 2, "too deeply")


# --------------------------------------------------------------------------- run files

def _run_file(tmp_path, capsys, name="r.h5"):
    cfg = write_toml(tmp_path / "c.toml", RUN)
    assert run_main(capsys, "run", cfg, "--out", tmp_path / name, "--backend", "numpy", "--no-plot",
                    "--quiet")[0] == 0
    return tmp_path / name


def unsealed(path):
    """The run file as fastgan wrote it before seals (the HDF5 bytes without their 512-byte user block)."""
    data = path.read_bytes()
    assert h5io.unseal(data) != data
    path.write_bytes(h5io.unseal(data))
    return path


def test_a_changed_run_file_is_detected_by_its_seal_and_its_checksum(tmp_path, capsys):
    """Two layers: the seal (SHA-256 of the bytes, checked before HDF5 parses anything: a corrupted file
    can crash the HDF5 library) and the checksum of every dataset and attribute (files without a seal)."""
    path = _run_file(tmp_path, capsys)
    fastgan.store.read_run(str(path))
    data = path.read_bytes()
    bad = tmp_path / "bad.h5"
    for i in (100, len(data) // 2, len(data) - h5io.SEAL_SIZE - 1, len(data) - h5io.SEAL_SIZE + 60):  # data, seal
        bad.write_bytes(data[:i] + bytes([data[i] ^ 4]) + data[i + 1:])
        one_line(*run_main(capsys, "plot", bad, "--out", tmp_path / "x.png", "--force")[::2], 2,
                 "the seal's SHA-256 does not match")
    for cut in (len(data) - h5io.SEAL_SIZE - 10, len(data) // 2, 2000):               # cut off, seal lost too
        bad.write_bytes(data[:cut])
        one_line(*run_main(capsys, "plot", bad, "--out", tmp_path / "x.png", "--force")[::2], 2, "it is cut off")
    for cut in (len(data) - 1, len(data) - h5io.SEAL_SIZE):     # only the seal cut: the HDF5 bytes are whole
        bad.write_bytes(data[:cut])
        fastgan.store.read_run(str(bad))
    header = h5io.SEAL_MAGIC + hashlib.sha256(h5io.unseal(data)).hexdigest().encode() + b"\n"
    earlier = header + b"\0" * (h5io.SEAL_SIZE - len(header)) + h5io.unseal(data)  # the earlier seal, in front
    bad.write_bytes(earlier)
    fastgan.store.read_run(str(bad))
    bad.write_bytes(earlier[:-5] + b"xxxxx")
    one_line(*run_main(capsys, "plot", bad, "--out", tmp_path / "x.png", "--force")[::2], 2, "SHA-256 does not")
    for edit in (lambda f: f["observables/mode_collapse"].__setitem__(0, 0.5),
                 lambda f: f.attrs.__setitem__("run_id", "0" * 16),
                 lambda f: f["particles"].attrs.__setitem__("note", "x")):
        for seal in (True, False):                 # HDF5's own edits (they may write over the seal): the checksum
            bad.write_bytes(data)
            if not seal:
                fastgan.store.read_run(str(unsealed(bad)))  # intact without its seal: still read
            with h5py.File(bad, "r+") as f:
                edit(f)
            code, _, err = run_main(capsys, "plot", bad, "--out", tmp_path / "x.png", "--force")
            assert code == 2 and ("checksum mismatch" in err or "SHA-256 does not match" in err), err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("edit,needle", [
    (lambda f: (f.__delitem__("time"), f.create_dataset("time", data=np.zeros(0))), "time is empty"),
    (lambda f: (f.__delitem__("particles"), f.create_dataset("particles", data=[1, 2, 3])), "particles should be"),
    (lambda f: (f["observables"].__delitem__("mode_collapse"), f["observables"].create_dataset("mode_collapse",
                                                                                              data="abc")),
     "observables/mode_collapse should be"),
    (lambda f: f.attrs.__setitem__("config_input", "{}"), "particles holds 8 particles"),
    (lambda f: f.attrs.__setitem__("config_input", "{nope"), "damaged run file")])
def test_a_run_file_without_checksum_is_checked_for_structure(edit, needle, tmp_path, capsys):
    """Files written before checksums existed (or edited by hand, checksum removed) are still read, and
    their structure is checked before a picture relies on it."""
    path = unsealed(_run_file(tmp_path, capsys))
    with h5py.File(path, "r+") as f:
        del f.attrs["checksum"]
    fastgan.store.read_run(str(path))                       # an old, intact file still reads
    with h5py.File(path, "r+") as f:
        edit(f)
    one_line(*run_main(capsys, "plot", path, "--out", tmp_path / "x.png")[::2], 2, needle)


def test_flipped_bytes_in_a_run_file_never_reach_a_user_as_a_traceback(tmp_path, capsys):
    path = _run_file(tmp_path, capsys)
    data = path.read_bytes()
    truth = fastgan.store.read_run(str(path))
    accepted = refused = 0
    header = range(0, min(len(data), 2048), 3)              # superblock and object headers, densely
    for pos in sorted(set(header) | set(range(0, len(data), max(1, len(data) // 150)))):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        (tmp_path / "bad.h5").write_bytes(bytes(bad))
        try:
            got = fastgan.store.read_run(str(tmp_path / "bad.h5"))
        except fastgan.FastganError:
            refused += 1
            continue
        accepted += 1                                       # unused bytes: what a reader sees is unchanged
        assert np.array_equal(got["particles"], truth["particles"])
        for k, v in truth["observables"].items():
            assert np.array_equal(got["observables"][k], v, equal_nan=True)
    assert refused > 0 and accepted + refused >= 150


# --------------------------------------------------------------------------- positions, blow-ups

@pytest.mark.parametrize("override", ["target.radius=1e30", "generator.init_std=1e30", "generator.init_mean=[1e30, 0]"])
def test_positions_beyond_the_precision_are_refused_as_input(override, cfg, tmp_path, capsys):
    one_line(*run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--set", override)[::2], 2,
             f"{override.split('=')[0]} = ")
    assert not (tmp_path / "r.h5").exists()
    fastgan.default_config(**{"precision": "float64", override.split("=")[0]: eval(override.split("=")[1])})


@pytest.mark.parametrize("family", ["mlp", "fourier", "deep"])
def test_a_diverging_run_prints_no_numpy_warnings(family, cfg, tmp_path, capsys):
    kind = ["--set", "discriminator.depth=2"] if family == "deep" else ["--set", f"discriminator.kind={family}"]
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "r.h5", "--backend", "numpy", "--quiet",
                            "--set", "training.lr_gen=1e30", "--set", "training.lr_disc=1e30", *kind)
    assert code == 0 and "diverged" in err and "encountered" not in err, err


def test_dirac_at_extreme_damping_is_finite_and_silent(capsys):
    from fastgan.dirac import dirac_eigenvalues, dirac_exact
    code, out, err = run_main(capsys, "dirac", "--beta-min", "1", "--beta-max", "1e308", "--n", "3", "--t-end", "1e300")
    assert code == 0 and not err and "nan" not in out and "inf" not in out, (out, err)
    beta = np.array([0.5, 2.5, 1e3, 1e154, 1e308])
    ev = dirac_eigenvalues(beta)
    assert np.all(np.isfinite(ev))
    moderate = beta[1:3]                                     # (-beta + sqrt(beta^2 - 4)) / 2, rationalised
    assert np.allclose(ev[1:3, 0].real, -2 / (moderate + np.sqrt(moderate ** 2 - 4)), rtol=1e-12)
    assert np.allclose(ev[3:, 0].real, -1 / beta[3:], rtol=1e-12)    # -1/beta + O(beta^-3): no cancellation
    th, ph = dirac_exact(beta, 10.0)
    assert np.all(np.isfinite(th)) and np.all(np.isfinite(ph))
    for b in (0.5, 2.5, 30.0):                               # the closed form against the matrix exponential
        from scipy.linalg import expm
        want = expm(10.0 * np.array([[0.0, 1.0], [-1.0, -b]])) @ np.array([1.0, 0.0])
        assert np.allclose(dirac_exact(b, 10.0), want, rtol=1e-10, atol=1e-300)


# --------------------------------------------------------------------------- resources per backend

def test_the_reference_mlp_temporaries_are_counted_for_numpy_only(monkeypatch):
    r = fastgan.default_config(**{"generator.n_particles": 10 ** 6, "discriminator.width": 2048,
                                  "training.n_iterations": 1}).resolved
    monkeypatch.setattr(resources, "available_memory", lambda: 6 * resources.GiB)
    with pytest.raises(resources.ResourceError, match="generator.n_particles = 1000000"):
        resources.check_run(r, backend="numpy")
    resources.check_run(r, backend="numba")                 # tiled kernels: no samples x width temporaries
    deep = fastgan.default_config(**{"generator.n_particles": 2 * 10 ** 6, "discriminator.width": 512,
                                     "discriminator.depth": 4, "training.n_iterations": 1}).resolved
    for backend in ("numpy", "numba"):
        with pytest.raises(resources.ResourceError):
            resources.check_run(deep, backend=backend)


@pytest.mark.parametrize("overrides", [
    {"discriminator.kind": "kde", "generator.n_particles": 30_000_000, "training.batch_size": 1,
     "training.n_iterations": 2},                                            # d* sums over every particle
    {"discriminator.kind": "kernel", "target.kind": "circle", "training.n_iterations": 2000,
     "discriminator.history": 100_000, "discriminator.bandwidth": [1.0] * 40}])   # every bandwidth
def test_the_work_bound_counts_what_each_family_evaluates(overrides):
    r = fastgan.default_config(**overrides).resolved
    with pytest.raises(resources.ResourceError, match="multiply-adds"):
        resources.check_run(r, backend="numba")


def test_a_wide_networks_picture_is_drawn_in_chunks_with_the_same_values(monkeypatch):
    from fastgan import plots
    cases = [{}, {"discriminator.kind": "kde"},
             {"discriminator.kind": "kernel", "target.kind": "circle", "discriminator.history": 4}]
    for overrides in cases:
        cfg = fastgan.default_config(**{**{"generator.n_particles": 8, "discriminator.width": 16,
                                           "training.n_iterations": 3}, **overrides})
        res = fastgan.simulate(cfg, backend="numpy", progress=False)
        pts = np.random.default_rng(1).normal(size=(101, 2))
        particles = res.particles[-1]
        whole = plots.disc_values(res.discriminator, cfg, pts, particles)
        monkeypatch.setattr(plots, "OVERLAY_ELEMENTS", 7)
        chunked = plots.disc_values(res.discriminator, cfg, pts, particles)
        monkeypatch.undo()
        assert chunked.shape == whole.shape and np.allclose(chunked, whole, rtol=1e-12, atol=1e-12), overrides


# --------------------------------------------------------------------------- ntk measure

@pytest.mark.parametrize("args,needle", [(["--n", "5", "--seed", "-1"], "--seed = -1"),
                                         (["--n", "5", "--seed", str(10 ** 23)], "--seed = "),
                                         (["--n", "10", "--setting", "deep", "--depth", "100000000"], "--depth"),
                                         (["--n", "10", "--setting", "deep", "--width", "100000"], "--width = 100000"),
                                         (["--n", "5", "--out", "g.png"], "named like a picture")])
def test_ntk_measure_is_bounded_before_it_starts(args, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "--out" not in args:
        args = [*args, "--out", "g.h5"]
    one_line(*run_main(capsys, "ntk", "measure", *args)[::2], 2, needle)
    assert not list(tmp_path.iterdir())


def test_ntk_measure_cost_grows_with_what_it_computes():
    from fastgan.ntk_gram import measure_cost
    mem, work = measure_cost("deep", 10, 3, None, 6)
    assert measure_cost("deep", 10, 3, None, 60)[1] == pytest.approx(10 * work)
    assert measure_cost("deep", 10, 3, 1000, 6)[0] > 6 * 4 * 1000 ** 2 > mem
    assert measure_cost("appendix-g", 20, 3, 10 ** 6, 6)[1] > 2 * 20 * 20 * 10 ** 6


# --------------------------------------------------------------------------- reproductions

@pytest.mark.parametrize("setup,out,needle", [
    (lambda d: (d / "rep").mkdir() or (d / "rep" / "mydir").mkdir(), "rep", "'mydir' was not written"),
    (lambda d: (d / "rep").mkdir() or (d / "keep").mkdir() or (d / "rep" / "link").symlink_to(d / "keep"), "rep",
     "'link' was not written"),
    (lambda d: (d / "rep").mkdir() or (d / "lnk").symlink_to(d / "rep"), "lnk", "symbolic link"),
    (lambda d: None, ".", "current folder"),
    (lambda d: None, "", "expected a folder name")])
def test_reproduce_refuses_folders_it_must_not_replace(setup, out, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    from fastgan import reproduce
    if (tmp_path / "rep").is_dir():                           # a marker as a reproduction leaves it
        (tmp_path / "rep" / reproduce.MARKER).write_text('{"files": []}')
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    one_line(*run_main(capsys, "reproduce", "egan-fig18", "--tiny", "--out", out, "--force", "--quiet")[::2], 2,
             needle)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_reproduce_refuses_a_backend_it_cannot_use(tmp_path, capsys, monkeypatch):
    from fastgan import backend
    monkeypatch.setattr(backend, "probe", lambda name: backend.Availability(name, False, "not here (test)")
                        if name == "cuda" else backend.Availability(name, True, ""))
    one_line(*run_main(capsys, "reproduce", "egan-fig18", "--tiny", "--out", tmp_path / "o", "--backend", "cuda",
                       "--quiet")[::2], 2, "backend = 'cuda': not available")
    assert not list(tmp_path.iterdir())


def test_reproduce_cleans_a_killed_ones_leftovers_and_records_its_backend(tmp_path, capsys, monkeypatch):
    import json
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".rep-dead.partial").mkdir()                 # a reproduction killed before it finished
    (tmp_path / ".rep-dead.partial" / "data.h5").write_bytes(b"half")
    old = os.umask(0o022)
    try:
        assert run_main(capsys, "reproduce", "egan-fig18", "--tiny", "--out", "rep", "--quiet",
                        "--backend", "numpy")[0] == 0
    finally:
        os.umask(old)
    assert sorted(os.listdir(tmp_path)) == ["rep"]
    assert stat.S_IMODE(os.stat(tmp_path / "rep").st_mode) == 0o755
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["backend"] == "numpy"


def test_a_full_disk_during_a_reproduction_is_one_line_and_keeps_the_old_one(tmp_path):
    assert cli("reproduce", "egan-fig18", "--tiny", "--out", tmp_path / "rep", "--quiet", "--backend", "numpy")[0] == 0
    before = files(tmp_path / "rep")
    code, _, err = cli("reproduce", "egan-fig18", "--tiny", "--out", tmp_path / "rep", "--force", "--quiet",
                       "--backend", "numpy", preexec=_fsize_limit(4096))
    one_line(code, err, 1, "cannot write")
    assert files(tmp_path / "rep") == before and sorted(os.listdir(tmp_path)) == ["rep"]


# --------------------------------------------------------------------------- tables a user reads

def _aligned(table: str, header: tuple):
    """Every column of a text table starts where its header does."""
    lines = table.splitlines()
    starts = [lines[0].index(h) for h in header]
    assert starts == sorted(starts) and lines[0].startswith(header[0])
    for line in lines[1:]:
        for s in starts[1:]:
            assert line[s - 2:s] == "  " and line[s] != " ", (line, s)


def test_config_keys_and_reproduce_list_are_aligned_tables(capsys):
    code, out, _ = run_main(capsys, "config", "--keys")
    assert code == 0
    _aligned(out, ("key", "type", "default", "meaning"))
    code, out, _ = run_main(capsys, "reproduce", "--list")
    assert code == 0
    _aligned(out, ("name", "paper", "figures", "needs", "quick", "title"))
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "scikit-learn" in rows["kgan-digits"] and "torch" in rows["egan-fig2"]
    quick = out.splitlines()[0].index("quick")
    assert all(row[quick:].split()[1] in ("s", "min") for row in rows.values())       # a measured time each


def test_a_reproduction_names_the_extra_that_installs_what_it_needs(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    one_line(*run_main(capsys, "reproduce", "kgan-digits", "--tiny", "--out", tmp_path / "o")[::2], 2,
             "needs scikit-learn (pip install 'fastgan[reproduce]')")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- sweep --set, the summary

def test_sweep_set_overrides_the_base_and_the_summary_counts_diverged_runs(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "set"\nbase = "base.toml"\n[[sweep.axes]]\nkey = "training.lr_gen"\n'
                    'values = [0.01, 1e30]\n')
    write_toml(tmp_path / "base.toml", {**RUN, "training": {"n_iterations": 6}})
    before = (tmp_path / "base.toml").read_text()
    code, out, err = run_main(capsys, "sweep", spec, "--out", tmp_path / "o", "--backend", "numpy",
                              "--set", "training.n_disc=3", "--set", "discriminator.width=8")
    assert code == 0 and "1 of the 2 runs diverged" in out, (out, err)
    ds = fastgan.open_sweep(str(tmp_path / "o"))
    import json
    base = json.loads(ds.attrs["spec"])["base"]
    assert base["training"]["n_disc"] == 3 and base["discriminator"]["width"] == 8
    assert (tmp_path / "base.toml").read_text() == before                  # the base file is not changed
    want = fastgan.load_config(str(tmp_path / "base.toml"), ["training.n_disc=3", "discriminator.width=8",
                                                             "training.lr_gen=0.01", "training.seed=0"]).run_id
    assert want in ds["run_id"].values.ravel().tolist()
    one_line(*run_main(capsys, "sweep", spec, "--out", tmp_path / "p", "--set", "training.n_dsc=3")[::2], 2,
             "did you mean training.n_disc")
    one_line(*run_main(capsys, "sweep", spec, "--out", tmp_path / "p", "--set", "nonsense")[::2], 2, "--set")
    assert not (tmp_path / "p").exists()
