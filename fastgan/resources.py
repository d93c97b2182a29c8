"""Resources checked before they are allocated: the memory and the work a run (or an ensemble, or a
sweep) will need, estimated from its resolved config alone, against the memory available and a bound
on planned work. A run above either is refused with one line naming the key that makes it so big.

The estimates are upper-bound-ish sums of the arrays a run holds (particles and their velocity, the
discriminator state from its family, target batches and points, recorded observables and histograms,
particle and discriminator snapshots, an explicit or analytic Gram matrix); the work is the
multiply-adds of the discriminator steps and generator steps over the whole run. ``FASTGAN_ALLOW_HUGE=1``
lifts the work bound (never the memory check) for a run that is meant to be that big.
"""

from __future__ import annotations

import math

from .memory import GiB, ResourceError, available_memory  # noqa: F401 - re-exported

WORK_LIMIT = 1e15           # multiply-adds of one run (~6 h at 50 GFLOP/s): above it, FASTGAN_ALLOW_HUGE=1
RUNS_LIMIT = 10 ** 6        # runs of one sweep


def allow_huge() -> bool:
    from . import environment
    return environment.get("FASTGAN_ALLOW_HUGE")


def _target_size(r) -> tuple[int, int]:
    """(components K, dimension d) of a run's target from its resolved config (a file: from its headers)."""
    t = r.target
    if t.kind in ("mixture",):
        return len(t.means), len(t.means[0])
    if t.kind == "points":
        return len(t.points), len(t.points[0])
    if t.kind == "file":
        return _file_size(t.path)
    return int(t.n_modes), int(r.dim)


def _file_size(path: str) -> tuple[int, int]:
    """(points, dimension) of a file target from its headers (what it would be loaded as)."""
    from .arrayfile import array_shapes
    from .errors import ConfigError
    try:
        shapes = array_shapes(path, "target.path")
    except ConfigError:
        return 1, 1                                     # the loader names the problem
    shape = shapes.get("means", shapes.get("points", shapes.get("images", shapes.get("samples"))))
    if shape is None or len(shape) not in (2, 3):              # images (M, H, W): d = H W
        return 1, 1
    return max(1, int(shape[0])), max(1, int(math.prod(int(n) for n in shape[1:])))


def _snapshots(r) -> int:
    s = r.record.snapshots
    return len(s) if isinstance(s, tuple) else int(s)


def run_memory(r) -> list[tuple[float, str]]:
    """[(bytes, key)] of what one run holds, largest first; ``r`` resolved."""
    item = 8 if r.precision == "float64" else 4
    K, d = _target_size(r)
    N, M, T = r.generator.n_particles, r.training.batch_size, r.training.n_iterations
    records = T // r.record.every + 2
    S = min(_snapshots(r), T + 1)
    fam = r.family
    state = fam.state_params(r, _SizeOnly(K, d)) if fam is not None else 0
    terms = [(4.0 * N * d * item, "generator.n_particles"),
             (float(fam.work_memory(r, _SizeOnly(K, d))) if fam is not None else 0.0, "generator.n_particles"),
             (1.0 * M * d * item, "training.batch_size"),
             (4.0 * K * d * 8, "target.n_modes" if r.target.kind in ("ring", "grid", "circle", "sphere")
              else "target.dim"),
             (3.0 * state * item, _state_key(r)),
             (records * (16 + 2 * K) * 8.0, "record.every"),
             (S * (N * d * item + (state * item if r.record.discriminator else 0)), "record.snapshots")]
    c = r.coupling
    if c.kind in ("gram", "spatial"):
        terms.append((3.0 * N * N * 8, "generator.n_particles"))
    if c.kind == "gram" and c.gram_arch is not None:
        terms.append((1.0 * N * c.gram_dim * 8, "coupling.gram_dim"))
    return sorted(terms, reverse=True)


def _state_key(r) -> str:
    """The discriminator key that sets the size of its state (for the error message)."""
    disc = r.discriminator
    for key in ("width", "n_features", "history", "freq_count"):
        if hasattr(disc, key) and getattr(disc, key) is not None:
            return f"discriminator.{key}"
    return "training.batch_size"


class _SizeOnly:
    """A stand-in for a Target with only its shape (state sizes need K and d, not the points)."""

    def __init__(self, K: int, d: int):
        self.n_components, self.dim = K, d
        self.has_density = True


