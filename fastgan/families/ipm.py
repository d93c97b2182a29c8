"""What the two families of the isolated points model share (Becker et al., NeurIPS 2022: GAN
training with kernel (RBF) discriminators): ``rff`` and ``kernel`` see the target's points x_i
with their masses p_i exactly (no sampling) and the generated points with fixed masses p~_j; the
generator moves by x~_j <- x~_j + eta_g p~_j grad f(x~_j) (through the coupling, whose default
g2/g1 = 0 is the identity). Their keys, defaults, checks and observables:

w2                W2 between the generated and the true measure (Fig. 3a)
escaped_fraction  mass-free fraction of generated points with |x| > record.escape_radius (Fig. 3b)
excess_mass       histogram Delta_i = q_i - sum_{j in N_i} p_j (eq. 15) per true point
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..targets import component_stds
from .base import Family, Histogram, Observer, rates
from .common import ESCAPE_RADIUS, GEN_MASSES, LAM
from .trig import lam_penalty

KEYS = {"training": {"lam": LAM}, "generator": {"masses": GEN_MASSES}, "record": {"escape_radius": ESCAPE_RADIUS}}
LAM_DEFAULT = 0.01
RATE = 1e-3


class IsolatedPoints(Family):
    """The shared part of the rff and kernel families (subclassed by each)."""

    plot_observables = ("w2", "escaped_fraction", "nearest_mode_distance")
    observables = ("w2", "escaped_fraction")
    legacy_identity = True
    defaults = {"training.n_disc": 1, "training.lr_disc": RATE, "training.lr_gen": RATE}
    computed = {"generator.init_std": "1/sqrt(d), E|x|^2 = 1 as in the isolated points model"}

    def auto(self, cfg, dim):
        # E|x|^2 = 1 at the start: N(0, I/2) in d = 2 (the isolated points model's experiments); a
        # file target's dimension is unknown before it is loaded: 0.1 as the other families
        return {**self.defaults, "generator.init_std": 1.0 / math.sqrt(dim) if dim else 0.1}

    def validate(self, cfg, dim):
        g = cfg.generator
        if g.masses is not None and len(g.masses) != g.n_particles:
            raise ConfigError("generator.masses", list(g.masses), f"needs generator.n_particles = {g.n_particles} entries")
        std = max(component_stds(cfg.target))
        if std > 0:
            raise ConfigError("target.std", std, f"discriminator.kind = {self.name} uses the target's points exactly "
                              "(isolated points model): set target.std = 0 or use a points/circle/sphere target")

    def resolve(self, d, cfg, dim):
        g, tr = d["generator"], d["training"]
        if g["masses"] is None:
            g["masses"] = [1.0 / g["n_particles"]] * g["n_particles"]
        if tr["lam"] is None:
            tr["lam"] = LAM_DEFAULT

    def work_memory(self, r, target):
        """The W2 transport problem at every record: costs and the plan's N K entries (and the LP's)."""
        return 6 * 8 * r.generator.n_particles * target.n_components

    def title(self, r, ratio):
        d = r.discriminator
        bw = ",".join(f"{b:g}" for b in d.bandwidth)
        return f"{d.kind} {d.kernel} sigma={bw} N={r.generator.n_particles} {rates(r)} lam={r.training.lam:g}"


class IPMModel:
    """What the rff and kernel models share: the target's points seen exactly, the L2 coefficient
    training.lam, the generated points' fixed masses."""

    samples_target = False
    target_points = True

    def __init__(self, ens):
        self.ens, self.dim = ens, ens.dim

    def penalty(self) -> np.ndarray:
        return lam_penalty(self.ens)

    def generated_masses(self) -> np.ndarray:
        """(B, N) the fixed masses of the generated points (resolved: default 1/N)."""
        return np.array([r.generator.masses for r in self.ens.resolved], dtype=np.float64)


class IPMObserver(Observer):
    """w2, escaped_fraction and the excess-mass histogram of every run (host computations)."""

    scalars = ("w2", "escaped_fraction")

    def __init__(self, ens, extra_provenance=None):
        self.ens = ens
        self.masses = ens.gen_masses                                                           # (B, N)
        self.radius = np.array([r.record.escape_radius for r in ens.resolved])
        self.histograms = {"excess_mass": Histogram(ens.points.shape[1])}
        self.extra = extra_provenance

    def take(self, t, p, X, alive):
        ens = self.ens
        Xh = ens.ops.to_host(X).transpose(0, 2, 1)
        return ipm_observables(Xh, self.masses, ens.points, ens.weights, self.radius)

    def provenance(self, b):
        return {} if self.extra is None else self.extra(b)


