"""Shipped examples validate and run; the package installs kernels only as fastgan.kernels."""

import glob
import json
import os
import subprocess
import sys
import zipfile

import pytest

import fastgan
from fastgan.config import load_toml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_TOML = sorted(glob.glob(os.path.join(ROOT, "examples", "*.toml")))
SWEEPS = [p for p in ALL_TOML if "sweep" in load_toml(p)]
EXAMPLES = [p for p in ALL_TOML if p not in SWEEPS]


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_configs_run(path):
    small = ["training.n_iterations=3", "record.every=1", "record.snapshots=2"]
    if fastgan.load_config(path).generator.init_points is None:      # explicit layouts keep their size
        small += ["generator.n_particles=20", "discriminator.width=16"]
    cfg = fastgan.load_config(path, small)
    r = fastgan.simulate(cfg, backend="numpy")
    assert r.time[-1] == 3 and not r.diverged


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_example_sweeps_parse_and_run_small(path, tmp_path):
    from fastgan.sweep import execute, load_spec, parse_spec
    sw = load_spec(path)
    assert len(sw.runs) >= 4
    data = load_toml(path)
    data["sweep"]["base"]["training"]["n_iterations"] = 3
    data["sweep"]["base"]["generator"]["n_particles"] = 10
    data["sweep"]["base"]["discriminator"]["width"] = 8
    for ax in data["sweep"]["axes"]:
        gen = [g for g in ("values", "linspace", "logspace", "geomspace", "int_logspace") if g in ax][0]
        if gen != "values":
            ax[gen] = ax[gen][:2] + [2]
    small = parse_spec(data)
    out = execute(small, str(tmp_path / "s"), backend="numpy", progress=False)
    assert out["runs_computed"] == len(small.runs)


def test_import_fastgan_imports_no_gpu_or_torch():
    code = ("import sys, fastgan, fastgan.engine, fastgan.cli, fastgan.kernels.ops; "
            "bad = [m for m in ('cupy', 'torch') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr


def test_kernels_only_inside_the_package():
    code = "import importlib.util as u, fastgan.kernels as k; print(u.find_spec('kernels')); print(k.__file__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    top, path = r.stdout.split()
    assert top == "None" and os.path.basename(os.path.dirname(path)) == "kernels"


@pytest.mark.slow
def test_wheel_maps_kernels_into_the_package(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), ROOT],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    wheel = glob.glob(str(tmp_path / "fastgan-*.whl"))[0]
    names = zipfile.ZipFile(wheel).namelist()
    assert "fastgan/kernels/ops.py" in names and "fastgan/kernels/rng.py" in names
    assert not [n for n in names if n.startswith("kernels/")]
    assert [n for n in names if n.startswith("fastgan/kernels/") and n.endswith(".cu")] or \
        not glob.glob(os.path.join(ROOT, "kernels", "*.cu"))
    assert "fastgan/reproduce/sensitivity/fourier_lambda.json" in names       # the reports' measured scans
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if head:                                     # an installed wheel knows the commit it was built from
        info = json.loads(zipfile.ZipFile(wheel).read("fastgan/_build_info.json"))
        assert info["git_commit"].split("-")[0] == head


def test_the_commit_recorded_is_fastgans_never_an_enclosing_repositorys(tmp_path):
    """An installed fastgan inside some other git repository (a project holding its venv) must not record
    that repository's commit; a build's recorded commit is used instead; fastgan's own checkout its HEAD."""
    from fastgan.store import _commit_of, git_commit
    repo = tmp_path / "project"
    pkg = repo / "venv" / "site-packages" / "fastgan"
    pkg.mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    for cmd in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty",
                                 "-m", "x"]):
        if subprocess.run(["git", *cmd], cwd=repo, capture_output=True).returncode:
            pytest.skip("git is not usable here")
    assert _commit_of(str(pkg)) in ("", _pip_recorded())
    (pkg / "_build_info.json").write_text(json.dumps({"git_commit": "abc123"}))
    assert _commit_of(str(pkg)) == "abc123"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if head:
        assert git_commit().split("-")[0] == head


