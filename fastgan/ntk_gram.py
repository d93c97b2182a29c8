"""NTK Gram matrices of the named generator settings, for the simulator: the analytic Gram coupling of
``coupling.gram_arch`` (:func:`spec_gram`) and the files of ``fastgan ntk measure`` (:func:`measure_gram`,
:func:`write_gram`). Settings: ``appendix-g`` and ``fig2`` (one hidden layer, :mod:`fastgan.ntk`) and
``deep`` (the μ-parametrised network of Fig. 21, :mod:`fastgan.ntk_deep`) of Durr et al., Effective
Dynamics of Generative Adversarial Networks.

numpy/scipy only at import time (torch inside the empirical kernels).
"""

from __future__ import annotations

import numpy as np

from . import ntk
from .ntk import ACTIVATIONS, analytic_gram, empirical_ntk_one_hidden, extract_g1_g2, sample_sphere
from .ntk_deep import DeepSetup, empirical_ntk_deep


PRESETS = {"appendix-g": {"relu": "APPENDIX_G_RELU", "erf": "APPENDIX_G_ERF"},
           "fig2": {"relu": "FIG2_RELU", "erf": "FIG2_ERF"}}
SETTINGS = tuple(PRESETS) + ("deep",)
LATENT_STREAM = 0x4E544B     # mixed with a run's training.seed to draw its latent seeds


def preset_setup(setting: str, act: str, depth: int = 6, mu: float = 0.5):
    """The network of a named setting: ``appendix-g`` / ``fig2`` (one hidden layer, :class:`NTKSetup`)
    or ``deep`` (the μ-parametrised network of Fig. 21 with ``depth`` hidden layers, a
    :class:`~fastgan.ntk_deep.DeepSetup`)."""
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")
    if setting == "deep":
        return DeepSetup.mu_param(mu, depth, act)
    if setting not in PRESETS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    return getattr(ntk, PRESETS[setting][act])


def preset_radius(setting: str, dim: int) -> float:
    """Radius of the latent sphere: 1 (Appendix G, Fig. 2), sqrt(dim) for the deep network (Fig. 21)."""
    return float(np.sqrt(dim)) if setting == "deep" else 1.0


def spec_gram(arch: str, setting: str, n: int, dim: int, seed: int, depth: int = 6, mu: float = 0.5) -> np.ndarray:
    """The analytic (n, n) Gram matrix that ``coupling.gram_arch`` asks for: the infinite-width NTK of
    ``preset_setup(setting, arch, depth, mu)`` at n seeds uniform on the sphere of
    ``preset_radius(setting, dim)``, drawn from the run's ``seed`` (training.seed)."""
    X = sample_sphere(n, dim, preset_radius(setting, dim), seed=[LATENT_STREAM, int(seed)])
    return analytic_gram(preset_setup(setting, arch, depth, mu), X)


def measure_gram(setting: str, act: str, n: int, dim: int, radius: float | None = None, width: int | None = None,
                 seed: int = 0, depth: int = 6, mu: float = 0.5) -> tuple[np.ndarray, dict]:
    """An (n, n) NTK Gram matrix for n latent seeds uniform on the sphere of ``radius`` (None: the
    setting's own, :func:`preset_radius`): the empirical NTK of one network of ``width`` hidden units
    (torch), or the analytic infinite-width kernel (width None). Settings: the one-hidden-layer
    ``appendix-g`` and ``fig2``, and ``deep`` (``depth`` hidden layers of ``width``, μ-parametrised
    with ``mu``, scalar output: the Gram matrix of each output component).
    Returns (gram, metadata with g1, g2 and their spreads)."""
    setup = preset_setup(setting, act, depth, mu)
    radius = preset_radius(setting, dim) if radius is None else float(radius)
    X = sample_sphere(n, dim, radius, seed)
    if width is None:
        gram = analytic_gram(setup, X)
    elif setting == "deep":
        gram = np.asarray(empirical_ntk_deep(X, setup, width=width, seed=seed + 1), dtype=np.float64)
    else:
        gram = np.asarray(empirical_ntk_one_hidden(X, width, setup, seed=seed + 1), dtype=np.float64)
    st = extract_g1_g2(gram)
    meta = {"setting": setting, "act": act, "n": n, "dim": dim, "radius": radius, "width": width or 0,
            "seed": seed, "g1": st.g1, "g2": st.g2, "g1_std": st.g1_std, "g2_std": st.g2_std}
    if setting == "deep":
        meta.update(depth=int(depth), mu=float(mu))
    return gram, meta


MAX_DEPTH = 10_000       # deeper kernels are numerically a constant matrix (each layer is a Python step)


def measure_cost(setting: str, n: int, dim: int, width: int | None, depth: int) -> tuple[float, float]:
    """(bytes, multiply-adds) of :func:`measure_gram`, from its arguments alone: the Gram matrix and its
    copies (n x n), the features of the hidden units (one-hidden-layer: in chunks of 4096 units; deep:
    every layer's activations and the W x W weights), the layer-by-layer kernel recursion."""
    layers = depth if setting == "deep" else 1
    gram = 6.0 * n * n * 8 + 8.0 * n * dim
    if width is None:                                           # analytic: a few n x n arrays per layer
        return gram, 20.0 * layers * n * n
    if setting == "deep":
        return (gram + 4.0 * (layers * width * width + width * (dim + 2)) + 8.0 * (layers + 1) * n * width,
                layers * (2.0 * n * width * width + n * n * width) + n * dim * width)
    chunk = min(width, 4096)
    return gram + 8.0 * (4 * n * chunk + chunk * (dim + 2)), 2.0 * n * n * width + n * dim * width


def write_gram(path: str, gram: np.ndarray, meta: dict, force: bool = False) -> None:
    """A Gram file that ``coupling.kind = "gram"`` reads (dataset 'gram', metadata as attributes)."""
    from .h5io import atomic_h5, check_writable

    def fill(f):
        f.create_dataset("gram", data=gram)
        for k, v in meta.items():
            f.attrs[k] = v
    check_writable(path, force)
    atomic_h5(path, fill, replace=force)
