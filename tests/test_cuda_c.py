"""Raw CUDA C kernels (kernels/mlp.cu via fastgan.kernels.cuda_raw) checked without a GPU.

(a) NVRTC: every variant (dtype, d, activation, u) compiles for sm_80 / sm_90 (cubin) and
    compute_80 / compute_90 (PTX) with an empty program log; ptxas reports no spills on sm_90.
(b) CPU shim: the exact same source compiles as C++20 with g++ through tests/shim/cuda_shim.h
    (blocks run one after another, a block's threads are real std::threads, __syncthreads() is a
    std::barrier, __shared__ is shared by the block's threads) and is compared with the NumPy
    reference, with odd block/tile sizes and a small grid cap so the grid-stride loops, partial
    tiles and inactive threads are all exercised. The shim also checks that every thread of a
    block executes the same number of __syncthreads().
"""

from __future__ import annotations

import ctypes
import itertools
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fastgan.kernels import cuda_raw, launch
from fastgan.kernels import mlp_numpy as ref
from fastgan.kernels.optim import ONE_LAYER
from twin_inputs import adaptive_state, mlp_inputs as _mlp_inputs, tol

SHIM_DIR = Path(__file__).resolve().parent / "shim"
DTYPES = (np.float32, np.float64)
DIMS = (1, 2, 3)
ACTS = ("relu", "tanh")
VARIANTS = list(itertools.product(DTYPES, DIMS, ACTS, (False, True)))


def _vid(v):
    dtype, d, act, has_u, *opt = v
    return f"{np.dtype(dtype).name}-d{d}-{act}-{'u' if has_u else 'nou'}" + ("-opt" if any(opt) else "")


# ---------------------------------------------------------------------------------------------
# (a) NVRTC
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc as mod
        mod.getVersion()
    except Exception as e:  # cupy not installed, or no NVRTC library
        pytest.skip(f"NVRTC unavailable: {e}")
    return mod


def _nvrtc_compile(nvrtc, src, options):
    prog = nvrtc.createProgram(src, "mlp.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(prog, list(options))
        except nvrtc.NVRTCError as e:
            pytest.fail(f"NVRTC failed ({e}):\n{nvrtc.getProgramLog(prog)}")
        return nvrtc.getProgramLog(prog).rstrip("\x00")
    finally:
        nvrtc.destroyProgram(prog)


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v[1] != 2], ids=_vid)
def test_nvrtc_empty_log(nvrtc, variant):
    """No NVRTC warning for a cubin and for PTX (tests/test_gpu_build.py assembles the routed variants'
    PTX for sm_80 and sm_90 with ptxas)."""
    src = cuda_raw.source(*variant)
    key = cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, variant[0], "90", "test")
    for arch in ("sm_90", "compute_80"):
        # the options cuda_raw gives CuPy, plus what CuPy appends itself
        log = _nvrtc_compile(nvrtc, src, (*cuda_raw.nvrtc_options(key), f"--gpu-architecture={arch}", "-ftz=true"))
        assert log == "", f"{arch}: non-empty NVRTC log:\n{log}"


def _ptxas_entries(log):
    """{kernel: (stack bytes, spill store bytes, spill load bytes, registers, smem bytes)} of a -v log."""
    out = {}
    for chunk in log.split("Compiling entry function ")[1:]:
        name = re.match(r"'(\w+)'", chunk).group(1)
        frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", chunk)
        regs = re.search(r"Used (\d+) registers", chunk)
        smem = re.search(r"(\d+) bytes smem", chunk)
        out[name] = (*map(int, frame.groups()), int(regs.group(1)), int(smem.group(1)) if smem else 0)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_ptxas_no_spills_sm90(nvrtc, variant):
    """Default launch sizes (launch.GPU_BLOCK) on the H100 target: registers only, no local memory."""
    src = cuda_raw.source(*variant, **cuda_raw.launch_sizes())
    log = _nvrtc_compile(nvrtc, src, (*cuda_raw.NVRTC_OPTIONS, "--gpu-architecture=sm_90", "-ftz=true", "-Xptxas=-v"))
    for line in log.splitlines():
        assert line.startswith("ptxas info") or line.startswith("ptxas         ."), f"unexpected log line: {line}"
    entries = _ptxas_entries(log)
    assert set(entries) == set(cuda_raw.KERNELS), log
    for name, (stack, st, ld, regs, _) in entries.items():
        assert (stack, st, ld) == (0, 0, 0), f"{name}: {stack} B stack, {st}/{ld} B spills\n{log}"
        assert regs <= 128, f"{name}: {regs} registers"


