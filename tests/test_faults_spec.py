"""Bad sweep specs, provoked: each is refused with one line ``fastgan: error: KEY = VALUE: reason`` naming
the key, exit status 2, before any compute and before the output folder exists: never a traceback, a
numpy warning, a hang or minutes of planning. Valid edge cases still plan, the run ids of a fixed spec
stay as they are."""

import hashlib
import re

import pytest

import fastgan
from fastgan.cli import main
from fastgan.config import suggest
from fastgan.runconfig import schema
from fastgan.sweep_spec import ensemble_id, parse_spec, plan

BASE = """
[sweep.base]
backend = "numpy"
[sweep.base.generator]
n_particles = 8
[sweep.base.discriminator]
width = 16
[sweep.base.training]
n_iterations = 10
{seed}
[sweep.base.record]
every = 5
snapshots = 0
discriminator = false
"""
AXES = """
[[sweep.axes]]
key = "coupling.ratio"
values = [0.0, 0.1, 0.2]
[[sweep.axes]]
key = "training.n_disc"
values = [1, 2]
"""


def axis(gen, key="coupling.ratio", extra=""):
    return f'\n[[sweep.axes]]\nkey = "{key}"\n{gen}\n{extra}\n'


def spec(top="", axes=AXES, tables="", seed=""):
    """TOML text of a small sweep: ``top`` lines of [sweep], the axes, then further tables."""
    return f'[sweep]\nname = "t"\nreplicates = 2\n{top}\n' + BASE.format(seed=seed) + axes + tables


MANY_AXES = "".join(axis("values = [1.0, 2.0]", f"training.lr_{k}") for k in ("disc", "gen")) + "".join(
    axis(f"values = [{i}, {i + 1}]", k) for i, k in enumerate(
        ["generator.n_particles", "training.n_disc", "training.n_iterations", "record.every", "discriminator.width",
         "target.n_modes", "coupling.ratio"]))

