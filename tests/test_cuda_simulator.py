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
import textwrap

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


PTX_SCRIPT = textwrap.dedent("""
    import sys
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
    except Exception as exc:
        print("NO_NVVM", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        sys.exit(0)
    from fastgan.kernels import cuda_numba
    out = cuda_numba.compile_ptx_all(cc=(9, 0), dims=(1, 3))
    print("COMPILED", len(out))
""")


@pytest.mark.slow
def test_numba_cuda_kernels_compile_to_ptx():
    proc = _run(["-c", PTX_SCRIPT], {"NUMBA_ENABLE_CUDASIM": "0"}, timeout=900)
    out = proc.stdout + "\n" + proc.stderr
    assert proc.returncode == 0, out
    if proc.stdout.startswith("NO_NVVM"):
        pytest.skip(f"no libNVVM (CUDA toolkit) to compile PTX with: {proc.stdout.strip()}")
    assert "COMPILED" in proc.stdout, out
