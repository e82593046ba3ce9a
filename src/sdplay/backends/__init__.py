"""Where the denoising runs: PyTorch (the loaded modules as they are) or OpenVINO on a CPU.

A backend works on the loaded pipeline's components, not on the modes: OpenVINO replaces the
forward passes of the UNet, the VAE's encoder and decoder and the text encoder, so every mode,
scheduler, callback and batch size keeps working unchanged.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from ..errors import SdplayError, import_extra

if TYPE_CHECKING:
    import torch

log = logging.getLogger("sdplay")

BACKENDS = ("auto", "pytorch", "openvino")
OPENVINO_DTYPES = ("auto", "fp32", "bf16")  # auto = OpenVINO's own pick for the CPU (bf16 where native)
INSTALL_HINT = "pip install 'sdplay[openvino]'"


def check_backend_name(name: str | None) -> str:
    """The backend name in lower case, or an error naming the choices (imports nothing)."""
    name = (name or "pytorch").lower()
    if name not in BACKENDS:
        raise SdplayError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def choose_backend(name: str | None, device: torch.device, dtype: str | None, compile: bool) -> str:
    """`pytorch` or `openvino` for this device and these options; `auto` takes OpenVINO on a CPU
    when it is installed and nothing asked for is PyTorch-only (fp16, torch.compile)."""
    name = check_backend_name(name)
    dtype = (dtype or "auto").lower()
    if name == "auto":
        usable = device.type == "cpu" and openvino_installed() and dtype in OPENVINO_DTYPES and not compile
        return "openvino" if usable else "pytorch"
    if name == "openvino":
        if device.type != "cpu":
            raise SdplayError(f"--backend openvino runs on the CPU, not {device.type}; add --device cpu")
        if dtype not in OPENVINO_DTYPES:
            raise SdplayError(f"--backend openvino computes in {', '.join(OPENVINO_DTYPES)}, not {dtype}")
        if compile:
            raise SdplayError("--compile is for the PyTorch backend; OpenVINO compiles the model itself")
        if not openvino_installed():
            raise SdplayError(f"--backend openvino needs OpenVINO: {INSTALL_HINT}")
    return name


def run_on_backend(
    pipe: Any,
    backend: str,
    requested: str | None,
    dtype: str | None,
    model_name: str,
    on_convert: Callable[[str, int, int], None] | None = None,
) -> str:
    """Move the pipeline's heavy components onto the backend; returns the backend that runs them.

    `on_convert(component, done, total)` hears of OpenVINO's first conversion of a model, component
    by component. With `auto`, a model OpenVINO cannot convert stays on PyTorch (one warning line);
    asked for by name, it is an error."""
    if backend != "openvino":
        return backend
    from .openvino import run_on_openvino

    try:
        run_on_openvino(pipe, dtype, model_name, on_convert)
    except SdplayError as exc:
        if check_backend_name(requested) != "auto":
            raise
        log.warning("%s; running on PyTorch", exc)
        return "pytorch"
    return backend


def import_openvino() -> Any:
    """The openvino module, or the one-line way to install it."""
    return import_extra("openvino", f"--backend openvino needs OpenVINO: {INSTALL_HINT}")


@functools.cache
def core() -> Any:
    """OpenVINO's runtime, made once: it reads and compiles the converted models, and knows the CPU."""
    return import_openvino().Core()


def describe_openvino() -> str:
    """The OpenVINO version and what `--backend openvino` would compute in here, for `sdplay info`
    (imports openvino, not torch)."""
    if not openvino_installed():
        return f"not installed ({INSTALL_HINT})"
    cpu = core().get_property("CPU", "FULL_DEVICE_NAME")
    precision = str(core().get_property("CPU", "INFERENCE_PRECISION_HINT")).split("'")[-2]
    return f"{version('openvino')} on {cpu}; --backend openvino computes in {precision} (--dtype fp32 for f32)"