def run_work(r) -> float:
    """Multiply-adds of the whole run (the discriminator steps on N + M samples, the generator's
    gradient on N, each touching the discriminator's state)."""
    K, d = _target_size(r)
    N, M = r.generator.n_particles, r.training.batch_size
    per_sample = max(1, r.family.sample_work(r, _SizeOnly(K, d)))
    per_iteration = (r.training.n_disc * (N + M) + N) * per_sample
    if r.coupling.kind in ("gram", "spatial"):
        per_iteration += N * N * d
    work = r.training.n_iterations * per_iteration
    c = r.coupling
    if c.kind == "gram" and c.gram_arch is not None:
        work += N * N * (c.gram_dim + 10 * (c.gram_depth or 1))
    return float(work)


def _show(key: str, r) -> str:
    sec, _, name = key.partition(".")
    value = getattr(getattr(r, sec), name, None) if name else None
    return f"{key} = {value}" if value is not None else key


def memory_needed(r, copies: int = 1, backend: str | None = None) -> float:
    """Bytes that ``copies`` runs like ``r`` (resolved) hold together on ``backend`` (None: the numpy
    reference, whose temporaries are the largest): their state and records, and the family's scratch."""
    need = copies * sum(b for b, _ in run_memory(r))
    if r.family is not None:
        need += r.family.scratch_memory(r, _SizeOnly(*_target_size(r)), backend or "numpy", copies)
    return float(need)


def check_run(r, copies: int = 1, backend: str | None = None) -> None:
    """ResourceError unless ``copies`` runs like ``r`` (resolved) fit in memory on ``backend`` (None: the
    numpy reference, whose temporaries are the largest) and the run's work is within the bound."""
    need = memory_needed(r, copies, backend)
    avail = available_memory()
    if need > avail:
        raise ResourceError(f"{_show(_blame(r), r)}: the run{'s' if copies > 1 else ''} would need about "
                            f"{need / GiB:.3g} GiB of memory, {avail / GiB:.3g} GiB are available")
    check_work(r)


# typical sizes of the work factors (the paper's phase-diagram run): the one furthest above its typical
# size is named in the error
TYPICAL = {"training.n_iterations": 3000, "training.n_disc": 5, "generator.n_particles": 200,
           "training.batch_size": 200, "coupling.gram_dim": 256, "coupling.gram_depth": 6,
           "discriminator.width": 2048, "discriminator.depth": 4, "discriminator.n_features": 1024,
           "discriminator.history": 4096, "discriminator.freq_count": 25, "target.n_modes": 25, "target.dim": 10,
           "record.snapshots": 100}


def check_dimension(d: int | None) -> None:
    """ResourceError for a data dimension whose mere vectors (a mean, a point) do not fit in memory."""
    if d is not None and 64.0 * d > available_memory():
        raise ResourceError(f"target.dim = {d}: vectors of {d} coordinates do not fit in the memory available")


def check_target(r) -> None:
    """ResourceError before a target of K points in d dimensions is built beyond the memory available."""
    K, d = _target_size(r)
    need, avail = 6.0 * K * d * 8, available_memory()
    if need > avail:
        raise ResourceError(f"{_show(_blame(r, ('target.n_modes', 'target.dim')), r)}: the target's {K} points in {d} dimensions would need about "
                            f"{need / GiB:.3g} GiB of memory, {avail / GiB:.3g} GiB are available")


def check_ensemble(resolved: list, backend: str | None = None) -> None:
    """check_run for an ensemble: its runs share shapes (memory: B copies of the first), each its work."""
    check_run(resolved[0], copies=len(resolved), backend=backend)
    for r in resolved[1:]:
        check_work(r)


def check_work(r) -> None:
    work = run_work(r)
    if work > WORK_LIMIT and not allow_huge():
        raise ResourceError(f"{_show(_blame(r), r)}: the run would take about {work:.2g} multiply-adds (more than "
                            f"{WORK_LIMIT:.0e}, hours to years of compute); set FASTGAN_ALLOW_HUGE=1 to run it anyway")


def _blame(r, keys=None) -> str:
    """The size (among ``keys``, default all) furthest above its typical value."""
    best, key = -math.inf, (keys or ("training.n_iterations",))[0]
    for dotted, typical in TYPICAL.items():
        if keys is not None and dotted not in keys:
            continue
        sec, name = dotted.split(".")
        value = getattr(getattr(r, sec), name, None)
        if isinstance(value, (int, float)) and value > 0 and math.log(value / typical) > best:
            best, key = math.log(value / typical), dotted
    return key
