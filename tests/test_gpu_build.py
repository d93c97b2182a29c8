"""Every GPU kernel variant the router can choose builds, without spills, for sm_80 and sm_90 (no GPU needed).

* CUDA C (kernels/mlp.cu): every variant ``cuda_raw.route`` picks (dtype, d up to ``cuda_raw.REG_DIM``,
  activation, u, default / odd / over-a-warp / 512-thread launch sizes) is compiled by NVRTC to PTX and
  assembled by ``ptxas -v`` for sm_80 and sm_90; d beyond REG_DIM must route to the GEMM path.
* Numba-CUDA: every kernel the Numba-CUDA routers launch (``cuda_numba_common.ptx_targets``: the
  per-kernel routing of the MLP step and the chunked kde_grad_sum included) is compiled to PTX by
  NVVM in a subprocess without the simulator, then assembled the same way.

A build error, a non-zero stack frame or spill, or static shared memory over 48 KiB fails. The fast tier
compiles a representative subset (the configs of issue 18: float64 d = 12, kde_grad_sum at d = 64, the
float64 MLP step); ``slow`` sweeps the rest. Compiled results are cached for the session.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fastgan.kernels import cuda_raw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import ptx_resources  # noqa: E402

ARCHS = ptx_resources.ARCHS
SMEM_LIMIT = 48 * 1024
ROOT = Path(__file__).resolve().parent.parent
SIZES = {
    "default": None,
    "odd": dict(mlp_block=5, mlp_tile=7, gx_block=37, gx_samples=3),
    "wide": dict(mlp_block=512, mlp_tile=512, gx_block=512, gx_samples=4),     # __launch_bounds__(512)
    "max": dict(mlp_block=1024, mlp_tile=1024, gx_block=1024, gx_samples=4),   # the hardware's 1024 threads
}


def _ptxas():
    exe = ptx_resources.ptxas()
    if exe is None:
        pytest.skip("ptxas (CUDA toolkit) not available")
    return exe


def ptxas_report(ptx: str, arch: str, tmp: Path) -> dict:
    """{entry: (registers, stack, spill stores, spill loads, smem)} of ``ptxas -v`` (benchmarks/ptx_resources.py)."""
    _ptxas()
    return ptx_resources.ptxas_report(ptx, arch, tmp)


def check_report(label: str, rep: dict, stack_ok: bool = False) -> None:
    """No spills, static shared memory within 48 KiB; no stack frame either unless ``stack_ok`` (Numba-CUDA
    kernels whose small local arrays are indexed at run time live in local memory by design)."""
    assert rep, f"{label}: no entry in the ptxas log"
    for name, (regs, stack, st, ld, smem) in rep.items():
        assert (st, ld) == (0, 0) and (stack_ok or stack == 0), \
            f"{label} {name}: {stack} B stack, {st}/{ld} B spill stores/loads ({regs} registers)"
        assert smem <= SMEM_LIMIT, f"{label} {name}: {smem} B static shared memory"


# ---------------------------------------------------------------------------------------------
# CUDA C through NVRTC
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc as mod
        mod.getVersion()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"NVRTC unavailable: {e}")
    return mod


_CUDA_C: dict = {}


def _nvrtc_ptx(nvrtc, src: str) -> str:
    return ptx_resources.cuda_c_ptx(nvrtc, src)


def cuda_c_report(nvrtc, tmp, dtype, d, act, has_u, size_set, opt=False) -> dict | None:
    """{arch: ptxas report} of the variant the router picks, None when it routes to the GEMM path (cached)."""
    sizes = cuda_raw.route(dtype, d, has_u, SIZES[size_set] or cuda_raw.launch_sizes())
    if sizes is None:
        return None
    src = cuda_raw.source(dtype, d, act, has_u, opt, **sizes)
    if src not in _CUDA_C:
        ptx = _nvrtc_ptx(nvrtc, src)        # compute_80 PTX: what sm_80 and sm_90 both assemble
        _CUDA_C[src] = {arch: ptxas_report(ptx, arch, tmp) for arch in ARCHS}
    return _CUDA_C[src]


def _cuda_c_cases(dims32, dims64, size_sets):
    """The heaviest variant (tanh with the regulariser's u: the most accumulators) and the lightest
    (relu without u) at each d."""
    out = []
    for dn, dims in (("float32", dims32), ("float64", dims64)):
        for d, (act, u), ss in itertools.product(dims, (("relu", False), ("tanh", True)), size_sets):
            out.append((dn, d, act, u, ss))
    return out


FAST_C = [("float64", 12, "relu", True, "default"), ("float64", 12, "tanh", False, "default"),
          ("float32", 24, "tanh", True, "default"), ("float64", 3, "tanh", True, "odd"),
          ("float64", 12, "tanh", True, "default", True), ("float32", 24, "relu", True, "default", True)]  # adaptive
SLOW_C = [c for c in _cuda_c_cases([1, 8, 24], [1, 4, 12],      # each routing boundary and the smallest d
                                   ("default",))
          + _cuda_c_cases((5, 13, 24), (5, 12), ("odd",)) + _cuda_c_cases((2, 9), (2, 4), ("wide",))
          + _cuda_c_cases((1,), (1,), ("max",))
          if c not in FAST_C]


def _cid(c):
    return "-".join(map(str, c))


@pytest.fixture(scope="session")
def build_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("gpu_build")


@pytest.fixture(scope="session")
def slow_c_built(nvrtc, build_tmp):
    """Compile the slow sweep's variants two at a time (ptxas runs in subprocesses) before the first one is checked."""
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda c: cuda_c_report(nvrtc, build_tmp, *c), SLOW_C))