# ---------------------------------------------------------------------------------------------
# (b) CPU shim
# ---------------------------------------------------------------------------------------------

# launch.GPU_BLOCK / GPU_TILE patches of the shim tests: block sizes that divide none of the problem sizes
SIZE_SETS = {
    # tile > block (threads load several elements), odd grad_x block, 3 samples per block
    "odd": {"mlp_units": 5, "mlp_samples": 7, "grad_x": 5, "grad_x_samples": 3},
    # tile < block (some threads load nothing), non-power-of-two reduction, one sample per block
    "alt": {"mlp_units": 3, "mlp_samples": 2, "grad_x": 6, "grad_x_samples": 1},
    # more than a warp: grad_x's shuffle tree over a full warp and a partial one (5 lanes), then
    # the two warps' sums; samples per block as the router picks them for d (4 at most)
    "warp": {"mlp_units": 33, "mlp_samples": 9, "grad_x": 37, "grad_x_samples": 4},
}
# large d (float64; the router sends d > cuda_raw.REG_DIM to the GEMM path on a GPU, but the source is
# correct at any d): d = 12, 13 in the fast tier, 24, 33 in the slow one
LARGE_D = [((np.float64, 12, "tanh", False), "warp"), ((np.float64, 13, "relu", True), "warp")]
LARGE_D_SLOW = [((np.float64, 24, "tanh", True), "warp"), ((np.float64, 33, "relu", False), "warp")]
FAST_WARP = [((np.float32, 3, "tanh", True), "warp")]       # the fast tier's one small-d variant over 2 warps
# the adaptive update (OPT = 1): the specialised ReLU d = 2 and tanh with u, both dtypes; a fifth entry True
OPT_VARIANTS = [((np.float64, 2, "relu", True, True), "odd"), ((np.float32, 3, "tanh", True, True), "odd"),
                ((np.float64, 1, "tanh", False, True), "alt")]
SHIM_VARIANTS = ([(v, "odd") for v in VARIANTS] + [(v, "alt") for v in VARIANTS if v[0] == np.float64]
                 + [((np.float64, 3, "tanh", False), "warp")] + FAST_WARP + LARGE_D + LARGE_D_SLOW + OPT_VARIANTS)

# parameter kinds of the kernels' signatures: p = real_t pointer, i = int, r = real_t scalar
PARAMS = {"mlp_disc_step": "pppppppp" "ppppppp" "iiii" "r", "mlp_grad_x": "ppppp" "iii" "r"}

_TEST_KERNELS = r"""
namespace shim_selftest {
// thread 0 leaves before the barrier: non-uniform __syncthreads()
extern "C" __global__ void divergent(int* x) {
    if (threadIdx.x == 0) {
        return;
    }
    __syncthreads();
    x[threadIdx.x] = 1;
}
// shared memory + barriers: block-wide reversal, needs the barrier to be real
extern "C" __global__ void reverse(const int* x, int* y) {
    __shared__ int s[7];
    s[threadIdx.x] = x[blockIdx.x * 7 + threadIdx.x];
    __syncthreads();
    y[blockIdx.x * 7 + threadIdx.x] = s[6 - threadIdx.x];
}
}
extern "C" int launch_divergent(unsigned grid, unsigned block, int* x) {
    return cuda_shim::launch(grid, block, [&] { shim_selftest::divergent(x); });
}
extern "C" int launch_reverse(unsigned grid, unsigned block, const int* x, int* y) {
    return cuda_shim::launch(grid, block, [&] { shim_selftest::reverse(x, y); });
}
"""


def _tag(variant, size_set):
    dtype, d, act, has_u, *opt = variant
    return f"v_{np.dtype(dtype).name}_d{d}_{act}_u{int(has_u)}{'_opt' if any(opt) else ''}_{size_set}"


def _sizes(size_set, variant):
    """The sizes the router compiles for this variant at this size set (the requested ones capped by
    d; for d beyond the register kernels, the same caps: the source is exercised at any d)."""
    s = SIZE_SETS[size_set]
    req = dict(mlp_block=s["mlp_units"], mlp_tile=s["mlp_samples"], gx_block=s["grad_x"], gx_samples=s["grad_x_samples"])
    dtype, d, _, has_u = variant[:4]
    routed = cuda_raw.route(dtype, d, has_u, req)
    if routed is None:
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(cuda_raw.REG_DIM, np.dtype(dtype).name, d)
            routed = cuda_raw.route(dtype, d, has_u, req)
    return routed


