"""Registers, stack, spills and static shared memory of every GPU kernel variant the routers can launch,
without a GPU: ``ptxas -v`` for sm_80 and sm_90 over the PTX of the Numba-CUDA kernels (NVVM, in a
subprocess with the simulator off) and of the CUDA C variants (NVRTC).

    python benchmarks/ptx_resources.py [--markdown] [--json PATH]

Sizes: each Numba-CUDA kernel set at the ends of the d its router sends to it (1, 2, 3 and its largest
d; the KDE gradient's coordinate chunks at 32 and 64), the CUDA C MLP step and grad_x at every d of
their register kernels at the default launch sizes, and the routed ends at 512 and 1024 threads; the
CUDA C loop kernels (``loop.cu``) at the default block and at 1024 threads.
``tests/test_gpu_build.py`` asserts no spill on the same reports (fewer sizes, for the suite's time).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ("sm_80", "sm_90")


def ptxas() -> str | None:
    exe = shutil.which("ptxas") or "/usr/local/bin/ptxas"
    return exe if os.path.exists(exe) else None


def ptxas_report(ptx: str, arch: str, tmp: Path) -> dict:
    """{entry: (registers, stack, spill stores, spill loads, smem)} of ``ptxas -v``; RuntimeError on an error."""
    src = tmp / f"k{abs(hash(ptx)) % 10**12}_{arch}.ptx"
    src.write_text(ptx.rstrip("\x00"))
    r = subprocess.run([ptxas(), "-v", f"-arch={arch}", str(src), "-o", os.devnull], capture_output=True, text=True)
    src.unlink()
    if r.returncode != 0:
        raise RuntimeError(f"ptxas {arch} failed:\n{r.stderr[-3000:]}")
    out = {}
    for chunk in r.stderr.split("Compiling entry function ")[1:]:
        name = re.match(r"'(\w+)'", chunk).group(1)
        frame = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", chunk)
        regs = re.search(r"Used (\d+) registers", chunk)
        smem = re.search(r"(\d+) bytes smem", chunk)
        out[name] = (int(regs.group(1)), *map(int, frame.groups()), int(smem.group(1)) if smem else 0)
    return out


PTX_SCRIPT = r"""
import json, re, sys
from types import SimpleNamespace
from unittest import mock
try:
    from numba.cuda.cudadrv import nvvm
    nvvm.NVVM()
except Exception as exc:
    print("NO_NVVM", type(exc).__name__); sys.exit(0)
from numba import cuda
from numba.cuda import dispatcher
from fastgan.kernels import cuda_numba  # noqa: F401  (registers every kernel set)
from fastgan.kernels.cuda_numba_common import ptx_targets
spec = json.loads(sys.argv[1])
keep = re.compile(spec["keep"])
out = {}
with mock.patch.object(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(8, 0))):
    for label, fn, sig in ptx_targets(spec["dtypes"], spec["dims"], spec["sets"]):
        if keep.search(label):
            out[label] = cuda.compile_ptx(fn, sig, cc=(8, 0))[0]
