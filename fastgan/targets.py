"""Target distributions: ring, grid, weighted Gaussian mixture, point set with masses,
array file (samples, images, or a mixture).

Every target is a weighted mixture of isotropic Gaussians (a point set is a mixture of zero-width
components; a file of samples is the empirical distribution, i.e. equal-weight zero-width
components on the samples). Sampling therefore has one code path (the ``sample_mixture`` op), and
the log-density is a stable log-sum-exp over components when every component has a width.
``modes`` are the component centres used by the mode-based observables (None for empirical data).

A file of images, an array (M, H, W), is the empirical distribution of its M images flattened row-major
to d = H W coordinates; the target remembers ``image_shape`` = (H, W) so that pictures can show
particles as images. ``target.normalize`` states how a file's points are rescaled before use (see
:func:`normalize_points`); nothing is rescaled implicitly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .arrayfile import read_arrays
from .errors import ConfigError


@dataclass(frozen=True)
class Target:
    """A target distribution.

    means:   (K, d) component centres        weights: (K,) normalised, > 0 sum
    stds:    (K,) isotropic std per component modes: (K, d) centres for observables, or None
    image_shape: (H, W) with H W = d when the points are images (a file of (M, H, W) images), else None
    """

    kind: str
    means: np.ndarray
    weights: np.ndarray
    stds: np.ndarray
    modes: np.ndarray | None
    image_shape: tuple | None = None

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_modes(self) -> int:
        return 0 if self.modes is None else self.modes.shape[0]

    @property
    def has_density(self) -> bool:
        return bool(np.all(self.stds > 0))

    @property
    def cumulative_weights(self) -> np.ndarray:
        """(K,) float64 cumulative weights with the last entry exactly 1 (for categorical sampling)."""
        c = np.cumsum(self.weights)
        c = c / c[-1]
        c[-1] = 1.0
        return c

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x) for x (..., d), a stable log-sum-exp over components (requires stds > 0)."""
        if not self.has_density:
            raise ValueError("log-density needs every component to have a positive std")
        x = np.asarray(x, dtype=np.float64)
        d2 = ((x[..., None, :] - self.means) ** 2).sum(-1)  # (..., K)
        s2 = self.stds ** 2
        with np.errstate(divide="ignore"):
            logw = np.log(self.weights)
        logc = logw - 0.5 * self.dim * np.log(2 * np.pi * s2) - d2 / (2 * s2)
        m = logc.max(-1, keepdims=True)
        return (m + np.log(np.exp(logc - m).sum(-1, keepdims=True)))[..., 0]

    def sample(self, n: int, seed: int = 0, iteration: int = 0, sub_step: int = 0) -> np.ndarray:
        """(n, d) samples with the simulator's counter-based generator (the same numbers a run uses)."""
        from .kernels import reference as ref
        from .kernels import rng

        kc = rng.base_keys([seed], rng.STREAM_TARGET_COMPONENT)
        kn = rng.base_keys([seed], rng.STREAM_TARGET_NOISE)
        out = ref.sample_mixture(kc, kn, iteration, sub_step, self.means[None], self.cumulative_weights[None],
                                 self.stds[None], n, np.float64)
        return out[0].T


def ring_modes(n_modes: int, radius: float) -> np.ndarray:
    """(K, 2) modes at angles 2 pi k / K, k = 0..K-1 (no repeated endpoint)."""
    ang = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def sphere_points(n: int, dim: int, radius: float, seed: int) -> np.ndarray:
    """(n, dim) points uniform on the sphere of ``radius`` (normalised Gaussians from the run's
    target-geometry stream: each seed is one trial of Becker et al. Fig. 3)."""
    from .kernels import rng
    z = rng.np_normal(rng.np_step_keys(rng.base_keys([seed], rng.STREAM_TARGET_GEOMETRY), 0, 0), n * dim)
    z = z.reshape(n, dim)
    return radius * z / np.linalg.norm(z, axis=1, keepdims=True)


