"""The GPU check: the one prepared script a session lent a GPU runs first (``benchmarks/gpu_check.sh`` wraps it).

    python benchmarks/gpu_check.py [--dry] [--out gpu_check.json] [--budget 470] [--no-install]
    python benchmarks/gpu_check.py info [--json PATH]   # device, driver, NVVM, chosen kernels

Steps, each with its own timeout inside one wall-clock budget (default 470 s), one JSON report:

1. install: ``pip install --no-index --no-deps --no-build-isolation -e .`` from the working tree (no
   network; the dependencies must already be there); the later steps put the checkout first on
   PYTHONPATH, so they run from the same source even where the install failed;
2. info: the device, driver, runtime, NVRTC, NVVM, the probe's verdict and which implementation serves
   each op (``fastgan.backend.cuda_facts``, ``Ops.chosen``);
3. at the same time: ``pytest -m gpu tests/gpu`` (the device suite; 4 workers with pytest-xdist);
   compute-sanitizer memcheck, racecheck, synccheck and initcheck, each over ``gpu_kernels.py launch``
   (every kernel once at odd sizes, default and odd launch parameters, CuPy's memory pool off so every
   array is its own allocation); ``gpu_kernels.py resources`` (registers, local memory, shared memory per
   kernel); numba's JIT cache warmed for the timings;
4. timings: ``gpu_timings.py``, cuda against numba, alone on the machine.

``--dry`` runs what needs no device (the install as ``--dry-run``, info, the device suite's collection,
the launch driver on the NumPy backend) and reports every device step as skipped with the reason; so
does a run on a machine where the cuda backend is not usable. Exit status 1 when a step failed.
This module imports only the standard library (it runs before the install).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCHEMA = "fastgan-gpu-check/1"
BUDGET = 470                  # seconds, the whole check (the bound: under 8 minutes)
TIMINGS_RESERVE = 130         # seconds kept for the timings after the parallel phase (at most 30 % of the budget)
# per-step timeouts (seconds); each is also cut to its deadline: the parallel phase ends TIMINGS_RESERVE
# before the budget does
TIMEOUTS = {"install": 90, "info": 60, "collect": 60, "launch-driver": 60, "pytest": 330, "memcheck": 330,
            "racecheck": 330, "synccheck": 330, "initcheck": 330, "resources": 240, "numba-warm": 200, "timings": 125}
SANITIZER_TOOLS = ("memcheck", "racecheck", "synccheck", "initcheck")
TAIL = 3000                   # characters of each step's output kept in the report


class Check:
    """Runs the steps, keeps their records and the shared deadline."""

    def __init__(self, python: str, budget: float, log_path: str | None, env: dict):
        self.python, self.t0, self.budget, self.env = python, time.monotonic(), budget, env
        self.steps: dict = {}
        self.lock = threading.Lock()
        self.log = open(log_path, "w") if log_path else None

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.t0)

    def skip(self, name: str, reason: str) -> dict:
        return self._record(name, {"status": "skipped", "reason": reason, "seconds": 0.0})

    def _record(self, name, rec) -> dict:
        with self.lock:
            self.steps[name] = rec
            line = f"[{time.monotonic() - self.t0:6.1f} s] {name:14s} {rec['status']:8s}"
            line += f" {rec['seconds']:.1f} s" if rec["status"] != "skipped" else ""
            line += f"  {rec['reason']}" if rec.get("reason") else ""
            print(line, flush=True)
        return rec

    def run(self, name: str, cmd: list, timeout: float | None = None, until: float | None = None,
            ok_codes=(0,), reason_fn=None, judge=None) -> dict:
        """Run ``cmd`` (cwd ROOT) within min(its timeout, the time to ``until`` (a time.monotonic() deadline),
        what the budget has left)."""
        left = self.left() if until is None else min(self.left(), until - time.monotonic())
        limit = min(timeout or TIMEOUTS.get(name, 60), left - 2)
        if limit < 1:
            return self.skip(name, "no time left in the budget")
        t = time.monotonic()
        try:
            # a new session: on a timeout the whole group goes (pytest-xdist workers, sanitizer targets)
            p = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
        except OSError as exc:
            return self._record(name, {"status": "failed", "reason": str(exc), "seconds": 0.0, "command": " ".join(cmd)})
        try:
            out, _ = p.communicate(timeout=limit)
            rc = p.returncode
            status = "passed" if rc in ok_codes else "failed"
        except subprocess.TimeoutExpired:
            _kill_group(p)
            out, _ = p.communicate()
            rc, status = None, "timeout"
        out = out or ""
        if judge is not None and status == "passed":
            status = judge(out, rc) or status
        rec = {"status": status, "rc": rc, "seconds": round(time.monotonic() - t, 2), "timeout_s": round(limit),
               "command": " ".join(cmd), "output_tail": out[-TAIL:]}
        if status == "timeout":
            rec["reason"] = f"stopped after {limit:.0f} s"
        elif reason_fn is not None:
            rec["reason"] = reason_fn(out, rc)
        elif status == "failed":
            rec["reason"] = f"exit status {rc}"
        if self.log:
            with self.lock:
                self.log.write(f"\n===== {name}: {rec['command']}\n{out}\n")
                self.log.flush()
        return self._record(name, rec)


def _kill_group(p) -> None:
    """End a step that ran out of time, with every process it started (its own process group)."""
    import signal
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except OSError:
            return
        try:
            p.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- info (imports fastgan)

def info() -> dict:
    """Device, driver, NVRTC, NVVM, the probe's verdict and the chosen implementation of every op."""
    from fastgan import backend
    from fastgan.kernels import registry
    facts = backend.cuda_facts()
    out = {"facts": facts, "auto": backend.resolve("auto", announce=False), "numba": backend.probe("numba").reason}
    if facts["ok"] and not facts["simulator"]:
        out["chosen"] = dict(backend.get_ops("cuda").chosen)
    else:
        out["chosen"] = {op.name: (op.gpu or op.cuda) + " (intended; cuda not loaded here)" for op in registry.OPS}
    return out


