"""Launch every GPU kernel once (the driver compute-sanitizer runs) and read back each kernel's resources.

    python benchmarks/gpu_kernels.py launch [--launch default odd] [--no-pool] [--backend cuda] [--ops NAME ...] [--json PATH]
    python benchmarks/gpu_kernels.py resources [--json PATH]

``launch``: every registered op, variant and precision on the registry's awkward sizes (inputs off the
ReLU kinks, ``tests/gpu/device_inputs.py``), once per launch set (default and odd launch parameters),
through the cuda op table and through the Numba-CUDA fallbacks of the ops that prefer CUDA C or cuBLAS:
so every CUDA C variant and every Numba-CUDA kernel specialisation the suite uses runs at least once.
Results are not compared here (``pytest -m gpu`` does that); a call that raises is reported.

``resources``: after one such pass at the default launch parameters, registers, local memory (spills,
stack), static shared memory and the largest block of every compiled kernel: CuPy raw kernels through
``cuFuncGetAttribute``, Numba-CUDA kernels through their overloads. Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "gpu")):
    if p not in sys.path:
        sys.path.insert(0, p)


def _sync(xp):
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def _tables(backend: str) -> list:
    """(label, Ops) to launch: the backend's table, and on cuda its Numba-CUDA fallbacks."""
    from fastgan.kernels import registry
    from fastgan.kernels.ops import Ops, load_ops
    ops = load_ops(backend)
    out = [("table", ops)]
    if backend == "cuda":
        ns = registry.namespace("cuda")
        table = {op.name: getattr(ops, op.name) for op in registry.OPS}
        for op in registry.OPS:
            if op.gpu is not None:
                table[op.name] = registry.implementation(op, "cuda", ns)
        out.append(("numba-cuda fallback", Ops("cuda", ops.xp, table, {op.name: op.cuda for op in registry.OPS})))
    return out


def launch_all(launches=("default", "odd"), backend="cuda", only=None, pool=True) -> dict:
    """Call every op once per launch set and table; {calls, errors: [(case, message)], seconds}.
    ``pool=False`` turns CuPy's memory pool off: every array its own allocation, so compute-sanitizer's
    memcheck / initcheck see each one's bounds and first write."""
    from device_inputs import cases, device_case, set_launch
    from test_op_registry import call

    from fastgan.kernels import launch

    if backend == "cuda" and not pool:
        import cupy
        cupy.cuda.set_allocator(None)
        cupy.cuda.set_pinned_memory_allocator(None)
    t0 = time.perf_counter()
    calls, errors = 0, []
    saved = (dict(launch.GPU_BLOCK), dict(launch.GPU_TILE), launch.GPU_MAX_BLOCKS)
    try:
        for which in launches:
            set_launch(which, lambda d, k, v: d.__setitem__(k, v), setattr)
            for label, ops in _tables(backend):
                for op, variant, dtype, cid in cases(only):
                    if label != "table" and op.gpu is None:
                        continue
                    try:
                        call(ops, op, device_case(op, variant, dtype))
                        _sync(ops.xp)
                    except Exception as exc:  # noqa: BLE001 - reported, the pass goes on
                        errors.append((f"{which}/{label}/{cid}", f"{type(exc).__name__}: {str(exc)[:300]}"))
                    calls += 1
            launch.GPU_BLOCK.update(saved[0])
            launch.GPU_TILE.update(saved[1])
            launch.GPU_MAX_BLOCKS = saved[2]
    finally:
        launch.GPU_BLOCK.update(saved[0])
        launch.GPU_TILE.update(saved[1])
        launch.GPU_MAX_BLOCKS = saved[2]
    return {"backend": backend, "launches": list(launches), "calls": calls, "n_errors": len(errors),
            "errors": errors[:40], "seconds": round(time.perf_counter() - t0, 2)}


# --------------------------------------------------------------------------- resources

