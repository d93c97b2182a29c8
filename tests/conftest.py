import os

os.environ.setdefault("FASTGAN_PROGRESS", "0")

# tests/cudasim needs NUMBA_ENABLE_CUDASIM=1 before numba is imported: the main suite runs it in a
# subprocess (test_cuda_simulator.py) and collects it directly only when the variable is set.
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("0", "") else ["cudasim"]

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.hookimpl(trylast=True)          # after -k / -m have deselected
def pytest_collection_modifyitems(session, config, items):
    """Start the selected CUDA-simulator tests now, in a subprocess beside the rest of the suite."""
    import cudasim_runner
    wanted = [it.callspec.params[cudasim_runner.PARAM] for it in items
              if hasattr(it, "callspec") and cudasim_runner.PARAM in it.callspec.params]
    wanted = [w for w in wanted if not w.endswith("collection-failed")]
    if wanted:
        config._cudasim_run = cudasim_runner.Run(wanted, every=len(wanted) == len(cudasim_runner.collect()))
        # their results are read last: the rest of the suite runs meanwhile instead of waiting for them
        waits = [it for it in items if hasattr(it, "callspec") and cudasim_runner.PARAM in it.callspec.params]
        items[:] = [it for it in items if it not in set(waits)] + waits


def pytest_unconfigure(config):
    run = getattr(config, "_cudasim_run", None)
    if run is not None:
        run.stop()


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