def print_info(d: dict) -> None:
    f = d["facts"]
    print(f"device   : {f.get('device', '-')} (cc {f.get('compute_capability', '-')}, "
          f"{f.get('multiprocessors', '-')} SMs, {f.get('memory_gib', '-')} GiB)")
    print(f"driver   : {f.get('driver_release') or '-'} (CUDA {f.get('driver_cuda') or '-'})")
    print(f"CuPy     : {f.get('cupy') or 'not installed'} (runtime CUDA {f.get('runtime_cuda', '-')}, "
          f"NVRTC {f.get('nvrtc', '-')})")
    print(f"NVVM     : {('PTX ' + f['nvvm_ptx_isa'] + ' (CUDA ' + f['nvvm_cuda'] + ')') if f.get('nvvm_ptx_isa') else f.get('nvvm_error', '-')}"
          f"; numba {f.get('numba') or '-'}, numba-cuda {f.get('numba_cuda') or '-'}")
    print(f"cuda     : {'usable' if f['ok'] else 'NOT usable'}: {f['reason']}")
    print(f"auto     : {d['auto']}")
    print("kernels  :")
    for k, v in d["chosen"].items():
        print(f"  {k:26s} {v}")


# --------------------------------------------------------------------------- result readers

def read_junit(path: str) -> dict:
    """Counts and failing test ids of a pytest JUnit XML file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return {"error": f"no JUnit report ({type(exc).__name__})"}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    out = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    bad = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            bad.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    out["passed"] = out["tests"] - out["failures"] - out["errors"] - out["skipped"]
    out["failed"] = bad[:50]
    return out


def sanitizer_summary(text: str) -> dict:
    """Errors (and racecheck hazards) compute-sanitizer reported."""
    out = {}
    m = re.findall(r"ERROR SUMMARY: (\d+) error", text)
    if m:
        out["errors"] = int(m[-1])
    h = re.findall(r"(\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)", text)
    if h:
        out["hazards"], out["hazard_errors"], out["hazard_warnings"] = map(int, h[-1])
    return out


def find_sanitizer() -> str:
    """compute-sanitizer on PATH, in a CUDA toolkit or in a pip wheel ('' if none)."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    cands = [os.path.join(os.environ.get(v, ""), "bin", "compute-sanitizer") for v in ("CUDA_HOME", "CUDA_PATH")]
    import glob
    cands += sorted(glob.glob("/usr/local/cuda*/bin/compute-sanitizer"), reverse=True)
    cands += sorted(glob.glob("/usr/local/cuda*/compute-sanitizer/compute-sanitizer"), reverse=True)
    for p in sys.path:
        cands += glob.glob(os.path.join(p, "nvidia", "*", "compute-sanitizer", "compute-sanitizer"))
        cands += glob.glob(os.path.join(p, "nvidia", "*", "bin", "compute-sanitizer"))
    return next((c for c in cands if c and os.path.isfile(c) and os.access(c, os.X_OK)), "")


