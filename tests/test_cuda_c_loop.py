"""The raw CUDA C loop kernels (kernels/loop.cu via fastgan.kernels.cuda_raw_loop) checked without a GPU.

(a) NVRTC: every variant compiles for sm_80 (cubin) and compute_80 (PTX) with an empty log
    (tests/test_gpu_build.py assembles them with ptxas for spills).
(b) CPU shim: the exact source compiles as C++20 through tests/shim/cuda_shim.h (a block's threads are
    real threads, __syncthreads() a barrier) and runs the launches that ``cuda_raw_loop``'s host plans
    make, with odd blocks and a small grid cap: samples bitwise numba's CPU twin (the same C library
    maths) and to the last bit NumPy's, the coupling to rounding, the update (particles, liveness,
    divergence iteration) bitwise.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fastgan.kernels import (coupling_numpy, cuda_raw, cuda_raw_loop, launch, registry, sampling_numba,
                             sampling_numpy, update_numpy)

SHIM_DIR = Path(__file__).resolve().parent / "shim"
BLOCKS = (5, 33)                  # a partial warp; more than a warp, not a power of two
VARIANTS = [(dt, blk) for dt in ("float32", "float64") for blk in BLOCKS]
# a grid cap of 2 (every grid-stride loop turns over) in the fast tier; the full grid too in the full suite
CAPS = [pytest.param(2, id="gridstride"), pytest.param(10**6, id="fullgrid", marks=pytest.mark.slow)]

# parameter kinds of each kernel: p = pointer (C type), i = integer scalar (C type)
SIGNATURES = {
    "sample_steps": ["const fg_u64*", "const fg_u64*", "long long", "long long", "const double*", "const double*",
                     "const double*", "real_t*", "int", "int", "int", "int", "int"],
    "coarse": ["const real_t*", "const double*", "const double*", "real_t*", "int", "int", "int"],
    "update_advance": ["const real_t*", "const real_t*", "const real_t*", "const unsigned char*", "unsigned char*",
                       "real_t*", "int", "long long"],
    "flag_nonfinite_f32": ["const float*", "int", "long long", "unsigned char*"],
    "flag_nonfinite_f64": ["const double*", "int", "long long", "unsigned char*"],
    "update_settle": ["const real_t*", "const unsigned char*", "unsigned char*", "long long*", "long long", "real_t*",
                      "int", "long long"],
}


def _tag(dtype, block):
    return f"loop_{dtype}_b{block}"


def _variant_cpp(dtype, block):
    tag = _tag(dtype, block)
    src = cuda_raw_loop.source(dtype, block)
    out = [f"#define {k} {k}_{tag}" for k in SIGNATURES]           # extern "C" names are global
    out += [f"namespace {tag} {{", src, "}"]
    for k, kinds in SIGNATURES.items():
        args, n_p, n_i = [], 0, 0
        for c in kinds:
            if c.endswith("*"):
                args.append(f"({c.replace('real_t', f'{tag}::real_t').replace('fg_u64', f'{tag}::fg_u64')})p[{n_p}]")
                n_p += 1
            else:
                args.append(f"({c})i[{n_i}]")
                n_i += 1
        out.append(f'extern "C" int launch_{k}_x_{tag}(unsigned grid, unsigned block, void** p, const long long* i) {{')
        out.append(f"    return cuda_shim::launch(grid, block, [&] {{ {tag}::{k}_{tag}({', '.join(args)}); }});")
        out.append("}")
    out += [f"#undef {m}" for m in ("LOOP_BLOCK", "FG_GOLDEN", "FG_TWO_M53", "FG_TWO_PI", *SIGNATURES)]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not available")
    build = tmp_path_factory.mktemp("loop_shim")
    flags = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-Wall", "-Wextra", "-Werror", f"-I{SHIM_DIR}"]
    units = [VARIANTS[0::2], VARIANTS[1::2]]

    def compile_unit(n):
        path = build / f"unit{n}.cpp"
        path.write_text('#include "cuda_shim.h"\n' + "".join(_variant_cpp(*v) for v in units[n]))
        return subprocess.run([gxx, *flags, "-c", str(path), "-o", str(build / f"unit{n}.o")], capture_output=True,
                              text=True)

    with ThreadPoolExecutor(2) as pool:
        for r in pool.map(compile_unit, range(2)):
            assert r.returncode == 0 and r.stderr == "", r.stderr[-6000:]      # warning-free as C++ too
    lib = build / "libloop_shim.so"
    r = subprocess.run([gxx, "-shared", "-pthread", str(build / "unit0.o"), str(build / "unit1.o"), "-o", str(lib)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(lib))


def run_steps(lib, steps, dtype, block):
    """Launch a host plan's steps through the shim (what ``cuda_raw_loop._run`` does with CuPy)."""
    for name, grid, blk, args in steps:
        assert blk == block
        ptrs = [a.ctypes.data for a in args if isinstance(a, np.ndarray) and a.ndim > 0]
        ints = [int(a) for a in args if not (isinstance(a, np.ndarray) and a.ndim > 0)]
        assert len(ptrs) + len(ints) == len(SIGNATURES[name])
        for a in args:
            if isinstance(a, np.ndarray) and a.ndim > 0:
                assert a.flags.c_contiguous
        fn = getattr(lib, f"launch_{name}_x_{_tag(dtype, block)}")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_longlong)]
        rc = fn(grid, blk, (ctypes.c_void_p * max(1, len(ptrs)))(*ptrs), (ctypes.c_longlong * max(1, len(ints)))(*ints))
        assert rc == 0, "non-uniform __syncthreads() (see stderr)"


