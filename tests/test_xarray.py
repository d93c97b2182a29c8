"""xarray-native results: run files readable by xarray (netCDF-4 view), ``open_run`` equal to the in-memory
Dataset, sweep dimensions with short names and CF attributes, old files still read, analysis on DataArrays."""

import json
import os
import warnings

import h5py
import numpy as np
import pytest
import xarray as xr

import fastgan
from fastgan import analysis, h5io, store
from fastgan.sweep import execute, parse_spec
from fastgan.xr import annotate_sweep, dim_names, dim_of, run_dataset

TINY = {"precision": "float64", "generator.n_particles": 8, "discriminator.width": 8,
        "training.n_iterations": 10, "record.every": 5, "record.snapshots": 3}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny float64 run and its file (the current layout)."""
    result = fastgan.simulate(fastgan.default_config(**TINY), backend="numpy")
    path = str(tmp_path_factory.mktemp("run") / "r.h5")
    store.write_run(path, result)
    return result, path


def _bare(ds):
    """The Dataset without its own attributes (its variables keep theirs)."""
    ds = ds.copy()
    ds.attrs = {}
    return ds


def _described(ds):
    for v in ds.variables:
        a = ds[v].attrs
        assert a.get("long_name") and a.get("description"), v


def test_a_run_file_opens_in_xarray_with_its_observables_on_named_dimensions(run):
    result, path = run
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no phony dimensions, no decoding surprises
        with xr.open_dataset(path) as raw:
            raw = raw.load()
    assert raw["mode_collapse"].dims == ("time",) and raw["mode_collapse"].attrs["units"] == "nats"
    assert raw["mode_collapse"].attrs["long_name"] == "mode collapse"
    np.testing.assert_array_equal(raw["time"].values, result.time)
    for k, v in result.observables.items():
        np.testing.assert_array_equal(raw[k].values, v)
    assert raw["particles"].dims == ("snapshot", "particle", "coord")
    np.testing.assert_array_equal(raw["particles"].values, result.particles)
    np.testing.assert_array_equal(raw["snapshot"].values, result.particles_time)
    assert raw["nearest_mode_histogram"].dims == ("time", "mode") and raw["modes"].dims == ("mode", "coord")
    np.testing.assert_array_equal(raw["nearest_mode_histogram"].values, result.histograms["nearest_mode"])
    assert raw.attrs["run_id"] == result.config.run_id and raw.attrs["format_version"] == 2
    _described(raw)
    # the groups of the contract are unchanged and read_run verifies the checksum over the new names too
    back = store.read_run(path)
    for k, v in result.observables.items():
        np.testing.assert_array_equal(back["observables"][k], v)
    with h5py.File(path, "r") as f:
        assert f["observables/mode_collapse"].shape == (3,) and f["mode_collapse"] == f["observables/mode_collapse"]


def test_open_run_equals_the_in_memory_dataset(run):
    result, path = run
    mem, disk = run_dataset(result), fastgan.open_run(path)
    xr.testing.assert_identical(_bare(mem), _bare(disk))                                   # variables and their attrs
    assert {k: disk.attrs.get(k) for k in mem.attrs} == mem.attrs                          # the file adds provenance
    assert {"git_commit", "created", "fastgan_version"} <= set(disk.attrs) and "checksum" not in disk.attrs
    if hasattr(result, "to_xarray"):
        xr.testing.assert_identical(result.to_xarray(), mem)
    assert disk.sel(time=5)["mode_collapse"].item() == result.observables["mode_collapse"][1]
    _described(mem)
    back = xr.open_dataset(mem.to_netcdf(engine="h5netcdf"), engine="h5netcdf")   # a Dataset netCDF takes
    xr.testing.assert_equal(back, mem)


def test_a_version_1_run_file_reads_and_opens_the_same(run, tmp_path, monkeypatch):
    result, path = run
    monkeypatch.setattr(store, "netcdf_view", lambda f: None)
    monkeypatch.setattr(store, "FORMAT_VERSION", 1)
    old = str(tmp_path / "old.h5")
    store.write_run(old, result)
    with h5py.File(old, "r") as f:
        assert "mode_collapse" not in f and "checksum" in f.attrs
    a, b = store.read_run(old), store.read_run(path)
    for k in ("time", "particles", "particles_time", "modes"):
        np.testing.assert_array_equal(a[k], b[k])
    xr.testing.assert_identical(_bare(fastgan.open_run(old)), _bare(fastgan.open_run(path)))


def test_the_checksum_covers_the_root_names_and_their_attributes(run, tmp_path):
    _, path = run
    for edit in (lambda f: f["mode_collapse"].__setitem__(0, 0.5),               # the data behind both names
                 lambda f: f["mode_collapse"].attrs.__setitem__("units", "bits"),
                 lambda f: f["particles"].dims[0].detach_scale(f["snapshot"])):
        bad = tmp_path / "bad.h5"
        bad.write_bytes(h5io.unseal(open(path, "rb").read()))               # unsealed: the checksum decides
        store.read_run(str(bad))
        with h5py.File(bad, "r+") as f:
            edit(f)
        with pytest.raises(fastgan.FastganError, match="checksum mismatch"):
            store.read_run(str(bad))


def test_dimension_names_are_short_unique_and_never_fastgan_s_own():
    assert dim_names(["coupling.ratio", "training.n_disc"]) == {"coupling.ratio": "g2_over_g1",
                                                               "training.n_disc": "n_disc"}
    got = dim_names(["discriminator.bandwidth", "kde.bandwidth", "record.time", "x.mode_collapse", "a.b-c"],
                    reserved={"mode_collapse"})
    assert got == {"discriminator.bandwidth": "discriminator_bandwidth", "kde.bandwidth": "kde_bandwidth",
                   "record.time": "record_time", "x.mode_collapse": "x_mode_collapse", "a.b-c": "b_c"}
    assert dim_names(["a.b_c", "a_b.c", "a.b.c"]) == {"a.b_c": "b_c", "a_b.c": "a_b_c", "a.b.c": "a_b_c_2"}


BASE = {"precision": "float64", "generator": {"n_particles": 8}, "discriminator": {"width": 8},
        "training": {"n_iterations": 10, "seed": 3}, "record": {"every": 5, "snapshots": 0, "discriminator": False}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    spec = {"sweep": {"name": "x", "replicates": 1, "base": BASE, "axes": [
        {"key": "coupling.ratio", "values": [0.0, 0.2]},
        {"key": "training.n_disc", "values": [1, 3]},
        {"key": "training.lr_disc", "values": [0.1, 0.2], "zip": "lr"},
        {"key": "training.lr_gen", "values": [0.05, 0.1], "zip": "lr"}]}}
    out = str(tmp_path_factory.mktemp("sweep") / "s")
    execute(parse_spec(spec), out, backend="numpy", progress=False)
    return out


def test_sweep_dimensions_have_short_names_config_keys_and_attributes(sweep):
    ds = fastgan.open_sweep(sweep)
    assert ds["mode_collapse"].dims == ("g2_over_g1", "n_disc", "lr_disc", "replicate", "time")
    assert ds["n_disc"].attrs["config_key"] == "training.n_disc" and ds["n_disc"].attrs["units"] == "1"
    assert ds["lr_gen"].dims == ("lr_disc",) and ds["lr_gen"].attrs["config_key"] == "training.lr_gen"
    assert ds["g2_over_g1"].attrs["long_name"] == "NTK coupling ratio g2/g1"
    assert dim_of(ds, "coupling.ratio") == "g2_over_g1" and dim_of(ds, "lr_disc") == "lr_disc"
    assert ds.sel(n_disc=3, g2_over_g1=0.2)["mode_collapse"].dims == ("lr_disc", "replicate", "time")
    assert ds["mode_collapse"].attrs["units"] == "nats" and bool(ds["complete"].all())
    _described(ds)
    with xr.open_dataset(os.path.join(sweep, "sweep.h5")) as raw:   # the file itself
        assert raw["mode_collapse"].dims == ds["mode_collapse"].dims
        assert raw["n_disc"].attrs["config_key"] == "training.n_disc"
    assert "g2_over_g1 (2) x n_disc (2) x lr_disc (2) x replicate (1)" in fastgan.sweep_store.status(sweep)


def test_a_consolidated_file_of_the_previous_version_is_renamed_on_reading(sweep, tmp_path):
    import shutil
    out = str(tmp_path / "old")
    shutil.copytree(sweep, out)
    ds = fastgan.open_sweep(out)
    keys = {n: ds[n].attrs["config_key"] for n in ("g2_over_g1", "n_disc", "lr_disc", "lr_gen")}
    old = ds.rename(keys)                                    # dims named by config keys, no attributes
    for v in old.variables:
        old[v].attrs = {}
    old.attrs["written_by"] = "the previous version"
    path = os.path.join(out, "sweep.h5")
    h5io.atomic_bytes(path, h5io.seal(bytes(old.to_netcdf(engine="h5netcdf"))))
    later = os.path.getmtime(path) + 5
    os.utime(path, (later, later))
    with xr.open_dataset(path, engine="h5netcdf") as raw:
        assert "training.n_disc" in raw.dims
    again = fastgan.open_sweep(out)
    assert again.attrs["written_by"] == "the previous version"            # read, not rebuilt from the parts
    xr.testing.assert_identical(_bare(again), _bare(ds))
    assert annotate_sweep(again, list(keys.values())).identical(again)    # idempotent


def test_analysis_takes_dataarrays():
    ratio, nd = np.array([0.01, 0.02, 0.05, 0.1, 0.2]), np.array([1.0, 2.0, 4.0])
    b = 0.03 * nd                                            # the boundary grows linearly with n_disc
    metric = np.log(8) * 0.5 * (1 + np.tanh((np.log(ratio)[:, None] - np.log(b)[None, :]) / 0.4))
    da = xr.DataArray(metric, dims=["g2_over_g1", "n_disc"],
                      coords={"g2_over_g1": ratio, "n_disc": ("n_disc", nd, {"config_key": "training.n_disc"})})
    thr = analysis.default_threshold(8)
    ref = analysis.phase_boundary(metric, {"r": ratio, "n": nd}, along="r", threshold=thr, log_along=True)
    pb = analysis.phase_boundary(da, along="g2_over_g1", threshold=thr, log_along=True)
    np.testing.assert_array_equal(pb.boundary, ref.boundary)
    assert (pb.along, pb.other) == ("g2_over_g1", "n_disc")
    other = analysis.phase_boundary(da.T, "training.n_disc", thr)          # by config key, any order
    np.testing.assert_array_equal(other.boundary, analysis.phase_boundary(metric.T, {"n": nd, "r": ratio}, "n",
                                                                          thr).boundary)
    line = pb.to_dataarray()
    assert line.dims == ("n_disc",) and line.name == "g2_over_g1_boundary"
    ok = line.where(line["bracketed"], drop=True)
    assert analysis.fit_power_law(ok).slope == analysis.fit_power_law(ok["n_disc"].values, ok.values).slope
    with pytest.raises(ValueError, match="2-D"):
        analysis.phase_boundary(da.expand_dims(replicate=2), along="n_disc", threshold=thr)
    with pytest.raises(ValueError, match="not a dimension"):
        analysis.phase_boundary(da, along="lr", threshold=thr)
    # time averages along the time dimension, wherever it stands
    times = np.arange(0, 201, 20)
    values = np.random.default_rng(0).normal(size=(len(times), 2))
    ts = xr.DataArray(values, dims=["time", "x"], coords={"time": times, "x": [1, 2]}, attrs={"units": "nats"})
    avg = analysis.time_average(ts, centre=100, offsets=[-20, 0, 20])
    np.testing.assert_array_equal(avg.values, analysis.time_average(values.T, times, 100, [-20, 0, 20]))
    assert avg.dims == ("x",) and avg.attrs["units"] == "nats" and "cell_methods" in avg.attrs
    xr.testing.assert_equal(analysis.time_average(ts, 100, offsets=[-20, 0, 20]), avg)
    assert float(analysis.time_average(ts.isel(x=0), offsets=[-20, 0]).values) == np.mean(values[-2:, 0])
    with pytest.raises(ValueError, match="times"):
        analysis.time_average(values.T)


def test_a_run_dataset_from_a_read_run_keeps_the_config(run):
    _, path = run
    ds = fastgan.open_run(path)
    assert json.loads(ds.attrs["config"])["generator"]["n_particles"] == 8 and ds.attrs["diverged"] == 0
