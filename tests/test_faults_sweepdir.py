"""Fault suite for sweep folders (issue 16, "nothing lost, nothing crashes"): damaged parts, a damaged
sweep.json or sweep.h5, special files where parts or files should be, the folder lock under attack, three
sweeps at once, odd phase diagrams. Every command answers without a traceback or an "internal error":
it works (rebuilding its view from the parts) or fails with one line and the promised exit status, never
loses a complete part and leaves no temporary file."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import fastgan
from fastgan.cli import main
from fastgan.sweep_parts import CHECKSUM_V2, checksum
from test_faults import LOCK_HOLDER, _main, _sweep_spec, cli, no_temporaries, one_line


# --------------------------------------------------------------------------- helpers

def _run(capsys, *args):
    """In-process CLI: (exit code, stdout, stderr), with the promise every call keeps."""
    code, out, err = _main(capsys, *args)
    assert "internal error" not in err, err
    return code, out, err


def _fails(capsys, code_wanted, needle, *args):
    code, _, err = _run(capsys, *args)
    one_line(code, err, code_wanted, needle)
    return err


def _digests(folder) -> dict:
    """{relative path: sha256} of every regular file under ``folder`` (special files by kind)."""
    out = {}
    for d, dirs, fs in os.walk(folder):
        for f in fs + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, folder)
            if os.path.islink(p) or not os.path.isfile(p):
                out[rel] = "special"
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _complete_parts(folder) -> dict:
    """{name: sha256} of the parts in ``folder`` that the store trusts."""
    from fastgan.sweep_store import SweepStore
    store = SweepStore(str(folder))
    paths = set(store.completed().values())
    return {os.path.basename(p): _digests(os.path.dirname(p))[os.path.basename(p)] for p in paths}


def _kept(before: dict, folder):
    """Every complete part of ``before`` is still there, byte for byte (in parts/ or moved to damaged/)."""
    now = set(_digests(folder).values())
    assert set(before.values()) <= now, "a complete part was lost"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A finished three-run sweep (three parts), its spec and its consolidated values."""
    root = tmp_path_factory.mktemp("made")
    spec, out = _sweep_spec(root / "s.toml", [1, 2, 3]), root / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--backend", "numpy", "--quiet"]) == 0
    ref = fastgan.open_sweep(str(out))["mode_collapse"].values.copy()
    return spec, out, ref


@pytest.fixture
def sw(made, tmp_path):
    """A private copy of the finished sweep: (spec, folder, reference mode_collapse values)."""
    spec, out, ref = made
    dst = tmp_path / "out"
    shutil.copytree(out, dst)
    return spec, dst, ref


def _part(out):
    return sorted((out / "parts").glob("*.h5"))[0]


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x5A
    path.write_bytes(bytes(data))


def _resumes(capsys, spec, out, ref, moved: int | None = None):
    """A resume recomputes what is damaged, moves damaged parts aside (warning line) and ends complete."""
    code, _, err = _run(capsys, "sweep", spec, "--out", out, "--backend", "numpy", "--quiet")
    assert code == 0, err
    if moved:
        warn = [ln for ln in err.splitlines() if "damaged part" in ln]
        assert len(warn) == 1 and warn[0].startswith("fastgan: warning:") and "moved to" in warn[0], err
        assert len(list((out / "damaged").iterdir())) == moved
    ds = fastgan.open_sweep(str(out))
    assert int(ds.attrs["runs_complete"]) == 3
    np.testing.assert_array_equal(ds["mode_collapse"].values, ref)
    assert "damaged part" not in _run(capsys, "status", out)[1]
    no_temporaries(out)


# --------------------------------------------------------------------------- damaged parts

