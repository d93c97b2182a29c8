"""Every family's engine loop on a real GPU (skipped without one).

- a short float64 simulation of each family on cuda follows the NumPy reference, at the default and at
  odd launch sizes: particles and observables to ~1e-8 (FMA contraction and libdevice's transcendentals
  round differently from NumPy, and a few iterations amplify that), mode histograms exactly;
- a rerun gives the same bits;
- a run alone against the same run inside an ensemble of 3: bitwise where every op on its path is a
  custom kernel whose per-run work does not depend on the ensemble (``BITWISE``); to rounding where
  cuBLAS batched matmuls serve (deep MLP, separable Fourier grid, the Gram coupling) or CuPy reductions
  over the run axis' neighbours do (the kde family's fields), since those may choose another algorithm
  for another batch count. README "GPU" states the promise this checks.
"""

import numpy as np
import pytest

import fastgan

pytestmark = [pytest.mark.gpu, pytest.mark.filterwarnings("ignore:discriminator.history")]

BASE = {"discriminator.width": 48, "generator.n_particles": 21, "training.n_iterations": 8, "record.every": 2,
        "record.snapshots": 3, "precision": "float64", "training.seed": 3}
LINEAR = {"generator.n_particles": 7, "training.n_iterations": 12, "record.every": 4, "record.snapshots": 3,
          "precision": "float64", "training.lr_disc": 0.05, "training.lr_gen": 0.05}
CONFIGS = {
    "mlp-relu-coarse": {**BASE, "training.n_disc": 2, "training.beta": 0.5, "coupling.ratio": 0.1},
    "mlp-tanh-spatial": {**BASE, "discriminator.activation": "tanh", "coupling.kind": "spatial", "training.n_disc": 2},
    "mlp-relu-gram": {**BASE, "coupling.kind": "gram", "coupling.gram_arch": "erf", "training.n_disc": 3},
    "deep-relu": {**BASE, "discriminator.depth": 3, "discriminator.width": 16, "training.lr_disc": 0.02,
                  "training.beta": 0.2},
    "fourier": {**LINEAR, "discriminator.kind": "fourier", "discriminator.freq_count": 5, "training.lr_disc": 1e-3,
                "coupling.ratio": 0.2, "training.n_disc": 2},
    "rff": {**LINEAR, "discriminator.kind": "rff", "target.kind": "circle", "discriminator.n_features": 40,
            "training.update_order": "simultaneous"},
    "kernel": {**LINEAR, "discriminator.kind": "kernel", "target.kind": "circle", "discriminator.history": 9,
               "discriminator.bandwidth": [0.5, 2.0], "training.update_order": "simultaneous"},
    "kde-kernel_gan": {"discriminator.kind": "kde", "discriminator.model": "kernel_gan",
                       "discriminator.bandwidth": [0.4, 1.0],
                       "discriminator.schedule": [[0, [0.4, 1.0], 0.5], [4, [0.3, 0.7], 0.2]],
                       "discriminator.floor": 1e-3, "discriminator.data_density": "kde",
                       "generator.n_particles": 11, "training.batch_size": 13, "training.n_iterations": 8,
                       "record.every": 4, "record.snapshots": 3, "precision": "float64", "coupling.ratio": 0.1,
                       "generator.init_std": 1.0},
}
CONFIGS["kde-nsgan"] = {**CONFIGS["kde-kernel_gan"], "discriminator.model": "nsgan"}
# families whose every op on the GPU is a custom kernel with per-run work independent of the ensemble
BITWISE = ("mlp-relu-coarse", "mlp-tanh-spatial", "rff", "kernel")
# particles / observables against the NumPy reference (float64)
ATOL, RTOL = 1e-8, 1e-7


def _cfg(name, **kw):
    return fastgan.default_config(**{**CONFIGS[name], **kw})


def _others(name):
    """Two other runs of the same shape (other seeds and learning rates) to share an ensemble with."""
    lr = CONFIGS[name].get("training.lr_disc")
    return [_cfg(name, **{"training.seed": 11 + i, **({"training.lr_disc": lr * (1.5 + i)} if lr else {})})
            for i in range(2)]


