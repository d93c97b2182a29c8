"""CLI contract: run/plot/config/info, one-line errors with exit status 2, outputs never clobbered."""

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from fastgan.cli import main

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "quickstart.toml")
FAST = ["--set", "training.n_iterations=12", "--set", "discriminator.width=32", "--set", "record.every=4",
        "--set", "generator.n_particles=16"]


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_run_writes_contract_layout(tmp_path, capsys):
    out = tmp_path / "r.h5"
    assert main(["run", EXAMPLE, "--out", str(out), "--backend", "numpy", *FAST]) == 0
    assert out.exists() and (tmp_path / "r.png").stat().st_size > 1000
    with h5py.File(out, "r") as f:
        assert list(f["time"][()]) == [0, 4, 8, 12]
        for k in ("mode_collapse", "log_likelihood", "nearest_mode_distance", "modes_covered",
                  "high_quality_fraction", "kl_uniform"):
            assert f["observables"][k].shape == (4,)
        S = f["particles"].shape[0]
        assert f["particles"].shape[1:] == (16, 2) and f["particles_time"].shape == (S,)
        assert f["discriminator/w"].shape == (32, 2)
        cfg = json.loads(f.attrs["config"])
        assert cfg["training"]["n_iterations"] == 12 and "backend" not in cfg
        assert f.attrs["diverged"] == False and f.attrs["diverged_at"] == -1  # noqa: E712
        assert f.attrs["backend"] == "numpy" and f.attrs["precision"] == "float32"
        assert f.attrs["fastgan_version"] and "git_commit" in f.attrs
        assert "loop_s" in json.loads(f.attrs["timings"])
    assert "wrote" in capsys.readouterr().out
    # the file is readable by the plot command, which redraws a picture it drew itself
    assert main(["plot", str(out), "--out", str(tmp_path / "p.png")]) == 0
    assert main(["plot", str(out), "--out", str(tmp_path / "p.png")]) == 0
    (tmp_path / "q.png").write_bytes(b"not fastgan's")               # but never one it did not draw
    assert main(["plot", str(out), "--out", str(tmp_path / "q.png")]) == 2
    assert (tmp_path / "q.png").read_bytes() == b"not fastgan's"


def test_existing_output_untouched(tmp_path, capsys):
    out = tmp_path / "r.h5"
    out.write_bytes(b"precious")
    assert main(["run", EXAMPLE, "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"fastgan: error: --out = {str(out)!r}: file exists (use --force to overwrite)"
    assert out.read_bytes() == b"precious"
    # an existing PNG also blocks the run before any work, and nothing is written
    out2 = tmp_path / "s.h5"
    (tmp_path / "s.png").write_bytes(b"png")
    assert main(["run", EXAMPLE, "--out", str(out2), *FAST]) == 2
    assert not out2.exists() and (tmp_path / "s.png").read_bytes() == b"png"
    # --force replaces
    assert main(["run", EXAMPLE, "--out", str(out), "--backend", "numpy", "--force", "--no-plot", *FAST]) == 0
    assert h5py.is_hdf5(out)


@pytest.mark.parametrize("override,needle", [
    ("generator.n_particles=0", "generator.n_particles = 0: must be >= 1"),
    ("training.lr_disc=-1", "training.lr_disc = -1: must be >= 0"),
    ("coupling.ratio=2", "coupling.ratio = 2: must lie in [0.0, 1.0]"),
    ("training.lr_gen=nan", "training.lr_gen = nan: must be finite"),
    ("training.n_disc=0", "training.n_disc = 0: must be >= 1"),
    ("training.n_disc=1.5", "training.n_disc = 1.5: expected an integer"),
    ("training.ndisc=3", "training.ndisc = 3: unknown key (did you mean training.n_disc?)"),
    ("discriminator.activation=gelu", "discriminator.activation = 'gelu': must be one of relu, tanh"),
    ("target.kind=grid", "target.n_modes = 8: a grid needs a perfect square"),
    ("training.seed=3", None),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, override, needle):
    out = tmp_path / "r.h5"
    out.write_bytes(b"keep me")
    code = main(["run", EXAMPLE, "--out", str(tmp_path / "new.h5"), "--set", override, "--set",
                 "training.n_iterations=2", "--set", "discriminator.width=8", "--no-plot", "--backend", "numpy"])
    err = capsys.readouterr().err.strip().splitlines()
    if needle is None:
        assert code == 0
        return
    assert code == 2
    assert len([line for line in err if line.startswith("fastgan: error:")]) == 1
    assert err[-1] == f"fastgan: error: {needle}"
    assert not (tmp_path / "new.h5").exists() and out.read_bytes() == b"keep me"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_bad_backend_and_missing_config(tmp_path, capsys, monkeypatch):
    assert main(["run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o.h5")]) == 2
    assert "config = " in capsys.readouterr().err and not (tmp_path / "o.h5").exists()
    monkeypatch.setenv("FASTGAN_BACKEND", "fortran")
    assert main(["run", EXAMPLE, "--out", str(tmp_path / "o.h5"), *FAST]) == 2
    assert "FASTGAN_BACKEND = 'fortran': expected one of" in capsys.readouterr().err
    monkeypatch.delenv("FASTGAN_BACKEND")
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nn_disc = 0\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o.h5")]) == 2
    assert not (tmp_path / "o.h5").exists()


def test_console_script_exit_status(tmp_path):
    exe = [sys.executable, "-m", "fastgan.cli"]
    r = subprocess.run(exe + ["run", EXAMPLE, "--out", str(tmp_path / "x.h5"), "--set", "coupling.ratio=-1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "fastgan: error: coupling.ratio = -1: must lie in [0.0, 1.0]"


def test_config_and_info_commands(capsys):
    assert main(["config", EXAMPLE, "--set", "training.seed=4"]) == 0
    out = capsys.readouterr().out
    assert '"seed": 4' in out and "run_id = " in out
    assert main(["config", "--keys"]) == 0
    assert "coupling.ratio" in capsys.readouterr().out
    assert main(["info"]) == 0
    info = capsys.readouterr().out
    assert "numpy" in info and "numba" in info and "cuda" in info


def test_read_run_roundtrip(tmp_path):
    import fastgan
    from fastgan.store import read_run, write_run
    from conftest import small_config
    r = fastgan.simulate(small_config(), backend="numpy")
    write_run(str(tmp_path / "a.h5"), r)
    back = read_run(str(tmp_path / "a.h5"))
    assert back["config"].run_id == r.config.run_id
    np.testing.assert_array_equal(back["particles"], r.particles)
    np.testing.assert_array_equal(back["observables"]["mode_collapse"], r.observables["mode_collapse"])
    with pytest.raises(FileExistsError):
        write_run(str(tmp_path / "a.h5"), r)


def test_two_invocations_give_identical_trajectories(tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}.h5"
        r = subprocess.run([sys.executable, "-m", "fastgan", "run", EXAMPLE, "--out", str(out), "--no-plot",
                            "--quiet", "--backend", "numpy", *FAST, "--set", "training.beta=0.2"],
                           capture_output=True, text=True, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        outs.append(out)
    with h5py.File(outs[0], "r") as a, h5py.File(outs[1], "r") as b:
        assert np.array_equal(a["particles"][()], b["particles"][()])
        assert np.array_equal(a["discriminator/w"][()], b["discriminator/w"][()])
        assert np.array_equal(a["observables/mode_collapse"][()], b["observables/mode_collapse"][()])
        assert a.attrs["run_id"] == b.attrs["run_id"]