def _damage_part(part, how):
    if how == "flipped data byte":
        with h5py.File(part, "r") as f:
            off = f["observables/mode_collapse"].id.get_offset()
        _flip(part, off)
    elif how == "attribute changed":
        with h5py.File(part, "a") as f:
            f.attrs["backend"] = "numba"
    elif how == "spec attribute changed":
        with h5py.File(part, "a") as f:
            doc = json.loads(f.attrs["spec"])
            doc["name"] = "other"
            f.attrs["spec"] = json.dumps(doc)
    elif how == "checksum deleted":
        with h5py.File(part, "a") as f:
            del f.attrs["checksum"]
    elif how == "marker deleted":
        with h5py.File(part, "a") as f:
            del f.attrs["complete"]
    elif how == "marker not a number":
        with h5py.File(part, "a") as f:
            f.attrs["complete"] = "yes"
    elif how == "dataset replaced by a group":
        with h5py.File(part, "a") as f:
            del f["diverged"]
            f.create_group("diverged")
    elif how == "run ids retyped":
        with h5py.File(part, "a") as f:
            ids = f["run_ids"][()]
            del f["run_ids"]
            f.create_dataset("run_ids", data=np.arange(len(ids)))
    elif how == "truncated":
        part.write_bytes(part.read_bytes()[:3000])
    elif how == "junk":
        part.write_bytes(b"junk\n")
    elif how == "empty":
        part.write_bytes(b"")


def _thin(values, every=2):
    """Every ``every``-th value in the fast tier (``-m "not slow"``), all of them in the full suite."""
    return [v if i % every == 0 else pytest.param(*(v if isinstance(v, tuple) else (v,)), marks=pytest.mark.slow)
            for i, v in enumerate(values)]


DAMAGES = ["flipped data byte", "attribute changed", "spec attribute changed", "checksum deleted", "marker deleted",
           "marker not a number", "dataset replaced by a group", "run ids retyped", "truncated", "junk", "empty"]


@pytest.mark.parametrize("how", _thin(DAMAGES, 3))
def test_a_damaged_part_is_reported_moved_aside_and_recomputed(sw, capsys, how):
    spec, out, ref = sw
    part = _part(out)
    _damage_part(part, how)
    damaged_bytes = part.read_bytes()
    before = _complete_parts(out)
    assert len(before) == 2
    code, text, err = _run(capsys, "status", out)
    assert code == 0 and "2/3 runs complete" in text and "1 damaged part" in text, (text, err)
    assert int(fastgan.open_sweep(str(out)).attrs["runs_complete"]) == 2
    (out / "sweep.h5").unlink()
    code, _, err = _run(capsys, "plot", out, "--out", out.parent / "p.png")
    assert code == 0, err
    _resumes(capsys, spec, out, ref, moved=1)
    assert (out / "damaged" / part.name).read_bytes() == damaged_bytes           # kept, never deleted
    _kept(before, out)


@pytest.mark.parametrize("where", _thin([0.02, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 0.97], 3))
def test_any_flipped_byte_is_damage_or_harmless_never_a_crash(sw, capsys, where):
    spec, out, ref = sw
    part = _part(out)
    _flip(part, int(where * part.stat().st_size))
    (out / "sweep.h5").unlink()
    before = _complete_parts(out)
    for args in (("status", out), ("plot", out, "--out", out.parent / "p.png")):
        code, _, err = _run(capsys, *args)
        assert code == 0, err
    _resumes(capsys, spec, out, ref)
    _kept(before, out)


def test_a_name_taken_in_damaged_is_kept_and_parts_of_the_previous_format_are_read(sw, capsys):
    spec, out, ref = sw
    parts = sorted((out / "parts").glob("*.h5"))
    for p in parts[1:3]:                                    # earlier formats: no seal
        p.write_bytes(fastgan.h5io.unseal(p.read_bytes()))
    with h5py.File(parts[1], "a") as f:                     # the previous format: a datasets-only checksum
        assert str(f.attrs["checksum"]).startswith(CHECKSUM_V2)
        f.attrs["checksum"] = checksum(f)
    with h5py.File(parts[2], "a") as f:                     # older still: written before parts had checksums
        del f.attrs["checksum"], f.attrs["part_format"]
    (out / "damaged").mkdir()
    (out / "damaged" / parts[0].name).write_bytes(b"an earlier damaged copy")
    _damage_part(parts[0], "junk")
    assert len(_complete_parts(out)) == 2
    _resumes(capsys, spec, out, ref, moved=2)
    assert (out / "damaged" / parts[0].name).read_bytes() == b"an earlier damaged copy"
    assert (out / "parts" / parts[1].name).exists()                           # read, not recomputed
    assert (out / "parts" / parts[2].name).exists() and not (out / "damaged" / parts[2].name).exists()