@pytest.mark.parametrize("case", FAST_C + [pytest.param(c, marks=pytest.mark.slow) for c in SLOW_C], ids=_cid)
def test_cuda_c_variant_builds_without_spills(nvrtc, build_tmp, case, request):
    dn, d, act, u, ss, *opt = case
    if case in SLOW_C:
        request.getfixturevalue("slow_c_built")
    rep = cuda_c_report(nvrtc, build_tmp, dn, d, act, u, ss, *opt)
    assert rep is not None, f"{case}: the router should serve d = {d} with the register kernels"
    for arch, r in rep.items():
        assert set(r) == set(cuda_raw.KERNELS)
        check_report(f"{_cid(case)} {arch}", r)


@pytest.mark.parametrize("dtype,block", [("float32", 256)] + [pytest.param(dn, b, marks=pytest.mark.slow) for dn, b in
                                                              (("float64", 256), ("float32", 1024), ("float64", 1024))])
def test_cuda_c_loop_kernels_build_without_spills(nvrtc, build_tmp, dtype, block):
    """loop.cu (sampling, coarse coupling, the generator's update) at the default block and at 1024 threads."""
    from fastgan.kernels import cuda_raw_loop
    ptx = ptx_resources.cuda_c_ptx(nvrtc, cuda_raw_loop.source(dtype, block), "loop.cu")
    for arch in ARCHS:
        rep = ptxas_report(ptx, arch, build_tmp)
        assert set(rep) == set(cuda_raw_loop.KERNELS)
        # the stack of sample_steps is sin / cos's argument reduction (a local array), not a spill
        check_report(f"loop.cu {dtype} {block} {arch}", rep, stack_ok=True)
        assert all(regs * block <= 65536 for regs, *_ in rep.values()), rep


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_c_routes_large_d_to_gemm(dtype):
    """d = 12 float64 (the 'uses too much shared data' config) is served; beyond REG_DIM the GEMM path."""
    top = cuda_raw.REG_DIM[dtype]
    assert cuda_raw.REG_DIM["float64"] >= 12
    for d in (top + 1, 33, 64, 256, 4096):
        for u in (False, True):
            assert cuda_raw.route(dtype, d, u) is None
    for size_set in SIZES:
        sizes = cuda_raw.route(dtype, cuda_raw.reg_dim(dtype, SIZES[size_set] or cuda_raw.launch_sizes()), True,
                               SIZES[size_set])
        assert sizes is not None


def test_cuda_c_routed_dims_are_covered():
    """The slow sweep reaches every routed dimension's boundary (REG_DIM, and reg_dim at 512 and 1024 threads)."""
    for dn in ("float32", "float64"):
        top = cuda_raw.REG_DIM[dn]
        assert any(c[0] == dn and c[1] == top for c in FAST_C + SLOW_C)
        for size_set in ("wide", "max"):
            edge = cuda_raw.reg_dim(dn, SIZES[size_set])
            assert max(c[1] for c in SLOW_C if c[0] == dn and c[4] == size_set) == edge


# ---------------------------------------------------------------------------------------------
# Numba-CUDA through NVVM (a subprocess: the simulator must be off when numba is imported)
# ---------------------------------------------------------------------------------------------

