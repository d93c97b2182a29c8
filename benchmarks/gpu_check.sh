#!/usr/bin/env bash
# The GPU check: what a session lent a GPU runs first, in the repository root (see benchmarks/README.md).
#
#   benchmarks/gpu_check.sh [--dry] [--out REPORT.json] [--budget SECONDS] [--no-install]
#
# Installs fastgan from the working tree without network (pip --no-index --no-deps: the image must already
# hold numpy, numba, numba-cuda, cupy, h5py, scipy, xarray, pytest, ...), prints the device, driver, NVVM and
# the kernels chosen per op, runs `pytest -m gpu`, compute-sanitizer (memcheck, racecheck, synccheck,
# initcheck) over a driver that launches every kernel once at odd sizes, reads registers / local memory per
# kernel, times cuda against numba, and writes one JSON report (+ a .log of every step's output), all within
# the budget (default 470 s). --dry runs only what needs no device and reports the rest as skipped.
# The interpreter: $PYTHON, else the active virtual environment's python, else python3.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then PY="$VIRTUAL_ENV/bin/python"; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1
# a hard stop 20 s beyond the budget (--budget, default 470 s), whatever happens inside
budget=470
prev=""
for a in "$@"; do
  if [ "$prev" = "--budget" ]; then budget="${a%.*}"; fi
  case "$a" in --budget=*) budget="${a#--budget=}"; budget="${budget%.*}" ;; esac
  prev="$a"
done
exec timeout --kill-after=10 "$((budget + 20))" "$PY" benchmarks/gpu_check.py check --python "$PY" "$@"
