"""How loaded weights run: placement, offloading, slicing, tiling, compile, tiny VAE, LoRA.

Each is a LoadOptions switch with a sane default (everything on the device, SDPA attention,
channels_last on CUDA); the memory savers trade speed for memory and are off unless asked.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from .errors import SdplayError, import_extra
from .settings import ModelSettings
from .specs import is_missing_path

log = logging.getLogger("sdplay")

TINY_VAES = {"sd": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}


class LoadOptions(ModelSettings):
    """How to load and run the weights (ModelSettings), plus the credentials to reach the hub,
    which are never recorded in a run's settings.json."""

    token: str | None = None
    local_only: bool = False


def adapt_pipeline(pipe: Any, device: torch.device, dtype: torch.dtype, options: LoadOptions) -> None:
    """Apply every runtime option to a freshly loaded pipeline, before modes are derived from it."""
    if options.lora:
        load_lora(pipe, options.lora, options.lora_scale, options)
    if options.tiny_vae:
        pipe.vae = load_tiny_vae(pipe, options.tiny_vae, dtype, options)
    place(pipe, device, options)
    if options.attention_slicing or options.limit:
        pipe.enable_attention_slicing()
    if options.limit and hasattr(pipe.vae, "enable_slicing"):
        pipe.vae.enable_slicing()
    if options.vae_tiling:
        if not hasattr(pipe.vae, "enable_tiling"):
            raise SdplayError(f"--vae-tiling is not supported by {type(pipe.vae).__name__}")
        pipe.vae.enable_tiling()
    if device.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if options.compile:
        compile_pipeline(pipe)


def place(pipe: Any, device: torch.device, options: LoadOptions) -> None:
    """Everything on the device, or offloaded to the CPU between uses when memory is short."""
    offload = options.sequential_offload or options.cpu_offload or options.limit
    if offload and device.type != "cuda":
        if options.sequential_offload or options.cpu_offload:
            log.warning("CPU offloading only applies to CUDA devices; ignored on %s", device.type)
        pipe.to(device)
    elif options.sequential_offload:
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)


def compile_pipeline(pipe: Any) -> None:
    """torch.compile the UNet and both halves of the VAE (img2img, inpaint and every animate frame
    encode a picture); the first call of each pays its compile time.

    Inductor's default mode on every device: max-autotune times every candidate kernel for each
    matmul and convolution, which multiplies an SD UNet's compile time (paid again by each new
    input shape) for what cuBLAS and cuDNN mostly do already; not yet measured on a GPU.
    """
    pipe.unet = torch.compile(pipe.unet, fullgraph=False)
    pipe.vae.encoder = torch.compile(pipe.vae.encoder, fullgraph=False)
    pipe.vae.decoder = torch.compile(pipe.vae.decoder, fullgraph=False)
    for part in (pipe.unet, pipe.vae.encoder, pipe.vae.decoder):
        part.register_forward_pre_hook(_contiguous_input)


def _contiguous_input(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """One memory layout into each compiled module, whichever mode calls it. Compiled code is
    guarded on strides, and a pipeline's tensors come channels-last or not depending on where they
    were made (a PIL picture, a compiled encoder, randn), so each mode switch would compile again."""
    if args and isinstance(args[0], torch.Tensor) and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None


_PINNED_CLASSES: dict[type, type] = {}


def pin_execution_device(pipe: Any, device: torch.device) -> None:
    """Tell a pipeline once where it runs, instead of on every call.

    diffusers finds a pipeline's device on each call by walking every module of every component
    twice (for offload hooks): 4.5 ms for SD 1.5's module tree on our 2-core CPU, a quarter of a
    60 frames/s frame. The answer is the model's device whether or not it is offloaded (offload
    hooks run the modules there too), so the pipeline becomes a subclass of its own class (same
    name, so `from_pipe` and saving see no difference) that returns it directly.
    """
    cls = type(pipe)
    if cls not in _PINNED_CLASSES.values():
        if cls not in _PINNED_CLASSES:
            members = {"_execution_device": property(lambda self: self._sdplay_device), "__module__": cls.__module__}
            _PINNED_CLASSES[cls] = type(cls.__name__, (cls,), members)
        pipe.__class__ = _PINNED_CLASSES[cls]
    pipe._sdplay_device = device


def is_sdxl(pipe: Any) -> bool:
    return hasattr(pipe, "text_encoder_2")


def load_tiny_vae(pipe: Any, spec: str, dtype: torch.dtype, options: LoadOptions) -> Any:
    """A tiny autoencoder (TAESD family) for fast previews and video; must share the latent space."""
    from diffusers import AutoencoderTiny

    if pipe.vae.config.latent_channels != 4 or int(pipe.vae_scale_factor) != 8:
        raise SdplayError("--tiny-vae fits models with 4-channel, factor-8 latents (SD 1.x/2.x/XL), not this one")
    location = TINY_VAES["sdxl" if is_sdxl(pipe) else "sd"] if spec == "auto" else spec
    try:
        return AutoencoderTiny.from_pretrained(
            location, dtype=dtype, token=options.token, local_files_only=options.local_only
        )
    except (OSError, ValueError) as exc:
        raise SdplayError(f"could not load the tiny VAE {location!r}: {' '.join(str(exc).split())[:200]}") from exc


def load_lora(pipe: Any, spec: str, scale: float, options: LoadOptions) -> None:
    """Load LoRA weights (a file, folder or hub id) and fuse them, so steps cost what they did before."""
    import_extra("peft", "--lora needs the peft package: pip install 'sdplay[lora]'")  # diffusers needs it for LoRA
    if is_missing_path(spec):
        raise SdplayError(f"could not load LoRA {spec!r}: file or folder not found")
    try:
        pipe.load_lora_weights(spec, token=options.token, local_files_only=options.local_only)
    except (OSError, ValueError, KeyError) as exc:
        raise SdplayError(f"could not load LoRA {spec!r}: {' '.join(str(exc).split())[:200]}") from exc
    pipe.fuse_lora(lora_scale=scale)
    if "lcm" in spec.lower():
        from diffusers import LCMScheduler

        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