@pytest.fixture
def sized(monkeypatch):
    def set_(block, cap):
        monkeypatch.setitem(launch.GPU_BLOCK, "elementwise", block)
        monkeypatch.setattr(launch, "GPU_MAX_BLOCKS", cap)
    return set_


@pytest.mark.parametrize("cap", [2, 10**6], ids=["gridstride", "fullgrid"])
@pytest.mark.parametrize("dtype,block", VARIANTS)
def test_sampling_is_bitwise_the_reference(shim, sized, dtype, block, cap):
    sized(block, cap)
    cb, nb, _, _, means, cum, stds, _, _ = registry._sampling(np.random.default_rng(3), np.dtype(dtype), {}, False).args
    B, m, S = means.shape[0], 13, 3
    ref = sampling_numpy.sample_mixture_steps(cb, nb, 12, S, means, cum, stds, m, np.dtype(dtype))
    out, steps = cuda_raw_loop.plan_sample_steps(np, cb, nb, 12, S, means, cum, stds, m, np.dtype(dtype))
    assert len(steps) == 1 and steps[0][1] == min(cap, -(-S * B * m // block))
    run_steps(shim, steps, dtype, block)
    # the integer part (keys, uniforms, components) is exact; the normals go through the C library's
    # log / sin / cos, as numba's CPU twin does, which NumPy's own log differs from in a rare last bit
    twin = sampling_numba.sample_mixture_steps(cb, nb, 12, S, means, cum, stds, m, np.dtype(dtype))
    np.testing.assert_array_equal(out, twin)
    np.testing.assert_allclose(out, ref, rtol=4e-16 if dtype == "float64" else 0, atol=0)
    one, steps = cuda_raw_loop.plan_sample_steps(np, cb, nb, 12, 1, means, cum, stds, m, np.dtype(dtype), first=2)
    run_steps(shim, steps, dtype, block)
    np.testing.assert_array_equal(one[0], twin[2])


@pytest.mark.parametrize("cap", CAPS)
@pytest.mark.parametrize("dtype,block", VARIANTS)
def test_coarse_coupling_matches_the_reference(shim, sized, dtype, block, cap):
    sized(block, cap)
    r = np.random.default_rng(4)
    B, d, N = 3, 2, 71                                   # rows > grid cap; N > block: strided partial sums
    G = r.normal(size=(B, d, N)).astype(dtype)
    g1, g2 = np.array([5.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.3])
    out, steps = cuda_raw_loop.plan_coarse(np, G, g1, g2)
    run_steps(shim, steps, dtype, block)
    ref = coupling_numpy.coupled_velocity_coarse(G, g1, g2)
    rtol = 2e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * np.abs(ref).max())


def _update_case(dtype, case):
    r = np.random.default_rng(5)
    B, d, N = 4, 2, 29
    X = r.normal(size=(B, d, N)).astype(dtype)
    V = r.normal(size=(B, d, N)).astype(dtype)
    lr = np.array([0.05, 0.0, 0.2, 0.1], dtype=dtype)
    alive = np.array([True, True, True, case != "dead"])
    diverged = np.where(alive, -1, 4).astype(np.int64)
    other = "float64" if dtype == "float32" else "float32"
    params = (r.normal(size=(B, 5)).astype(dtype),
              r.normal(size=(B, 2, 3)).astype(other if case == "mixed" else dtype))
    if case == "dead":
        V[3] = np.nan                                    # a dead run's velocity is whatever it is: X stays
    else:
        V[1, 1, 7] = np.inf                              # run 1's particles blow up (lr = 0: 0 * inf = NaN)
        params[1][2, 0, 1] = np.nan                      # run 2's parameters blow up
    return X, V, lr, alive, diverged, 9, params


@pytest.mark.parametrize("case", ["blowup", "dead", "mixed"])
@pytest.mark.parametrize("cap", CAPS)
@pytest.mark.parametrize("dtype,block", VARIANTS)
def test_generator_update_is_bitwise_the_reference(shim, sized, dtype, block, cap, case):
    sized(block, cap)
    X, V, lr, alive, diverged, it, params = _update_case(dtype, case)
    a_ref, d_ref = alive.copy(), diverged.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        ref = update_numpy.generator_update(X, V, lr, a_ref, d_ref, it, params)
        a_sh, d_sh = alive.copy(), diverged.copy()
        out, steps = cuda_raw_loop.plan_update(np, X, V, lr, a_sh, d_sh, it, params)
    assert [s[0] for s in steps] == (["update_advance"] + [f"flag_nonfinite_{'f32' if p.dtype == np.float32 else 'f64'}"
                                                          for p in params] + ["update_settle"])
    run_steps(shim, steps, dtype, block)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(a_sh, a_ref)
    np.testing.assert_array_equal(d_sh, d_ref)
    if case != "dead":
        assert list(a_sh) == [True, False, False, True] and list(d_sh) == [-1, 9, 9, -1]
        np.testing.assert_array_equal(out[1:3], X[1:3])  # the runs that died keep their particles
    else:
        assert list(a_sh) == [True, True, True, False] and d_sh[3] == 4
        np.testing.assert_array_equal(out[3], X[3])


@pytest.fixture(scope="module")
def nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc as mod
        mod.getVersion()
    except Exception as e:  # noqa: BLE001 - no CuPy or no NVRTC library
        pytest.skip(f"NVRTC unavailable: {e}")
    return mod


@pytest.mark.parametrize("dtype,block", VARIANTS + [("float32", 1024), ("float64", 1024)])
def test_loop_kernels_compile_with_nvrtc(nvrtc, dtype, block):
    src = cuda_raw_loop.source(dtype, block)
    key = cuda_raw.cache_key(src, cuda_raw.NVRTC_OPTIONS, dtype, "80", "test")
    for arch in ("sm_80", "compute_80"):
        prog = nvrtc.createProgram(src, "loop.cu", [], [])
        try:
            try:
                nvrtc.compileProgram(prog, [*cuda_raw.nvrtc_options(key), f"--gpu-architecture={arch}", "-ftz=true"])
            except nvrtc.NVRTCError as e:
                pytest.fail(f"NVRTC failed ({e}):\n{nvrtc.getProgramLog(prog)}")
            log = nvrtc.getProgramLog(prog).rstrip("\x00")
        finally:
            nvrtc.destroyProgram(prog)
        assert log == "", f"{arch}: non-empty NVRTC log:\n{log}"