def _load_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- the check

def check(dry: bool, out_path: str, budget: float = BUDGET, install: bool = True, python: str | None = None) -> dict:
    python = python or sys.executable
    # the steps import the checkout first (the same source as the editable install, also if it failed)
    env = dict(os.environ, PYTHONUNBUFFERED="1", FASTGAN_PROGRESS="0",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p))
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    log_path = os.path.splitext(out_path)[0] + ".log"
    ck = Check(python, budget, log_path, env)
    work = tempfile.mkdtemp(prefix="fastgan-gpu-check-")
    report = {"schema": SCHEMA, "dry": dry, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "budget_s": budget,
              "host": {"python": platform.python_version(), "executable": python, "platform": platform.platform(),
                       "cpus": os.cpu_count(), "git_commit": _git_commit()},
              "log": os.path.basename(log_path)}
    print(f"fastgan GPU check{' (dry run)' if dry else ''}: budget {budget:.0f} s, report {out_path}", flush=True)

    # 1. install from the working tree, without network
    pip = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation", "-e", "."]
    if not install:
        ck.skip("install", "--no-install")
    else:
        ck.run("install", pip[:4] + ["--dry-run"] + pip[4:] if dry else pip)

    # 2. info
    info_json = os.path.join(work, "info.json")
    rec = ck.run("info", [python, os.path.join(HERE, "gpu_check.py"), "info", "--json", info_json])
    inf = _load_json(info_json) if rec["status"] == "passed" else None
    if rec["status"] == "passed" and inf is None:
        rec.update(status="failed", reason="info wrote no JSON")
    if inf:
        print_info(inf)
        report.update(device=inf["facts"], chosen_kernels=inf["chosen"], auto=inf["auto"])
    usable = bool(inf and inf["facts"].get("ok") and not inf["facts"].get("simulator"))
    why_not = ("dry run (--dry)" if dry else
               f"no usable GPU: {inf['facts']['reason']}" if inf and not inf["facts"].get("ok") else
               "the CUDA simulator is set (NUMBA_ENABLE_CUDASIM)" if inf and inf["facts"].get("simulator") else
               "the info step failed")
    device = usable and not dry

    # 3. at the same time: the device suite, the four sanitizers, the resource readback, numba's JIT cache
    lane_end = time.monotonic() + ck.left() - min(TIMINGS_RESERVE, 0.3 * budget)
    junit = os.path.join(work, "junit.xml")
    res_json = os.path.join(work, "resources.json")
    driver = [python, os.path.join(HERE, "gpu_kernels.py")]
    san = find_sanitizer() if device else ""
    report["sanitizer"] = {"binary": san}

    def tests():
        if not device:
            ck.skip("pytest", why_not)
            ck.run("collect", [python, "-m", "pytest", "--collect-only", "-q", "-m", "gpu", "tests/gpu",
                               "-p", "no:cacheprovider"],
                   reason_fn=lambda out, rc: (re.findall(r"(\d+ tests? collected)", out) or ["?"])[-1])
            return
        par = ["-n", "4"] if _has(python, "xdist") else []
        rec = ck.run("pytest", [python, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rfE", "-p", "no:cacheprovider",
                                f"--junitxml={junit}", *par], until=lane_end,
                     reason_fn=lambda out, rc: _pytest_line(out))
        report["pytest"] = read_junit(junit) if os.path.exists(junit) else {"summary": _pytest_line(rec.get("output_tail", ""))}

    def sanitizer(tool):
        def go():
            if not device or not san:
                ck.skip(tool, why_not if not device else "compute-sanitizer not found (PATH, CUDA_HOME, /usr/local/cuda*)")
                return
            cmd = [san, "--tool", tool, "--error-exitcode", "86", "--print-limit", "25"]
            cmd += ["--racecheck-report", "all"] if tool == "racecheck" else []
            rec = ck.run(tool, cmd + driver + ["launch", "--launch", "default", "odd", "--no-pool"], until=lane_end,
                         reason_fn=_sanitizer_reason,     # no summary line, or errors: failed
                         judge=lambda out, rc: "failed" if sanitizer_summary(out).get("errors", 1) else None)
            report["sanitizer"][tool] = dict(sanitizer_summary(rec.get("output_tail", "")), status=rec["status"])
        return go

    def resources():
        if not device:
            ck.skip("resources", why_not)
            ck.run("launch-driver", driver + ["launch", "--backend", "numpy", "--launch", "default"],
                   reason_fn=lambda out, rc: out.strip().splitlines()[-1] if out.strip() else "")
            return
        ck.run("resources", driver + ["resources", "--json", res_json], until=lane_end)
        report["resources"] = _load_json(res_json)

    def warm():
        if device:
            ck.run("numba-warm", [python, os.path.join(HERE, "gpu_timings.py"), "--warm"], until=lane_end)
        else:
            ck.skip("numba-warm", why_not)

    jobs = [tests, *(sanitizer(t) for t in SANITIZER_TOOLS), resources, warm]
    threads = [threading.Thread(target=f) for f in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # 4. timings, alone
    tim_json = os.path.join(work, "timings.json")
    if device:
        ck.run("timings", [python, os.path.join(HERE, "gpu_timings.py"), "--json", tim_json])
        report["timings"] = _load_json(tim_json)
    else:
        ck.skip("timings", why_not)

    report["steps"] = ck.steps
    failed = [k for k, v in ck.steps.items() if v["status"] in ("failed", "timeout")]
    report["summary"] = {"ok": not failed, "failed_steps": failed,
                         "skipped_steps": [k for k, v in ck.steps.items() if v["status"] == "skipped"],
                         "device_steps_ran": device, "why_skipped": None if device else why_not}
    report["elapsed_s"] = round(time.monotonic() - ck.t0, 1)
    with open(out_path, "w") as fh:
        json.dump(report, fh, indent=1, default=str)
    if ck.log:
        ck.log.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"GPU check {'passed' if not failed else 'FAILED: ' + ', '.join(failed)} in {report['elapsed_s']} s; "
          f"report {out_path}", flush=True)
    return report


