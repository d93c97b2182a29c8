"""Dirac-GAN with the gradient regulariser (Durr et al. Appendix E).

G(z) = theta, D(x) = phi x, data at 0, regulariser beta phi^2 / 2. Simultaneous gradient flow:

    theta' = phi,    phi' = -theta - beta phi                                          (E1, E2)

The dynamical matrix A = [[0, 1], [-1, -beta]] has eigenvalues (-beta +- sqrt(beta^2 - 4)) / 2
(the paper prints them without the minus sign of the real part): under-damped for beta < 2,
critically damped at beta = 2, over-damped above. Fig. 18: from (theta, phi) = (1, 0), |theta(10)|
against beta is smallest near beta = 2.

``dirac_exact`` is the closed-form matrix exponential (stable through beta = 2);
``dirac_integrate`` steps the flow numerically (RK4, or explicit Euler = simultaneous gradient
descent-ascent with learning rate dt, the way a GAN is trained), vectorised over beta.
"""

from __future__ import annotations

import numpy as np


def dirac_matrix(beta: float) -> np.ndarray:
    return np.array([[0.0, 1.0], [-1.0, -float(beta)]])


def dirac_eigenvalues(beta) -> np.ndarray:
    """(..., 2) complex eigenvalues (-beta +- sqrt(beta^2 - 4)) / 2."""
    h = np.asarray(beta, dtype=np.float64) / 2
    r = np.sqrt(np.abs(h - 1)) * np.sqrt(h + 1)                   # |beta^2/4 - 1|^(1/2), no overflow
    over = h > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        slow = np.where(over, -1 / (r + h), -h)                    # -h + r without cancellation
    first = np.where(over, slow, -h) + 1j * np.where(over, 0.0, r)
    second = np.where(over, -(h + r), -h) - 1j * np.where(over, 0.0, r)
    return np.stack([first, second], axis=-1)


def dirac_exact(beta, t, theta0: float = 1.0, phi0: float = 0.0):
    """(theta(t), phi(t)) in closed form, broadcasting over beta and t.

    exp(A t) = e^{-beta t / 2} [ c(t) I + s(t) (A + beta/2 I) ] with q = beta^2/4 - 1,
    c = cosh(sqrt(q) t), s = sinh(sqrt(q) t) / sqrt(q) (cos / sin for q < 0; c = 1, s = t at q = 0).
    """
    beta = np.asarray(beta, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    beta, t = np.broadcast_arrays(beta, t)
    h = beta / 2
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q = (h - 1) * (h + 1)                              # beta^2/4 - 1 (inf only where unused)
        r = np.sqrt(np.abs(h - 1)) * np.sqrt(h + 1)       # sqrt|q| without squaring beta
        e = np.exp(-h * t)
        # underdamped: e cos, e sin / r; overdamped as two decaying exponentials (no cosh overflow):
        # e cosh(r t) = (exp(a t) + exp(b t)) / 2 with a = r - beta/2 = -1 / (r + beta/2), b = -(r + beta/2)
        ea, eb = np.exp(-t / (r + h)), np.exp(-(r + h) * t)
        ec = np.where(q > 0, (ea + eb) / 2, e * np.cos(r * t))
        es = np.where(q > 0, (ea - eb) / 2, e * np.sin(r * t)) / np.where(r > 0, r, 1.0)
        small = r * t < 1e-8
        ec = np.where(small, e * (1.0 + q * t ** 2 / 2), ec)
        es = np.where(small, e * t * (1 + q * t ** 2 / 6), es)
        # A + beta/2 I = [[beta/2, 1], [-1, -beta/2]]
        theta = ec * theta0 + es * (h * theta0 + phi0)
        phi = ec * phi0 + es * (-theta0 - h * phi0)
    return theta, phi


def dirac_integrate(beta, t_end: float = 10.0, dt: float = 1e-3, method: str = "rk4",
                    theta0: float = 1.0, phi0: float = 0.0):
    """Integrate the flow to t_end for every beta (vectorised); returns (theta, phi) at t_end."""
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    th = np.full(beta.shape, float(theta0))
    ph = np.full(beta.shape, float(phi0))
    steps = int(round(t_end / dt))
    if not np.isclose(steps * dt, t_end):
        raise ValueError("t_end must be a multiple of dt")

    def f(a, b):
        return b, -a - beta * b

    for _ in range(steps):
        if method == "euler":        # simultaneous gradient descent-ascent
            d1, d2 = f(th, ph)
            th, ph = th + dt * d1, ph + dt * d2
        elif method == "rk4":
            k1 = f(th, ph)
            k2 = f(th + dt / 2 * k1[0], ph + dt / 2 * k1[1])
            k3 = f(th + dt / 2 * k2[0], ph + dt / 2 * k2[1])
            k4 = f(th + dt * k3[0], ph + dt * k3[1])
            th = th + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            ph = ph + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        else:
            raise ValueError(f"unknown method {method!r}")
    return th, ph


def dirac_sweep(betas, t_end: float = 10.0, method: str = "exact", dt: float = 1e-3,
                measure: str = "theta") -> np.ndarray:
    """|theta(t_end)| (``measure="theta"``, Fig. 18) or the phase-space distance to equilibrium
    sqrt(theta^2 + phi^2) (``measure="distance"``) for each beta, from (theta, phi) = (1, 0).

    Under-damped trajectories cross theta = 0, so |theta(T)| has exact zeros at isolated beta < 2
    (e.g. beta ~ 1.08 for T = 10); on a modest log grid (the paper's kind of plot) its minimum falls
    near beta = 2, while the distance has no zeros and its minimum sits at beta ~ 1.91 on any grid.
    """
    betas = np.asarray(betas, dtype=np.float64)
    if method == "exact":
        th, ph = dirac_exact(betas, t_end)
    else:
        th, ph = dirac_integrate(betas, t_end, dt, method)
    if measure == "distance":
        return np.hypot(th, ph)
    return np.abs(th)