def test_special_entries_in_parts_are_not_parts_and_never_block(sw, capsys):
    spec, out, ref = sw
    os.mkfifo(out / "parts" / "f.h5")                      # opening a pipe would wait for a writer forever
    (out / "parts" / "d.h5").mkdir()
    os.symlink(_part(out), out / "parts" / "l.h5")
    (out / "sweep.h5").unlink()
    code, text, err = cli("status", out, timeout=60)
    assert code == 0 and "3/3 runs complete" in text and "ignored" in text, (text, err)
    assert "Traceback" not in err
    _resumes(capsys, spec, out, ref)
    assert (out / "parts" / "d.h5").is_dir() and os.path.islink(out / "parts" / "l.h5")


# --------------------------------------------------------------------------- damaged sweep.json / sweep.h5

def _damage_file(out, how):
    j, h = out / "sweep.json", out / "sweep.h5"
    if how == "json garbage":
        j.write_text("garbage{")
    elif how == "json empty spec":
        j.write_text('{"spec": {}}')
    elif how == "json list":
        j.write_text("[1, 2]")
    elif how == "json bad value":
        j.write_text('{"spec": {"axes": [{"key": "coupling.ratio", "values": [1e999]}]}}')
    elif how == "json base path":
        j.write_text('{"spec": {"base": "/etc/passwd", "axes": [{"key": "coupling.ratio", "values": [0.1]}]}}')
    elif how == "json identity edited":
        doc = json.loads(j.read_text())
        doc["spec"]["name"] = "renamed"
        j.write_text(json.dumps(doc))
    elif how == "h5 run file":
        cfg = out.parent / "r.toml"
        cfg.write_text('[generator]\nn_particles = 4\n[training]\nn_iterations = 4\n[record]\nevery = 2\n'
                       'snapshots = 0\n')
        assert main(["run", str(cfg), "--out", str(out.parent / "r.h5"), "--backend", "numpy", "--quiet",
                     "--no-plot"]) == 0
        shutil.copy(out.parent / "r.h5", h)
    elif how == "h5 runs_total text":
        with h5py.File(h, "a") as f:
            f.attrs["runs_total"] = "abc"
    elif how == "h5 runs_total missing":
        with h5py.File(h, "a") as f:
            del f.attrs["runs_total"]
    elif how == "h5 variable missing":
        with h5py.File(h, "a") as f:
            del f["diverged"]
    elif how == "h5 foreign identity":
        with h5py.File(h, "a") as f:
            f.attrs["identity"] = "0123456789abcdef"
    elif how == "h5 truncated":
        h.write_bytes(h.read_bytes()[:4000])
    elif how == "h5 empty":
        with h5py.File(h, "w"):
            pass


FILE_DAMAGES = ["json garbage", "json empty spec", "json list", "json bad value", "json base path",
                "json identity edited", "h5 run file", "h5 runs_total text", "h5 runs_total missing",
                "h5 variable missing", "h5 foreign identity", "h5 truncated", "h5 empty"]


