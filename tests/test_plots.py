"""Pictures: the fast overlays agree with the NumPy reference ops, the lattice is sized by the work, and
run figures and phase diagrams say what they show (labels, colour bars, threshold, fitted relation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import fastgan
from fastgan import plots, sweep_plots
from fastgan.errors import FastganError
from fastgan.store import read_run, write_run
from fastgan.kernels import fourier_grid, linear_numpy
from fastgan.kernels.mlp_numpy import mlp_forward

RNG = np.random.default_rng(7)


def _resolved(**over):
    return fastgan.default_config(**over).resolved


def _close(fast, ref):
    scale = max([1.0, *np.abs(ref).ravel()])
    np.testing.assert_allclose(fast, ref, rtol=1e-11, atol=1e-12 * scale)


@pytest.fixture
def fast(monkeypatch):
    """Every overlay takes the fast path (numba's ops where numba is there); records the ops used."""
    used = []
    real = plots.overlay_ops

    def spy(work):
        ops = real(1 << 62)
        used.append(ops.name)
        return ops
    monkeypatch.setattr(plots, "overlay_ops", spy)
    return used


# --------------------------------------------------------------------------- overlays against the reference

@pytest.mark.parametrize("act,d,W,n", [("relu", 2, 300, 1001), ("tanh", 2, 37, 5), ("relu", 3, 219, 333),
                                       ("relu", 2, 5, 0)])
def test_the_one_layer_overlay_is_the_reference_forward(act, d, W, n):
    r = _resolved(**{"discriminator.width": W, "discriminator.activation": act})
    params = {"w": RNG.normal(size=(W, d)), "b": 3 * RNG.normal(size=W), "a": RNG.normal(size=W)}
    pts = 2 * RNG.normal(size=(n, d))
    got = r.family.overlay(params, r, pts)
    ref = mlp_forward(params["w"].T[None].copy(), params["b"][None], params["a"][None], pts.T[None], act)[0]
    assert got.shape == (n,)
    _close(got, ref)


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "rq"])
def test_the_kernel_overlay_drops_empty_slots_and_matches_the_reference(kernel, fast):
    r = _resolved(**{"discriminator.kind": "kernel", "target.kind": "circle", "discriminator.kernel": kernel,
                     "discriminator.bandwidth": 0.7, "discriminator.rq_alpha": 1.5 if kernel == "rq" else 1.0,
                     "discriminator.history": 4})
    C = 131
    weights = RNG.normal(size=C)
    weights[RNG.random(C) < 0.4] = 0.0                     # empty ring-buffer slots
    params = {"centres": RNG.normal(size=(C, 2)), "weights": weights}
    pts = RNG.normal(size=(77, 2))
    got = r.family.overlay(params, r, pts)
    ref = linear_numpy.kernel_sum(pts.T[None], params["centres"].T[None], weights[None],
                                  np.array([[0.7]]), kernel, r.discriminator.rq_alpha)[0]
    _close(got, ref)
    assert fast and set(fast) <= {"numba", "numpy"}
    zero = r.family.overlay({"centres": params["centres"], "weights": np.zeros(C)}, r, pts)
    assert np.all(zero == 0)                             # f^0 = 0: no centre left to sum


def test_the_trigonometric_overlays_match_the_reference(fast):
    r = _resolved(**{"discriminator.kind": "rff", "target.kind": "circle", "discriminator.n_features": 34})
    L = 67
    params = {"theta": RNG.normal(size=L), "omega": 2 * RNG.normal(size=(L, 2)),
              "phase": RNG.uniform(0, 6.3, L), "amp": np.full(L, 0.3)}
    pts = RNG.normal(size=(53, 2))
    ref = linear_numpy.trig_forward(params["theta"][None], params["omega"].T[None], params["phase"][None],
                                    params["amp"][None], pts.T[None])[0]
    _close(r.family.overlay(params, r, pts), ref)
    rf = _resolved(**{"discriminator.kind": "fourier", "discriminator.freq_count": 5})
    K = 10
    grid = {"w1": RNG.normal(size=(K, K)), "w2": RNG.normal(size=(K, K)), "axis": np.geomspace(0.1, 3, K)}
    ref = fourier_grid.fourier_grid_forward(grid["w1"][None], grid["w2"][None], grid["axis"][None],
                                            grid["axis"][None], pts.T[None])[0]
    _close(rf.family.overlay(grid, rf, pts), ref)
    assert len(fast) == 2