def _variant_cpp(variant, size_set):
    """One variant of the exact cuda_raw source, in its own namespace, plus its launchers."""
    tag = _tag(variant, size_set)
    src = cuda_raw.source(*variant, **_sizes(size_set, variant))
    out = [f"#define {k} {k}_{tag}" for k in PARAMS]
    out += [f"namespace {tag} {{", src, "}"]
    for k, kinds in PARAMS.items():
        args, n_p, n_i = [], 0, 0
        for c in kinds:
            if c == "p":
                args.append(f"({tag}::real_t*)p[{n_p}]")
                n_p += 1
            elif c == "i":
                args.append(f"(int)i[{n_i}]")
                n_i += 1
            else:
                args.append(f"({tag}::real_t)r")
        out.append(f'extern "C" int launch_{k}_{tag}(unsigned grid, unsigned block, void** p, const long long* i, double r) {{')
        out.append(f"    return cuda_shim::launch(grid, block, [&] {{ {tag}::{k}_{tag}({', '.join(args)}); }});")
        out.append("}")
    # the next variant redefines the preamble macros
    macros = sorted(set(re.findall(r"^\s*#\s*define\s+(\w+)", src, re.M)) | set(PARAMS))
    out += [f"#undef {m}" for m in macros]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="session")
def shim(tmp_path_factory, request):
    """The shared library of every shim variant, built once per session (two g++ jobs)."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not available")
    build = tmp_path_factory.mktemp("cuda_shim")
    units = [[], []]
    fast_tier = "not slow" in (request.config.getoption("markexpr") or "")
    for n, (v, s) in enumerate(vs for vs in SHIM_VARIANTS if not (fast_tier and _slow_only(vs))):
        units[n % 2].append(_variant_cpp(v, s))
    units[0].append(_TEST_KERNELS)
    flags = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
             f"-I{SHIM_DIR}"]
    objs = []
    for n, unit in enumerate(units):
        path = build / f"unit{n}.cpp"
        path.write_text('#include "cuda_shim.h"\n' + "".join(unit))
        objs.append(build / f"unit{n}.o")

    def compile_unit(n):
        return subprocess.run([gxx, *flags, "-c", str(build / f"unit{n}.cpp"), "-o", str(objs[n])],
                              capture_output=True, text=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(compile_unit, range(len(units))))
    for r in results:
        if r.returncode != 0:
            pytest.fail(f"g++ failed:\n{r.stderr[-6000:]}")
        assert r.stderr == "", r.stderr                    # warning-free as C++ too
    lib = build / "libmlp_shim.so"
    r = subprocess.run([gxx, "-shared", "-pthread", *map(str, objs), "-o", str(lib)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"link failed:\n{r.stderr}")
    handle = ctypes.CDLL(str(lib))
    handle.build_seconds = time.perf_counter() - t0
    handle.tags = {cuda_raw.source(*v, **_sizes(s, v)): _tag(v, s) for v, s in SHIM_VARIANTS
                   if not (fast_tier and (v, s) in LARGE_D_SLOW)}
    return handle


def _launch(lib, kernel, tag, grid, block, ptrs, ints, r):
    fn = getattr(lib, f"launch_{kernel}_{tag}")
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p),
                   ctypes.POINTER(ctypes.c_longlong), ctypes.c_double]
    assert len(ptrs) == PARAMS[kernel].count("p") and len(ints) == PARAMS[kernel].count("i")
    for a in ptrs:
        assert a is None or (a.flags.c_contiguous and a.dtype in (np.float32, np.float64))
    P = (ctypes.c_void_p * len(ptrs))(*[None if a is None else a.ctypes.data for a in ptrs])
    I = (ctypes.c_longlong * len(ints))(*ints)
    rc = fn(grid, block, P, I, float(r))
    assert rc == 0, "non-uniform __syncthreads() (see stderr)"


def shim_disc_step(lib, size_set, w, b, a, xg, xt, lr, l2, u, act, opt=None):
    """Host side of cuda_raw.mlp_disc_step, with the kernel run through the CPU shim."""
    dt = w.dtype
    B, d, W = w.shape
    N, M = xg.shape[2], xt.shape[2]
    lr = np.ascontiguousarray(lr, dtype=dt)
    l2 = np.ascontiguousarray(l2, dtype=dt)
    uu = None if u is None else np.ascontiguousarray(u, dtype=dt)
    variant = (dt.type, d, act, u is not None) + ((True,) if opt is not None else ())
    st = [None] * 7 if opt is None else [opt[k] for k in ONE_LAYER + ("coef",)]
    grid, block = cuda_raw.launch_dims("mlp_disc_step", B, W, N, _sizes(size_set, variant))
    _launch(lib, "mlp_disc_step", _tag(variant, size_set), grid, block,
            [w, b, a, xg, xt, lr, l2, uu, *st], [B, W, N, M], cuda_raw.scale(dt, W))
    return grid


def shim_grad_x(lib, size_set, w, b, a, x, act):
    dt = w.dtype
    B, d, W = w.shape
    n = x.shape[2]
    out = np.full(x.shape, np.nan, dtype=dt)
    variant = (dt.type, d, act, False)
    sizes = _sizes(size_set, variant)
    grid, block = cuda_raw.launch_dims("mlp_grad_x", B, W, n, sizes)
    _launch(lib, "mlp_grad_x", _tag(variant, size_set), grid, block,
            [w, b, a, x, out], [B, W, n], cuda_raw.scale(dt, W))
    return out, grid, sizes["gx_samples"]


def _patch_sizes(monkeypatch, size_set, cap):
    for k, v in SIZE_SETS[size_set].items():
        monkeypatch.setitem(launch.GPU_TILE if k.endswith("_samples") else launch.GPU_BLOCK, k, v)
    monkeypatch.setattr(launch, "GPU_MAX_BLOCKS", cap)


def _slow_only(vs) -> bool:
    """A variant whose every test is in the slow tier (the fast tier's shim build leaves it out)."""
    return vs in LARGE_D_SLOW or (vs[1] == "warp" and vs not in LARGE_D + FAST_WARP)


def _tier(variant_sets, fast):
    """pytest params: the slow tier's large-d variants (and, with fast=False, every one) marked slow."""
    out = []
    for vs in variant_sets:
        slow = _slow_only(vs) or not (fast or vs in LARGE_D or vs in FAST_WARP)
        out.append(pytest.param(vs, id=f"{_vid(vs[0])}-{vs[1]}", marks=[pytest.mark.slow] if slow else []))
    return out


@pytest.mark.parametrize("cap", [4, 10**6], ids=["gridstride", "fullgrid"])
@pytest.mark.parametrize("variant_set", _tier([vs for vs in SHIM_VARIANTS if vs not in OPT_VARIANTS], fast=False))
def test_shim_disc_step(shim, rng, monkeypatch, variant_set, cap):
    (dtype, d, act, with_u), size_set = variant_set
    _patch_sizes(monkeypatch, size_set, cap)
    B, W, N, M = 4, 23, 19, 13
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    lr = np.array([0.05, 0.0, 0.2, 0.1])
    l2 = np.array([1 / W, 0.01, 0.0, 0.02])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype) if with_u else None
    p_ref = [x.copy() for x in (w, b, a)]
    p_sh = [x.copy() for x in (w, b, a)]
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act)
    grid = shim_disc_step(shim, size_set, *p_sh, xg, xt, lr, l2, u, act)
    blk = SIZE_SETS[size_set]["mlp_units"]
    assert grid == min(cap, B * -(-W // blk))
    for r_, s_, orig in zip(p_ref, p_sh, (w, b, a)):
        assert s_.dtype == dtype
        np.testing.assert_allclose(s_, r_, **tol(dtype))
        assert np.array_equal(s_[1], orig[1])            # lr = 0: untouched
        assert not np.array_equal(s_[0], orig[0])


@pytest.mark.parametrize("variant_set", OPT_VARIANTS, ids=[f"{_vid(v)}-{s}" for v, s in OPT_VARIANTS])
def test_shim_disc_step_adaptive(shim, rng, monkeypatch, variant_set):
    """The adaptive update (OPT = 1) against the reference: Adam-like, gradient-descent-encoded and RMSProp
    coefficients, a skipped run (its parameters and moments untouched), a grid-stride launch."""
    (dtype, d, act, with_u, _), size_set = variant_set
    _patch_sizes(monkeypatch, size_set, 4)
    B, W, N, M = 4, 23, 19, 13
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    lr = np.array([0.05, 0.0, 0.2, 0.1])
    l2 = np.array([1 / W, 0.01, 0.0, 0.02])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype) if with_u else None
    opt = adaptive_state(rng, (w, b, a), dtype)
    p_ref, o_ref = [x.copy() for x in (w, b, a)], {k: v.copy() for k, v in opt.items()}
    p_sh, o_sh = [x.copy() for x in (w, b, a)], {k: v.copy() for k, v in opt.items()}
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act, opt=o_ref)
    shim_disc_step(shim, size_set, *p_sh, xg, xt, lr, l2, u, act, opt=o_sh)
    for r_, s_, orig in zip(p_ref + [o_ref[k] for k in sorted(opt)], p_sh + [o_sh[k] for k in sorted(opt)],
                            [w, b, a] + [opt[k] for k in sorted(opt)]):
        np.testing.assert_allclose(s_, r_, **tol(dtype))
        assert np.array_equal(s_[1], orig[1])             # lr = 0: untouched, moments too