def _has(python: str, module: str) -> bool:
    """Whether ``python`` can import ``module`` (e.g. pytest-xdist for parallel device tests)."""
    try:
        return subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _pytest_line(out: str) -> str:
    """pytest's closing summary ('3 failed, 280 passed, 3 skipped in 95.1s'), or ''."""
    m = re.findall(r"^=*\s*(\d+ (?:passed|failed|skipped|error|errors|deselected)\b.*?)\s*=*$", out, re.M)
    return m[-1] if m else ""


def _sanitizer_reason(out: str, rc) -> str:
    s = sanitizer_summary(out)
    parts = [f"{s['errors']} errors" if "errors" in s else "no ERROR SUMMARY line"]
    if "hazards" in s:
        parts.append(f"{s['hazards']} hazards")
    return ", ".join(parts) + (f" (exit status {rc})" if rc else "")


def _git_commit() -> str:
    try:
        p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        return p.stdout.strip() if p.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="check", choices=("check", "info"))
    ap.add_argument("--dry", action="store_true", help="run only what needs no device; report the rest skipped")
    ap.add_argument("--out", default="gpu_check.json", help="the JSON report (a .log beside it holds every output)")
    ap.add_argument("--budget", type=float, default=BUDGET, help="seconds for the whole check")
    ap.add_argument("--no-install", action="store_true", help="skip the pip install step")
    ap.add_argument("--python", default=None, help="interpreter of the steps (default: this one)")
    ap.add_argument("--json", default=None, help="info: also write it here")
    args = ap.parse_args(argv)
    if args.what == "info":
        d = info()
        print_info(d)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(d, fh, default=str)
        return 0
    rep = check(args.dry, os.path.abspath(args.out), args.budget, not args.no_install, args.python)
    return 0 if rep["summary"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
