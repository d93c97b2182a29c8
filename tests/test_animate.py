"""fastgan.animate: GIFs of particles over the discriminator heat-map, from a RunResult or a run file."""

from __future__ import annotations

import numpy as np
import pytest

import fastgan
from fastgan import animate
from fastgan.store import read_run, write_run


def _small_run(snapshots=5, **extra):
    cfg = fastgan.default_config(**{"generator.n_particles": 24, "discriminator.width": 32, "training.n_iterations": 8,
                                    "record.every": 2, "record.snapshots": snapshots, "precision": "float64", **extra})
    return fastgan.simulate(cfg, backend="numpy", progress=False)


def test_frame_indices_spread_and_capped():
    assert animate.frame_indices(0, 10).size == 0
    assert animate.frame_indices(5, 60).tolist() == [0, 1, 2, 3, 4]
    idx = animate.frame_indices(200, 60)
    assert len(idx) == 60 and idx[0] == 0 and idx[-1] == 199 and np.all(np.diff(idx) > 0)


def test_frames_match_disc_values_and_gif_has_one_frame_per_snapshot(tmp_path):
    from PIL import Image

    from fastgan.plots import disc_values
    res = _small_run()
    fr = animate.run_frames(res, grid=16)
    assert fr.values.shape == (5, 16, 16) and fr.particles.shape == (5, 24, 2)
    assert fr.time.tolist() == res.particles_time.tolist()
    x0, x1, y0, y1 = fr.extent
    last = {k: v[-1] for k, v in res.disc_snapshots.items()}
    corner = disc_values(last, res.config, np.array([[x0, y0], [x1, y1]]))
    assert np.allclose(fr.values[-1][[0, -1], [0, -1]], corner)
    out = animate.animate_run(res, str(tmp_path / "run.gif"), grid=16, title="test")
    with Image.open(out) as im:
        assert im.n_frames == 5
    assert (tmp_path / "run.gif").stat().st_size < 2_000_000


def test_run_file_dict_and_frame_cap(tmp_path):
    res = _small_run(snapshots=8)
    path = str(tmp_path / "run.h5")
    write_run(path, res)
    run = read_run(path)
    fr = animate.run_frames(run, max_frames=3, grid=8)
    assert fr.time.tolist() == [run["particles_time"][i] for i in (0, 4, 7)]
    assert np.all(np.isfinite(fr.values))


def test_without_discriminator_snapshots_draws_particles_only(tmp_path):
    res = _small_run(snapshots=3, **{"record.discriminator": False})
    fr = animate.run_frames(res, grid=8)
    assert np.all(np.isnan(fr.values))
    animate.animate_frames(fr, str(tmp_path / "p.gif"))
    assert (tmp_path / "p.gif").stat().st_size > 0


def test_rejects_non_2d_runs():
    res = _small_run(snapshots=2, **{"target.kind": "sphere", "target.dim": 3, "discriminator.kind": "rff"})
    with pytest.raises(ValueError, match="2-D"):
        animate.run_frames(res)