def numba_ptx(tmp: Path, specs: list) -> dict:
    """{label: PTX} of the Numba-CUDA kernels selected by ``specs`` (two subprocesses at a time)."""
    def run(n_spec):
        got = ptx_resources.numba_ptx(tmp, n_spec[1])
        if got is None:
            pytest.skip("no libNVVM to compile PTX with")
        return got

    out = {}
    with ThreadPoolExecutor(2) as pool:
        for part in pool.map(run, enumerate(specs)):
            out.update(part)
    return out


def _numba_reports(tmp, specs):
    ptx = numba_ptx(tmp, specs)
    with ThreadPoolExecutor(2) as pool:
        reps = dict(zip(ptx, pool.map(lambda p: {a: ptxas_report(p, a, tmp) for a in ARCHS}, ptx.values())))
    return reps


ALL = ("float32", "float64")
# Spills grow with d, so the register kernels are built at the top of their routed d in both dtypes (the f64
# MLP step's top is 8) and once at d = 1 (float32: a build error shows at any d); the d-independent sets
# once per dtype. benchmarks/ptx_resources.py reports every d in between.
SLOW_NUMBA = [
    dict(sets=["mlp", "linear", "spatial", "misc", "update"], dtypes=ALL, dims=[16], keep=""),
    dict(sets=["mlp", "linear", "spatial"], dtypes=["float32"], dims=[1], keep=""),
    dict(sets=["mlp"], dtypes=["float64"], dims=[8], keep=""),                        # the f64 step's boundary
    dict(sets=["kde"], dtypes=ALL, dims=[16, 64], keep=""),
]


@pytest.fixture(scope="session")
def numba_slow(build_tmp):
    _ptxas()
    return _numba_reports(build_tmp, SLOW_NUMBA)


def _check_numba(reps):
    assert reps
    for label, by_arch in reps.items():
        for arch, rep in by_arch.items():
            check_report(f"{label} {arch}", rep, stack_ok=True)


@pytest.mark.slow
def test_numba_cuda_every_routed_kernel_builds_without_spills(numba_slow):
    assert not any(k.startswith("mlp.step[float64,d=16]") for k in numba_slow)       # routed to the GEMM path
    assert "kde.grad_sum[float64,d=16]" in numba_slow and "kde.grad_sum[float64,d=32]" not in numba_slow
    assert any("grad_sum_chunk" in k for k in numba_slow) and any("mlp.step" in k for k in numba_slow)
    _check_numba(numba_slow)          # the chunked KDE gradient at d = 64 once spilled 2 KB (f64)


def test_numba_routers():
    from fastgan.kernels import cuda_numba_kde as kde, cuda_numba_mlp as mlp
    assert mlp.numba_dim("step", "float32", 16) and not mlp.numba_dim("step", "float64", 16)
    assert mlp.numba_dim("grad_x", "float64", 16) and not mlp.numba_dim("grad_x", "float64", 17)
    for dn in ALL:
        for d in range(1, kde.MAX_DIM + 1):
            c = kde.grad_chunk(dn, d)
            assert (c == d) == (d <= kde.GRAD_REG_DIM[dn]) and 1 <= c <= d


KEY_SCRIPT = r"""
import hashlib, json
from numba.core.serialize import dumps
from fastgan.kernels import cuda_numba  # noqa: F401  (registers every kernel set)
from fastgan.kernels.cuda_numba_common import ptx_targets
out = {}
for label, fn, sig in ptx_targets(("float32", "float64"), (1, 2, 17), None):
    cells = tuple(c.cell_contents for c in (fn.__closure__ or ()))
    out[label] = [fn.__qualname__, str(sig), hashlib.sha256(fn.__code__.co_code + dumps(cells)).hexdigest()]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_numba_cuda_disk_cache_keys_are_stable_and_distinct():
    """What numba keys a cached CUDA kernel by, besides the GPU: its signature, bytecode and the pickled
    values of its closure (the factories' d, dtype and device functions). They must pickle (or caching
    fails at the first launch), be the same in every process (or the cache never hits) and tell apart
    every kernel the routers can launch (or a process would load another d's kernel)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", FASTGAN_PROGRESS="0")
    got = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", KEY_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        got.append(json.loads(r.stdout))
    assert got[0] == got[1] and len(got[0]) > 40
    keys = {}
    for label, (qualname, sig, digest) in got[0].items():
        keys.setdefault((qualname, sig, digest), []).append(label)
    # one key, one kernel: labels sharing a key are the same kernel at another d it does not depend on
    for labels in keys.values():
        assert len({lab.split("[")[0] + lab.split(",")[0] for lab in labels}) == 1, labels
