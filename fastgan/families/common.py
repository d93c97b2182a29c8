"""Keys read by more than one family: each is declared once here and listed by every family that
reads it (the config layer checks that a key declared twice is the same object)."""

from __future__ import annotations

from ..config import ALWAYS, AUTO, NONNEG, POS, Field, all_ge

BANDWIDTH = Field("number_or_floats", (1.0,), "rff/kernel: kernel width sigma, or a list of widths for a multi-scale "
                  "kernel (the sum of the kernels, isolated points model eq. 27-28); kde: the Gaussian KDE bandwidth, "
                  "or a list for an equal-weight mixture of bandwidths", all_ge(0, strict=True))

KERNEL = Field("str", "rbf", "kernel: rbf exp(-r^2/2s^2), laplacian exp(-r/s), rq (1 + r^2/(2 a s^2))^-a "
               "(rff: rbf only)", choices=("rbf", "laplacian", "rq"))

LAM = Field("float", AUTO, "fourier/rff/kernel: L2 coefficient lambda of the linear discriminator, "
            "L += (lam/2)|theta|^2 (default: fourier 1, rff/kernel 0.01 as the isolated points model)", NONNEG,
            optional=True, foreign="{kind} discriminators take no training.lam: it is the L2 coefficient of the linear "
            "discriminators (fourier, rff, kernel); an mlp takes discriminator.l2 (eq. 24), a kde has no trained "
            "parameters")

GEN_MASSES = Field("floats", AUTO, "fixed masses p~_j of the generated points (rff/kernel discriminators; "
                   "default 1/N each)", all_ge(0), optional=True,
                   foreign="only rff and kernel discriminators weigh generated points by masses")

ESCAPE_RADIUS = Field("float", 2.0, "rff/kernel: a generated point with |x| beyond this counts as "
                      "diverging (isolated points model, Fig. 3b)", POS, identity=ALWAYS)
