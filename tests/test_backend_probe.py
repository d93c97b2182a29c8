"""The cuda probe (``fastgan.backend``) without a GPU: every branch that keeps ``auto`` off cuda says why
in one line, driven by stand-ins for CuPy, numba-cuda, libNVVM and the tiny launch."""

from types import SimpleNamespace

import pytest

from fastgan import backend


def _cupy(driver=12080, runtime=12090, devices=1, count_error=None):
    def count():
        if count_error:
            raise RuntimeError(count_error)
        return devices

    rt = SimpleNamespace(driverGetVersion=lambda: driver, runtimeGetVersion=lambda: runtime, getDeviceCount=count,
                         getDeviceProperties=lambda i: {"name": b"NVIDIA H100 80GB HBM3", "major": 9, "minor": 0})
    return SimpleNamespace(cuda=SimpleNamespace(runtime=rt), __version__="14.2.0")


@pytest.fixture
def fake(monkeypatch):
    """Stand-ins for every step of a healthy CUDA 12 machine; a test breaks one of them."""
    backend.probe.cache_clear()
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    steps = SimpleNamespace(cupy=_cupy(), isa=(8, 8), launch="", available=True)

    def import_cupy():
        if isinstance(steps.cupy, Exception):
            raise steps.cupy
        return steps.cupy

    def ptx_isa(nbcuda):
        if isinstance(steps.isa, Exception):
            raise steps.isa
        return steps.isa

    monkeypatch.setattr(backend, "_import_cupy", import_cupy)
    monkeypatch.setattr(backend, "_import_numba_cuda", lambda: SimpleNamespace(is_available=lambda: steps.available))
    monkeypatch.setattr(backend, "_ptx_isa", ptx_isa)
    monkeypatch.setattr(backend, "_tiny_launch", lambda cupy, nbcuda: steps.launch)
    monkeypatch.setattr(backend, "_driver_release", lambda: "575.57.08")
    yield steps
    backend.probe.cache_clear()


def _no(expected_words):
    a = backend.probe("cuda")
    assert not a.ok and "\n" not in a.reason, a
    for w in expected_words:
        assert w in a.reason, a.reason
    return a.reason


def test_healthy_machine_is_chosen_by_auto(fake):
    a = backend.probe("cuda")
    assert a.ok and "H100" in a.reason and "575.57.08" in a.reason and "PTX 8.8" in a.reason, a
    assert backend.resolve("auto", announce=False) == "cuda"


def test_no_cupy(fake):
    fake.cupy = ImportError("No module named 'cupy'\nmore text")
    _no(["cupy is not installed", "fastgan[cuda]"])


def test_no_driver(fake):
    fake.cupy = _cupy(driver=0)
    _no(["no CUDA driver"])


def test_driver_older_than_the_runtime(fake):
    fake.cupy = _cupy(driver=12040, runtime=13000)
    _no(["too old for CuPy's CUDA 13.0 runtime", "580"])


def test_no_device(fake):
    fake.cupy = _cupy(count_error="cudaErrorNoDevice: no CUDA-capable device is detected")
    _no(["no usable CUDA device", "cudaErrorNoDevice"])


def test_no_nvvm(fake):
    fake.isa = OSError("libNVVM cannot be found. Do `conda install cudatoolkit`:\nlibnvvm.so: cannot open")
    _no(["no usable libNVVM", "numba-cuda[cu12]"])


def test_cuda13_ptx_needs_driver_580(fake):
    fake.isa = (9, 0)                                       # CUDA 13 NVVM, CUDA 12.8 driver
    _no(["cannot load PTX 9.0 from CUDA 13 NVVM", ">= 580", "fastgan[cuda]"])


def test_numba_sees_no_gpu(fake):
    fake.available = False
    _no(["numba-cuda reports no usable GPU"])


def test_tiny_launch_failure(fake, caplog):
    fake.launch = "Numba-CUDA kernel: CudaAPIError: [222] Call to cuModuleLoadDataEx results in UNSUPPORTED_PTX_VERSION"
    reason = _no(["tiny kernel launch failed", "UNSUPPORTED_PTX_VERSION"])
    backend._announced.clear()
    with caplog.at_level("INFO", logger="fastgan"):
        assert backend.resolve("auto") in ("numba", "numpy")
    assert any(reason in r.getMessage() for r in caplog.records)     # auto says why, in one line


def test_probe_is_cached(fake):
    assert backend.probe("cuda") is backend.probe("cuda")


def test_the_real_probe_here_says_why_in_one_line():
    backend.probe.cache_clear()
    a = backend.probe("cuda")
    assert a.reason and "\n" not in a.reason
    facts = backend.cuda_facts()
    assert facts["ok"] == a.ok and facts["reason"] == a.reason


def test_tiny_launch_reports_a_failing_compile_in_one_line():
    def boom(*a, **k):
        raise RuntimeError("nvrtc: error: invalid value for --gpu-architecture (-arch)\nlog follows")

    fake_cupy = SimpleNamespace(ElementwiseKernel=boom)
    why = backend._tiny_launch(fake_cupy, None)
    assert why.startswith("CuPy (NVRTC) kernel: RuntimeError: nvrtc: error") and "\n" not in why