@pytest.mark.parametrize("density", ["kde", "exact"])
def test_the_kde_overlay_matches_the_reference(density, fast):
    from fastgan.families.kde_maths import kde_dstar
    r = _resolved(**{"discriminator.kind": "kde", "discriminator.bandwidth": [0.3, 0.9],
                     "discriminator.data_density": density, "discriminator.model": "nsgan"})
    params = {"bandwidth": np.array([0.3, 0.9]), "data": RNG.normal(size=(41, 2)),
              "data_log_weights": np.full(41, -np.log(41))}
    particles, pts = RNG.normal(size=(29, 2)), RNG.normal(size=(67, 2))
    ref = kde_dstar(r, params, particles, pts.T[None])[0]                   # the NumPy reference ops
    _close(r.family.overlay(params, r, pts, particles), ref)
    assert fast


def test_small_overlays_stay_on_the_reference_and_large_ones_use_numba(monkeypatch):
    assert plots.overlay_ops(10).name == "numpy"
    from fastgan.backend import probe
    big = plots.overlay_ops(plots.FAST_WORK)
    assert big.name == ("numba" if probe("numba").ok else "numpy")
    monkeypatch.setenv("FASTGAN_BACKEND", "numpy")
    assert plots.overlay_ops(plots.FAST_WORK).name == "numpy"


def test_the_lattice_shrinks_with_the_work_within_its_bounds():
    lo, hi = plots.GRID
    assert plots.overlay_grid(10, 6) == hi                       # a small discriminator: the finest lattice
    assert plots.overlay_grid(4 * 2048 + 400, 6) <= hi          # the paper's width-2048 network
    assert plots.overlay_grid(10 ** 6, 6) == lo                  # a huge kernel history: the coarsest
    assert plots.overlay_grid(10 ** 6, 6, grid=33) == 33         # an explicit side wins
    sides = [plots.overlay_grid(8192, p) for p in (1, 6, 60)]
    assert sides == sorted(sides, reverse=True)


# --------------------------------------------------------------------------- run figures

def _run(tmp_path, snapshots=3, **over):
    cfg = fastgan.default_config(**{"generator.n_particles": 8, "discriminator.width": 16, "training.n_iterations": 6,
                                    "record.every": 2, "record.snapshots": snapshots, "precision": "float64",
                                    **over})
    res = fastgan.simulate(cfg, backend="numpy", progress=False)
    path = str(tmp_path / "r.h5")
    write_run(path, res)
    return read_run(path)


@pytest.fixture
def figures(monkeypatch):
    """The figures drawn (plots and phase diagrams), kept after they are written."""
    kept = []
    for mod in (plots, sweep_plots):
        real = mod.atomic_figure

        def grab(path, fig, _real=real, **kw):
            kept.append(fig)
            return _real(path, fig, **kw)
        monkeypatch.setattr(mod, "atomic_figure", grab)
    return kept