@pytest.mark.parametrize("cap", [3, 10**6], ids=["gridstride", "fullgrid"])
@pytest.mark.parametrize("variant_set", _tier([vs for vs in SHIM_VARIANTS if not vs[0][3] and vs not in OPT_VARIANTS], fast=True))
def test_shim_grad_x(shim, rng, monkeypatch, variant_set, cap):
    (dtype, d, act, _), size_set = variant_set
    _patch_sizes(monkeypatch, size_set, cap)
    B, W, n = 3, 23 if size_set != "warp" else 83, 17
    w, b, a, x, _ = _mlp_inputs(rng, B, d, W, n, 1, dtype)
    got, grid, gs = shim_grad_x(shim, size_set, w, b, a, x, act)
    assert grid == min(cap, B * -(-n // gs))
    np.testing.assert_allclose(got, ref.mlp_grad_x(w, b, a, x, act), **tol(dtype))


def test_shim_disc_step_all_runs_skipped(shim, rng, monkeypatch):
    _patch_sizes(monkeypatch, "odd", 4)
    w, b, a, xg, xt = _mlp_inputs(rng, 3, 2, 11, 9, 8, np.float64)
    p = [x.copy() for x in (w, b, a)]
    shim_disc_step(shim, "odd", *p, xg, xt, np.zeros(3), np.full(3, 0.1), None, "tanh")
    for x, orig in zip(p, (w, b, a)):
        assert np.array_equal(x, orig)


def test_shim_selftest(shim):
    """The shim's barrier is real and non-uniform __syncthreads() is reported, not deadlocked."""
    x = np.arange(3 * 7, dtype=np.int32)
    y = np.zeros_like(x)
    pi = ctypes.POINTER(ctypes.c_int)
    shim.launch_reverse.argtypes = [ctypes.c_uint, ctypes.c_uint, pi, pi]
    shim.launch_divergent.argtypes = [ctypes.c_uint, ctypes.c_uint, pi]
    assert shim.launch_reverse(3, 7, x.ctypes.data_as(pi), y.ctypes.data_as(pi)) == 0
    assert np.array_equal(y, x.reshape(3, 7)[:, ::-1].ravel())
    z = np.zeros(4, dtype=np.int32)
    assert shim.launch_divergent(2, 4, z.ctypes.data_as(pi)) == 1


# ---------------------------------------------------------------------------------------------
# cuda_raw's CuPy wrappers end to end, with a stand-in CuPy whose RawModule runs the shim build
# ---------------------------------------------------------------------------------------------

class _FakeFunction:
    def __init__(self, lib, tag, name, dtype):
        self.lib, self.tag, self.name, self.dtype = lib, tag, name, dtype

    def __call__(self, grid, block, args):
        assert isinstance(grid, tuple) and isinstance(block, tuple)
        kinds = PARAMS[self.name]
        assert len(args) == len(kinds)
        ptrs, ints, r = [], [], None
        for kind, arg in zip(kinds, args):
            if kind == "p":
                assert arg is None or (isinstance(arg, np.ndarray) and arg.dtype == self.dtype)
                ptrs.append(arg)
            elif kind == "i":
                assert type(arg) is np.int32, f"int parameter passed as {type(arg)}"
                ints.append(int(arg))
            else:
                assert type(arg) is self.dtype.type, f"real_t parameter passed as {type(arg)}"
                r = arg
        _launch(self.lib, self.name, self.tag, grid[0], block[0], ptrs, ints, r)


class _FakeRawModule:
    compiled: list = []

    def __init__(self, code, options=(), name_expressions=None):
        self.tag = _FakeRawModule.lib.tags[code]        # the exact source of a shim variant
        self.dtype = np.dtype(np.float64 if "typedef double real_t;" in code else np.float32)
        assert list(options[:len(cuda_raw.NVRTC_OPTIONS)]) == list(cuda_raw.NVRTC_OPTIONS)
        assert any(o.startswith("-DFASTGAN_KERNEL_KEY=0x") for o in options)
        _FakeRawModule.compiled.append(self.tag)

    def get_function(self, name):
        return _FakeFunction(_FakeRawModule.lib, self.tag, name, self.dtype)


@pytest.fixture
def fake_cupy(shim, monkeypatch):
    import sys
    import types
    mod = types.ModuleType("cupy")
    mod.__version__ = "0.0-shim"
    mod.asarray, mod.ascontiguousarray, mod.empty = np.asarray, np.ascontiguousarray, np.empty
    mod.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(compute_capability="90", id=0))
    mod.RawModule = _FakeRawModule
    _FakeRawModule.lib = shim
    _FakeRawModule.compiled = []
    monkeypatch.setitem(sys.modules, "cupy", mod)
    monkeypatch.setattr(cuda_raw, "_modules", {})
    monkeypatch.setattr(cuda_raw, "_functions", {})
    return mod


@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_cuda_raw_wrappers_via_shim(fake_cupy, rng, monkeypatch, variant):
    dtype, d, act, with_u = variant
    _patch_sizes(monkeypatch, "odd", 4)
    B, W, N, M = 3, 23, 19, 13
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    lr = [0.05, 0.0, 0.2]                                # a list: the wrapper converts
    l2 = np.array([1 / W, 0.01, 0.0])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype) if with_u else None
    p_ref = [x.copy() for x in (w, b, a)]
    p_raw = [np.asfortranarray(w), b.copy(), a.copy()]   # non-contiguous w: written back in place
    ref.mlp_disc_step(*p_ref, xg, xt, np.array(lr), l2, u, act)
    cuda_raw.mlp_disc_step(*p_raw, xg, xt, lr, l2, u, act)
    for r_, s_, orig in zip(p_ref, p_raw, (w, b, a)):
        np.testing.assert_allclose(s_, r_, **tol(dtype))
        assert np.array_equal(s_[1], orig[1])
    g = cuda_raw.mlp_grad_x(w, b, a, xg, act)
    assert g.shape == xg.shape and g.dtype == dtype
    np.testing.assert_allclose(g, ref.mlp_grad_x(w, b, a, xg, act), **tol(dtype))
    # one module per variant (the grad_x one has HAS_U = 0), memoised
    cuda_raw.mlp_grad_x(w, b, a, xt, act)
    assert len(_FakeRawModule.compiled) == len(set(_FakeRawModule.compiled)) == (2 if with_u else 1)