def grid_modes(n_modes: int, spacing: float) -> np.ndarray:
    """(K, 2) modes on a centred square grid (25 modes, spacing 2 -> {-4,-2,0,2,4}^2)."""
    side = math.isqrt(n_modes)
    ax = (np.arange(side) - (side - 1) / 2) * spacing
    gx, gy = np.meshgrid(ax, ax, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _normalise(key, w, k):
    w = np.full(k, 1.0 / k) if w is None else np.asarray(w, dtype=np.float64)
    if w.shape != (k,) or np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(key, w.tolist(), f"expected {k} non-negative finite weights, not all zero")
    return w / w.sum()


DEFAULT_STD = {"ring": 0.02, "grid": 0.05, "mixture": 0.02, "points": 0.0, "circle": 0.0, "sphere": 0.0}
DEFAULT_MODES = {"ring": 8, "grid": 25, "circle": 4, "sphere": 10}
SPHERE_DIM = 10                 # the default dimension of a sphere target


def target_dim(t) -> int | None:
    """The dimension of the target described by a [target] section (None for a file: known once loaded)."""
    if t.kind in ("ring", "grid", "circle"):
        return 2
    if t.kind == "sphere":
        return SPHERE_DIM if t.dim is None else t.dim
    if t.kind == "mixture":
        return len(t.means[0])
    if t.kind == "points":
        return len(t.points[0])
    return None


def component_stds(t) -> tuple:
    """The widths of the target's components as the target will have them (a mixture's stds, else
    target.std or the kind's default), from a [target] section."""
    if t.kind == "mixture" and t.stds is not None:
        return tuple(t.stds)
    return (t.std if t.std is not None else DEFAULT_STD.get(t.kind, 0.0),)


def has_density(t) -> bool | None:
    """Whether every component of the target has a width (None: a file, known once loaded)."""
    if t.kind == "file":
        return None
    return min(component_stds(t)) > 0


def make_target(cfg) -> Target:
    """Build the target of a run from its resolved config (a ``Resolved``, or a ``Config`` whose
    ``resolved`` is used); errors name the offending key."""
    t = getattr(cfg, "resolved", cfg).target
    kind = t.kind
    if kind in ("ring", "grid"):
        means = ring_modes(t.n_modes, t.radius) if kind == "ring" else grid_modes(t.n_modes, t.spacing)
        return _mixture(kind, means, None, np.full(t.n_modes, t.std), modes=means)
    if kind == "mixture":
        means = np.asarray(t.means, dtype=np.float64)
        k = means.shape[0]
        stds = np.asarray(t.stds, dtype=np.float64) if t.stds is not None else np.full(k, t.std)
        return _mixture(kind, means, _normalise("target.weights", t.weights, k), stds, modes=means)
    if kind == "points":
        pts = np.asarray(t.points, dtype=np.float64)
        k = pts.shape[0]
        return _mixture(kind, pts, _normalise("target.masses", t.masses, k), np.full(k, t.std), modes=pts)
    if kind == "circle":   # isolated points model, Fig. 2: points evenly on a circle (unit radius by default)
        pts = ring_modes(t.n_modes, t.radius)
        return _mixture(kind, pts, _normalise("target.masses", t.masses, t.n_modes), np.full(t.n_modes, t.std),
                        modes=pts)
    if kind == "sphere":   # isolated points model, Fig. 3: random points on the unit sphere in d dimensions
        pts = sphere_points(t.n_modes, t.dim, t.radius, getattr(cfg, "resolved", cfg).training.seed)
        return _mixture(kind, pts, _normalise("target.masses", t.masses, t.n_modes), np.full(t.n_modes, t.std),
                        modes=pts)
    if kind == "file":
        return load_target_file(t.path, std=t.std, normalize=t.normalize, offset=t.offset, scale=t.scale)
    raise ConfigError("target.kind", kind, "unknown target")  # pragma: no cover


def check_against(target: Target, r) -> None:
    """The loaded target against the rest of a run's resolved config (a file's dimension and density are
    only known once it is loaded): the initial cloud's dimension, an exact p_data needs a density."""
    g, d = r.generator, target.dim
    if g.init_mean is not None and len(g.init_mean) != d:
        raise ConfigError("generator.init_mean", list(g.init_mean), f"needs {d} entries (the target dimension)")
    if g.init_points is not None and len(g.init_points[0]) != d:
        raise ConfigError("generator.init_points", list(g.init_points[0]), f"rows need {d} entries (the target "
                          "dimension)")
    if getattr(r.discriminator, "data_density", None) == "exact" and not target.has_density:
        raise ConfigError("discriminator.data_density", "exact", f"the target ({r.target.kind}) has no density "
                          "(zero-width points): use data_density = kde")


def _mixture(kind, means, weights, stds, modes, image_shape=None) -> Target:
    k = means.shape[0]
    w = np.full(k, 1.0 / k) if weights is None else weights
    return Target(kind, np.ascontiguousarray(means, dtype=np.float64), w, np.asarray(stds, dtype=np.float64),
                  None if modes is None else np.ascontiguousarray(modes, dtype=np.float64), image_shape)


def load_target_file(path: str, std: float | None = None, normalize: str = "none", offset: float | None = None,
                     scale: float | None = None) -> Target:
    """A target from an array file: samples or images (the empirical distribution, masses from an optional
    'weights' or 'masses' array, equal by default) or a mixture ('means' or 'points' [+ 'weights' or
    'masses', 'stds']). Points are (M, d), or (M, H, W) images flattened row-major (``image_shape`` = (H, W));
    a flattened (M, H W) file may give its 'image_shape' as an array [H, W]. The points are then rescaled
    as ``normalize`` says (:func:`normalize_points`); the file's 'stds' are in its own units (an affine
    map scales them by |scale|), ``std`` (target.std) is in the units of the rescaled points."""
    arrays = read_arrays(path, "target.path")
    if "means" in arrays or "points" in arrays:
        name = "means" if "means" in arrays else "points"
        means, shape = _points(path, arrays, name)
        k = means.shape[0]
        weights = _file_masses(path, arrays, k)
        if "stds" in arrays:
            stds = np.asarray(arrays["stds"], dtype=np.float64).ravel()
            if stds.shape != (k,) or np.any(stds < 0) or not np.all(np.isfinite(stds)):
                raise ConfigError("target.path", path, f"'stds' must hold {k} non-negative finite numbers")
            if normalize == "pixel" and np.any(stds > 0):
                raise ConfigError("target.normalize", normalize, f"{path!r} gives its components widths ('stds'), "
                                  "which a per-coordinate rescaling would make anisotropic: use none or affine")
            if normalize == "affine":
                stds = stds * abs(scale)
        else:
            stds = np.full(k, 0.0 if std is None else std)
        means = normalize_points(means, normalize, offset, scale)
        return _mixture("file", means, weights, stds, modes=means, image_shape=shape)
    if "images" in arrays and "samples" in arrays:
        raise ConfigError("target.path", path, "holds both 'images' and 'samples': keep one of them")
    if "samples" not in arrays and "images" not in arrays:
        raise ConfigError("target.path", path, "expected an array of samples ('samples' or 'images') or a "
                          "'means' array")
    samples, shape = _points(path, arrays, "images" if "images" in arrays else "samples")
    k = samples.shape[0]
    weights = _file_masses(path, arrays, k)
    samples = normalize_points(samples, normalize, offset, scale)
    return _mixture("file", samples, weights, np.full(k, 0.0 if std is None else std), modes=None,
                    image_shape=shape)


def normalize_points(x: np.ndarray, how: str = "none", offset: float | None = None,
                     scale: float | None = None) -> np.ndarray:
    """A file target's points (M, d) float64 rescaled as ``target.normalize`` says:

    none    unchanged (the same array)
    pixel   per coordinate, (x - mean) / std over the M points (population std); a coordinate constant
            over the points (std 0) is only centred: it becomes exactly 0, nothing is divided by 0
    affine  (x - offset) * scale (offset default 0)
    """
    if how == "none":
        return x
    if how == "affine":
        return (x - (0.0 if offset is None else float(offset))) * float(scale)
    if how == "pixel":
        mean = x.mean(0)
        centred = x - mean
        std = np.sqrt((centred * centred).mean(0))
        constant = np.all(x == x[:1], axis=0) | ~(std > 0)
        out = centred / np.where(constant, 1.0, std)
        out[:, constant] = 0.0
        return out
    raise ConfigError("target.normalize", how, "must be one of none, pixel, affine")  # pragma: no cover


def _points(path, arrays, name) -> tuple[np.ndarray, tuple | None]:
    """(points (M, d), image shape (H, W) or None) of the file's array ``name``: (M, d), or (M, H, W) images
    flattened row-major; checked (shape, finite values, a declared 'image_shape')."""
    a = np.asarray(arrays[name], dtype=np.float64)
    if a.ndim not in (2, 3) or 0 in a.shape:
        raise ConfigError("target.path", path, f"'{name}' should be a 2-D array (points x dimensions) or a 3-D "
                          f"array (images x height x width), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ConfigError("target.path", path, f"'{name}' holds NaN or Inf")
    shape = None
    if a.ndim == 3:
        shape = (int(a.shape[1]), int(a.shape[2]))
        a = a.reshape(a.shape[0], -1)
    if "image_shape" in arrays:
        given = np.asarray(arrays["image_shape"]).ravel()
        ok = given.size == 2 and np.all(given >= 1) and np.all(given == np.round(given))
        if not ok or int(given[0]) * int(given[1]) != a.shape[1] or (shape is not None and tuple(given) != shape):
            raise ConfigError("target.path", path, f"'image_shape' should be two positive integers [H, W] with "
                              f"H W = {a.shape[1]} (the points' dimension), got {given.tolist()}")
        shape = (int(given[0]), int(given[1]))
    return a, shape


def _file_masses(path, arrays, k) -> np.ndarray:
    """The normalised masses of a file's k points: its 'weights' (or else 'masses') array, equal by default."""
    name = "weights" if "weights" in arrays else "masses" if "masses" in arrays else None
    if name is None:
        return _normalise("target.path", None, k)
    w = np.asarray(arrays[name], dtype=np.float64)
    if w.ndim > 1 and w.size == k:
        w = w.ravel()
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError("target.path", path, f"'{name}' should hold {k} non-negative finite numbers (one per "
                          f"point), not all zero; got shape {w.shape}")
    return w / w.sum()


def stack_targets(targets: list[Target]):
    """Ensemble arrays: means (B, K, d), cumulative weights (B, K), stds (B, K) (same K and d)."""
    means = np.stack([t.means for t in targets])
    cum = np.stack([t.cumulative_weights for t in targets])
    stds = np.stack([t.stds for t in targets])
    return means, cum, stds