def _same(a, b, what):
    np.testing.assert_array_equal(a.particles, b.particles, err_msg=what)
    for k in a.observables:
        np.testing.assert_array_equal(a.observables[k], b.observables[k], err_msg=f"{what}: {k}")
    for k in a.histograms:
        np.testing.assert_array_equal(a.histograms[k], b.histograms[k], err_msg=f"{what}: {k}")
    for k in a.discriminator:
        np.testing.assert_array_equal(a.discriminator[k], b.discriminator[k], err_msg=f"{what}: {k}")


def _close(got, ref, what, atol=ATOL, rtol=RTOL):
    np.testing.assert_allclose(got.particles, ref.particles, rtol=rtol, atol=atol, err_msg=what)
    for k in ref.observables:
        np.testing.assert_allclose(got.observables[k], ref.observables[k], rtol=rtol * 10, atol=atol,
                                   equal_nan=True, err_msg=f"{what}: {k}")
    for k in ref.histograms:
        np.testing.assert_array_equal(got.histograms[k], ref.histograms[k], err_msg=f"{what}: {k}")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_engine_matches_numpy(launch_sizes, name):
    cfg = _cfg(name)
    ref = fastgan.simulate(cfg, backend="numpy")
    got = fastgan.simulate(cfg, backend="cuda")
    assert got.provenance["backend"] == "cuda"
    assert not ref.diverged and not got.diverged
    assert np.abs(ref.particles[-1] - ref.particles[0]).max() > 1e-4         # the particles did move
    _close(got, ref, f"{name}: cuda vs numpy ({launch_sizes} launch)")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_engine_rerun_is_bitwise(name):
    cfg = _cfg(name)
    _same(fastgan.simulate(cfg, backend="cuda"), fastgan.simulate(cfg, backend="cuda"), f"{name}: rerun")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_run_alone_equals_the_run_in_an_ensemble(name):
    cfg = _cfg(name)
    o1, o2 = _others(name)
    alone = fastgan.simulate(cfg, backend="cuda")
    packed = fastgan.simulate_ensemble([o1, cfg, o2], backend="cuda")[1]
    if name in BITWISE:
        _same(alone, packed, f"{name}: alone vs inside an ensemble of 3 (promised bitwise)")
    else:
        # cuBLAS / CuPy reductions may pick another algorithm for B = 3 than for B = 1: rounding only
        _close(packed, alone, f"{name}: alone vs inside an ensemble of 3 (to rounding)", atol=1e-10, rtol=1e-9)


def test_float32_mlp_run_follows_float64_on_device():
    """The default precision on the GPU: a float32 run stays near the float64 reference."""
    cfg = _cfg("mlp-relu-coarse")
    ref = fastgan.simulate(cfg, backend="numpy")
    got = fastgan.simulate(_cfg("mlp-relu-coarse", precision="float32"), backend="cuda")
    np.testing.assert_allclose(got.particles, ref.particles, rtol=0, atol=1e-3)


CACHE_PROBE = r"""
import gc, json, sys
import fastgan
from numba.cuda.dispatcher import CUDADispatcher
fastgan.simulate(fastgan.default_config(**json.loads(sys.argv[1])), backend="cuda", progress=False)
hits = misses = 0
for obj in gc.get_objects():
    if isinstance(obj, CUDADispatcher):
        hits += sum(getattr(obj, "_cache_hits", {}).values())
        misses += sum(getattr(obj, "_cache_misses", {}).values())
print(json.dumps({"hits": hits, "misses": misses}))
"""


def test_kernels_load_from_the_disk_cache_in_a_new_process(tmp_path):
    """The first process compiles the Numba-CUDA kernels and writes them to the cache; a second one (a
    sweep's next worker, the next command) loads every one of them instead of compiling it again."""
    import json
    import os
    import subprocess
    import sys
    cfg = json.dumps({**{k: v for k, v in BASE.items() if k != "precision"}, "coupling.kind": "spatial",
                      "precision": "float32", "discriminator.kind": "rff", "target.kind": "circle"})
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTGAN_CUDA_KERNELS="numba", FASTGAN_CUDA_CACHE="1")
    runs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", CACHE_PROBE, cfg], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "Cannot cache" not in r.stderr, r.stderr[-3000:]
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert runs[0]["misses"] > 0 and any(tmp_path.rglob("*.nbi")), runs
    assert runs[1]["misses"] == 0 and runs[1]["hits"] == runs[0]["misses"], runs
