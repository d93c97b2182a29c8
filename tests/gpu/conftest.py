"""The device suite: every op and every family's engine loop on a real GPU against the NumPy reference.

Every test here is marked ``gpu`` and skipped, with the probe's one-line reason, where the cuda
backend is not usable (no GPU, no driver, no libNVVM, ...) or under the CUDA simulator (that is what
``tests/cudasim`` is for). On a machine with a GPU:

    python -m pytest -m gpu tests/gpu            (or benchmarks/gpu_check.sh, which runs it first)
"""

import os

import pytest

from .device_inputs import LAUNCHES, set_launch

HERE = os.path.dirname(os.path.abspath(__file__))


def device_skip_reason() -> str:
    """'' where the cuda backend runs on a real GPU, else why the device suite is skipped."""
    from fastgan import backend
    if backend.cuda_simulator():
        return "the device suite needs a real GPU (NUMBA_ENABLE_CUDASIM is set; tests/cudasim covers the simulator)"
    a = backend.probe("cuda")
    return "" if a.ok else f"no usable GPU: {a.reason}"


@pytest.hookimpl(trylast=True)          # after -k / -m have deselected: probe only when a device test is selected
def pytest_collection_modifyitems(config, items):
    mine = [it for it in items if os.path.abspath(str(it.fspath)).startswith(HERE + os.sep)]
    if not mine:
        return
    why = device_skip_reason()
    if why:
        skip = pytest.mark.skip(reason=why)
        for it in mine:
            it.add_marker(skip)


@pytest.fixture(params=LAUNCHES)
def launch_sizes(request, monkeypatch):
    """Each test twice: the default launch parameters and the odd ones."""
    set_launch(request.param, monkeypatch.setitem, monkeypatch.setattr)
    return request.param