# id: (spec text, text the error line must contain, extra CLI arguments)
BAD = {
    # generator arguments: count and types, finite, counts integer >= 1 and bounded, float64 range
    "linspace-count-0": (spec(axes=axis("linspace = [0.0, 0.2, 0]")), "sweep.axes[0].linspace", []),
    "linspace-count-float": (spec(axes=axis("linspace = [0.0, 0.2, 3.0]")), "sweep.axes[0].linspace", []),
    "linspace-count-inf": (spec(axes=axis("linspace = [0.0, 0.2, inf]")), "sweep.axes[0].linspace", []),
    "linspace-count-nan": (spec(axes=axis("linspace = [0.0, 0.2, nan]")), "sweep.axes[0].linspace", []),
    "linspace-count-bool": (spec(axes=axis("linspace = [0.0, 0.2, true]")), "sweep.axes[0].linspace", []),
    "linspace-count-huge": (spec(axes=axis("linspace = [0.0, 0.2, 1000000000000]")), "sweep.axes[0].linspace", []),
    "linspace-count-over-limit": (spec(axes=axis("linspace = [0.0, 0.2, 1000001]")), "FASTGAN_ALLOW_HUGE", []),
    "linspace-start-nan": (spec(axes=axis("linspace = [nan, 0.2, 2]")), "sweep.axes[0].linspace", []),
    "linspace-stop-inf": (spec(axes=axis("linspace = [0.0, inf, 2]")), "sweep.axes[0].linspace", []),
    "linspace-span-overflow": (spec(axes=axis("linspace = [-1e308, 1e308, 3]")), "overflows", []),
    "linspace-two-args": (spec(axes=axis("linspace = [0.0, 0.2]")), "sweep.axes[0].linspace", []),
    "linspace-not-list": (spec(axes=axis("linspace = 3")), "sweep.axes[0].linspace", []),
    "linspace-string": (spec(axes=axis('linspace = ["a", 0.2, 2]')), "sweep.axes[0].linspace", []),
    "logspace-overflow": (spec(axes=axis("logspace = [-1, 400, 2]")), "sweep.axes[0].logspace", []),
    "logspace-underflow": (spec(axes=axis("logspace = [-400, 0, 2]")), "sweep.axes[0].logspace", []),
    "geomspace-negative": (spec(axes=axis("geomspace = [-1, 1, 2]")), "sweep.axes[0].geomspace", []),
    "geomspace-zero": (spec(axes=axis("geomspace = [0, 1, 2]")), "sweep.axes[0].geomspace", []),
    "int-logspace-huge": (spec(axes=axis("int_logspace = [1, 1e30, 3]", "training.n_disc")),
                          "sweep.axes[0].int_logspace", []),
    "int-logspace-zero": (spec(axes=axis("int_logspace = [0, 10, 3]", "training.n_disc")),
                          "sweep.axes[0].int_logspace", []),
    "int-logspace-nan": (spec(axes=axis("int_logspace = [1, nan, 3]", "training.n_disc")),
                         "sweep.axes[0].int_logspace", []),
    "two-generators": (spec(axes=axis("values = [0.1]\nlinspace = [0, 1, 2]")), "sweep.axes[0].key", []),
    "no-generator": (spec(axes=axis("")), "sweep.axes[0].key", []),
    "axis-unknown-key": (spec(axes=axis("valuse = [0.1]")), "sweep.axes[0].valuse", []),
    "axis-empty-key": (spec(axes=axis("values = [1]", "")), "sweep.axes[0].key", []),
    "zip-label-int": (spec(axes=axis("values = [0.1]", extra="zip = 3")), "sweep.axes[0].zip", []),
    "values-empty": (spec(axes=axis("values = []")), "sweep.axes[0].values", []),
    "values-not-list": (spec(axes=axis("values = 0.1")), "sweep.axes[0].values", []),
    # duplicates: values on an axis, zipped tuples, axis keys
    "duplicate-values": (spec(axes=axis("values = [0.1, 0.2, 0.1]")), "coupling.ratio = 0.1 appears twice", []),
    "duplicate-int-float": (spec(axes=axis("values = [1, 1.0]", "training.n_disc")),
                            "training.n_disc = 1.0 appears twice", []),
    "duplicate-linspace": (spec(axes=axis("linspace = [0.5, 0.5, 3]")), "coupling.ratio = 0.5 appears twice", []),
    "duplicate-logspace": (spec(axes=axis("logspace = [-1, -1, 2]")), "coupling.ratio = 0.1 appears twice", []),
    "duplicate-zipped": (spec(axes=axis("values = [0.1, 0.1]", extra='zip = "z"')
                              + axis("values = [1, 1]", "training.n_disc", 'zip = "z"')), "sweep.axes[0].zip", []),
    "zip-lengths": (spec(axes=axis("values = [0.1, 0.2]", extra='zip = "z"')
                         + axis("values = [1, 2, 3]", "training.n_disc", 'zip = "z"')), "different lengths", []),
    "duplicate-axis-key": (spec(axes=AXES + axis("values = [0.3]")), "sweep.axes[2].key = 'coupling.ratio'", []),
    # memory_mb, max_ensemble, replicates, the number of runs
    "memory-0": (spec("memory_mb = 0"), "sweep.memory_mb", []),
    "memory-negative": (spec("memory_mb = -5"), "sweep.memory_mb", []),
    "memory-inf": (spec("memory_mb = inf"), "sweep.memory_mb", []),
    "memory-nan": (spec("memory_mb = nan"), "sweep.memory_mb", []),
    "memory-huge": (spec("memory_mb = 1e30"), "sweep.memory_mb", []),
    "memory-string": (spec('memory_mb = "1024"'), "sweep.memory_mb", []),
    "memory-bool": (spec("memory_mb = true"), "sweep.memory_mb", []),
    "max-ensemble-0": (spec("max_ensemble = 0"), "sweep.max_ensemble", []),
    "max-ensemble-float": (spec("max_ensemble = 2.5"), "sweep.max_ensemble", []),
    "max-ensemble-huge": (spec("max_ensemble = 1000000000000"), "sweep.max_ensemble", []),
    "replicates-0": (spec("replicates = 0").replace("replicates = 2\n", ""), "sweep.replicates", []),
    "replicates-negative": (spec("replicates = -3").replace("replicates = 2\n", ""), "sweep.replicates", []),
    "replicates-float": (spec("replicates = 2.5").replace("replicates = 2\n", ""), "sweep.replicates", []),
    "replicates-bool": (spec("replicates = true").replace("replicates = 2\n", ""), "sweep.replicates", []),
    "replicates-huge": (spec("replicates = 10000000000").replace("replicates = 2\n", ""), "sweep.replicates", []),
    "replicates-times-axis": (spec("replicates = 1000", axes=axis("linspace = [0.0, 0.2, 2000]")).replace(
        "replicates = 2\n", ""), "sweep.replicates = 1000", []),
    "axes-product": (spec(axes=MANY_AXES).replace("replicates = 2", "replicates = 10000"),
                     "sweep.replicates = 10000: the grid has 5120000 runs", []),
    "seed-swept-with-replicates": (spec(axes=axis("values = [0, 1]", "training.seed")), "sweep.replicates", []),
    "base-seed-float": (spec(seed="seed = 1.5"), "training.seed = 1.5", []),
    "base-seed-too-large": (spec(seed="seed = 9223372036854775807"), "training.seed", []),
    # the name
    "name-empty": (spec().replace('name = "t"', 'name = ""'), "sweep.name", []),
    "name-blank": (spec().replace('name = "t"', 'name = "   "'), "sweep.name", []),
    "name-nul": (spec().replace('name = "t"', r'name = "a\u0000b"'), "sweep.name", []),
    "name-newline": (spec().replace('name = "t"', r'name = "../../etc\n\u0000x"'), "sweep.name", []),
    "name-long": (spec().replace('name = "t"', f'name = "{"x" * 300}"'), "sweep.name", []),
    "name-int": (spec().replace('name = "t"', "name = 5"), "sweep.name", []),
    # the refine table
    "refine-metric": (spec(tables='[sweep.refine]\naxis = "coupling.ratio"\nmetric = "bogus"\n'),
                      "sweep.refine.metric = 'bogus'", []),
    "refine-metric-refine": (spec(tables='[sweep.refine]\nmetric = "bogus"\n'), "sweep.refine.metric", ["--refine"]),
    "refine-threshold-nan": (spec(tables="[sweep.refine]\nthreshold = nan\n"), "sweep.refine.threshold", []),
    "refine-threshold-inf": (spec(tables="[sweep.refine]\nthreshold = -inf\n"), "sweep.refine.threshold", []),
    "refine-tol-0": (spec(tables="[sweep.refine]\ntol = 0.0\n"), "sweep.refine.tol", []),
    "refine-tol-nan": (spec(tables="[sweep.refine]\ntol = nan\n"), "sweep.refine.tol", []),
    "refine-max-evals-2": (spec(tables="[sweep.refine]\nmax_evals = 2\n"), "sweep.refine.max_evals", []),
    "refine-max-evals-huge": (spec(tables="[sweep.refine]\nmax_evals = 1000000000\n"), "sweep.refine.max_evals",
                              ["--refine"]),
    "refine-axis-unknown": (spec(tables='[sweep.refine]\naxis = "bogus"\n'), "sweep.refine.axis", []),
    "refine-unknown-key": (spec(tables='[sweep.refine]\naxes = "coupling.ratio"\n'), "sweep.refine.axes", []),
    "refine-strings": (spec(axes=AXES + axis('values = ["ring", "grid"]', "target.kind"),
                            tables='[sweep.refine]\naxis = "target.kind"\n'), "sweep.refine.axis", ["--refine"]),
    "refine-one-value": (spec(axes=axis("values = [0.1]") + axis("values = [1, 2]", "training.n_disc"),
                              tables='[sweep.refine]\naxis = "coupling.ratio"\n'), "sweep.refine.axis", ["--refine"]),
    # other keys and tables
    "observables-bogus": (spec('observables = ["bogus"]'), "sweep.observables", []),
    "observables-twice": (spec('observables = ["mode_collapse", "mode_collapse"]'), "sweep.observables", []),
    "unknown-key": (spec("colour = 1"), "sweep.colour", []),
    "base-missing": (spec('base = "nothere.toml"').split("[sweep.base]")[0] + AXES, "sweep.base", []),
    "base-int": (spec("base = 5").split("[sweep.base]")[0] + AXES, "sweep.base", []),
    "no-axes": (spec(axes=""), "sweep.axes", []),
    "window-centre": (spec(tables="[sweep.window]\ncentre = -5\n"), "sweep.window.centre", []),
    "dask-jobqueue": (spec(tables='[sweep.dask]\njobqueue = "bogus"\n'), "sweep.dask.jobqueue", []),
    "base-date": (spec().replace('backend = "numpy"', "precision = 1979-05-27"), "sweep.base.precision", []),
    "unknown-config-key": (spec(axes=axis("values = [1]", "coupling.bogus")), "coupling.bogus", []),
}

