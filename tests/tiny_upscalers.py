"""Tiny random-weight upscalers saved the way users get them: a Real-ESRGAN-shaped `.pth`/`.safetensors`
file (RRDBNet, from spandrel's own architecture code) and a diffusers folder of SD's x4 upscaler."""

from __future__ import annotations

import enum
import sys
import types
from pathlib import Path

import torch
from tiny_models import build_components


def make_spandrel_importable() -> None:
    """spandrel imports torchvision for two architectures sdplay does not use (LaMa, RestoreFormer).
    PyPI's torchvision is built for CUDA torch and fails to load beside the CPU torch of CI; where it
    cannot be imported, those two names are stood in for (they fail if called) while spandrel is
    imported, and taken away again so that nothing else sees a torchvision."""
    try:
        import spandrel  # noqa: F401

        return
    except Exception:
        pass
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith(("torchvision.", "spandrel"))]:
        del sys.modules[name]
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = enum.Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC")

    def unavailable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("torchvision is not installed")

    functional.rotate = functional.normalize = unavailable
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    package = types.ModuleType("torchvision")
    package.transforms = transforms
    stand_ins = {
        "torchvision": package,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
    }
    sys.modules.update(stand_ins)
    try:
        import spandrel  # noqa: F401
    finally:
        for name in stand_ins:
            del sys.modules[name]


def save_tiny_esrgan(path: Path, scale: int = 2) -> Path:
    """A Real-ESRGAN-shaped RRDBNet (4 features, 1 block) saved as Real-ESRGAN releases its weights:
    `{"params_ema": state_dict}` in a .pth, or the bare state dict in a .safetensors file."""
    make_spandrel_importable()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    shuffle = 2 if scale == 2 else None  # Real-ESRGAN x2plus unshuffles its input by 2, then upscales by 4
    state = ESRGAN(num_filters=8, num_blocks=1, scale=scale, shuffle_factor=shuffle).state_dict()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"params_ema": state}, path)
    return path


def save_tiny_sd_upscaler(folder: Path) -> Path:
    """StableDiffusionUpscalePipeline at a toy size: VAE with factor 4, 7-channel UNet with noise-level classes."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    parts = build_components(folder)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=7,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
        num_class_embeds=351,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        scaling_factor=0.08333,
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"],
        unet=unet,
        low_res_scheduler=DDPMScheduler(beta_schedule="scaled_linear"),
        scheduler=DDIMScheduler(prediction_type="v_prediction", beta_schedule="scaled_linear"),
        max_noise_level=350,
    )
    pipe.save_pretrained(folder / "tiny-sd-x4")
    return folder / "tiny-sd-x4"
