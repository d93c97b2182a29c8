"""Sweeps: spec parsing and validation, planning, the resumable store, the CLI contract."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import fastgan
from fastgan.sweep import SweepError, execute, missing, parse_spec, plan

BASE = {"generator": {"n_particles": 12}, "discriminator": {"width": 16},
        "training": {"n_iterations": 60, "seed": 3}, "record": {"every": 20, "snapshots": 0,
                                                               "discriminator": False}}


def _spec(**kw):
    s = {"name": "t", "replicates": 2, "base": BASE, "max_ensemble": 64,
         "axes": [{"key": "coupling.ratio", "values": [0.0, 0.2]},
                  {"key": "training.n_disc", "values": [1, 3]}]}
    s.update(kw)
    return {"sweep": s}


def test_axes_generators_zip_and_replicate_seeds():
    sw = parse_spec(_spec(axes=[{"key": "coupling.ratio", "logspace": [-2, 0, 3]},
                                {"key": "training.n_disc", "int_logspace": [1, 100, 6]},
                                {"key": "training.lr_gen", "geomspace": [0.01, 0.04, 3], "zip": "g"},
                                {"key": "training.lr_disc", "linspace": [0.1, 0.3, 3], "zip": "g"}]))
    np.testing.assert_allclose(sw.coords["coupling.ratio"], [0.01, 0.1, 1.0])
    assert sw.coords["training.n_disc"] == (1, 3, 6, 16, 40, 100)
    assert sw.dims == ["coupling.ratio", "training.n_disc", "training.lr_gen"]
    assert sw.extra_coords["training.lr_disc"][0] == "training.lr_gen"
    assert sw.shape == (3, 6, 3, 2) and len(sw.runs) == 3 * 6 * 3 * 2
    r = sw.runs[-1]
    assert (r.config.training.lr_gen, r.config.training.lr_disc) == pytest.approx((0.04, 0.3))
    assert {x.config.training.seed for x in sw.runs} == {3, 4}                   # base seed + replicate
    again = parse_spec({"sweep": json.loads(sw.spec_json())})                    # the stored spec round-trips
    assert again.spec_json() == sw.spec_json() and [r.run_id for r in again.runs] == [r.run_id for r in sw.runs]


@pytest.mark.parametrize("spec,needle", [
    (_spec(colour="red"), "sweep.colour"),
    (_spec(replicates=0), "sweep.replicates"),
    (_spec(axes=[{"key": "coupling.ratio", "values": []}]), "sweep.axes[0].values"),
    (_spec(axes=[{"key": "coupling.ratio", "linspace": [0, 1, 0]}]), "sweep.axes[0].linspace"),
    (_spec(axes=[{"key": "coupling.ratio", "values": [0.1, 2.0]}]), "coupling.ratio = 2.0"),
    (_spec(axes=[{"key": "training.n_dsc", "values": [1]}]), "training.n_dsc"),
    (_spec(axes=[{"key": "coupling.ratio"}]), "sweep.axes[0]"),
    (_spec(axes=[{"key": "coupling.ratio", "values": [0.1], "zip": "a"},
                 {"key": "training.n_disc", "values": [1, 2], "zip": "a"}]), "different lengths"),
    (_spec(axes=[]), "sweep.axes"),
])
def test_bad_specs_name_the_problem(spec, needle):
    with pytest.raises(SweepError, match=None) as exc:
        parse_spec(spec)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def _spec_toml(spec):
    """TOML text of a [sweep] table (scalars, lists, the base and refine tables, the axes array)."""
    lines = ["[sweep]"] + [f"{k} = {json.dumps(v)}" for k, v in spec.items() if k not in ("axes", "base", "refine")]
    if "refine" in spec:
        lines += ["[sweep.refine]"] + [f"{k} = {json.dumps(v)}" for k, v in spec["refine"].items()]
    lines += ["[sweep.base]"]
    for sec, vals in spec["base"].items():
        lines += [f"[sweep.base.{sec}]"] + [f"{k} = {json.dumps(v)}" for k, v in vals.items()]
    for ax in spec["axes"]:
        lines += ["[[sweep.axes]]"] + [f"{k} = {json.dumps(v)}" for k, v in ax.items()]
    return "\n".join(lines) + "\n"


def _write_spec(tmp_path, filename="spec.toml", **kw):
    path = tmp_path / filename
    path.write_text(_spec_toml(_spec(**kw)["sweep"]))
    return path


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "fastgan", *map(str, args)], capture_output=True, text=True, **kw)


def test_cli_errors_leave_the_folder_untouched(tmp_path):
    spec = _write_spec(tmp_path)
    out = tmp_path / "out"
    assert _cli("sweep", spec, "--out", out, "--backend", "numpy", "--quiet").returncode == 0
    before = {p: os.path.getmtime(os.path.join(dp, p)) for dp, _, fs in os.walk(out) for p in fs}
    other = _write_spec(tmp_path, "other.toml", name="another")
    proc = _cli("sweep", other, "--out", out, "--backend", "numpy")
    assert proc.returncode == 2 and "holds a different sweep" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    bad = _write_spec(tmp_path, "bad.toml", replicates=-1)
    proc = _cli("sweep", bad, "--out", tmp_path / "new")
    assert proc.returncode == 2 and "sweep.replicates" in proc.stderr and not (tmp_path / "new").exists()
    after = {p: os.path.getmtime(os.path.join(dp, p)) for dp, _, fs in os.walk(out) for p in fs}
    assert before == after
    st = _cli("status", out)
    assert st.returncode == 0 and "8/8 runs complete" in st.stdout


def _arrays(ds):
    return {k: ds[k].values for k in ds.data_vars}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_array_equal(a[k], b[k])        # NaN == NaN here, bitwise otherwise
        else:
            assert np.array_equal(a[k], b[k]), k


def test_results_do_not_depend_on_packing_and_extension_computes_only_new_runs(tmp_path):
    sw = parse_spec(_spec())
    full = execute(sw, str(tmp_path / "a"), backend="numba", progress=False)
    assert full["runs_computed"] == 8 and full["ensembles"] == 1
    one = parse_spec(_spec(max_ensemble=1))
    assert len(plan(one.runs, 1)) == 8
    execute(one, str(tmp_path / "b"), backend="numba", progress=False)
    _same(_arrays(fastgan.open_sweep(str(tmp_path / "a"))), _arrays(fastgan.open_sweep(str(tmp_path / "b"))))
    # extend the ratio axis: only its new runs are computed, the old ones are untouched
    ext = parse_spec(_spec(axes=[{"key": "coupling.ratio", "values": [0.0, 0.2, 0.4]},
                                 {"key": "training.n_disc", "values": [1, 3]}]))
    again = execute(ext, str(tmp_path / "a"), backend="numba", progress=False)
    assert again["runs_computed"] == 4
    ds = fastgan.open_sweep(str(tmp_path / "a"))
    assert ds.sizes["g2_over_g1"] == 3 and bool(ds["complete"].all())
    old = fastgan.open_sweep(str(tmp_path / "b"))
    np.testing.assert_array_equal(ds["mode_collapse"].sel(g2_over_g1=[0.0, 0.2]).values,
                                  old["mode_collapse"].values)
    with xr.open_dataset(tmp_path / "a" / "sweep.h5", engine="h5netcdf") as raw:
        assert list(raw["mode_collapse"].dims) == ["g2_over_g1", "n_disc", "replicate", "time"]
    assert missing(ext, set(ds["run_id"].values.ravel())) == []


def test_diverged_runs_are_recorded_and_do_not_stop_the_sweep(tmp_path):
    sw = parse_spec(_spec(axes=[{"key": "training.lr_gen", "values": [0.01, 1e6]}], replicates=1))
    execute(sw, str(tmp_path / "d"), backend="numpy", progress=False)
    ds = fastgan.open_sweep(str(tmp_path / "d"))
    assert ds["diverged"].values.ravel().tolist() == [False, True]
    assert ds["diverged_at"].values.ravel()[1] > 0 and bool(ds["complete"].all())


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sigkill_at_random_moments_then_resume_is_bitwise_identical(tmp_path, backend):
    """Six SIGKILLs, each at a random moment shortly after the sweep stored a new part (so that every
    kill lands mid-sweep, in compute, in a write or in consolidation), then a resume: the consolidated
    data are bitwise those of an uninterrupted sweep, the output opens after every kill, and no
    complete part is ever rewritten."""
    base = json.loads(json.dumps(BASE))
    if backend == "numpy":
        base["training"]["n_iterations"] = 1500             # ~0.15 s per run
    else:
        base["generator"]["n_particles"], base["discriminator"]["width"] = 200, 2048
        base["training"]["n_iterations"] = 600
    spec = _write_spec(tmp_path, max_ensemble=1, replicates=3, base=base,
                       axes=[{"key": "coupling.ratio", "values": [0.0, 0.1, 0.2]},
                             {"key": "training.n_disc", "values": [1, 2]}])
    ref_dir, out = tmp_path / "ref", tmp_path / "out"
    assert _cli("sweep", spec, "--out", ref_dir, "--backend", backend, "--quiet").returncode == 0
    ref = _arrays(fastgan.open_sweep(str(ref_dir)))
    rng = np.random.default_rng(0)
    seen = {}                                     # complete part -> mtime: never rewritten
    parts = out / "parts"
    kills = 0
    while kills < 6:
        before = len(list(parts.glob("*.h5"))) if parts.exists() else 0
        proc = subprocess.Popen([sys.executable, "-m", "fastgan", "sweep", str(spec), "--out", str(out),
                                 "--backend", backend, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < 120:
            if parts.exists() and len(list(parts.glob("*.h5"))) > before:
                break
            time.sleep(0.01)
        if proc.poll() is not None:               # finished before a kill: the sweep is complete
            break
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        ds = fastgan.open_sweep(str(out))         # the output opens after every kill
        assert ds.sizes["replicate"] == 3
        for p in parts.glob("*.h5"):
            m = os.path.getmtime(p)
            assert seen.setdefault(p.name, m) == m
    assert kills >= 5, kills
    assert _cli("sweep", spec, "--out", out, "--backend", backend, "--quiet").returncode == 0
    for p in parts.glob("*.h5"):
        if p.name in seen:
            assert os.path.getmtime(p) == seen[p.name]
    _same(ref, _arrays(fastgan.open_sweep(str(out))))
    assert not list(out.glob(".tmp-*")) and not list(parts.glob(".tmp-*"))


@pytest.mark.slow
def test_phase_diagram_plot_and_boundary_fit(tmp_path):
    """A synthetic sweep dataset with a known power-law boundary ratio_c(n) = 0.01 n^1.5: the plot's
    boundary analysis recovers it and picks the power law, fitted as n_disc against the crossing (n ∝
    ratio^(1/1.5), the orientation of the paper's laws); the CLI draws a sweep folder."""
    from fastgan.sweep_plots import boundary, plot_sweep
    ratios = np.geomspace(1e-3, 1.0, 40)
    nd = np.array([1, 2, 4, 8, 16])
    times = np.arange(0, 301, 20)
    crit = 0.01 * nd ** 1.5
    mc = 2.0 / (1 + (crit[None, :] / ratios[:, None]) ** 8)              # rises through log(8)/2 near crit
    data = np.broadcast_to(mc[:, :, None, None], (40, 5, 2, len(times))).copy()
    dims = ["coupling.ratio", "training.n_disc", "replicate"]
    spec = json.dumps({"base": {}, "name": "syn"})
    ds = xr.Dataset({"mode_collapse": (dims + ["time"], data), "diverged": (dims, np.zeros((40, 5, 2), bool))},
                    coords={"coupling.ratio": ratios, "training.n_disc": nd, "replicate": [0, 1], "time": times},
                    attrs={"spec": spec, "runs_total": 400, "runs_complete": 400, "sweep_name": "syn"})
    pb, fits = boundary(ds, 8)
    thr = np.log(8) / 2
    want = crit * (2.0 / thr - 1) ** (1 / 8)                              # where mc = thr exactly
    np.testing.assert_allclose(pb.boundary, want, rtol=0.03)          # log-linear interpolation on 40 points
    assert fits.best == "power" and fits.power.slope == pytest.approx(1 / 1.5, rel=0.05)
    assert plot_sweep(ds, str(tmp_path / "p.png")) and (tmp_path / "p.png").stat().st_size > 1000
    spec_path = _write_spec(tmp_path)
    out = tmp_path / "o"
    assert _cli("sweep", spec_path, "--out", out, "--backend", "numpy", "--quiet").returncode == 0
    proc = _cli("plot", out)
    assert proc.returncode == 0 and (out / "phase.png").exists()


def _still_particles_spec(name, generator, tol, axes):
    """A refine spec on particles that never move (lr_gen = 0): nearest-mode distance against init_std."""
    base = {"generator": generator, "discriminator": {"width": 8},
            "training": {"n_iterations": 2, "lr_gen": 0.0, "seed": 5},
            "record": {"every": 1, "snapshots": 0, "discriminator": False}}
    return {"sweep": {"name": name, "base": base, "observables": ["nearest_mode_distance"],
                      "refine": {"axis": "generator.init_std", "metric": "nearest_mode_distance",
                                 "threshold": 0.1, "tol": tol}, "axes": axes}}


def test_refine_bisects_to_the_boundary_with_few_runs(tmp_path):
    """--refine on a metric known in closed form: particles that do not move (lr_gen = 0) started at
    the 45-degree mode with spread s have mean nearest-mode distance s E|z| (small s), so the
    boundary of 'distance = 0.1' along s is 0.1 / mean|z|; bisection finds it to the tolerance."""
    spec = _still_particles_spec("r", {"n_particles": 50}, 0.01,
                                 [{"key": "generator.init_std", "geomspace": [0.01, 0.5, 40]},
                                  {"key": "training.n_disc", "values": [1, 2]}])
    from fastgan.sweep import refine
    doc = refine(parse_spec(spec), str(tmp_path / "r"), backend="numpy", progress=False)
    unit = fastgan.default_config(**{"generator.n_particles": 50, "discriminator.width": 8, "generator.init_std": 1e-3,
                                     "training.n_iterations": 1, "training.lr_gen": 0.0, "training.seed": 5,
                                     "record.snapshots": 0, "record.discriminator": False})
    mean_abs_z = fastgan.simulate(unit, backend="numpy").observables["nearest_mode_distance"][0] / 1e-3
    want = 0.1 / mean_abs_z
    assert len(doc["lines"]) == 2 and all(ln["converged"] for ln in doc["lines"])
    for ln in doc["lines"]:
        lo, hi = ln["bracket"]
        assert lo <= want * 1.001 and hi >= want * 0.999 and hi / lo - 1 <= 0.01
        assert ln["boundary"] == pytest.approx(want, rel=0.01)
    assert doc["runs"] <= 2 * 12 < doc["grid_runs"]                          # far fewer than the 80-run grid
    again = refine(parse_spec(spec), str(tmp_path / "r"), backend="numpy", progress=False)
    assert again["runs_computed"] == 0 and again["lines"][0]["boundary"] == doc["lines"][0]["boundary"]
    assert json.loads((tmp_path / "r" / "boundary.json").read_text())["axis"] == "generator.init_std"


def test_refine_reports_lines_without_a_boundary(tmp_path):
    """A line whose metric is above the threshold over the whole range (particles at the 45-degree
    point of a 3-mode ring are ~1.5 from every mode) is reported as such, in boundary.json and on the
    command line, while the 8-mode line is bisected as usual."""
    spec = _still_particles_spec("u", {"n_particles": 20, "init_mean": [1.4142135623730951, 1.4142135623730951]},
                                 0.05, [{"key": "generator.init_std", "geomspace": [0.01, 0.5, 8]},
                                        {"key": "target.n_modes", "values": [8, 3]}])
    from fastgan.sweep import refine
    doc = refine(parse_spec(spec), str(tmp_path / "u"), backend="numpy", progress=False)
    by = {ln["coords"]["target.n_modes"]: ln for ln in doc["lines"]}
    assert by[8]["status"] == "bracketed" and by[8]["converged"] and 0.01 < by[8]["boundary"] < 0.5
    assert by[3]["status"] == "above" and by[3]["boundary"] is None and len(by[3]["points"]) == 2
    stored = json.loads((tmp_path / "u" / "boundary.json").read_text())
    assert stored["lines"] == json.loads(json.dumps(doc["lines"])) and stored["range"] == [0.01, 0.5]
    path = tmp_path / "u.toml"
    path.write_text(_spec_toml(spec["sweep"]))
    proc = _cli("sweep", path, "--out", tmp_path / "u", "--backend", "numpy", "--refine")
    assert proc.returncode == 0, proc.stderr
    assert "target.n_modes = 3: no boundary in generator.init_std = [0.01, 0.5]: nearest_mode_distance >= 0.1 " \
           "already at the low end" in proc.stdout
    assert "target.n_modes = 8: generator.init_std boundary" in proc.stdout and "0 computed now" in proc.stdout


def test_snapshots_are_kept_on_request(tmp_path):
    base = json.loads(json.dumps(BASE))
    base["record"]["snapshots"] = 3
    sw = parse_spec(_spec(base=base, snapshots=True))
    execute(sw, str(tmp_path / "s"), backend="numpy", progress=False)
    ds = fastgan.open_sweep(str(tmp_path / "s"))
    assert ds["particles"].dims == ("g2_over_g1", "n_disc", "replicate", "snapshot", "particle", "coord")
    assert ds["particles"].shape == (2, 2, 2, 3, 12, 2) and ds["snapshot"].values.tolist() == [0, 30, 60]
    one = fastgan.simulate(sw.runs[5].config, backend="numpy")
    r = sw.runs[5]
    np.testing.assert_array_equal(ds["particles"].values[r.index + (r.replicate,)], one.particles)
    with pytest.raises(SweepError, match="generator.n_particles"):
        parse_spec(_spec(snapshots=True, axes=[{"key": "generator.n_particles", "values": [10, 20]}]))
