"""Theory of the linear discriminators (isolated points model of Becker et al., Durr et al. App. C), float64.

Every assertion is a closed form: the discriminator's fixed point and contraction rate with a
frozen generator, the stability boundary of eq. 19, the approximate-mode-collapse ring radii of
Theorem 2, the travelling-wave speed of Theorem 3, and the Fourier rates gamma(|k|) of eq. C3-C4.
"""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

import fastgan
from fastgan.engine import Ensemble, _LoopState
from fastgan.kernels import fourier_grid, linear_numpy
from fastgan.families.fourier import fourier_axis, fourier_gamma

# Short histories are deliberate here: a moving point's old terms vanish through the kernel
# (exp(-m^2 v^2 / 2 sigma^2)), not through the decay the truncation warning measures.
pytestmark = pytest.mark.filterwarnings("ignore:discriminator.history")


def _ipm(kind, points, masses_gen, init, T=10, **kw):
    d = {"discriminator.kind": kind, "target.kind": "points", "target.points": points,
         "generator.n_particles": len(masses_gen), "generator.masses": masses_gen, "generator.init_points": init,
         "training.n_iterations": T, "precision": "float64", "record.every": max(1, T)}
    d.update(kw)
    return fastgan.default_config(**d)


def _trajectory(cfg, T, setup=None):
    ens = Ensemble([cfg], "numpy")
    st = _LoopState(ens)
    if setup is not None:
        setup(ens, st)
    xs = []
    for it in range(T):
        ens.advance(st, it)
        xs.append(st.X[0].T.copy())
    return np.array(xs), ens, st


POINTS = [[0.0, 0.0], [1.5, 0.2], [-0.4, 1.1]]
GEN = [[0.3, -0.2], [1.0, 1.0]]


@pytest.mark.parametrize("features", ["cos", "cossin"])
def test_rff_frozen_generator_contracts_to_fixed_point_at_exact_rate(features):
    ed, lam = 0.3, 0.7
    cfg = _ipm("rff", POINTS, [0.25, 0.6], GEN, **{"target.masses": [0.2, 0.5, 0.3], "training.lr_disc": ed,
               "training.lr_gen": 0.0, "training.lam": lam, "discriminator.n_features": 64,
               "discriminator.features": features, "discriminator.bandwidth": [0.5, 2.0]})
    ens = Ensemble([cfg], "numpy")
    st = _LoopState(ens)
    fam = ens.model
    feats = lambda x: fam.amp[0] * np.cos(x @ fam.omega[0] + fam.phase[0])      # noqa: E731  a(x) (n, L)
    p_true = np.array([0.2, 0.5, 0.3])
    theta_star = (p_true @ feats(np.array(POINTS)) - np.array([0.25, 0.6]) @ feats(np.array(GEN))) / lam
    beta = 1 - ed * lam
    for k in range(1, 9):
        ens.advance(st, k - 1)
        dev = st.p["theta"][0] - theta_star
        np.testing.assert_allclose(dev, -beta ** k * theta_star, rtol=1e-11, atol=1e-13)
    np.testing.assert_array_equal(st.X[0].T, np.array(GEN))          # the generator is frozen
    if features == "cossin":   # [cos, sin] pairs: a(x).a(x) = sum over blocks of 1, exactly
        a = feats(np.array(GEN))
        np.testing.assert_allclose((a * a).sum(1), 2.0, rtol=1e-12)


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "rq"])
def test_exact_kernel_frozen_generator_contracts_at_exact_rate(kernel):
    ed, lam, sig = 0.2, 1.3, [0.7, 1.9]
    cfg = _ipm("kernel", POINTS, [0.25, 0.6], GEN, **{"target.masses": [0.2, 0.5, 0.3], "training.lr_disc": ed,
               "training.lr_gen": 0.0, "training.lam": lam, "discriminator.kernel": kernel,
               "discriminator.bandwidth": sig, "discriminator.rq_alpha": 1.7, "discriminator.history": 50})
    ens = Ensemble([cfg], "numpy")
    st = _LoopState(ens)
    probes = np.random.default_rng(0).normal(size=(1, 2, 13))
    bw = np.array([sig])
    f_star = (linear_numpy.kernel_sum(probes, np.array(POINTS).T[None], np.array([[0.2, 0.5, 0.3]]), bw, kernel, 1.7)
              - linear_numpy.kernel_sum(probes, np.array(GEN).T[None], np.array([[0.25, 0.6]]), bw, kernel, 1.7)) / lam
    beta = 1 - ed * lam
    for k in range(1, 12):
        ens.advance(st, k - 1)
        f_k = ens.disc.forward(st.p, probes)
        np.testing.assert_allclose(f_k - f_star, -beta ** k * f_star, rtol=1e-10, atol=1e-13)


