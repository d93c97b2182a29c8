"""Targets of images (issue 20): a file of (M, H, W) images or (M, d) flattened ones, the normalisation the
config states (target.normalize = none | pixel | affine), masses, one-line errors naming the key, a short run
end to end, unchanged run ids, and the run picture's grids of images."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest

import fastgan
from fastgan import h5io, plots
from fastgan.cli import main
from fastgan.errors import ConfigError, FastganError
from fastgan.runconfig import from_dict
from fastgan.store import read_run, write_run
from fastgan.targets import load_target_file, make_target, normalize_points

H, W = 8, 8
RNG = np.random.default_rng(2020)


def _images(M=30, h=H, w=W):
    """Random 'pixel' images in [0, 255] with a constant border pixel (0, 0) and a constant pixel of 17."""
    x = np.round(255 * RNG.random((M, h, w)))
    x[:, 0, 0] = 0.0
    x[:, h - 1, w - 1] = 17.0
    return x


def _cfg(path, **target):
    return from_dict({"target": {"kind": "file", "path": str(path), **target}, "precision": "float64"})


def _one_line_error(excinfo, key):
    text = str(excinfo.value)
    assert "\n" not in text and text.startswith(f"{key} = "), text
    return text


# --------------------------------------------------------------------------- loading

def test_a_file_of_images_is_the_empirical_distribution_of_its_flattened_images(tmp_path):
    x = _images()
    np.save(tmp_path / "imgs.npy", x)
    t = make_target(_cfg(tmp_path / "imgs.npy"))
    assert t.kind == "file" and t.dim == H * W and t.n_components == 30 and t.modes is None
    assert t.image_shape == (H, W)
    np.testing.assert_array_equal(t.means, x.reshape(30, H * W))           # row-major, unchanged (normalize = none)
    np.testing.assert_array_equal(t.means[3].reshape(H, W), x[3])
    np.testing.assert_array_equal(t.weights, np.full(30, 1 / 30))           # equal masses by default
    assert np.all(t.stds == 0)
    # the same images under the name 'images' (or 'samples') of an npz, 3-D or flattened
    np.savez(tmp_path / "imgs.npz", images=x, labels=np.arange(30))
    np.testing.assert_array_equal(make_target(_cfg(tmp_path / "imgs.npz")).means, t.means)
    np.savez(tmp_path / "s3.npz", samples=x)
    assert make_target(_cfg(tmp_path / "s3.npz")).image_shape == (H, W)
    np.savez(tmp_path / "flat.npz", images=x.reshape(30, -1))
    flat = make_target(_cfg(tmp_path / "flat.npz"))
    assert flat.image_shape is None and flat.dim == H * W
    np.testing.assert_array_equal(flat.means, t.means)
    # a flattened file may state its image shape
    np.savez(tmp_path / "flat_shape.npz", images=x.reshape(30, -1), image_shape=np.array([H, W]))
    assert make_target(_cfg(tmp_path / "flat_shape.npz")).image_shape == (H, W)
    np.savez(tmp_path / "rect.npz", images=x.reshape(30, -1), image_shape=np.array([4, 16]))
    assert make_target(_cfg(tmp_path / "rect.npz")).image_shape == (4, 16)


def test_existing_file_targets_load_as_before(tmp_path):
    data = RNG.normal(size=(12, 3))
    np.save(tmp_path / "s.npy", data)
    t = make_target(_cfg(tmp_path / "s.npy"))
    assert t.image_shape is None and t.modes is None and t.dim == 3
    np.testing.assert_array_equal(t.means, data)
    np.savez(tmp_path / "m.npz", means=data[:4], weights=np.arange(1.0, 5.0), stds=np.full(4, 0.1))
    m = make_target(_cfg(tmp_path / "m.npz"))
    np.testing.assert_array_equal(m.modes, data[:4])
    np.testing.assert_allclose(m.weights, np.arange(1.0, 5.0) / 10)
    np.testing.assert_array_equal(m.stds, np.full(4, 0.1))
    assert m.image_shape is None


def test_masses_of_images_come_from_the_file(tmp_path):
    x = _images(M=5)
    masses = np.array([1.0, 2.0, 3.0, 0.0, 4.0])
    np.savez(tmp_path / "m.npz", images=x, masses=masses)
    t = make_target(_cfg(tmp_path / "m.npz"))
    np.testing.assert_allclose(t.weights, masses / 10, rtol=0, atol=1e-15)
    assert t.image_shape == (H, W)
    np.savez(tmp_path / "w.npz", samples=x.reshape(5, -1), weights=masses)
    np.testing.assert_allclose(make_target(_cfg(tmp_path / "w.npz")).weights, masses / 10, rtol=0, atol=1e-15)
    # sampling follows the masses (image 3 has none)
    drawn = make_target(_cfg(tmp_path / "m.npz")).sample(4000, seed=3)
    which = np.argmin(((drawn[:, None, :] - t.means[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(which, minlength=5) / 4000
    assert counts[3] == 0 and counts == pytest.approx(masses / 10, abs=0.03)
    for bad in (np.ones(4), np.array([1.0, -1.0, 1.0, 1.0, 1.0]), np.zeros(5), np.array([1, 1, np.nan, 1, 1.0])):
        np.savez(tmp_path / "bad.npz", images=x, masses=bad)
        with pytest.raises(ConfigError) as e:
            make_target(_cfg(tmp_path / "bad.npz"))
        assert "'masses' should hold 5 non-negative finite numbers" in _one_line_error(e, "target.path")


# --------------------------------------------------------------------------- normalisation

def test_pixel_normalisation_standardises_every_coordinate_and_only_centres_constant_ones(tmp_path):
    x = _images(M=40)
    np.save(tmp_path / "imgs.npy", x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no division by zero, no invalid value
        with np.errstate(all="raise"):
            t = make_target(_cfg(tmp_path / "imgs.npy", normalize="pixel"))
    flat = x.reshape(40, -1)
    mean = flat.mean(0)
    std = flat.std(0)
    constant = std == 0
    assert constant.sum() == 2                              # pixels (0, 0) and (H-1, W-1)
    want = np.where(constant, 0.0, (flat - mean) / np.where(constant, 1.0, std))
    np.testing.assert_allclose(t.means, want, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(t.means[:, constant], 0.0)   # exactly centred, nothing divided
    np.testing.assert_allclose(t.means[:, ~constant].mean(0), 0.0, atol=1e-13)
    np.testing.assert_allclose(t.means[:, ~constant].std(0), 1.0, rtol=1e-13)
    assert t.means.dtype == np.float64 and t.image_shape == (H, W)
    # a constant that rounds: mean(0.1, 0.1, 0.1) - 0.1 need not be exactly 0, the coordinate still is
    odd = np.full((3, 2), 0.1)
    odd[:, 1] = [1.0, 2.0, 4.0]
    out = normalize_points(odd, "pixel")
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_allclose(out[:, 1], (odd[:, 1] - 7 / 3) / odd[:, 1].std(), rtol=1e-14)
    # one image alone: every coordinate is constant
    np.testing.assert_array_equal(normalize_points(flat[:1], "pixel"), 0.0)


def test_affine_normalisation_is_the_stated_map(tmp_path):
    x = _images()
    np.save(tmp_path / "imgs.npy", x)
    t = make_target(_cfg(tmp_path / "imgs.npy", normalize="affine", offset=127.5, scale=1 / 127.5))
    np.testing.assert_allclose(t.means, (x.reshape(30, -1) - 127.5) / 127.5, rtol=1e-15, atol=1e-15)
    assert t.means.min() >= -1 and t.means.max() <= 1
    no_offset = make_target(_cfg(tmp_path / "imgs.npy", normalize="affine", scale=-2.0))
    np.testing.assert_array_equal(no_offset.means, x.reshape(30, -1) * -2.0)
    assert _cfg(tmp_path / "imgs.npy", normalize="affine", scale=2.0).resolved.target.offset == 0.0
    # a mixture file's component widths are in the file's units: the map scales them by |scale|
    np.savez(tmp_path / "m.npz", means=x[:4], stds=np.full(4, 3.0))
    m = make_target(_cfg(tmp_path / "m.npz", normalize="affine", offset=1.0, scale=-0.5))
    np.testing.assert_array_equal(m.stds, np.full(4, 1.5))
    np.testing.assert_array_equal(m.modes, (x[:4].reshape(4, -1) - 1.0) * -0.5)
    assert m.image_shape == (H, W)
    # direct calls: none is the identity
    flat = x.reshape(30, -1)
    assert normalize_points(flat, "none") is flat
    np.testing.assert_array_equal(load_target_file(str(tmp_path / "imgs.npy"), normalize="affine", offset=1.0,
                                                   scale=3.0).means, (flat - 1.0) * 3.0)


# --------------------------------------------------------------------------- errors: one line naming the key

@pytest.mark.parametrize("shape", [(30,), (2, 3, 4, 5), (0, 3), (3, 0, 4)])
def test_arrays_of_the_wrong_shape_are_refused(tmp_path, shape):
    np.save(tmp_path / "a.npy", np.ones(shape))
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path / "a.npy")
    assert "'samples' should be a 2-D array (points x dimensions) or a 3-D array" in _one_line_error(e, "target.path")


def test_bad_image_files_are_one_line_errors_naming_the_path(tmp_path):
    x = _images(M=4)
    x[2, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path / "nan.npy")
    assert "holds NaN or Inf" in _one_line_error(e, "target.path")
    np.savez(tmp_path / "both.npz", images=_images(M=4), samples=_images(M=4))
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path / "both.npz")
    assert "both 'images' and 'samples'" in _one_line_error(e, "target.path")
    np.savez(tmp_path / "shape.npz", images=_images(M=4).reshape(4, -1), image_shape=np.array([7, 9]))
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path / "shape.npz")
    assert "'image_shape' should be two positive integers" in _one_line_error(e, "target.path")
    np.savez(tmp_path / "none.npz", labels=np.arange(4))
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path / "none.npz")
    _one_line_error(e, "target.path")
    np.savez(tmp_path / "m.npz", means=_images(M=4), stds=np.full(4, 0.5))
    with pytest.raises(ConfigError) as e:
        _cfg(tmp_path / "m.npz", normalize="pixel")
    assert "anisotropic" in _one_line_error(e, "target.normalize")


@pytest.mark.parametrize("target,key,why", [
    ({"normalize": "zscore"}, "target.normalize", "must be one of none, pixel, affine"),
    ({"normalize": 1}, "target.normalize", "expected a string"),
    ({"normalize": "affine"}, "target.scale", "required for target.normalize = affine"),
    ({"normalize": "affine", "offset": 1.0}, "target.scale", "required for target.normalize = affine"),
    ({"normalize": "affine", "scale": 0}, "target.scale", "must not be 0"),
    ({"normalize": "affine", "scale": 0.0}, "target.scale", "must not be 0"),
    ({"normalize": "affine", "scale": float("nan")}, "target.scale", "must be finite"),
    ({"normalize": "affine", "scale": "big"}, "target.scale", "expected a number"),
    ({"normalize": "affine", "scale": 1.0, "offset": float("inf")}, "target.offset", "must be finite"),
    ({"scale": 2.0}, "target.scale", "only for target.normalize = affine"),
    ({"normalize": "pixel", "offset": 2.0}, "target.offset", "only for target.normalize = affine"),
    ({"kind": "ring", "normalize": "pixel"}, "target.normalize", "only a file target is rescaled"),
    ({"kind": "points", "points": [[0, 0, 1]], "normalize": "affine", "scale": 2.0}, "target.normalize",
     "only a file target is rescaled"),
])
def test_bad_normalisation_keys_are_refused_before_any_compute(tmp_path, target, key, why):
    np.save(tmp_path / "imgs.npy", _images(M=3))
    with pytest.raises(ConfigError) as e:
        from_dict({"target": {"kind": "file", "path": str(tmp_path / "imgs.npy"), **target}})
    assert why in _one_line_error(e, key)


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "imgs.npy", _images(M=3))
    code = main(["config", "--set", "target.kind=file", "--set", f"target.path={tmp_path / 'imgs.npy'}",
                 "--set", "target.normalize=affine", "--set", "target.scale=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("fastgan: error: target.scale = 0: must not be 0")


def test_a_typo_in_a_new_key_is_suggested():
    with pytest.raises(ConfigError, match=r"target.normalise = 'pixel': unknown key \(did you mean target.normalize\?\)"):
        from_dict({"target": {"normalise": "pixel"}})


# --------------------------------------------------------------------------- identity

def test_run_ids_of_configs_without_the_new_keys_are_unchanged(tmp_path):
    # ids captured before target.normalize / offset / scale existed
    assert fastgan.default_config().run_id == "080cb9519531aeb9"
    assert fastgan.default_config(**{"target.kind": "sphere"}).run_id == "18cb7a3de268f744"
    file_cfg = {"target": {"kind": "file", "path": "/data/images.npy", "std": 0.0}}
    assert from_dict(file_cfg, check_files=False).run_id == "1d849244dd4384c8"
    explicit = {"target": {**file_cfg["target"], "normalize": "none"}}
    assert from_dict(explicit, check_files=False).run_id == "1d849244dd4384c8"
    assert "normalize" not in json.loads(from_dict(explicit, check_files=False).canonical_json())["target"]
    # the keys enter the identity when they are set: different maps, different runs
    ids = {from_dict({"target": {**file_cfg["target"], **extra}}, check_files=False).run_id
           for extra in ({}, {"normalize": "pixel"}, {"normalize": "affine", "scale": 2.0},
                         {"normalize": "affine", "scale": 2.0, "offset": 1.0})}
    assert len(ids) == 4
    # an offset of 0 is the default offset: one run either way
    a = from_dict({"target": {**file_cfg["target"], "normalize": "affine", "scale": 2.0}}, check_files=False)
    b = from_dict({"target": {**file_cfg["target"], "normalize": "affine", "scale": 2.0, "offset": 0}},
                  check_files=False)
    assert a.run_id == b.run_id


# --------------------------------------------------------------------------- a run end to end

def _image_run(tmp_path, **over):
    np.save(tmp_path / "imgs.npy", _images(M=25))
    cfg = from_dict({"target": {"kind": "file", "path": str(tmp_path / "imgs.npy"), "normalize": "affine",
                                "offset": 127.5, "scale": 1 / 127.5},
                     "generator": {"n_particles": 20}, "discriminator": {"width": 64},
                     "training": {"n_iterations": 6}, "record": {"every": 2, "snapshots": 3},
                     "precision": "float64", **over})
    return cfg, fastgan.simulate(cfg, backend="numpy")


def test_a_short_run_on_images_end_to_end(tmp_path, capsys):
    cfg, r = _image_run(tmp_path)
    assert r.image_shape == (H, W) and r.modes is None and not r.diverged
    assert r.particles.shape == (3, 20, H * W) and list(r.time) == [0, 2, 4, 6]
    for k in ("cosine_mode_collapse", "cosine_distance", "particle_cosine", "runaway"):
        assert r.observables[k].shape == (4,) and np.all(np.isfinite(r.observables[k])), k
    assert np.all(r.particles[-1] != r.particles[0])            # the particles moved
    out = tmp_path / "r.h5"
    write_run(str(out), r)
    with h5py.File(out, "r") as f:
        assert list(f.attrs["target_image_shape"]) == [H, W]
        assert f["particles"].shape == (3, 20, H * W)
    back = read_run(str(out))
    assert back["image_shape"] == (H, W)
    assert back["config"].resolved.target.normalize == "affine"
    ds = fastgan.open_run(str(out))
    assert list(ds.attrs["target_image_shape"]) == [H, W]
    assert ds["cosine_distance"].attrs["long_name"] == "mean cosine distance to the nearest target point"
    # the CLI runs it too, and draws the images
    (tmp_path / "c.toml").write_text(
        'precision = "float64"\n'
        f'[target]\nkind = "file"\npath = {json.dumps(str(tmp_path / "imgs.npy"))}\nnormalize = "pixel"\n'
        '[generator]\nn_particles = 20\n[discriminator]\nwidth = 64\n[training]\nn_iterations = 4\n'
        '[record]\nevery = 2\nsnapshots = 2\n')
    code = main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "cli.h5"), "--backend", "numpy"])
    assert code == 0 and (tmp_path / "cli.png").stat().st_size > 1000
    assert "cosine_mode_collapse(final) = " in capsys.readouterr().out
    assert read_run(str(tmp_path / "cli.h5"))["image_shape"] == (H, W)


def test_a_run_without_images_records_no_image_shape(tmp_path):
    r = fastgan.simulate(fastgan.default_config(**{"training.n_iterations": 2, "discriminator.width": 16,
                                                   "generator.n_particles": 8}), backend="numpy")
    assert r.image_shape is None
    write_run(str(tmp_path / "r.h5"), r)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert "target_image_shape" not in f.attrs
    assert read_run(str(tmp_path / "r.h5"))["image_shape"] is None


# --------------------------------------------------------------------------- pictures

def test_the_image_mosaic_places_each_particle_in_its_cell():
    h, w = 3, 4
    v = np.arange(7 * h * w, dtype=np.float64).reshape(7, h * w)
    m = plots.image_mosaic(v, (h, w), side=3, gap=1)
    assert m.shape == (3 * (h + 1) - 1, 3 * (w + 1) - 1)
    for k in range(7):
        i, j = divmod(k, 3)
        np.testing.assert_array_equal(m[i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w], v[k].reshape(h, w))
    assert np.isnan(m[h, :]).all() and np.isnan(m[:, w]).all()              # the gaps
    assert np.isnan(m[2 * (h + 1):, 1 * (w + 1):]).all()                    # the two empty cells of the last row
    assert plots.image_mosaic(v, (h, w), side=2).shape == (2 * (h + 1) - 1, 2 * (w + 1) - 1)   # 4 of the 7
    assert plots.image_mosaic(v[:2], (h, w), side=10).shape == (h, 2 * w + 1)                  # fewer than a row
    assert plots.image_mosaic(v, (h, w), side=1, gap=0).shape == (h, w)


def test_the_run_picture_shows_images_beside_the_targets(tmp_path, capsys):
    cfg, r = _image_run(tmp_path)
    write_run(str(tmp_path / "r.h5"), r)
    run = read_run(str(tmp_path / "r.h5"))
    assert plots.image_shape_of(run) == (H, W)
    panels = plots.image_panels(run, (H, W), side=4)
    assert [t for t, _ in panels] == ["target", "step 0", "step 6"]
    target = make_target(cfg)
    np.testing.assert_array_equal(panels[0][1], plots.image_mosaic(target.means[:16], (H, W), 4))
    np.testing.assert_array_equal(panels[2][1], plots.image_mosaic(r.particles[-1][:16], (H, W), 4))
    assert panels[1][1].shape == (4 * (H + 1) - 1, 4 * (W + 1) - 1)
    # the figure: one image per panel, the observables below
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seen = {}
    real = plots.atomic_figure

    def spy(path, fig, **kw):
        seen["images"] = [ax.images[0].get_array().shape for ax in fig.get_axes() if ax.images]
        seen["titles"] = [ax.get_title() for ax in fig.get_axes() if ax.images]
        seen["ylabels"] = [ax.get_ylabel() for ax in fig.get_axes() if not ax.images]
        return real(path, fig, **kw)
    try:
        plots.atomic_figure = spy
        plots.plot_run(run, str(tmp_path / "p.png"), image_grid=3)
    finally:
        plots.atomic_figure = real
        plt.close("all")
    assert seen["images"] == [(3 * (H + 1) - 1, 3 * (W + 1) - 1)] * 3
    assert seen["titles"] == ["target", "step 0", "step 6"]
    assert any("cosine" in y for y in seen["ylabels"])
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # without its file the target is not shown, the particles still are
    (tmp_path / "imgs.npy").unlink()
    assert [t for t, _ in plots.image_panels(run, (H, W))] == ["step 0", "step 6"]
    # the CLI: --image-grid sets the side, and is refused for a run that is not of images
    assert main(["plot", str(tmp_path / "r.h5"), "--out", str(tmp_path / "q.png"), "--image-grid", "5"]) == 0
    assert (tmp_path / "q.png").stat().st_size > 1000
    assert main(["plot", str(tmp_path / "r.h5"), "--out", str(tmp_path / "q2.png"), "--image-grid", "0"]) == 2
    assert "--image-grid = 0: choose 1 to 64" in capsys.readouterr().err
    plain = fastgan.simulate(fastgan.default_config(**{"training.n_iterations": 2, "discriminator.width": 16,
                                                       "generator.n_particles": 8}), backend="numpy")
    write_run(str(tmp_path / "plain.h5"), plain)
    assert plots.image_shape_of(read_run(str(tmp_path / "plain.h5"))) is None
    assert main(["plot", str(tmp_path / "plain.h5"), "--out", str(tmp_path / "x.png"), "--image-grid", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a run of an image target" in err[0]
    assert not (tmp_path / "x.png").exists()


def test_an_image_shape_that_does_not_match_the_particles_draws_the_usual_picture():
    run = {"particles": np.zeros((2, 5, 6)), "image_shape": (2, 2), "attrs": {}}
    assert plots.image_shape_of(run) is None
    run["image_shape"] = (2, 3)
    assert plots.image_shape_of(run) == (2, 3)
    assert plots.image_shape_of({"particles": np.zeros((0, 5, 6)), "image_shape": (2, 3)}) is None
    assert plots.image_shape_of({"particles": np.zeros((1, 5, 6)), "attrs": {"target_image_shape": [3, 2]}}) == (3, 2)


def test_a_damaged_image_shape_is_a_damaged_file(tmp_path):
    _, r = _image_run(tmp_path)
    write_run(str(tmp_path / "r.h5"), r)
    path = tmp_path / "r.h5"
    path.write_bytes(h5io.unseal(path.read_bytes()))              # a file edited by hand: no seal, no checksum
    with h5py.File(path, "r+") as f:
        del f.attrs["checksum"]
        f.attrs["target_image_shape"] = np.array([0, 64])
    with pytest.raises(FastganError, match="target_image_shape should be two positive integers"):
        read_run(str(tmp_path / "r.h5"))