def numba_cuda_resources(kernel_sets=None, dims=(None, 1, 2, 3, 4, 8, 16, 32, 64)) -> list:
    """One row per compiled overload of every registered Numba-CUDA kernel."""
    if kernel_sets is None:
        import importlib
        importlib.import_module("fastgan.kernels.cuda_numba")          # registers every kernel set
        from fastgan.kernels.cuda_numba_common import KERNEL_SETS
        kernel_sets = KERNEL_SETS
    rows, seen = [], set()
    for ks in kernel_sets.values():
        for dn in ("float32", "float64"):
            for d in dims:
                if (d is None) != (ks.max_dim is None) or (d is not None and d > ks.max_dim):
                    continue
                kernels = ks.build(dn, d)
                for kname in kernels._fields:
                    disp = getattr(kernels, kname)
                    if id(disp) in seen:                 # one dispatcher may serve every dtype (typed per call)
                        continue
                    seen.add(id(disp))
                    for sig, k in dict(getattr(disp, "overloads", {}) or {}).items():
                        rows.append({"kernel": f"{ks.name}.{kname}" + ("" if d is None else f"[d={d}]"),
                                     "impl": "numba-cuda", "signature": str(sig),
                                     "registers": _attr(k, "regs_per_thread"),
                                     "local_bytes": _attr(k, "local_mem_per_thread"),
                                     "shared_bytes": _attr(k, "shared_mem_per_block"),
                                     "max_threads_per_block": _attr(k, "max_threads_per_block")})
    return rows


def _attr(obj, name):
    try:
        return int(getattr(obj, name))
    except Exception:  # noqa: BLE001
        return None


def cuda_c_resources(functions=None, get_attribute=None) -> list:
    """One row per compiled CUDA C kernel variant of ``cuda_raw`` (its memo of compiled functions)."""
    if functions is None:
        from fastgan.kernels import cuda_raw
        functions = getattr(cuda_raw, "_functions", {})
    if get_attribute is None:
        from cupy.cuda import driver

        def get_attribute(what, fn):
            return int(driver.funcGetAttribute(getattr(driver, f"CU_FUNC_ATTRIBUTE_{what}"), fn.ptr))
    rows = []
    for key, fn in sorted(functions.items(), key=lambda kv: str(kv[0])):
        row = {"kernel": "cuda_raw." + "/".join(str(k) for k in (key if isinstance(key, tuple) else (key,))),
               "impl": "cuda-c"}
        for col, what in (("registers", "NUM_REGS"), ("local_bytes", "LOCAL_SIZE_BYTES"),
                          ("shared_bytes", "SHARED_SIZE_BYTES"), ("max_threads_per_block", "MAX_THREADS_PER_BLOCK")):
            try:
                row[col] = get_attribute(what, fn)
            except Exception:  # noqa: BLE001
                row[col] = None
        rows.append(row)
    return rows


def resources() -> dict:
    """Launch everything once at the default launch parameters, then read every kernel's resources."""
    run = launch_all(("default",))
    rows = cuda_c_resources() + numba_cuda_resources()
    spills = [r["kernel"] for r in rows if r.get("local_bytes")]
    return {"launch": run, "kernels": rows, "with_local_memory": spills,
            "max_registers": max((r["registers"] or 0 for r in rows), default=None)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("launch", "resources"))
    ap.add_argument("--launch", nargs="+", default=["default", "odd"], choices=("default", "odd"))
    ap.add_argument("--backend", default="cuda", help="cuda (default); numba / numpy only to test the driver")
    ap.add_argument("--ops", nargs="+", default=None, help="only these ops (default: all)")
    ap.add_argument("--no-pool", action="store_true", help="CuPy's memory pool off (for compute-sanitizer)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import numpy as np
    np.seterr(all="ignore")
    out = launch_all(args.launch, args.backend, args.ops, not args.no_pool) if args.what == "launch" else resources()
    run = out if args.what == "launch" else out["launch"]
    print(f"{args.what}: {run['calls']} op calls on {run['backend']} ({', '.join(run['launches'])} launch) in "
          f"{run['seconds']} s, {run['n_errors']} errors")
    for cid, msg in run["errors"][:20]:
        print(f"  ERROR {cid}: {msg}")
    if args.what == "resources":
        for r in out["kernels"]:
            print(f"  {r['kernel'][:90]:90s} regs {r['registers']!s:>4} local {r['local_bytes']!s:>5} B "
                  f"shared {r['shared_bytes']!s:>6} B")
        print(f"kernels with local memory (spills / stack): {out['with_local_memory'] or 'none'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 1 if run["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