def test_rff_with_many_features_follows_the_exact_kernel():
    """Both representations of the same discriminator: RFF -> exact kernel as D grows (1/sqrt(D))."""
    common = {"training.lr_disc": 0.05, "training.lr_gen": 0.05, "training.lam": 0.1, "discriminator.bandwidth": 0.8}
    init = [[0.6, 0.1], [0.2, 0.9], [-0.8, -0.3]]
    pts = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    exact, _, _ = _trajectory(_ipm("kernel", pts, [1 / 3] * 3, init, **common, **{"discriminator.history": 600}), 400)
    errs = []
    for D in (256, 16384):
        rff, _, _ = _trajectory(_ipm("rff", pts, [1 / 3] * 3, init, **common, **{"discriminator.n_features": D}), 400)
        errs.append(np.abs(rff - exact).max())
    assert errs[1] < 0.03 and errs[1] < errs[0] / 3, errs


# --------------------------------------------------------------------------- eq. 19 stability

@pytest.mark.parametrize("side", [1.2, 0.8])
def test_single_point_stability_boundary_eq19(side):
    """One generated point of mass p~ = 1.5 on a true point of mass 1: stable iff
    mu p~ (p~ - p) < lam^2 sigma^2; 20% on either side of the boundary the point converges or spirals out."""
    pt, p, sig, ed, eg = 1.5, 1.0, 1.0, 0.01, 0.01
    lam = side * math.sqrt((eg / ed) * pt * (pt - p)) / sig
    cfg = _ipm("kernel", [[0.0, 0.0]], [pt], [[0.01, 0.005]], **{"training.lr_disc": ed, "training.lr_gen": eg,
               "training.lam": lam, "discriminator.bandwidth": sig})
    xs, ens, _ = _trajectory(cfg, 2000)
    r = np.linalg.norm(xs[:, 0], axis=1)
    assert (np.diff(np.sign(xs[:, 0, 0])) != 0).sum() >= 4            # complex eigenvalues: it spirals
    if side > 1:
        assert r[-1] < 0.02 * r[0]
    else:
        assert r[-1] > 8 * r[0]


# --------------------------------------------------------------------------- Theorem 2 ring radii

@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("sig", [0.5, 1.0])
def test_equal_mass_points_settle_on_the_ring_radius(n, sig):
    """n points of mass p~ = 1 on a true point of mass 1 (Delta < 0) settle on a regular n-gon of radius
    rho sigma with p e^{-rho^2/2} = p~ sum_j (1 - cos 2 pi j/n) e^{-rho^2 (1 - cos 2 pi j/n)}."""
    c = 1 - np.cos(2 * np.pi * np.arange(1, n) / n)
    rho = brentq(lambda r: np.exp(-r * r / 2) - (c * np.exp(-r * r * c)).sum(), 1e-3, 5)
    if n == 2:
        assert rho == pytest.approx(math.sqrt(2 / 3 * math.log(2)), rel=1e-9)
    ang = 2 * np.pi * np.arange(n) / n + 0.3
    init = (0.2 * sig * np.stack([np.cos(ang), np.sin(ang)], 1) + [0.01 * sig, 0]).tolist()
    cfg = _ipm("kernel", [[0.0, 0.0]], [1.0] * n, init, **{"training.lr_disc": 0.05, "training.lr_gen": 0.01,
               "training.lam": 1.0, "discriminator.bandwidth": sig})
    xs, _, _ = _trajectory(cfg, 4000)
    radii = np.linalg.norm(xs[-1], axis=1) / sig
    np.testing.assert_allclose(radii, rho, rtol=0.01)


# --------------------------------------------------------------------------- Theorem 3 travelling wave

def _series_speed(ed, eg, lam, sig, pt=1.0):
    beta, m = 1 - ed * lam, np.arange(1, 200_000)
    return brentq(lambda v: ed * eg * pt ** 2 / sig ** 2 * np.sum(beta ** (m - 1) * m * np.exp(-(m * v) ** 2 / (2 * sig ** 2))) - 1,
                  1e-9, 100 * sig)