def test_cuda_raw_adaptive_via_shim(fake_cupy, rng, monkeypatch):
    """cuda_raw.mlp_disc_step with opt: the OPT = 1 module, the moments (one non-contiguous) updated in place."""
    (dtype, d, act, with_u, _), size_set = OPT_VARIANTS[0]
    _patch_sizes(monkeypatch, size_set, 4)
    B, W, N, M = 4, 23, 19, 13
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    lr, l2 = np.array([0.05, 0.0, 0.2, 0.1]), np.array([1 / W, 0.01, 0.0, 0.02])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype)
    opt = adaptive_state(rng, (w, b, a), dtype)
    p_ref, o_ref = [x.copy() for x in (w, b, a)], {k: v.copy() for k, v in opt.items()}
    p_raw, o_raw = [x.copy() for x in (w, b, a)], {k: v.copy() for k, v in opt.items()}
    o_raw["v:w"] = np.asfortranarray(o_raw["v:w"])
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act, opt=o_ref)
    cuda_raw.mlp_disc_step(*p_raw, xg, xt, lr, l2, u, act, opt=o_raw)
    for k in sorted(opt):
        np.testing.assert_allclose(o_raw[k], o_ref[k], **tol(dtype), err_msg=k)
    for r_, s_ in zip(p_ref, p_raw):
        np.testing.assert_allclose(s_, r_, **tol(dtype))
    assert _FakeRawModule.compiled == [_tag(OPT_VARIANTS[0][0], size_set)]


