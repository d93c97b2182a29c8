"""Keys read by more than one family: each is declared once here and listed by every family that
reads it (the config layer checks that a key declared twice is the same object)."""

from __future__ import annotations

from ..config import ALWAYS, AUTO, NONNEG, OMIT_DEFAULT, POS, ConfigError, Field, all_ge

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


# The discriminator optimisers (training.optimizer_disc and its constants): read by the families whose steps
# fuse the adaptive update (fastgan.optim, kernels/optim.py); a family lists them with ``**OPTIMIZER_KEYS``.
OPTIMIZERS = ("sgd", "rmsprop", "adam")
BETA2_DEFAULT = {"rmsprop": 0.99, "adam": 0.999}
_FOREIGN = ("the discriminator optimisers (training.optimizer_*) are implemented for the families that list "
            "these keys (mlp), not discriminator.kind = {kind}")


def _decay(v):
    return None if 0.0 <= v < 1.0 else "must lie in [0, 1)"


OPTIMIZER_KEYS = {
    "optimizer_disc": Field("str", "sgd", "discriminator optimiser: sgd (gradient descent at training.lr_disc, "
                            "Algorithm 1), rmsprop or adam (the update rules of torch.optim.RMSprop / Adam, the "
                            "L2 term of eq. 24 inside the gradient; per-run moments, bias-corrected for adam)",
                            choices=OPTIMIZERS, identity=OMIT_DEFAULT, foreign=_FOREIGN),
    "optimizer_beta1": Field("float", 0.9, "adam: decay of the first moment", _decay, identity=OMIT_DEFAULT,
                             foreign=_FOREIGN),
    "optimizer_beta2": Field("float", AUTO, "rmsprop (its alpha) and adam: decay of the second moment (default "
                             "0.99 for rmsprop, 0.999 for adam: torch's)", _decay, optional=True,
                             identity=OMIT_DEFAULT, foreign=_FOREIGN),
    "optimizer_eps": Field("float", 1e-8, "rmsprop and adam: eps added to the root of the second moment", POS,
                           identity=OMIT_DEFAULT, foreign=_FOREIGN),
}


def validate_optimizer(cfg) -> None:
    """A constant set for an optimiser that has no use for it is an error (not silently ignored)."""
    tr = cfg.training
    if tr.optimizer_disc != "adam" and tr.optimizer_beta1 != OPTIMIZER_KEYS["optimizer_beta1"].default:
        raise ConfigError("training.optimizer_beta1", tr.optimizer_beta1, "only adam keeps a first moment "
                          f"(training.optimizer_disc = {tr.optimizer_disc})")
    if tr.optimizer_disc == "sgd":
        for key in ("optimizer_beta2", "optimizer_eps"):
            value = getattr(tr, key)
            if value is not None and value != OPTIMIZER_KEYS[key].default:
                raise ConfigError(f"training.{key}", value, "gradient descent keeps no second moment: set "
                                  "training.optimizer_disc = rmsprop or adam")


def resolve_optimizer(d: dict) -> None:
    """training.optimizer_beta2's default for the chosen optimiser (torch's)."""
    tr = d["training"]
    if tr["optimizer_disc"] != "sgd" and tr["optimizer_beta2"] is None:
        tr["optimizer_beta2"] = BETA2_DEFAULT[tr["optimizer_disc"]]