@pytest.mark.parametrize("ed,eg,lam,sig", [(0.05, 0.05, 0.01, 1.0), (0.05, 0.1, 0.5, 1.0), (0.02, 0.1, 0.1, 0.5)])
@pytest.mark.parametrize("start", [0.8, 1.2])
def test_isolated_point_travels_at_the_series_speed(ed, eg, lam, sig, start):
    """An isolated point given a straight-line history at speed start * v settles at the speed v of
    1 = (eta_d eta_g p~^2 / sigma^2) sum_m beta^{m-1} m exp(-m^2 v^2 / 2 sigma^2) (simultaneous updates)."""
    v = _series_speed(ed, eg, lam, sig)
    if lam == 0.01:
        assert v == pytest.approx(math.sqrt(ed * eg), rel=0.01)      # the lam -> 0 limit p~ sqrt(eta_d eta_g)
    H = 600
    cfg = _ipm("kernel", [[1000.0, 0.0]], [1.0], [[0.0, 0.0]], **{"training.lr_disc": ed, "training.lr_gen": eg,
               "training.lam": lam, "discriminator.bandwidth": sig, "discriminator.history": H,
               "training.update_order": "simultaneous"})
    beta = 1 - ed * lam

    def history(ens, st):      # slot s holds position x^{-(H - s)}; the next step overwrites slot 0
        m = H - np.arange(H)
        st.p["centres"][0, 0, 1:] = -m * start * v
        st.p["weights"][0, 1:] = -ed * beta ** (m - 1)

    xs, _, _ = _trajectory(cfg, 500, history)
    speed = np.diff(xs[:, 0, 0])
    assert abs(speed[0] / v - 1) > 0.05                               # it did start off the travelling wave
    assert speed[-100:].mean() == pytest.approx(v, rel=0.01)
    assert np.abs(xs[:, 0, 1]).max() == 0.0                            # a straight line


# --------------------------------------------------------------------------- Fourier (Algorithm 2)

def test_fourier_grid_and_rates_of_the_paper():
    ax = fourier_axis(25, 0.01, 20.0, "both")
    assert ax.size == 50 and ax[0] == pytest.approx(0.01) and ax[24] == pytest.approx(20.0)
    np.testing.assert_allclose(np.diff(np.log(ax[:25])), np.log(2000) / 24)
    np.testing.assert_allclose(ax[25:], -ax[:25])
    k = np.array([0.05, 0.1, 1.0, 2.0, 20.0])
    np.testing.assert_allclose(fourier_gamma("pow", k), [1e3, 1e3, 1.0, 0.125, 20.0 ** -3])
    np.testing.assert_allclose(fourier_gamma("exp", k), 668.8 * np.exp(-2.05 * k))
    np.testing.assert_allclose(fourier_gamma("const", k, 3.5), 3.5)
    cfg = fastgan.default_config(**{"discriminator.kind": "fourier", "training.n_iterations": 1})
    fam = Ensemble([cfg], "numpy").model
    assert fam.omega.shape == (1, 2, 2500)


@pytest.mark.parametrize("dim", [1, 2])
def test_fourier_frozen_generator_each_frequency_contracts_at_its_own_rate(dim):
    """With a one-point target (std 0) and frozen particles, every weight relaxes to
    w* = -(1/lam)(<feature>_gen - feature(target)) by exactly (1 - alpha_D gamma(|k|) lam) per step."""
    ad, lam = 1e-3, 0.5
    pts = [[0.7] * dim]
    cfg = fastgan.default_config(**{"discriminator.kind": "fourier", "target.kind": "points", "target.points": pts,
                                    "generator.n_particles": 5, "training.lr_gen": 0.0, "training.lr_disc": ad,
                                    "training.lam": lam, "training.n_disc": 1, "discriminator.freq_count": 6,
                                    "training.n_iterations": 5, "precision": "float64"})
    ens = Ensemble([cfg], "numpy")
    st = _LoopState(ens)
    X = st.X[0].T.copy()
    fam = ens.model
    om = fam.omega[0]                                                     # (d, K^d)
    feats = lambda x: np.concatenate([np.sin(x @ om), np.cos(x @ om)], 1)   # noqa: E731  [sin block, cos block]
    w_star = -(feats(X).mean(0) - feats(np.array(pts))[0]) / lam
    rate = np.concatenate([fam.gamma[0]] * 2)
    for k in range(1, 6):
        ens.advance(st, k - 1)
        if dim == 2:
            w = np.concatenate([st.p["w1"][0].ravel(), st.p["w2"][0].ravel()])
        else:
            w = st.p["theta"][0]
        np.testing.assert_allclose(w - w_star, -(1 - ad * rate * lam) ** k * w_star, rtol=1e-9, atol=1e-14)