# ---------------------------------------------------------------------------------------------
# on a real GPU (skipped without one): the CuPy path itself, default and odd launch sizes
# ---------------------------------------------------------------------------------------------

def _gpu():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no CUDA device: {e}")
    return cupy


def _off_kinks(rng, w, b, x, margin=1e-3):
    """Resample samples whose pre-activation at some unit lies within margin of the ReLU kink."""
    x = x.copy()
    for _ in range(100):
        h = np.einsum("rjk,rji->rki", x.astype(np.float64), w.astype(np.float64)) + b[:, None, :]
        bad = (np.abs(h) < margin).any(-1)                   # (B, n)
        if not bad.any():
            return x
        r, k = np.nonzero(bad)
        x[r, :, k] = rng.normal(size=(len(r), x.shape[1])).astype(x.dtype)
    raise AssertionError("could not move samples off the ReLU kinks")


@pytest.mark.parametrize("sizes", ["default", "odd"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_vid)
def test_cuda_raw_gpu(rng, monkeypatch, variant, sizes):
    cp = _gpu()
    dtype, d, act, with_u = variant
    if sizes == "odd":
        _patch_sizes(monkeypatch, "odd", 4)
    B, W, N, M = 4, 130, 67, 45                          # two unit tiles at the default 128
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, dtype)
    if act == "relu":
        # FMA contraction on the GPU rounds w.x + b differently: keep samples off the kinks
        xg, xt = (_off_kinks(rng, w, b, x) for x in (xg, xt))
    lr = np.array([0.05, 0.0, 0.2, 0.1])
    l2 = np.array([1 / W, 0.01, 0.0, 0.02])
    u = (0.1 * rng.normal(size=(B, d, N))).astype(dtype) if with_u else None
    p_ref = [x.copy() for x in (w, b, a)]
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act)
    p_gpu = [cp.asarray(x) for x in (w, b, a)]
    cuda_raw.mlp_disc_step(*p_gpu, cp.asarray(xg), cp.asarray(xt), lr, l2, None if u is None else cp.asarray(u), act)
    for r_, g_, orig in zip(p_ref, p_gpu, (w, b, a)):
        g_ = cp.asnumpy(g_)
        np.testing.assert_allclose(g_, r_, **tol(dtype))
        assert np.array_equal(g_[1], orig[1])
    g = cp.asnumpy(cuda_raw.mlp_grad_x(*(cp.asarray(x) for x in (w, b, a, xg)), act))
    np.testing.assert_allclose(g, ref.mlp_grad_x(w, b, a, xg, act), **tol(dtype))


