"""The Numba-CUDA kernels without a GPU.

1. ``tests/cudasim`` (every kernel against the NumPy reference, the op registry on the cuda backend,
   and whole simulations on the cuda backend) runs under the CUDA simulator, which needs
   ``NUMBA_ENABLE_CUDASIM`` set before numba is first imported: this process has already imported
   it, so the selected tests run in one subprocess (``cudasim_runner``, started by the conftest right
   after collection, beside the other tests), and each is reported here as its own test
   (``test_under_the_cuda_simulator[<node id>]``) with its outcome and failure text.
2. The simulator runs kernels as plain Python, so it cannot catch Numba-CUDA typing errors; where
   a CUDA toolkit's libNVVM is installed (no GPU needed) every kernel is also compiled to PTX.
"""

import os
import subprocess
import sys

import cudasim_runner
import pytest

ROOT = cudasim_runner.ROOT
SUITE = cudasim_runner.SUITE


def _run(args, env_extra, timeout):
    env = dict(os.environ, FASTGAN_PROGRESS="0", **env_extra)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def pytest_generate_tests(metafunc):
    if cudasim_runner.PARAM in metafunc.fixturenames:
        ids = cudasim_runner.collect()
        metafunc.parametrize(cudasim_runner.PARAM, ids, ids=[i.split("/", 2)[-1] for i in ids])


@pytest.fixture(scope="session")
def cudasim_outcomes(request):
    """{node id: (outcome, text)} of the simulator subprocess the conftest started after collection."""
    run = getattr(request.config, "_cudasim_run", None)
    if run is None:
        return {"": ("failed", "no simulator run was started (tests/conftest.py)")}
    return run.outcomes()


@pytest.mark.slow
def test_under_the_cuda_simulator(cudasim_id, cudasim_outcomes):
    if cudasim_id.endswith("collection-failed"):
        proc = _run(["-m", "pytest", "--collect-only", "-q", SUITE], {"NUMBA_ENABLE_CUDASIM": "1"}, timeout=300)
        pytest.fail(f"tests/cudasim cannot be collected under the simulator:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    outcome, text = cudasim_outcomes.get(cudasim_id) or cudasim_outcomes.get("", ("missing", "no outcome reported"))
    if outcome == "skipped":
        pytest.skip(text)
    assert outcome == "passed", f"{cudasim_id}: {outcome}\n{text}"


# Every Numba-CUDA kernel's PTX (without the simulator), assembled by ptxas with no spill allowed, is
# checked in tests/test_gpu_build.py.
