import os

os.environ.setdefault("FASTGAN_PROGRESS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def small_config(**dotted):
    """A fast configuration for engine tests (dotted keys as keyword names with '__' for '.')."""
    import fastgan
    base = {"discriminator.width": 64, "generator.n_particles": 24, "training.n_iterations": 30,
            "record.every": 5, "record.snapshots": 3}
    base.update({k.replace("__", "."): v for k, v in dotted.items()})
    return fastgan.default_config(**base)
