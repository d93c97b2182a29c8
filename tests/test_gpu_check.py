"""The GPU check (benchmarks/gpu_check.sh) without a GPU: its dry mode end to end, and the pieces that read
a GPU's answers (sanitizer summaries, JUnit reports, kernel attributes), fed stand-ins."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tests", "gpu"))

import gpu_check  # noqa: E402
import gpu_kernels  # noqa: E402

DEVICE_STEPS = ("pytest", "memcheck", "racecheck", "synccheck", "initcheck", "resources", "numba-warm", "timings")


@pytest.mark.slow
def test_dry_run_end_to_end(tmp_path):
    out = tmp_path / "report.json"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHON=sys.executable)
    p = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"), "--dry", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    rep = json.loads(out.read_text())
    assert rep["schema"] == gpu_check.SCHEMA and rep["dry"] is True
    steps = rep["steps"]
    assert set(DEVICE_STEPS) <= set(steps)
    for name in DEVICE_STEPS:                                   # every device step skipped, with the reason
        assert steps[name]["status"] == "skipped" and steps[name]["reason"] == "dry run (--dry)", (name, steps[name])
    # what needs no device ran: the device suite collects, the launch driver works, info read the machine
    assert steps["info"]["status"] == "passed", steps["info"]
    assert steps["collect"]["status"] == "passed" and "collected" in steps["collect"]["reason"], steps["collect"]
    assert steps["launch-driver"]["status"] == "passed" and "0 errors" in steps["launch-driver"]["reason"]
    assert steps["install"]["status"] in ("passed", "failed")    # pip --dry-run: needs setuptools in the env
    assert set(rep["chosen_kernels"]) >= {"mlp_disc_step", "kde_grad_sum"}
    assert rep["device"]["reason"] and "\n" not in rep["device"]["reason"]
    assert rep["summary"]["device_steps_ran"] is False and rep["summary"]["why_skipped"] == "dry run (--dry)"
    assert "device   :" in p.stdout and "kernels  :" in p.stdout and "GPU check" in p.stdout
    assert (tmp_path / "report.log").exists()
    assert rep["elapsed_s"] < 60
    assert p.returncode == (0 if rep["summary"]["ok"] else 1)


def test_sanitizer_summaries():
    assert gpu_check.sanitizer_summary("========= ERROR SUMMARY: 0 errors\n") == {"errors": 0}
    race = "========= RACECHECK SUMMARY: 3 hazards displayed (1 error, 2 warnings)\n========= ERROR SUMMARY: 1 error\n"
    assert gpu_check.sanitizer_summary(race) == {"errors": 1, "hazards": 3, "hazard_errors": 1, "hazard_warnings": 2}
    assert gpu_check.sanitizer_summary("python: command not found") == {}
    assert gpu_check._sanitizer_reason(race, 86) == "1 errors, 3 hazards (exit status 86)"


def test_pytest_results(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
                   '<testcase classname="tests.gpu.test_device_ops" name="test_op_on_device[a]"><failure/></testcase>'
                   '<testcase classname="x" name="ok"/></testsuite></testsuites>')
    r = gpu_check.read_junit(str(xml))
    assert r["tests"] == 4 and r["passed"] == 2 and r["failed"] == ["tests.gpu.test_device_ops::test_op_on_device[a]"]
    assert "error" in gpu_check.read_junit(str(tmp_path / "missing.xml"))
    assert gpu_check._pytest_line("...\n===== 2 failed, 280 passed, 4 skipped in 95.12s (0:01:35) =====\n") \
        == "2 failed, 280 passed, 4 skipped in 95.12s (0:01:35)"


@pytest.mark.slow
def test_step_timeout_ends_the_process_group(tmp_path):
    ck = gpu_check.Check(sys.executable, 60, None, dict(os.environ))
    rec = ck.run("t", [sys.executable, "-c", "import subprocess, sys, time; "
                       "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"],
                 timeout=2)
    assert rec["status"] == "timeout" and rec["seconds"] < 15     # the sleeping grandchild went too
    assert ck.run("u", [sys.executable, "-c", "pass"], until=0)["status"] == "skipped"     # past its deadline
    # a sanitizer run that exits 0 without its ERROR SUMMARY line is a failure
    judge = lambda out, rc: "failed" if gpu_check.sanitizer_summary(out).get("errors", 1) else None     # noqa: E731
    assert ck.run("v", [sys.executable, "-c", "print('hello')"], judge=judge)["status"] == "failed"
    assert ck.run("w", [sys.executable, "-c", "print('== ERROR SUMMARY: 0 errors')"], judge=judge)["status"] == "passed"


def test_kernel_resources_from_stand_ins():
    over = SimpleNamespace(regs_per_thread=40, local_mem_per_thread=0, shared_mem_per_block=1024,
                           max_threads_per_block=1024)
    Kern = type("Kern", (tuple,), {"_fields": ("step",), "step": property(lambda s: s[0])})
    disp = SimpleNamespace(overloads={("float32[:]",): over})
    ks = SimpleNamespace(name="mlp", max_dim=3, build=lambda dn, d: Kern((disp if (dn, d) == ("float32", 2) else
                                                                          SimpleNamespace(overloads={}),)))
    rows = gpu_kernels.numba_cuda_resources({"mlp": ks})
    assert rows == [{"kernel": "mlp.step[d=2]", "impl": "numba-cuda", "signature": "('float32[:]',)",
                     "registers": 40, "local_bytes": 0, "shared_bytes": 1024, "max_threads_per_block": 1024}]
    attrs = {"NUM_REGS": 48, "LOCAL_SIZE_BYTES": 8, "SHARED_SIZE_BYTES": 1024, "MAX_THREADS_PER_BLOCK": 1024}
    rows = gpu_kernels.cuda_c_resources({("mlp_disc_step", "<f4", 2, "relu", False): object()},
                                        lambda what, fn: attrs[what])
    assert rows[0]["kernel"] == "cuda_raw.mlp_disc_step/<f4/2/relu/False" and rows[0]["local_bytes"] == 8


def test_launch_sets_patch_and_restore(monkeypatch):
    import device_inputs
    from fastgan.kernels import launch
    before = (dict(launch.GPU_BLOCK), dict(launch.GPU_TILE), launch.GPU_MAX_BLOCKS)
    out = gpu_kernels.launch_all(("odd", "default"), backend="numpy", only=["mlp_grad_x"])
    assert out["calls"] == 8 and out["n_errors"] == 0
    assert (dict(launch.GPU_BLOCK), dict(launch.GPU_TILE), launch.GPU_MAX_BLOCKS) == before
    device_inputs.set_launch("odd", monkeypatch.setitem, monkeypatch.setattr)
    assert launch.GPU_BLOCK["grad_x"] == 5 and launch.GPU_MAX_BLOCKS == 3
    assert all(v % 32 for v in launch.GPU_BLOCK.values())
    with pytest.raises(ValueError):
        device_inputs.set_launch("huge", monkeypatch.setitem, monkeypatch.setattr)


def test_find_sanitizer_returns_a_path_or_nothing():
    found = gpu_check.find_sanitizer()
    assert found == "" or os.access(found, os.X_OK)