def wasserstein2(x, p, y, q) -> float:
    """W2 between the discrete measures sum_j p_j delta(x_j) and sum_i q_i delta(y_i) (masses normalised to
    probabilities; Fig. 3a of Becker et al.): an exact assignment when the counts are equal and the masses
    uniform, else the exact optimal transport (POT's network simplex when POT is installed, else a sparse
    linear programme: memory O(N K), never the dense (N + K) x NK constraint matrix).

    Never raises: NaN when a position or a mass is not finite or the masses sum to zero; coordinates
    too large to square (|x| ~ 1e154) are scaled first (W2 is 1-homogeneous in the positions)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        return float("nan")
    if p.sum() <= 0 or q.sum() <= 0 or x.size == 0 or y.size == 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    big = max(float(np.abs(x).max()), float(np.abs(y).max()))
    s = big if big > 1e100 else 1.0
    xs, ys = x / s, y / s
    cost = ((xs[:, None, :] - ys[None, :, :]) ** 2).sum(-1)
    n, k = cost.shape
    if n == k and np.allclose(p, 1.0 / n, rtol=1e-12, atol=0) and np.allclose(q, 1.0 / k, rtol=1e-12, atol=0):
        from scipy.optimize import linear_sum_assignment
        rows, cols = linear_sum_assignment(cost)
        return float(s * np.sqrt(cost[rows, cols].mean()))
    value = _transport(p, q, cost)
    return float("nan") if value != value else float(s * np.sqrt(max(value, 0.0)))


def _transport(p, q, cost) -> float:
    """min_T <T, cost> over couplings of p (n,) and q (k,) (NaN if the solver fails)."""
    try:
        import ot
    except ImportError:
        ot = None
    if ot is not None:
        value, log = ot.emd2(p, q, cost, numItermax=10 ** 7, log=True)
        return float(value) if log.get("warning") is None else float("nan")
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix
    n, k = cost.shape
    var = np.arange(n * k)
    rows = np.concatenate([var // k, n + var % k])              # sum_i T_ji = p_j, sum_j T_ji = q_i
    a_eq = coo_matrix((np.ones(2 * n * k), (rows, np.concatenate([var, var]))), shape=(n + k, n * k)).tocsr()
    res = linprog(cost.ravel(), A_eq=a_eq, b_eq=np.concatenate([p, q]), bounds=(0, None), method="highs")
    return float(res.fun) if res.status == 0 else float("nan")


def excess_mass(x, p, y, q) -> np.ndarray:
    """Delta_i = q_i - sum_{j in N_i} p_j (eq. 15; q: true masses, p: generated masses).
    The isolated region V_i is the ball around y_i of radius half the smallest distance between
    true points (disjoint balls, like the circles of Fig. 1; the whole space for a single
    true point): a generated point outside every ball counts for no region."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    near = d2.argmin(1)
    if y.shape[0] > 1:
        gaps = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        radius2 = gaps[~np.eye(y.shape[0], dtype=bool)].min() / 4
        inside = d2[np.arange(x.shape[0]), near] < radius2
    else:
        inside = np.ones(x.shape[0], dtype=bool)
    w = np.where(inside, np.asarray(p, dtype=np.float64), 0.0)
    return np.asarray(q, dtype=np.float64) - np.bincount(near, weights=w, minlength=y.shape[0])


def ipm_observables(X, gen_masses, points, masses, radius) -> tuple[dict, dict]:
    """Per-run observables from host arrays X (B, N, d), gen_masses (B, N), points (B, K, d),
    masses (B, K): scalars w2 and escaped_fraction (|x| > radius, Fig. 3b), histogram excess_mass."""
    B = X.shape[0]
    w2 = np.array([wasserstein2(X[b], gen_masses[b], points[b], masses[b]) for b in range(B)])
    esc = (np.sqrt((X.astype(np.float64) ** 2).sum(-1)) > np.asarray(radius)[:, None]).mean(1)
    exc = np.stack([excess_mass(X[b], gen_masses[b], points[b], masses[b]) for b in range(B)])
    return {"w2": w2, "escaped_fraction": esc}, {"excess_mass": exc}
