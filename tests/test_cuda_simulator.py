"""The Numba-CUDA kernels without a GPU.

1. ``tests/cudasim`` (every kernel against the NumPy reference, and a whole simulation on the cuda
   backend) runs in a subprocess under the CUDA simulator: ``NUMBA_ENABLE_CUDASIM`` must be set
   before numba is first imported, which this process has already done.
2. The simulator runs kernels as plain Python, so it cannot catch Numba-CUDA typing errors; where
   a CUDA toolkit's libNVVM is installed (no GPU needed) every kernel is also compiled to PTX.
"""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, env_extra, timeout):
    env = dict(os.environ, FASTGAN_PROGRESS="0", **env_extra)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_cuda_simulator_suite():
    proc = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cudasim"], {"NUMBA_ENABLE_CUDASIM": "1"},
                timeout=1800)
    out = proc.stdout + "\n" + proc.stderr
    assert proc.returncode == 0, f"tests/cudasim failed under the CUDA simulator:\n{out}"
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, out


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


def test_numba_cuda_kernels_compile_to_ptx():
    proc = _run(["-c", PTX_SCRIPT], {"NUMBA_ENABLE_CUDASIM": "0"}, timeout=900)
    out = proc.stdout + "\n" + proc.stderr
    assert proc.returncode == 0, out
    if proc.stdout.startswith("NO_NVVM"):
        pytest.skip(f"no libNVVM (CUDA toolkit) to compile PTX with: {proc.stdout.strip()}")
    assert "COMPILED" in proc.stdout, out