# ---------------------------------------------------------------------------------------------
# host-side pieces of cuda_raw that need no GPU
# ---------------------------------------------------------------------------------------------

def test_import_does_not_import_cupy():
    code = ("import sys; import fastgan.kernels.cuda_raw as m; "
            "m.source('float32', 2, 'relu', True); assert 'cupy' not in sys.modules, 'cupy imported'")
    r = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_preamble_and_key():
    p = cuda_raw.preamble(np.float64, 3, "tanh", False, mlp_block=64, mlp_tile=96, gx_block=32, gx_samples=2)
    for line in ("typedef double real_t;", "#define DIM 3", "#define ACT ACT_TANH", "#define HAS_U 0",
                 "#define MLP_BLOCK 64", "#define MLP_TILE 96", "#define GX_BLOCK 32", "#define GX_SAMPLES 2"):
        assert line in p.splitlines()
    assert "MLP_TILE 128" in cuda_raw.preamble(np.float32, 2, "relu", True)     # tile defaults to the block
    src = cuda_raw.source(np.float32, 2, "relu", True)
    assert src.startswith(cuda_raw.preamble(np.float32, 2, "relu", True)) and cuda_raw.kernel_text() in src
    k = cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, np.float32, "90", "14.2.0")
    assert k == cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, np.float32, "90", "14.2.0")
    assert len({k, cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, np.float32, "80", "14.2.0"),
                cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, np.float32, "90", "14.3.0"),
                cuda_raw.cache_key(src + " ", cuda_raw.NVRTC_OPTIONS, np.float32, "90", "14.2.0"),
                cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, np.float64, "90", "14.2.0")}) == 5
    with pytest.raises(ValueError):
        cuda_raw.preamble(np.float32, 2, "gelu", False)
    with pytest.raises(TypeError):
        cuda_raw.preamble(np.float16, 2, "relu", False)


def test_launch_dims_read_at_call_time(monkeypatch):
    monkeypatch.setitem(launch.GPU_BLOCK, "mlp_units", 32)
    monkeypatch.setitem(launch.GPU_BLOCK, "grad_x", 64)
    monkeypatch.setattr(launch, "GPU_MAX_BLOCKS", 10)
    assert cuda_raw.launch_dims("mlp_disc_step", 3, 100, 7) == (10, 32)       # 3 * 4 tasks, capped
    assert cuda_raw.launch_dims("mlp_grad_x", 2, 100, 7) == (4, 64)           # 2 * ceil(7 / 4)
    monkeypatch.setattr(launch, "GPU_MAX_BLOCKS", 65535)
    assert cuda_raw.launch_dims("mlp_disc_step", 3, 100, 7) == (12, 32)
    with pytest.raises(ValueError, match="32-bit"):
        cuda_raw.launch_dims("mlp_grad_x", 2**29, 100, 16)         # 2^31 tasks
    monkeypatch.setitem(launch.GPU_BLOCK, "mlp_units", 2048)
    with pytest.raises(ValueError, match="1024"):
        cuda_raw.launch_dims("mlp_disc_step", 3, 100, 7)


