"""All NumPy reference ops in one namespace (the oracle every twin is tested against)."""

from .coupling_numpy import (coupled_velocity_coarse, coupled_velocity_gram, coupled_velocity_spatial,  # noqa: F401
                             spatial_gram)
from .deep_mlp import deep_disc_step, deep_forward, deep_grad_x, deep_loss, deep_loss_grads  # noqa: F401
from .mlp_numpy import mlp_disc_step, mlp_forward, mlp_grad_x, mlp_loss, mlp_loss_grads  # noqa: F401
from .observables_numpy import cosine_stats, mode_stats  # noqa: F401
from .sampling_numpy import normal_init, sample_mixture, uniform_init  # noqa: F401
