"""Pick the device and dtype once, so every mode computes in the same place.

`auto` prefers CUDA, then Apple's MPS, then the CPU; half precision by default on a GPU. On the
CPU fp16 is slow; bf16 pays off only on CPUs with native bf16 (AVX512-BF16, AMX) and large models,
so `--dtype auto` takes bf16 there for SD-size UNets and fp32 for small ones (`cpu_auto_dtype`).
"""

from __future__ import annotations

import os
import re
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SdplayError

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that need it: settings check these names before anything loads
DEVICE_CHOICES = ("auto", "cpu", "cuda", "gpu", "mps")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # our names -> torch's
GPU_DRIVERS = (Path("/proc/driver/nvidia"), Path("/dev/kfd"))  # NVIDIA's and AMD's kernel drivers on Linux
CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = {"flags": {"avx512_bf16", "amx_bf16"}, "features": {"bf16"}}  # x86 and aarch64 cpuinfo lines


def check_device_name(name: str | None) -> str:
    """The device name in lower case, or an error naming the choices (no torch needed)."""
    name = (name or "auto").lower()
    if name not in DEVICE_CHOICES and not re.fullmatch(r"cuda:\d+", name):
        raise SdplayError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return name


def check_dtype_name(name: str | None) -> str:
    """The dtype name in lower case, or an error naming the choices (no torch needed)."""
    name = (name or "auto").lower()
    if name != "auto" and name not in DTYPES:
        raise SdplayError(f"unknown dtype {name!r}; choose one of auto, {', '.join(DTYPES)}")
    return name


def check_device_here(name: str | None) -> str:
    """The device name as resolve_device takes it (`gpu` is `cuda`), or the error that it is not here where that
    is certain without importing torch (a second or two), so that the mistake fails at once."""
    name = check_device_name(name)
    name = "cuda" if name == "gpu" else name
    if name not in ("auto", "cpu") and torch_sees_no_gpu():
        raise _not_here(name)
    return name


def _not_here(name: str) -> SdplayError:
    if name == "mps":
        return SdplayError("--device mps was asked for but Apple MPS is not available; use --device cpu")
    return SdplayError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn `auto|cpu|cuda|gpu|mps` (or `cuda:N`) into a device that exists here."""
    name = check_device_here(name)
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not (torch.backends.mps.is_available() if name == "mps" else torch.cuda.is_available()):
        raise _not_here(name)
    return torch.device(name)


def torch_sees_no_gpu() -> bool:
    """Whether torch certainly finds no GPU here, decided without importing it (that takes a second or two):
    the installed torch is a CPU-only build, or on Linux neither NVIDIA's nor AMD's GPU driver is loaded."""
    if version("torch").endswith("+cpu"):
        return True
    return sys.platform.startswith("linux") and not any(driver.exists() for driver in GPU_DRIVERS)


def dtype_choice(name: str, device_type: str) -> str:
    """Our dtype name that `name` means on a device of this type: `auto` is fp16 on CUDA and MPS (what SD
    checkpoints are published in) and fp32 on the CPU, where a loaded model's size may then ask for bf16
    (`cpu_auto_dtype`)."""
    name = check_dtype_name(name)
    if name == "auto":
        return "fp16" if device_type in ("cuda", "mps") else "fp32"
    return name


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """The torch dtype of `dtype_choice`."""
    choice = dtype_choice(name, device.type)
    import torch

    return getattr(torch, DTYPES[choice])


BF16_FROM_PARAMETERS = 100_000_000  # UNet parameters from which `--dtype auto` computes in bf16 on the CPU


def cpu_auto_dtype(unet_parameters: int) -> torch.dtype:
    """`--dtype auto` on the CPU: bf16 for an SD-size UNet on a CPU with native bf16, else fp32.

    Measured side by side (`sdplay bench --backend pytorch:bf16`, README "PyTorch's CPU precision"):
    SD 1.5's UNet (860 M parameters) steps 2.3x faster in bf16 on a 2-core Zen 4, the mini model's
    (2 M) 0.55-0.8x as fast: small layers spend their time converting, not multiplying."""
    import torch

    if unet_parameters >= BF16_FROM_PARAMETERS and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX (BF16 on Arm): bf16 matmuls run at up to twice the fp32 rate instead of being emulated.

    Read from /proc/cpuinfo, without torch; where it cannot be read, torch's oneDNN check (which also says
    yes on AVX512 CPUs without bf16 instructions) decides."""
    try:
        native = native_bf16_in_cpuinfo(CPUINFO.read_text())
    except OSError:
        native = None
    if native is None:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return native


def native_bf16_in_cpuinfo(text: str) -> bool | None:
    """Whether /proc/cpuinfo's text lists a native bf16 instruction set; None where it lists no CPU flags."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        wanted = NATIVE_BF16_FLAGS.get(name.strip().lower())
        if wanted is not None:
            return bool(wanted & set(value.split()))
    return None


def depth_dtype(requested: str, device: torch.device, model_dtype: torch.dtype) -> torch.dtype:
    """The depth model's dtype: the diffusion model's, except bf16 on a CPU with native bf16 when
    the dtype was left to `auto`. The depth pass is most of a 3D frame on the CPU (Depth Anything V2
    Small at 518 pixels: 0.8 s fp32, 0.6 s bf16 on a 2-core Zen 4), and its map only steers a warp
    after being ranked (histogram-equalised), which bf16's rounding barely moves."""
    import torch

    native = device.type == "cpu" and model_dtype == torch.float32 and cpu_has_native_bf16()
    return torch.bfloat16 if (requested or "auto").lower() == "auto" and native else model_dtype


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[str(dtype).removeprefix("torch.")]


def cpu_threads() -> int:
    """The threads a run computes with on the CPU: OMP_NUM_THREADS when it is set to a number (torch reads it),
    else every core this process may use."""
    chosen = os.environ.get("OMP_NUM_THREADS", "").strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def use_all_cores() -> None:
    """Let torch use the threads `cpu_threads` names: its default can be lower inside containers."""
    import torch

    threads = cpu_threads()
    if torch.get_num_threads() < threads:
        torch.set_num_threads(threads)


def default_batch_size(device: torch.device, pixels: int, limit: bool = False) -> int:
    """Frames per UNet call: a GPU gains most from large batches. On the CPU small pictures gain
    a lot too (each UNet layer is too small to keep the cores busy: the mini model runs a batch
    of 8 about 2.8x faster per frame than one at a time); at 512x512 two frames gain a little,
    and beyond that the CPU's memory matters more than the gain."""
    if limit:
        return 1
    if device.type == "cuda":
        import torch

        total = torch.cuda.get_device_properties(device).total_memory
        return 8 if total >= 12 * 2**30 else 4
    if pixels <= 128 * 128:
        return 8
    return 2 if pixels <= 512 * 512 else 1