def _pip_recorded() -> str:
    from importlib.metadata import distribution
    try:
        return json.loads(distribution("fastgan").read_text("direct_url.json") or "{}") \
            .get("vcs_info", {}).get("commit_id", "")
    except Exception:  # noqa: BLE001
        return ""


def test_source_checkout_finds_kernels_without_editable_install():
    """``python -m fastgan`` run in the repository root imports fastgan from the checkout, which
    may shadow a regular (non-editable) install; fastgan.kernels must still resolve to kernels/."""
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()\n"
            "                    and 'editable' not in getattr(f, '__name__', '').lower()]\n"
            "for m in [m for m in sys.modules if m == 'fastgan' or m.startswith('fastgan.')]: del sys.modules[m]\n"
            f"sys.path.insert(0, {ROOT!r})\n"
            "import fastgan.kernels.ops as ops, fastgan\n"
            "assert ops.__file__.startswith(" + repr(os.path.join(ROOT, "kernels")) + "), ops.__file__\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def test_make_gallery_shows_a_full_scale_run_beside_the_quick_one(tmp_path, monkeypatch):
    """scripts/make_gallery.py: a quick run becomes docs/gallery/NAME/ and its README entry; a --full run goes
    to NAME/full/ and joins the entry; rebuilding the entry from a new quick run keeps the full part; a run of
    the wrong scale is refused."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_gallery", os.path.join(os.path.dirname(__file__), "..",
                                                                                "scripts", "make_gallery.py"))
    mg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mg)
    root = tmp_path / "repo"
    (root / "docs" / "gallery").mkdir(parents=True)
    (root / "README.md").write_text("# x\n<!-- gallery -->\nold\n<!-- /gallery -->\nend\n")
    monkeypatch.setattr(mg, "ROOT", str(root))
    monkeypatch.setattr(mg, "GALLERY", str(root / "docs" / "gallery"))

    def run(folder, scale, summary):
        folder.mkdir(parents=True)
        (folder / "fig.png").write_bytes(b"png")
        (folder / "report.txt").write_text(summary)
        (folder / "report.json").write_text(json.dumps({"experiment": "egan-fig5-6", "paper": "001", "figures": "Figs. 5, 6",
                                                        "title": "t", "summary": summary, "scale": scale,
                                                        "seconds": 7200.0}))
    run(tmp_path / "quick" / "egan-fig5-6", "quick", "quick summary")
    run(tmp_path / "full" / "egan-fig5-6", "full", "full summary")
    monkeypatch.setattr(sys, "argv", ["mg", "--runs", str(tmp_path / "quick"), "--full-runs", str(tmp_path / "full"),
                                      "egan-fig5-6"])
    assert mg.main() == 0
    text = (root / "README.md").read_text()
    assert "quick summary" in text and "**Full scale**" in text and "2.0 h on 2 cores" in text and "full summary" in text
    assert "docs/gallery/egan-fig5-6/full/fig.png" in text and text.endswith("<!-- /gallery -->\nend\n")
    assert (root / "docs/gallery/egan-fig5-6/full/report.json").is_file()
    (tmp_path / "quick" / "egan-fig5-6" / "report.json").write_text(
        (tmp_path / "quick" / "egan-fig5-6" / "report.json").read_text().replace("quick summary", "newer"))
    monkeypatch.setattr(sys, "argv", ["mg", "--runs", str(tmp_path / "quick"), "egan-fig5-6"])
    assert mg.main() == 0
    text = (root / "README.md").read_text()
    assert "newer" in text and "full summary" in text and (root / "docs/gallery/egan-fig5-6/full/fig.png").is_file()
    monkeypatch.setattr(sys, "argv", ["mg", "--runs", str(tmp_path / "full"), "egan-fig5-6"])
    with pytest.raises(SystemExit, match="expected --quick"):
        mg.main()