def test_cu_files_are_package_data():
    import fastgan.kernels as K
    assert (Path(K.__file__).parent / cuda_raw.KERNEL_FILE).is_file()


# ---------------------------------------------------------------------------------------------
# the router: d beyond the register kernels goes to the GEMM path; caps keep shared memory small
# ---------------------------------------------------------------------------------------------

def test_route_caps_and_gemm_threshold():
    default = cuda_raw.launch_sizes()
    for dt in DTYPES:
        top = cuda_raw.REG_DIM[np.dtype(dt).name]
        size = np.dtype(dt).itemsize
        for d in range(1, top + 1):
            for has_u in (False, True):
                r = cuda_raw.route(dt, d, has_u, default)
                assert r["mlp_block"] == default["mlp_block"] and r["gx_block"] == default["gx_block"]
                assert d * r["mlp_tile"] * size * (1 + has_u) <= cuda_raw.SMEM_BUDGET
                assert d * r["gx_samples"] * size <= 4 * cuda_raw.GX_WORDS or r["gx_samples"] == 1
                assert 1 <= r["gx_samples"] <= default["gx_samples"]
        assert cuda_raw.route(dt, top + 1, False, default) is None
        big = dict(default, mlp_block=1024)                      # __launch_bounds__(1024): 64 registers
        assert 1 <= cuda_raw.reg_dim(dt, big) < cuda_raw.reg_dim(dt, dict(default, mlp_block=512)) < top
    assert cuda_raw.route(np.float64, 2, True, default) == default   # the paper's sizes are unchanged


@pytest.mark.parametrize("d", [13, 33])
@pytest.mark.parametrize("act", ACTS)
def test_cuda_raw_large_d_routes_to_gemm(fake_cupy, rng, monkeypatch, d, act):
    """float64 d >= 13 (the 'uses too much shared data' configs): the wrappers serve it, without a
    compiled variant, through the GEMM path, to rounding of the reference."""
    B, W, N, M = 3, 23, 19, 13
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, np.float64)
    lr, l2 = np.array([0.05, 0.0, 0.2]), np.array([1 / W, 0.01, 0.0])
    u = 0.1 * rng.normal(size=(B, d, N))
    p_ref = [x.copy() for x in (w, b, a)]
    p_raw = [np.asfortranarray(w), b.copy(), a.copy()]
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, act)
    cuda_raw.mlp_disc_step(*p_raw, xg, xt, lr, l2, u, act)
    for r_, s_, orig in zip(p_ref, p_raw, (w, b, a)):
        np.testing.assert_allclose(s_, r_, **tol(np.float64))
        assert np.array_equal(s_[1], orig[1])
    np.testing.assert_allclose(cuda_raw.mlp_grad_x(w, b, a, xg, act), ref.mlp_grad_x(w, b, a, xg, act),
                               **tol(np.float64))
    assert _FakeRawModule.compiled == []


def test_cuda_raw_large_d_adaptive_step_routes_to_gemm(fake_cupy, rng):
    """The adaptive update on the GEMM path (d = 13 float64): parameters and moments to rounding of the
    reference, a skipped run untouched."""
    B, W, N, M, d = 4, 23, 19, 13, 13
    w, b, a, xg, xt = _mlp_inputs(rng, B, d, W, N, M, np.float64)
    lr, l2 = np.array([0.05, 0.0, 0.2, 0.1]), np.array([1 / W, 0.01, 0.0, 0.02])
    u = 0.1 * rng.normal(size=(B, d, N))
    opt = adaptive_state(rng, (w, b, a), np.float64)
    p_ref, o_ref = [x.copy() for x in (w, b, a)], {k: v.copy() for k, v in opt.items()}
    p_raw, o_raw = [x.copy() for x in (w, b, a)], {k: v.copy() for k, v in opt.items()}
    ref.mlp_disc_step(*p_ref, xg, xt, lr, l2, u, "tanh", opt=o_ref)
    cuda_raw.mlp_disc_step(*p_raw, xg, xt, lr, l2, u, "tanh", opt=o_raw)
    for k in sorted(opt):
        np.testing.assert_allclose(o_raw[k], o_ref[k], **tol(np.float64), err_msg=k)
        assert np.array_equal(o_raw[k][1], opt[k][1])
    for r_, s_ in zip(p_ref, p_raw):
        np.testing.assert_allclose(s_, r_, **tol(np.float64))
    assert _FakeRawModule.compiled == []