@pytest.mark.parametrize("how", _thin(FILE_DAMAGES, 3))
def test_a_damaged_sweep_json_or_sweep_h5_is_rebuilt_from_the_parts(sw, capsys, how):
    spec, out, ref = sw
    if how.startswith("json"):
        (out / "sweep.h5").unlink()
    _damage_file(out, how)
    before = _complete_parts(out)
    code, text, err = _run(capsys, "status", out)
    assert code == 0 and "3/3 runs complete" in text and "sweep 'faults'" in text, (text, err)
    ds = fastgan.open_sweep(str(out))
    assert int(ds.attrs["runs_complete"]) == 3
    np.testing.assert_array_equal(ds["mode_collapse"].values, ref)
    assert _run(capsys, "plot", out, "--out", out.parent / "p.png")[0] == 0
    _resumes(capsys, spec, out, ref)
    assert json.loads((out / "sweep.json").read_text())["name"] == "faults"          # rewritten from the spec
    _kept(before, out)


def test_status_of_a_sweep_json_claiming_a_huge_grid_counts_without_planning(sw, capsys, monkeypatch):
    spec, out, ref = sw
    doc = json.loads((out / "sweep.json").read_text())
    doc["spec"]["replicates"] = 300_000                    # the same sweep (identity), 900 000 runs
    (out / "sweep.json").write_text(json.dumps(doc))
    (out / "sweep.h5").unlink()

    def no_planning(*args, **kw):
        raise AssertionError("status planned every run of a 900 000-run grid")
    monkeypatch.setattr(fastgan.sweep_spec, "_build", no_planning)
    code, text, err = _run(capsys, "status", out)
    assert code == 0 and "/900000 runs complete" in text, (text, err)


# --------------------------------------------------------------------------- the folder's own entries

@pytest.mark.parametrize("name,kind", [("sweep.h5", "dir"), ("sweep.json", "dir"), (".lock", "dir"),
                                       ("parts", "file"), ("sweep.json", "fifo")])
def test_an_entry_of_the_wrong_kind_is_one_line_before_anything(sw, capsys, name, kind):
    spec, out, ref = sw
    p = out / name
    shutil.rmtree(p) if p.is_dir() else p.unlink()
    if kind == "dir":
        p.mkdir()
    elif kind == "file":
        p.write_text("x")
    else:
        os.mkfifo(p)
    before = _digests(out)
    _fails(capsys, 2, repr(name), "sweep", spec, "--out", out, "--backend", "numpy", "--quiet")
    assert _digests(out) == before
    if name != "parts":
        code, text, err = _run(capsys, "status", out)
        assert code == 0 and "3/3" in text, (text, err)


def test_an_empty_out_and_an_empty_dask_address_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _sweep_spec(tmp_path / "s.toml", [1])
    _fails(capsys, 2, "--out = ''", "sweep", spec, "--out", "", "--backend", "numpy")
    _fails(capsys, 2, "--dask = ''", "sweep", spec, "--out", "o", "--backend", "numpy", "--dask", "")
    assert sorted(os.listdir(tmp_path)) == ["s.toml"]


def test_memory_is_checked_before_the_folder_is_touched(tmp_path, capsys, monkeypatch):
    from fastgan import resources
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    _fails(capsys, 2, "memory", "sweep", _sweep_spec(tmp_path / "s.toml", [1]), "--out", tmp_path / "o",
           "--backend", "numpy")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- the lock

def _holder(spec, out):
    owner = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(spec), str(out)], stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, FASTGAN_PROGRESS="0"))
    assert owner.stdout.readline().strip() == "locked"
    return owner


def test_deleting_or_replacing_lock_does_not_let_a_second_sweep_in(sw, capsys):
    spec, out, ref = sw
    owner = _holder(spec, out)
    try:
        (out / ".lock").unlink()
        before = _digests(out)
        _fails(capsys, 2, "in use by another fastgan process", "sweep", spec, "--out", out, "--backend", "numpy")
        (out / ".lock").mkdir()
        _fails(capsys, 2, "'.lock'", "sweep", spec, "--out", out, "--backend", "numpy")
        (out / ".lock").rmdir()
        assert _digests(out) == before
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    _resumes(capsys, spec, out, ref)                       # the lock died with its owner


