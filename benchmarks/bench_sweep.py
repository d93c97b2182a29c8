"""Benchmark: orchestration overhead of a sweep (planning, writing parts, consolidating) against
its compute, for a 256-run sweep (16 g2/g1 values x 16 replicates) on the numba backend.

    python benchmarks/bench_sweep.py [--iterations 300] [--backend numba]
"""

from __future__ import annotations

import argparse
import tempfile


def bench_sweep(iterations: int = 300, backend: str = "numba", width: int = 2048) -> dict:
    from fastgan.sweep import execute, parse_spec
    spec = {"sweep": {"name": "bench", "replicates": 16, "observables": ["mode_collapse"],
                      "base": {"discriminator": {"width": width}, "training": {"n_iterations": iterations, "n_disc": 2},
                               "record": {"snapshots": 0, "discriminator": False}},
                      "axes": [{"key": "coupling.ratio", "logspace": [-2.0, -0.5, 16]}]}}
    sw = parse_spec(spec)
    with tempfile.TemporaryDirectory() as d:
        execute(parse_spec({"sweep": dict(spec["sweep"], replicates=1,
                                          base=dict(spec["sweep"]["base"], training={"n_iterations": 2}))}),
                d + "/warm", backend=backend, progress=False)              # JIT compilation out of the timing
        out = execute(sw, d + "/s", backend=backend, progress=False)
    over = out["plan_s"] + out["write_s"] + out["consolidate_s"]
    return {"runs": out["runs_total"], "ensembles": out["ensembles"], "compute_s": out["compute_s"],
            "overhead_s": over, "overhead_fraction": over / out["compute_s"], "backend": out["backend"],
            "iterations": iterations}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--backend", default="numba")
    args = ap.parse_args()
    r = bench_sweep(args.iterations, args.backend)
    print(f"{r['runs']} runs in {r['ensembles']} ensembles [{r['backend']}, {r['iterations']} iterations]: compute "
          f"{r['compute_s']:.2f} s, planning + writing + consolidating {r['overhead_s']:.2f} s "
          f"({100 * r['overhead_fraction']:.1f} %)")


if __name__ == "__main__":
    main()