json.dump(out, open(spec["out"], "w"))
print("COMPILED", len(out))
"""


def numba_ptx(tmp: Path, spec: dict) -> dict | None:
    """{label: PTX} of the Numba-CUDA kernels of ``spec`` (sets, dtypes, dims, keep), None without libNVVM."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", FASTGAN_PROGRESS="0")
    spec = dict(spec, out=str(tmp / f"numba_ptx_{abs(hash(json.dumps(spec, sort_keys=True)))}_{os.getpid()}.json"))
    r = subprocess.run([sys.executable, "-c", PTX_SCRIPT, json.dumps(spec)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(r.stdout[-2000:] + r.stderr[-4000:])
    if r.stdout.startswith("NO_NVVM"):
        return None
    return json.loads(Path(spec["out"]).read_text())


def cuda_c_ptx(nvrtc, src: str, name: str = "mlp.cu") -> str:
    from fastgan.kernels import cuda_raw
    prog = nvrtc.createProgram(src, name, [], [])
    try:
        try:
            nvrtc.compileProgram(prog, [*cuda_raw.NVRTC_OPTIONS, "--gpu-architecture=compute_80", "-ftz=true"])
        except nvrtc.NVRTCError as e:
            raise RuntimeError(f"NVRTC failed ({e}):\n{nvrtc.getProgramLog(prog)}") from None
        ptx = nvrtc.getPTX(prog)
        return ptx.decode() if isinstance(ptx, bytes) else ptx
    finally:
        nvrtc.destroyProgram(prog)


NUMBA_SPECS = [
    dict(sets=["mlp", "linear", "spatial", "misc", "update"], dtypes=["float32", "float64"], dims=[1, 2, 3, 8, 16],
         keep=""),
    dict(sets=["kde"], dtypes=["float32", "float64"], dims=[1, 2, 3, 16, 32, 64], keep=""),
]
LAUNCH_SETS = {"default": None, "512 threads": dict(mlp_block=512, mlp_tile=512, gx_block=512, gx_samples=4),
               "1024 threads": dict(mlp_block=1024, mlp_tile=1024, gx_block=1024, gx_samples=4)}


def collect(tmp: Path) -> dict:
    """{"numba": {label: {arch: report}}, "cuda_c": {label: {arch: report}}, "missing": [...]}."""
    from fastgan.kernels import cuda_raw, cuda_raw_loop, launch
    out = {"numba": {}, "cuda_c": {}, "missing": []}
    if ptxas() is None:
        out["missing"].append("ptxas")
        return out
    for spec in NUMBA_SPECS:
        ptx = numba_ptx(tmp, spec)
        if ptx is None:
            out["missing"].append("libNVVM")
            break
        for label, text in ptx.items():
            out["numba"][label] = {a: ptxas_report(text, a, tmp) for a in ARCHS}
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception:  # noqa: BLE001
        out["missing"].append("NVRTC")
        return out
    for set_name, sizes in LAUNCH_SETS.items():
        for dn in ("float32", "float64"):
            top = cuda_raw.reg_dim(dn, sizes or cuda_raw.launch_sizes())
            dims = range(1, top + 1) if sizes is None else sorted({1, top})
            for d in dims:
                for act, u, opt in (("relu", False, False), ("relu", True, False), ("tanh", False, False),
                                    ("tanh", True, False), ("relu", True, True), ("tanh", True, True)):
                    routed = cuda_raw.route(dn, d, u, sizes)
                    src = cuda_raw.source(dn, d, act, u, opt, **routed)
                    text = cuda_c_ptx(nvrtc, src)
                    tag = f"{act}{',u' if u else ''}{',adaptive' if opt else ''}"
                    out["cuda_c"][f"mlp.cu[{dn},d={d},{tag},{set_name}]"] = {a: ptxas_report(text, a, tmp) for a in ARCHS}
    for dn in ("float32", "float64"):
        for block in (launch.GPU_BLOCK["elementwise"], 1024):
            text = cuda_c_ptx(nvrtc, cuda_raw_loop.source(dn, block), "loop.cu")
            out["cuda_c"][f"loop.cu[{dn},{block} threads]"] = {a: ptxas_report(text, a, tmp) for a in ARCHS}
    return out


def markdown(res: dict) -> str:
    lines = ["| kernel [dtype, d] | sm_80 regs / stack / spill st, ld / smem | sm_90 |", "|---|---|---|"]

    def cell(rep):
        return f"{rep[0]} / {rep[1]} / {rep[2]}, {rep[3]} / {rep[4]}"
    for part in ("numba", "cuda_c"):
        for label, by_arch in sorted(res[part].items()):
            for entry in sorted(by_arch["sm_80"]):
                name = label if len(by_arch["sm_80"]) == 1 else f"{label} {entry}"
                lines.append(f"| {name} | {cell(by_arch['sm_80'][entry])} | {cell(by_arch['sm_90'][entry])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the reports here")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        res = collect(Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, sort_keys=True))
    spills = [f"{lab} {a} {e}" for part in ("numba", "cuda_c") for lab, by in res[part].items()
              for a, rep in by.items() for e, r in rep.items() if r[2] or r[3]]
    if args.markdown:
        print(markdown(res))
    n = len(res["numba"]) + len(res["cuda_c"])
    print(f"{n} variants; spills: {', '.join(spills) if spills else 'none'}"
          + (f"; not available: {', '.join(res['missing'])}" if res["missing"] else ""))
    return 1 if spills else 0


if __name__ == "__main__":
    sys.exit(main())
