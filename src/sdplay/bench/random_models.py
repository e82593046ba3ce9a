"""Random-weight pipelines of real architectures, built offline for speed measurements.

Speed depends on the architecture, not the weights, so SD 1.5's published configuration with
random weights measures what a downloaded SD 1.5 would, without the download.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
SD15_VAE = {
    "sample_size": 512,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "latent_channels": 4,
    "layers_per_block": 2,
    "scaling_factor": 0.18215,
}
SD15_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
}
ARCHITECTURES = {
    "sd15": (SD15_UNET, SD15_VAE, SD15_TEXT),
    "sd15-turbo": (SD15_UNET, SD15_VAE, SD15_TEXT),  # the real-time path: 1 step, no guidance, trailing Euler
}
BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def byte_tokenizer(folder: Path, vocab_size: int):
    """A CLIP tokenizer of CLIP's 256 byte symbols alone (no merges), whose ids fit any CLIP text
    model's vocabulary: like CLIP's own it spells any word, so prompts reach it whole."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(vocab) for s in symbols})
    vocab["<|startoftext|>"] = vocab_size - 2
    vocab["<|endoftext|>"] = vocab_size - 1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77
    )


def save_random_pipeline(name: str, folder: Path) -> Path:
    """Build `name`'s architecture with random weights and save it as a diffusers folder."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    unet_config, vae_config, text_config = ARCHITECTURES[name]
    torch.manual_seed(0)
    tokenizer = byte_tokenizer(folder / "tokenizer-src", text_config["vocab_size"])
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**unet_config),
        vae=AutoencoderKL(**vae_config),
        text_encoder=CLIPTextModel(
            CLIPTextConfig(**text_config, eos_token_id=text_config["vocab_size"] - 1, bos_token_id=0, pad_token_id=1)
        ),
        tokenizer=tokenizer,
        scheduler=EulerAncestralDiscreteScheduler(**BETAS, timestep_spacing="trailing")
        if name.endswith("-turbo")
        else PNDMScheduler(**BETAS, skip_prk_steps=True, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target = folder / f"random-{name}"  # "turbo" in the name gives few-step defaults, as for real turbo models
    pipe.save_pretrained(target)
    return target


def save_random_tiny_vae(folder: Path) -> Path:
    """TAESD's architecture (AutoencoderTiny's defaults) with random weights: the tiny-VAE path
    timed without the download."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    target = folder / "random-taesd"
    AutoencoderTiny().save_pretrained(target)
    return target


def save_random_depth_model(folder: Path) -> Path:
    """Depth Anything V2 Small's architecture (sdplay's default depth model: a DINOv2 ViT-S/14 with
    a DPT head, 518-pixel input) with random weights: 3D-with-depth frames timed offline."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=384,
        num_attention_heads=6,
        num_hidden_layers=12,
        patch_size=14,
        image_size=518,
        out_indices=[3, 6, 9, 12],
        reshape_hidden_states=False,
    )
    target = folder / "random-depth-anything-v2-small"
    DepthAnythingForDepthEstimation(DepthAnythingConfig(backbone_config=backbone)).save_pretrained(target)
    DPTImageProcessor(
        size={"height": 518, "width": 518},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        do_pad=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(target)
    return target