def _texts(fig) -> list:
    out = []
    for f in [fig, *fig.subfigs]:
        out += [t.get_text() for t in f.texts]
        if getattr(f, "_suptitle", None) is not None:
            out.append(f._suptitle.get_text())
    for ax in fig.get_axes():
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()] + [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return out


def test_a_run_figure_has_colour_bars_labels_and_no_empty_slots(tmp_path, figures):
    run = _run(tmp_path)
    out = plots.plot_run(run, str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").stat().st_size > 1000 and out.endswith("r.png")
    fig = figures[-1]
    axes = fig.get_axes()
    bars = [ax for ax in axes if ax.get_label() == "<colorbar>"]
    maps = [ax for ax in axes if ax.images]
    curves = [ax for ax in axes if ax.lines]
    assert len(maps) == len(bars) == 3                      # one colour bar per heat-map
    assert len(curves) == 3 and len(axes) == len(maps) + len(bars) + len(curves)   # nothing empty
    assert all(b.get_xlabel() == "$D(x)$" for b in bars)
    texts = _texts(fig)
    assert "½ log K" in texts and "mode collapse (nats)" in texts and "iteration" in texts
    assert maps[0].images[0].get_array().shape[0] == plots.GRID[1]   # a 16-wide network: the finest lattice


def test_a_run_figure_draws_the_chosen_metrics_on_a_log_scale(tmp_path, figures):
    run = _run(tmp_path)
    plots.plot_run(run, str(tmp_path / "r.png"), metric="nearest_mode_distance", log=True, grid=12)
    fig = figures[-1]
    curves = [ax for ax in fig.get_axes() if ax.lines]
    assert len(curves) == 1 and curves[0].get_yscale() in ("log", "symlog")
    assert [ax for ax in fig.get_axes() if ax.images][0].images[0].get_array().shape == (12, 12)
    with pytest.raises(FastganError, match="w2: not recorded"):
        plots.plot_run(run, str(tmp_path / "s.png"), metric=["w2"])


def test_each_family_says_what_its_heat_map_shows():
    from fastgan import families
    shows = {k: plots.overlay_label(families.get(k)) for k in ("mlp", "fourier", "rff", "kernel", "kde")}
    assert shows == {"mlp": "$D(x)$", "fourier": "$D(x)$", "rff": "witness $f(x)$", "kernel": "witness $f(x)$",
                     "kde": r"$d^*(x)$"}


def test_gif_frames_use_the_automatic_lattice(tmp_path):
    from fastgan import animate
    run = _run(tmp_path, 4)
    fr = animate.run_frames(run)
    assert fr.values.shape == (4, plots.GRID[1], plots.GRID[1])
    ref = plots.disc_values({k: v[-1] for k, v in run["discriminator_snapshots"].items()}, run["config"],
                            plots.lattice(fr.extent, plots.GRID[1]), run["particles"][-1])
    _close(fr.values[-1].ravel(), ref)


# --------------------------------------------------------------------------- phase diagrams

def _sweep(short_names: bool, replicates=(1.0, 1.0), nd=(1, 2, 4, 8, 16)):
    """A synthetic sweep whose mode-collapse boundary is ratio_c(n) = 0.01 n^1.5 (replicate k scaled by
    replicates[k]); dims named by config key, or by short name with the key as an attribute."""
    ratios = np.geomspace(1e-3, 1.0, 24)
    nd = np.asarray(nd)
    times = np.arange(0, 301, 20)
    crit = 0.01 * nd ** 1.5
    mc = 2.0 / (1 + (crit[None, :] / ratios[:, None]) ** 8)
    data = np.stack([mc * s for s in replicates], -1)[..., None] * np.ones(len(times))
    a, b = ("g2_over_g1", "n_disc") if short_names else ("coupling.ratio", "training.n_disc")
    dims = [a, b, "replicate"]
    ds = xr.Dataset({"mode_collapse": (dims + ["time"], data),
                     "modes_covered": (dims + ["time"], np.full(data.shape, 4.0)),
                     "diverged": (dims, np.zeros(data.shape[:3], bool))},
                    coords={a: ratios, b: nd, "replicate": np.arange(len(replicates)), "time": times},
                    attrs={"spec": json.dumps({"base": {}, "name": "syn"}), "runs_total": data[..., 0].size,
                           "runs_complete": data[..., 0].size, "sweep_name": "syn"})
    if short_names:
        ds[a].attrs["config_key"] = "coupling.ratio"
        ds[b].attrs["config_key"] = "training.n_disc"
    return ds


@pytest.mark.parametrize("short_names", [False, True])
def test_a_phase_diagram_names_its_axes_threshold_and_fitted_relation(tmp_path, figures, short_names):
    ds = _sweep(short_names)
    sweep_plots.plot_sweep(ds, str(tmp_path / "p.png"), metric="mode_collapse")
    fig = figures[-1]
    ax = [a for a in fig.get_axes() if a.get_label() != "<colorbar>"][0]
    bar = [a for a in fig.get_axes() if a.get_label() == "<colorbar>"][0]
    assert ax.get_xlabel() == r"$n_\mathrm{disc}$" and ax.get_ylabel() == r"$g_2/g_1$"
    assert bar.get_ylabel() == "mode collapse (nats)"
    assert "½ log K" in [t.get_text() for t in bar.get_yticklabels()]
    assert any(abs(line.get_ydata()[0] - np.log(8) / 2) < 1e-12 for line in bar.lines)
    assert not ax.get_legend() and fig.legends                     # the legend is outside the data
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    # n_disc against the crossing (the paper's orientation): ratio_c = 0.01 n^1.5 is n ∝ ratio^(1/1.5)
    assert r"$n_\mathrm{disc} \propto (g_2/g_1)^{0.67}$" in legend and "power fit" in legend


def test_the_fitted_law_reads_as_a_relation():
    from fastgan.analysis import Fit
    p = Fit("power", 0.4876, 0.01, 1.0, 0.1, 0.99, 0.0, 0.0, 5)
    e = Fit("exponential", 0.2151, 0.01, 1.0, 0.1, 0.99, 0.0, 0.0, 5)
    assert sweep_plots.relation(p, r"$n_\mathrm{disc}$", r"$g_2/g_1$") == r"$n_\mathrm{disc} \propto (g_2/g_1)^{0.49}$"
    assert sweep_plots.relation(e, r"$g_2/g_1$", r"$n_\mathrm{disc}$") == \
        r"$g_2/g_1 \propto \exp(0.215\,n_\mathrm{disc})$"
    assert sweep_plots.relation(p, "width", r"$\beta$") == r"$\mathrm{width} \propto \beta^{0.49}$"


def test_replicates_aggregate_as_asked(tmp_path, figures):
    ds = _sweep(False, replicates=(1.0, 0.5, 0.25))
    mean = sweep_plots.averaged(ds, "mode_collapse")
    for how, scale in (("median", 0.5), ("min", 0.25), ("max", 1.0)):
        np.testing.assert_allclose(sweep_plots.averaged(ds, "mode_collapse", how), mean / (1.75 / 3) * scale)
    sweep_plots.plot_sweep(ds, str(tmp_path / "p.png"), aggregate="median", log=True,
                           labels={"training.n_disc": "critic steps"})
    fig = figures[-1]
    ax = [a for a in fig.get_axes() if a.get_label() != "<colorbar>"][0]
    assert ax.get_xlabel() == "critic steps" and "median over 3 replicates" in fig._suptitle.get_text()
    from matplotlib.colors import LogNorm
    assert isinstance(ax.collections[0].norm, LogNorm)
    with pytest.raises(FastganError, match="aggregate"):
        sweep_plots.plot_sweep(ds, str(tmp_path / "q.png"), aggregate="mode")
    with pytest.raises(FastganError, match="w2: not recorded"):
        sweep_plots.plot_sweep(ds, str(tmp_path / "q.png"), metric="w2")


def test_integer_axes_get_few_readable_ticks(tmp_path, figures):
    ds = _sweep(False, nd=np.arange(1, 17))
    sweep_plots.plot_sweep(ds, str(tmp_path / "p.png"), metric=["mode_collapse", "modes_covered"])
    ax = [a for a in figures[-1].get_axes() if a.get_label() != "<colorbar>"][0]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert 2 <= len(ticks) <= sweep_plots.MAX_TICKS and all(float(t).is_integer() for t in ticks)
    assert sweep_plots._log_axis([1, 2, 3, 5, 7, 11, 16]) and not sweep_plots._log_axis([1, 2, 3, 4, 5])


def test_plot_options_on_the_command_line(tmp_path, capsys):
    """--metric/--log/--aggregate/--label reach the pictures; options of the other kind of input are one line."""
    from test_faults import RUN
    from test_faults import _main as run_main
    from test_faults import write_toml
    cfg = write_toml(tmp_path / "c.toml", RUN)
    run = tmp_path / "r.h5"
    assert run_main(capsys, "run", cfg, "--out", run, "--backend", "numpy", "--quiet", "--no-plot")[0] == 0
    code, out, err = run_main(capsys, "plot", run, "--metric", "log_likelihood", "--log", "--grid", "16")
    assert code == 0 and (tmp_path / "r.png").exists(), err
    for bad, needle in ((("--aggregate", "median"), "--aggregate applies to a sweep folder"),
                        (("--label", "n_disc=x"), "--label applies to a sweep folder"),
                        (("--grid", "1"), "--grid = 1"), (("--metric", "nope"), "nope")):
        code, _, err = run_main(capsys, "plot", run, "--force", *bad)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_sweep_plot_options_on_the_command_line(tmp_path, capsys):
    from test_faults import _main as run_main

    from fastgan.sweep import execute, parse_spec
    from tests.test_sweep import _spec
    out = tmp_path / "s"
    execute(parse_spec(_spec()), str(out), backend="numpy", progress=False)
    code, _, err = run_main(capsys, "plot", out, "--metric", "log_likelihood", "--aggregate", "median", "--log",
                            "--label", "n_disc=$n$")
    assert code == 0 and (out / "phase.png").exists(), err
    for bad, needle in ((("--grid", "20"), "--grid applies to a run file"), (("--label", "x"), "expected KEY=TEXT")):
        code, _, err = run_main(capsys, "plot", out, *bad)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
