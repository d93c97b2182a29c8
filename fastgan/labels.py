"""Names of config keys and observables for people: the short name of a swept axis (an xarray dimension
that takes keyword ``sel``), the symbol drawn on a figure (matplotlib mathtext), a ``long_name`` and
``units`` (CF conventions) and a one-line description. Keys and observables not in the tables fall back
to their own name (the last dotted component for a short name)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .observables import RUNAWAY_FACTOR


@dataclass(frozen=True)
class Label:
    """short: identifier-safe name; symbol: mathtext for axes; long_name, units ('' = dimensionless or
    none meaningful, '1' = a pure number in CF terms), description: one line."""

    short: str
    symbol: str
    long_name: str
    units: str = ""
    description: str = ""


KEYS = {
    "coupling.ratio": Label("g2_over_g1", r"$g_2/g_1$", "NTK coupling ratio g2/g1", "1",
                            "off-diagonal over diagonal NTK coupling of the particles"),
    "coupling.g1": Label("g1", r"$g_1$", "NTK self-coupling g1", "1", "diagonal coupling of the particles"),
    "coupling.g2": Label("g2", r"$g_2$", "NTK cross-coupling g2", "1", "off-diagonal coupling of the particles"),
    "coupling.length_scale": Label("length_scale", r"$\ell$", "coupling length scale", "1"),
    "training.n_disc": Label("n_disc", r"$n_\mathrm{disc}$", "discriminator steps per generator step", "1"),
    "training.lr_disc": Label("lr_disc", r"$\alpha_D$", "discriminator learning rate", "1"),
    "training.lr_gen": Label("lr_gen", r"$\alpha_G$", "generator learning rate", "1"),
    "training.beta": Label("beta", r"$\beta$", "gradient-penalty strength beta", "1"),
    "training.lam": Label("lam", r"$\lambda$", "discriminator weight decay lambda", "1"),
    "training.seed": Label("seed", "seed", "random seed"),
    "training.batch_size": Label("batch_size", r"$M$", "target samples per discriminator step", "1"),
    "training.n_iterations": Label("n_iterations", r"$T$", "training iterations", "1"),
    "generator.n_particles": Label("n_particles", r"$N$", "number of particles", "1"),
    "generator.init_std": Label("init_std", r"$\sigma_0$", "initial cloud standard deviation", "1"),
    "target.std": Label("sigma", r"$\sigma$", "target mode standard deviation", "1"),
    "target.n_modes": Label("n_modes", r"$K$", "number of target modes", "1"),
    "target.radius": Label("radius", r"$R$", "target ring radius", "1"),
    "target.spacing": Label("spacing", r"$s$", "target grid spacing", "1"),
    "target.dim": Label("dim", r"$d$", "dimension", "1"),
    "discriminator.width": Label("width", r"$W$", "discriminator width", "1"),
    "discriminator.depth": Label("depth", r"$L$", "discriminator depth", "1"),
    "discriminator.l2": Label("l2", r"$c$", "discriminator L2 coefficient", "1"),
    "discriminator.bandwidth": Label("bandwidth", r"$\sigma_D$", "discriminator kernel bandwidth", "1"),
    "discriminator.n_features": Label("n_features", r"$D$", "random features", "1"),
    "discriminator.freq_count": Label("freq_count", r"$K_f$", "Fourier frequencies per axis", "1"),
    "discriminator.history": Label("history", r"$H$", "kernel history length", "1"),
}

OBSERVABLES = {
    "mode_collapse": Label("mode_collapse", "mode collapse", "mode collapse", "nats",
                           "log K + sum_i P_i log P_i of the nearest-mode fractions (0: even, log K: one mode)"),
    "log_likelihood": Label("log_likelihood", "log-likelihood", "mean log-likelihood of the particles", "nats",
                            "(1/N) sum_a log p(X_a) under the target"),
    "nearest_mode_distance": Label("nearest_mode_distance", "nearest-mode distance", "mean nearest-mode distance",
                                   "1", "mean Euclidean distance of a particle to its nearest mode"),
    "modes_covered": Label("modes_covered", "modes covered", "modes covered", "1",
                           "modes with at least one particle within 3 std"),
    "high_quality_fraction": Label("high_quality_fraction", "high-quality fraction", "fraction of high-quality "
                                   "particles", "1", "particles within 3 std of their nearest mode"),
    "kl_uniform": Label("kl_uniform", "KL to target weights", "KL divergence of the high-quality histogram to "
                        "the target weights", "nats"),
    "cosine_mode_collapse": Label("cosine_mode_collapse", "cosine mode collapse", "mode collapse by cosine "
                                  "similarity", "nats", "log M + sum_i P_i log P_i of the fractions of particles "
                                  "whose most cosine-similar target point is i (0: even, log M: one point)"),
    "cosine_distance": Label("cosine_distance", "cosine distance", "mean cosine distance to the nearest target "
                             "point", "1", "mean over particles of min_i (1 - cos(X_a, P_i)) (cos = 0 with a zero "
                             "vector)"),
    "particle_cosine": Label("particle_cosine", "particle |cos|", "mean pairwise absolute cosine of the "
                             "particles", "1", "mean over particle pairs of |cos(X_a, X_b)| (1: all on one line)"),
    "runaway": Label("runaway", "runaway", "runaway particles", "1", "1 when the largest particle norm exceeds "
                     f"{RUNAWAY_FACTOR:g} times the largest target-point norm, else 0"),
    "w2": Label("w2", r"$W_2$", "Wasserstein-2 distance to the target", "1"),
    "escaped_fraction": Label("escaped_fraction", "escaped fraction", "fraction of mass beyond the escape "
                              "radius", "1"),
    "kernel_gan_objective": Label("kernel_gan_objective", r"$K_n$", "kernel-GAN objective", "1"),
    "q_d": Label("q_d", r"$q_d$", "quantile of the discriminator gradient norm", "1"),
    "steepness": Label("steepness", r"$S_g$", "generator steepness", "1"),
}


def short_name(key: str) -> str:
    """An identifier-safe name for a config key: the table's, else its last component (non-word
    characters as underscores)."""
    if key in KEYS:
        return KEYS[key].short
    tail = key.rsplit(".", 1)[-1]
    return re.sub(r"\W", "_", tail) or "axis"


def key_for(name: str) -> str:
    """The config key or observable a name stands for: itself when tabled (or unknown), else the key whose
    short name it is (a sweep dimension named by :func:`short_name`)."""
    if name in KEYS or name in OBSERVABLES:
        return name
    return next((k for k, lab in KEYS.items() if lab.short == name), name)


def label(key: str) -> Label:
    """The Label of a config key or observable (a fallback built from the name when not tabled)."""
    if key in KEYS:
        return KEYS[key]
    if key in OBSERVABLES:
        return OBSERVABLES[key]
    return Label(short_name(key), key, key)


def symbol(key: str) -> str:
    """What a figure's axis or colour bar says for a key or observable."""
    return label(key).symbol
