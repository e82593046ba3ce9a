"""What is on this machine: cached hub models and the environment sdplay runs in."""

from __future__ import annotations

import os
import platform


def cached_models() -> list[tuple[str, int]]:
    """(repo id, bytes on disk) for every model repository in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir

    try:
        cache = scan_cache_dir()
    except Exception:  # no cache folder yet, or one we cannot read: nothing cached
        return []
    return sorted((repo.repo_id, repo.size_on_disk) for repo in cache.repos if repo.repo_type == "model")


def describe_environment(device: str = "auto", dtype: str = "auto") -> dict[str, str]:
    """What sdplay would run on. Library versions come from their package metadata, and the CPU's facts from
    the system, so torch is imported only where a GPU is possible (to find the device)."""
    from importlib.metadata import version

    from . import __version__
    from .backends import describe_openvino
    from .devices import (
        BF16_FROM_PARAMETERS,
        check_device_name,
        check_dtype_name,
        cpu_has_native_bf16,
        cpu_threads,
        dtype_choice,
        torch_sees_no_gpu,
    )
    from .specs import default_model_spec

    check_dtype_name(dtype)  # a typo is reported before anything is looked at
    name = check_device_name(device)
    if name == "cpu" or (name == "auto" and torch_sees_no_gpu()):
        chosen, threads, gpu = "cpu", cpu_threads(), None
    else:
        chosen, threads, gpu = _torch_device(name)
    info = {
        "sdplay": __version__,
        "python": platform.python_version(),
        "torch": version("torch"),
        "diffusers": version("diffusers"),
        "transformers": version("transformers"),
        "device": chosen,
        "dtype": dtype_choice(dtype, chosen.partition(":")[0]),
        "cpu threads": str(threads),
        "default model": default_model_spec(),
        "hf token": "set" if os.environ.get("HF_TOKEN") else "from the cached login, if any",
    }
    if chosen == "cpu":
        native = cpu_has_native_bf16()
        if native and check_dtype_name(dtype) == "auto":
            from_size = f"UNets of {BF16_FROM_PARAMETERS // 10**6} M parameters or more"
            info["dtype"] = f"fp32, bf16 for SD-size models ({from_size})"
        native_message = "native: SD-size models run in bf16 about 2x faster; 3D depth runs in bf16"
        info["cpu bf16"] = native_message if native else "not native"
        info["openvino"] = describe_openvino()
    if gpu is not None:
        info["gpu"] = gpu
    return info


def _torch_device(name: str) -> tuple[str, int, str | None]:
    """The device torch finds for `name`, the threads it computes with on the CPU, and the GPU's name and memory
    when the device is a CUDA GPU."""
    from .devices import resolve_device

    chosen = resolve_device(name)  # a GPU that is certainly not here is refused before torch's import
    import torch

    gpu = None
    if chosen.type == "cuda":
        props = torch.cuda.get_device_properties(chosen)
        gpu = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    return str(chosen), torch.get_num_threads(), gpu
