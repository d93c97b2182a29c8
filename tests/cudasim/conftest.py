"""Tests of the Numba-CUDA kernels under the CUDA simulator (host threads run every CUDA thread).

They only make sense with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is first imported, so
the main suite ignores this folder and runs it in a subprocess (``tests/test_cuda_simulator.py``):

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cudasim

Without the variable every test here is skipped; with it but a numba.cuda that is not the
simulator (numba imported too early) collection fails loudly.
"""

import os

import pytest

ENABLED = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("0", "")


def pytest_configure(config):
    # the counter-based generator relies on uint64 wrap-around, which NumPy scalars warn about
    config.addinivalue_line("filterwarnings", "ignore:overflow encountered in scalar:RuntimeWarning")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    mine = [it for it in items if os.path.abspath(str(it.fspath)).startswith(here + os.sep)]
    if not ENABLED:
        skip = pytest.mark.skip(reason="needs NUMBA_ENABLE_CUDASIM=1 in the environment before numba is imported")
        for it in mine:
            it.add_marker(skip)
        return
    from fastgan.kernels.cuda_numba_common import SIMULATOR
    if not SIMULATOR:
        raise pytest.UsageError("NUMBA_ENABLE_CUDASIM=1 is set but numba.cuda is not the simulator "
                                "(numba was imported before the variable was set)")


@pytest.fixture
def tiny_launch(monkeypatch):
    """Tiny, odd launch parameters and tiles: every grid-stride / tile loop runs several times."""
    from fastgan.kernels import launch

    def set_(block=3, max_blocks=2, sample_tile=4, unit_tile=5, pair_tile=4):
        for k in launch.GPU_BLOCK:
            monkeypatch.setitem(launch.GPU_BLOCK, k, block)
        monkeypatch.setattr(launch, "GPU_MAX_BLOCKS", max_blocks)
        monkeypatch.setitem(launch.GPU_TILE, "mlp_samples", sample_tile)
        monkeypatch.setitem(launch.GPU_TILE, "grad_x_units", unit_tile)
        monkeypatch.setitem(launch.GPU_TILE, "pair_cols", pair_tile)
        monkeypatch.setitem(launch.GPU_TILE, "trig_samples", sample_tile)
        monkeypatch.setitem(launch.GPU_TILE, "trig_features", unit_tile)
        monkeypatch.setitem(launch.GPU_TILE, "kernel_cols", pair_tile)
        monkeypatch.setitem(launch.GPU_TILE, "kde_cols", pair_tile)

    set_()
    return set_


# ----------------------------------------------------------------------------- outcome report
# ``tests/test_cuda_simulator.py`` runs this folder in a subprocess and reports every test as its own;
# with FASTGAN_CUDASIM_REPORT set, the outcome of each test (and its failure text) is written there.

_OUTCOMES: dict = {}


def pytest_runtest_logreport(report):
    if not os.environ.get("FASTGAN_CUDASIM_REPORT"):
        return
    prev = _OUTCOMES.get(report.nodeid, ("passed", ""))
    if report.failed:
        _OUTCOMES[report.nodeid] = ("failed", f"{report.when}: {report.longreprtext[-6000:]}")
    elif report.skipped and prev[0] != "failed":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _OUTCOMES[report.nodeid] = ("skipped", reason)
    elif report.when == "call" and prev[0] not in ("failed", "skipped"):
        _OUTCOMES[report.nodeid] = ("passed", "")


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("FASTGAN_CUDASIM_REPORT")
    if path:
        import json
        with open(path, "w") as fh:
            json.dump(_OUTCOMES, fh)
