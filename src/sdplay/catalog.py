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
    """What sdplay would run on; library versions come from their package metadata, so only torch
    (to find the device) is imported."""
    from importlib.metadata import version

    from . import __version__
    from .backends import describe_openvino
    from .devices import (
        BF16_FROM_PARAMETERS,
        check_dtype_name,
        cpu_has_native_bf16,
        dtype_name,
        resolve_device,
        resolve_dtype,
    )
    from .specs import default_model_spec

    check_dtype_name(dtype)  # a typo is reported before torch's import (resolve_device checks its own)
    chosen = resolve_device(device)
    import torch

    info = {
        "sdplay": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": version("diffusers"),
        "transformers": version("transformers"),
        "device": str(chosen),
        "dtype": dtype_name(resolve_dtype(dtype, chosen)),
        "cpu threads": str(torch.get_num_threads()),
        "default model": default_model_spec(),
        "hf token": "set" if os.environ.get("HF_TOKEN") else "from the cached login, if any",
    }
    if chosen.type == "cpu":
        native = cpu_has_native_bf16()
        if native and check_dtype_name(dtype) == "auto":
            from_size = f"UNets of {BF16_FROM_PARAMETERS // 10**6} M parameters or more"
            info["dtype"] = f"fp32, bf16 for SD-size models ({from_size})"
        native_message = "native: SD-size models run in bf16 about 2x faster; 3D depth runs in bf16"
        info["cpu bf16"] = native_message if native else "not native"
        info["openvino"] = describe_openvino()
    if chosen.type == "cuda":
        props = torch.cuda.get_device_properties(chosen)
        info["gpu"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    return info
