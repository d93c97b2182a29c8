"""Sweeps on Dask: a local cluster gives the inline result bitwise, also when a worker is killed."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import fastgan
from fastgan.sweep import execute, parse_spec

distributed = pytest.importorskip("distributed")

BASE = {"generator": {"n_particles": 12}, "discriminator": {"width": 16},
        "training": {"n_iterations": 1500, "seed": 1}, "record": {"every": 50, "snapshots": 0,
                                                                "discriminator": False}}


def _sweep():
    return parse_spec({"sweep": {"name": "d", "replicates": 2, "base": BASE, "max_ensemble": 2,
                                 "axes": [{"key": "coupling.ratio", "values": [0.0, 0.1, 0.3]},
                                          {"key": "training.n_disc", "values": [1, 2]}]}})


def _arrays(path):
    ds = fastgan.open_sweep(str(path))
    return {k: ds[k].values for k in ds.data_vars}


@pytest.mark.slow
def test_local_cluster_with_a_killed_worker_matches_inline(tmp_path):
    ref = execute(_sweep(), str(tmp_path / "inline"), backend="numpy", progress=False)
    assert ref["runs_computed"] == 12
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        pids = list(client.run(os.getpid).values())
        killed = []

        parts = tmp_path / "dask" / "parts"

        def kill_one():                                    # as soon as the first ensemble is stored
            t0 = time.time()
            while time.time() - t0 < 120 and not (parts.exists() and list(parts.glob("*.h5"))):
                time.sleep(0.02)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(len(list(parts.glob("*.h5"))))
        t = threading.Thread(target=kill_one)
        t.start()
        out = execute(_sweep(), str(tmp_path / "dask"), backend="numpy", progress=False, dask=cluster.scheduler_address)
        t.join()
        assert killed and 1 <= killed[0] < 6, killed         # the worker died mid-sweep
        assert out["executor"] == cluster.scheduler_address and out["runs_computed"] == 12
    finally:
        client.close()
        cluster.close()
    a, b = _arrays(tmp_path / "inline"), _arrays(tmp_path / "dask")
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert np.array_equal(a[k], b[k]), k


@pytest.mark.slow
def test_local_n_executor_reports_progress_inside_ensembles_and_bad_dask_argument(tmp_path, capsys, monkeypatch):
    """The bar moves while the workers compute (their reports), not only when an ensemble's results arrive."""
    import re

    from fastgan import progress, sweep
    monkeypatch.setattr(progress, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(sweep, "DASK_PROGRESS_S", 0.02)
    out = execute(_sweep(), str(tmp_path / "l"), backend="numpy", progress=True, dask="local:2")
    assert out["runs_computed"] == 12 and bool(fastgan.open_sweep(str(tmp_path / "l"))["complete"].all())
    counts = [int(m.group(1).replace(",", "")) for m in re.finditer(r"\] ([\d,]+)/18,000 run-it", capsys.readouterr().err)]
    assert counts[-1] == 18000 and any(c % 3000 for c in counts), counts    # 3000 run-iterations per ensemble
    from fastgan.sweep import SweepError
    with pytest.raises(SweepError, match="local:N"):
        execute(_sweep(), str(tmp_path / "m"), backend="numpy", progress=False, dask="local:zero")
    with pytest.raises(SweepError, match="jobqueue"):
        execute(_sweep(), str(tmp_path / "n"), backend="numpy", progress=False, dask="jobqueue")


@pytest.mark.parametrize("kind,directive", [("slurm", "#SBATCH"), ("sge", "#$"), ("pbs", "#PBS")])
def test_jobqueue_section_builds_the_batch_cluster(kind, directive):
    """[sweep.dask] -> a dask-jobqueue cluster whose job script carries the resources (no job submitted)."""
    pytest.importorskip("dask_jobqueue")
    from fastgan.sweep import jobqueue_cluster
    spec = _sweep_spec_with_dask({"jobqueue": kind, "jobs": 4, "cores": 2, "memory": "4GB", "walltime": "01:00:00",
                                  "queue": "normal", "job_extra": ["--comment=fastgan"]})
    sw = parse_spec(spec)
    cluster = jobqueue_cluster(sw.dask)
    try:
        script = cluster.job_script()
        assert directive in script and "normal" in script and "--comment=fastgan" in script
    finally:
        cluster.close()
    from fastgan.sweep import SweepError
    with pytest.raises(SweepError, match="sweep.dask.jobqueue"):
        parse_spec(_sweep_spec_with_dask({"jobqueue": "lsf"}))
    with pytest.raises(SweepError, match="sweep.dask.jobs"):
        parse_spec(_sweep_spec_with_dask({"jobqueue": "slurm", "jobs": 0}))


def _sweep_spec_with_dask(section):
    return {"sweep": {"name": "d", "base": BASE, "dask": section,
                      "axes": [{"key": "coupling.ratio", "values": [0.0, 0.1]}]}}


@pytest.mark.slow
def test_refine_on_a_local_cluster_matches_inline(tmp_path):
    from fastgan.sweep import refine
    base = {"generator": {"n_particles": 50}, "discriminator": {"width": 8},
            "training": {"n_iterations": 2, "lr_gen": 0.0, "seed": 5},
            "record": {"every": 1, "snapshots": 0, "discriminator": False}}
    spec = {"sweep": {"name": "r", "base": base, "observables": ["nearest_mode_distance"],
                      "refine": {"axis": "generator.init_std", "metric": "nearest_mode_distance", "threshold": 0.1,
                                 "tol": 0.05},
                      "axes": [{"key": "generator.init_std", "geomspace": [0.01, 0.5, 40]}]}}
    on_dask = refine(parse_spec(spec), str(tmp_path / "d"), backend="numpy", progress=False, dask="local:1")
    inline = refine(parse_spec(spec), str(tmp_path / "i"), backend="numpy", progress=False)
    assert on_dask["lines"] == inline["lines"] and on_dask["evaluations"] == inline["evaluations"]
