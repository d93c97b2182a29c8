"""Runs ``tests/cudasim`` under the CUDA simulator in a subprocess, started as soon as the main suite's
collection is done so that it overlaps with the other tests (the simulator is single-threaded
Python; the machine has more than one core). ``tests/test_cuda_simulator.py`` reports every simulator
test as its own test from the outcomes the subprocess writes (``tests/cudasim/conftest.py``)."""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = "tests/cudasim"
PARAM = "cudasim_id"


def env(**extra) -> dict:
    return dict(os.environ, FASTGAN_PROGRESS="0", NUMBA_ENABLE_CUDASIM="1", **extra)


def collect() -> list:
    """The node ids of tests/cudasim, collected under the simulator (under a second)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", SUITE],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    ids = [ln.strip() for ln in proc.stdout.splitlines() if ln.startswith(SUITE + "/") and "::" in ln]
    if proc.returncode != 0 or not ids:
        return [f"{SUITE}::collection-failed"]
    return ids


class Run:
    """One subprocess over the selected simulator tests; ``outcomes()`` waits for it."""

    def __init__(self, wanted: list, every: bool):
        self.dir = tempfile.mkdtemp(prefix="fastgan-cudasim-")
        self.report = os.path.join(self.dir, "outcomes.json")
        self.log = open(os.path.join(self.dir, "log.txt"), "w+")
        targets = [SUITE] if every else wanted
        self.proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *targets],
                                     cwd=ROOT, env=env(FASTGAN_CUDASIM_REPORT=self.report), stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)

    def outcomes(self, timeout: float = 1800) -> dict:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        if not os.path.exists(self.report):
            self.log.seek(0)
            return {"": ("failed", f"the simulator suite did not run:\n{self.log.read()[-6000:]}")}
        with open(self.report) as fh:
            return {k: tuple(v) for k, v in json.load(fh).items()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
