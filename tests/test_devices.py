"""What sdplay tells of the machine without importing torch agrees with what torch finds."""

from __future__ import annotations

import os

import pytest
import torch

from sdplay import devices
from sdplay.catalog import describe_environment
from sdplay.devices import cpu_has_native_bf16, cpu_threads, native_bf16_in_cpuinfo, torch_sees_no_gpu, use_all_cores

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
"""
SKYLAKE = ZEN4.replace(" avx512_bf16", "")
SAPPHIRE_RAPIDS = ZEN4.replace(" avx512_bf16", " amx_bf16 amx_tile")
GRAVITON3 = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd sve i8mm bf16 rng\nCPU implementer\t: 0x41\n"
GRAVITON2 = GRAVITON3.replace(" bf16", "")


@pytest.mark.parametrize(
    "text, native",
    [(ZEN4, True), (SKYLAKE, False), (SAPPHIRE_RAPIDS, True), (GRAVITON3, True), (GRAVITON2, False), ("", None)],
)
def test_native_bf16_is_read_from_the_cpu_flags(text, native) -> None:
    assert native_bf16_in_cpuinfo(text) is native


def test_native_bf16_agrees_with_torch_here() -> None:
    """torch's oneDNN check also says yes on AVX512 CPUs without bf16 instructions; on a CPU with them
    (the Zen 4 this project is measured on) both say yes, and where torch says no, so does sdplay."""
    torch_says = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert torch_says or not cpu_has_native_bf16()
    if devices.CPUINFO.exists() and native_bf16_in_cpuinfo(devices.CPUINFO.read_text()):
        assert torch_says and cpu_has_native_bf16()


def test_without_cpuinfo_torch_decides(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(devices, "CPUINFO", tmp_path / "missing")
    assert cpu_has_native_bf16() == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_cpu_threads_honour_omp_num_threads(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    for unset in ("", "many"):  # torch ignores what is not a number; a run then uses every core
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert cpu_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    "build, platform, drivers, no_gpu",
    [
        ("2.5.1+cpu", "win32", True, True),
        ("2.5.1+cu124", "linux", False, True),
        ("2.5.1+cu124", "linux", True, False),
        ("2.5.1", "darwin", False, False),  # MPS
    ],
)
def test_no_gpu_is_decided_from_the_build_and_the_drivers(monkeypatch, tmp_path, build, platform, drivers, no_gpu):
    monkeypatch.setattr(devices, "version", lambda name: build)
    monkeypatch.setattr(devices.sys, "platform", platform)
    monkeypatch.setattr(devices, "GPU_DRIVERS", (tmp_path if drivers else tmp_path / "missing",))
    assert torch_sees_no_gpu() is no_gpu


def test_info_tells_without_torch_what_torch_tells(monkeypatch) -> None:
    """The CPU's facts as the system tells them match torch's (the torch path runs where a GPU is possible)."""
    assert torch_sees_no_gpu()  # a CPU-only torch here
    without_torch = describe_environment()
    monkeypatch.setattr("sdplay.devices.torch_sees_no_gpu", lambda: False)
    use_all_cores()  # what a run does before computing on the CPU
    with_torch = describe_environment()
    assert without_torch == with_torch
    assert list(without_torch) == [
        *("sdplay", "python", "torch", "diffusers", "transformers", "device", "dtype", "cpu threads"),
        *("default model", "hf token", "cpu bf16", "openvino"),
    ]
    assert without_torch["torch"] == torch.__version__ and without_torch["device"] == "cpu"
    assert without_torch["cpu threads"] == str(cpu_threads())
    assert [describe_environment("cpu", name)["dtype"] for name in ("fp32", "bf16")] == ["fp32", "bf16"]