THREE = textwrap.dedent("""
    import sys
    from fastgan.cli import main
    sys.exit(main(["sweep", sys.argv[1], "--out", sys.argv[2], "--backend", "numpy", "--quiet"]))
""")


def test_three_sweeps_at_once_one_computes_the_others_refuse_in_one_line(tmp_path, capsys):
    spec, out = _sweep_spec(tmp_path / "s.toml", [1, 2, 3]), tmp_path / "out"
    env = dict(os.environ, FASTGAN_PROGRESS="0")
    env.pop("FASTGAN_DEBUG", None)
    procs = [subprocess.Popen([sys.executable, "-c", THREE, str(spec), str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        assert "Traceback" not in err and "internal error" not in err, err
        if code != 0:
            one_line(code, err, 2, "in use by another fastgan process")
    code, text, err = _run(capsys, "status", out)
    assert code == 0 and "3/3 runs complete" in text and "damaged" not in text, text
    no_temporaries(out)


# --------------------------------------------------------------------------- plots and refine

def test_plot_without_a_complete_run_is_one_line(sw, capsys):
    spec, out, ref = sw
    for p in (out / "parts").glob("*.h5"):
        p.unlink()
    (out / "sweep.h5").unlink()
    _fails(capsys, 2, "no complete run", "plot", out, "--out", out.parent / "p.png")
    assert not (out.parent / "p.png").exists()


def _odd_spec(path, axes, **training):
    lines = ["[sweep]", 'name = "odd"', "[sweep.base.generator]", "n_particles = 6", "[sweep.base.discriminator]",
             "width = 8", "[sweep.base.training]", "n_iterations = 8",
             *[f"{k} = {json.dumps(v)}" for k, v in training.items()],
             "[sweep.base.record]", "every = 4", "snapshots = 0", "discriminator = false"]
    for key, values in axes:
        lines += ["[[sweep.axes]]", f'key = "{key}"', f"values = {json.dumps(values)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("axes,training", _thin([
    ([("coupling.ratio", [0.1]), ("training.n_disc", [1, 2])], {}),                       # a single-value axis
    ([("coupling.ratio", [0.2, 0.0]), ("training.n_disc", [1, 2])], {}),                  # decreasing values
    ([("discriminator.kind", ["mlp", "fourier"]), ("coupling.ratio", [0.0, 0.2])], {}),      # a string axis
    ([("discriminator.kind", ["mlp", "fourier"])], {}),                                      # one string axis
    ([("coupling.ratio", [0.0, 0.1]), ("training.n_disc", [1, 2])], {"lr_gen": 1e30}),   # every run diverges
    ([("coupling.ratio", [0.0]), ("training.n_disc", [1]), ("training.seed", [0, 1])], {}),   # three axes
]))
def test_plots_with_odd_axes_draw_something(tmp_path, capsys, axes, training):
    spec, out = _odd_spec(tmp_path / "s.toml", axes, **training), tmp_path / "o"
    code, _, err = _run(capsys, "sweep", spec, "--out", out, "--backend", "numpy", "--quiet")
    assert code == 0, err
    code, _, err = _run(capsys, "plot", out)
    assert code == 0 and (out / "phase.png").stat().st_size > 1000, err
    assert _run(capsys, "status", out)[0] == 0


@pytest.mark.parametrize("refine,needle", [({"axis": "coupling.ratio", "metric": "bogus"}, "sweep.refine.metric"),
                                           ({"axis": "discriminator.kind"}, "sweep.refine.axis")])
def test_refine_settings_that_cannot_work_are_one_line_before_anything(tmp_path, capsys, refine, needle):
    spec = _odd_spec(tmp_path / "s.toml", [("coupling.ratio", [0.0, 0.2]), ("discriminator.kind", ["mlp", "fourier"])])
    spec.write_text(spec.read_text() + "[sweep.refine]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                                     for k, v in refine.items()))
    _fails(capsys, 2, needle, "sweep", spec, "--out", tmp_path / "o", "--backend", "numpy", "--refine")
    assert not (tmp_path / "o").exists()