ONE_LINE = re.compile(r"^fastgan: error: \S.* = .+: .+$")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``fastgan ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for var in ("FASTGAN_ALLOW_HUGE", "FASTGAN_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FASTGAN_PROGRESS", "0")

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_one_line_naming_the_key(case, cli, tmp_path):
    text, needle, extra = BAD[case]
    path = tmp_path / "spec.toml"
    path.write_text(text)
    code, out, err = cli("sweep", path, "--out", tmp_path / "out", *extra)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and ONE_LINE.match(lines[0]), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in out + err and "Warning" not in err
    assert not (tmp_path / "out").exists()


def test_many_int_logspace_axes_are_bounded_before_planning(cli, tmp_path):
    """Counts that only building tells (int_logspace keeps each integer once) are bounded from below
    first, then exactly, before any run is made."""
    axes = "".join(axis("int_logspace = [1, 1000000, 1000000]", k) for k in
                   ("training.n_disc", "training.n_iterations", "generator.n_particles"))
    path = tmp_path / "spec.toml"
    path.write_text(spec(axes=axes))
    code, _, err = cli("sweep", path, "--out", tmp_path / "out")
    assert code == 2 and "sweep.replicates = 2: the grid has" in err and not (tmp_path / "out").exists()


def test_allow_huge_never_plans_past_memory(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTGAN_ALLOW_HUGE", "1")
    path = tmp_path / "spec.toml"
    path.write_text(spec(axes=axis("linspace = [0.0, 0.2, 1000000000000]")))
    code, _, err = cli("sweep", path, "--out", tmp_path / "out")
    assert code == 2 and "sweep.axes[0].linspace" in err and "memory" in err and len(err.strip().splitlines()) == 1
    path.write_text(spec().replace("replicates = 2", "replicates = 10000000000"))
    code, _, err = cli("sweep", path, "--out", tmp_path / "out")
    assert code == 2 and "sweep.replicates = 10000000000" in err and "memory" in err
    assert not (tmp_path / "out").exists()


def _parse(text, tmp_path):
    import tomllib
    return parse_spec(tomllib.loads(text), str(tmp_path))


@pytest.mark.parametrize("axes,coords", [
    (axis("values = [0.1]"), (0.1,)),                                       # a single-value axis
    (axis("logspace = [-1, 0, 1]"), (0.1,)),                                # count 1
    (axis("linspace = [0.3, 0.9, 1]"), (0.3,)),
    (axis("geomspace = [0.5, 0.5, 1]"), (0.5,)),
    (axis("linspace = [0.2, 0.0, 3]"), (0.2, 0.1, 0.0)),                    # descending
    (axis("int_logspace = [1, 4, 8]", "training.n_disc"), (1, 2, 3, 4)),    # each rounded integer once
    (axis("int_logspace = [3, 3, 5]", "training.n_disc"), (3,)),
    (axis("logspace = [-300, -299, 2]"), (1e-300, 1e-299)),
])
def test_valid_edge_cases_still_plan(axes, coords, tmp_path):
    sw = _parse(spec(axes=axes), tmp_path)
    assert sw.coords[sw.dims[0]] == pytest.approx(coords)
    assert len(sw.runs) == 2 * len(coords) and sum(map(len, plan(sw.runs, 4, 1024))) == len(sw.runs)


def test_zipped_axes_may_repeat_a_value_in_distinct_tuples_and_names_are_labels(tmp_path):
    text = spec(axes=axis("values = [0.1, 0.1, 0.2]", extra='zip = "z"')
                + axis("values = [1, 2, 2]", "training.n_disc", 'zip = "z"')).replace('"t"', '"ratio/n_disc sweep"')
    sw = _parse(text, tmp_path)
    assert sw.name == "ratio/n_disc sweep" and len(sw.runs) == 6


def test_did_you_mean_only_for_close_keys():
    known = schema().known
    assert suggest("training.ndisc", known) == " (did you mean training.n_disc?)"
    assert suggest("coupling.ratoi", known) == " (did you mean coupling.ratio?)"
    assert suggest("target.seed", known) == " (did you mean training.seed?)"      # the one key of that name
    assert suggest("trainig", known) == " (did you mean training?)"
    for far in ("coupling.bogus", "training.bogus", "training.lr", "x.kind", "a.b.c", "foo"):
        assert suggest(far, known) == "", far


PINNED = {"runs": 36, "first": "a24c6e6fdf36f432", "last": "5c635e58adcfd85f", "all": "117299db5f4b7372",
          "ensembles": ["c50242c429a0e649", "259fda5af3e440ed", "c5784bd64b3f2fe2", "9a08e640a5a5648d",
                        "14052dafb7e820c4"], "identity": "4d8e3a53156707c8"}


def test_run_and_ensemble_ids_of_a_fixed_spec_are_unchanged():
    """Pinned before this suite existed: stored sweeps resume by these ids."""
    base = {"generator": {"n_particles": 8}, "discriminator": {"width": 16},
            "training": {"n_iterations": 10, "seed": 7}, "record": {"every": 5, "snapshots": 0, "discriminator": False}}
    sw = parse_spec({"sweep": {"name": "pin", "replicates": 3, "base": base, "axes": [
        {"key": "coupling.ratio", "logspace": [-2, 0, 3]}, {"key": "training.n_disc", "int_logspace": [1, 4, 8]}]}})
    ids = [r.run_id for r in sw.runs]
    assert (len(ids), ids[0], ids[-1]) == (PINNED["runs"], PINNED["first"], PINNED["last"])
    assert hashlib.sha256("".join(ids).encode()).hexdigest()[:16] == PINNED["all"]
    assert [ensemble_id(e) for e in plan(sw.runs, 8, 1024)] == PINNED["ensembles"]
    assert sw.identity == PINNED["identity"]


def test_replicates_take_consecutive_seeds_and_distinct_ids():
    base = {"generator": {"n_particles": 8}, "discriminator": {"width": 16},
            "training": {"n_iterations": 10}, "record": {"every": 5, "snapshots": 0, "discriminator": False}}
    sw = parse_spec({"sweep": {"name": "p", "replicates": 50, "base": base, "axes": [
        {"key": "coupling.ratio", "values": [0.0, 0.1, 0.2]}, {"key": "training.n_disc", "values": [1, 2]}]}})
    plan(sw.runs, sw.max_ensemble, sw.memory_mb)
    assert len(sw.runs) == 300 and len({r.run_id for r in sw.runs}) == 300
    assert [r.config.training.seed for r in sw.runs[:50]] == list(range(50))
    assert fastgan.default_config(**{"training.seed": 49, "coupling.ratio": 0.2, "training.n_disc": 2,
                                     "generator.n_particles": 8, "discriminator.width": 16,
                                     "training.n_iterations": 10, "record.every": 5, "record.snapshots": 0,
                                     "record.discriminator": False}).run_id == sw.runs[-1].run_id