def test_fourier_separable_ops_equal_the_generic_reference(rng):
    B, K1, K2, N, M = 3, 7, 5, 11, 9
    w1, w2 = rng.normal(size=(2, B, K1, K2))
    u, v = rng.normal(size=(B, K1)), rng.normal(size=(B, K2))
    rate = rng.uniform(size=(B, K1, K2))
    xg, xt = rng.normal(size=(B, 2, N)), rng.normal(size=(B, 2, M))
    wg, wt = np.full((B, N), 1 / N), np.full((B, M), 1 / M)
    lr, lam = np.array([0.1, 0.0, 0.3]), np.array([0.1, 0.2, 0.3])
    theta, omega, phase, amp, rt = fourier_grid.expand(w1, w2, u, v, rate)
    np.testing.assert_allclose(fourier_grid.fourier_grid_grad_x(w1, w2, u, v, xg),
                               linear_numpy.trig_grad_x(theta, omega, phase, amp, xg), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fourier_grid.fourier_grid_forward(w1, w2, u, v, xg),
                               linear_numpy.trig_forward(theta, omega, phase, amp, xg), rtol=1e-12, atol=1e-12)
    a1, a2 = w1.copy(), w2.copy()
    fourier_grid.fourier_grid_disc_step(a1, a2, u, v, rate, xg, wg, xt, wt, lr, lam)
    linear_numpy.trig_disc_step(theta, omega, phase, amp, rt, xg, wg, xt, wt, lr, lam)
    b1, b2 = fourier_grid.collapse(theta, K1, K2)
    np.testing.assert_allclose(a1, b1, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a2, b2, rtol=1e-12, atol=1e-13)
    assert np.array_equal(a1[1], w1[1]) and np.array_equal(a2[1], w2[1])


@pytest.mark.slow
def test_fourier_defaults_converge_at_small_ratio_and_collapse_at_large():
    """The calibrated Algorithm 2 defaults (alpha_D = 1e-3, lambda = 1, alpha_G = 1e-3, gamma_pow):
    at n_disc = 4 the ring is covered at g2/g1 = 0.01 and collapses at 0.3 (README table)."""
    base = {"discriminator.kind": "fourier", "training.n_disc": 4, "training.n_iterations": 2000,
            "record.every": 100, "record.snapshots": 0, "record.discriminator": False}
    runs = fastgan.simulate_ensemble([fastgan.default_config(**base, **{"coupling.ratio": r}) for r in (0.01, 0.3)],
                                     backend="numba", progress=False)
    covered, collapsed = (r.average_last("mode_collapse", 3) for r in runs)
    assert covered < 0.2 and collapsed > 1.0, (covered, collapsed)
    assert runs[0].observables["nearest_mode_distance"][-1] < 0.2


@pytest.mark.parametrize("features", ["cos", "cossin"])
def test_rff_features_approximate_the_multiscale_rbf_kernel(features):
    """a(x).a(y) -> sum_s exp(-|x - y|^2 / 2 sigma_s^2) with D features per bandwidth (error ~ 1/sqrt(D))."""
    sig = [0.5, 2.0]
    cfg = fastgan.default_config(**{"discriminator.kind": "rff", "target.kind": "circle", "discriminator.features": features,
                                    "discriminator.n_features": 40000, "discriminator.bandwidth": sig})
    fam = Ensemble([cfg], "numpy").model
    pts = np.random.default_rng(4).normal(size=(6, 2))
    a = fam.amp[0] * np.cos(pts @ fam.omega[0] + fam.phase[0])
    r2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    exact = sum(np.exp(-r2 / (2 * s * s)) for s in sig)
    np.testing.assert_allclose(a @ a.T, exact, atol=0.03)
