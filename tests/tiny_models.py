"""Tiny random-weight Stable Diffusion pipelines, built offline in a few seconds.

They have the real architecture (CLIP text model, UNet2DConditionModel with cross-attention,
AutoencoderKL with a downsampling factor of 8) at a toy size, so every code path users take
runs in tests without a download. `write_ldm_checkpoint` turns one into the original
single-file layout that `from_single_file` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TEXT_DIM = 32
MAX_TOKENS = 77


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2's table)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    codes, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def build_tokenizer(folder: Path) -> CLIPTokenizer:
    """A byte-level CLIP tokenizer with no merges: every character is one token."""
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=MAX_TOKENS, pad_token="<|endoftext|>"
    )


def build_components(folder: Path, unet_in_channels: int = 4) -> dict:
    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / "_tokenizer_src")
    vocab = tokenizer.get_vocab()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=unet_in_channels,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        sample_size=64,
        block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def save_tiny_pipeline(folder: Path) -> Path:
    StableDiffusionPipeline(**build_components(folder)).save_pretrained(folder / "tiny-sd")
    return folder / "tiny-sd"


def save_tiny_controlnet(model_dir: Path, folder: Path) -> Path:
    """A random ControlNet shaped after the tiny UNet. ControlNets start with zero convolutions (the
    control does nothing): those, the mid block and the conditioning embedding's output get weight."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 8, 8))  # down by 8, like the VAE
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if "zero_conv" in name or "mid_block" in name or "cond_embedding.conv_out" in name:
                parameter.normal_(0, 0.5)
    net.save_pretrained(folder / "tiny-controlnet")
    return folder / "tiny-controlnet"


def save_tiny_pipeline_with_safety_checker(folder: Path) -> Path:
    """A tiny model whose safety checker flags every image, to test what happens then."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    components = build_components(folder)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 4},
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
    )
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():  # every cosine distance exceeds a threshold of -2: everything is flagged
        checker.concept_embeds_weights.fill_(-2.0)
        checker.special_care_embeds_weights.fill_(-2.0)
    components.update(
        safety_checker=checker,
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        requires_safety_checker=True,
    )
    StableDiffusionPipeline(**components).save_pretrained(folder / "tiny-sd-checked")
    return folder / "tiny-sd-checked"


def save_tiny_inpaint_pipeline(folder: Path) -> Path:
    StableDiffusionInpaintPipeline(**build_components(folder, unet_in_channels=9)).save_pretrained(
        folder / "tiny-sd-inpaint"
    )
    return folder / "tiny-sd-inpaint"


def _unet_to_ldm(name: str, layers_per_block: int, attention_levels: set[int]) -> str:
    """Rename one diffusers UNet weight to the original LDM layout."""
    simple = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    for old, new in simple.items():
        if name.startswith(old + "."):
            return new + name[len(old) :]
    parts = name.split(".")
    per_level = layers_per_block + 1
    if parts[0] == "down_blocks":
        level, kind, j = int(parts[1]), parts[2], int(parts[3])
        rest = parts[4:]
        if kind == "downsamplers":
            return ".".join([f"input_blocks.{(level + 1) * per_level}.0.op", *rest[1:]])
        block = 1 + level * per_level + j
        if kind == "resnets":
            return ".".join([f"input_blocks.{block}.0", *_resnet_to_ldm(rest)])
        return ".".join([f"input_blocks.{block}.1", *rest])
    if parts[0] == "mid_block":
        kind, j = parts[1], int(parts[2])
        if kind == "resnets":
            return ".".join([f"middle_block.{2 * j}", *_resnet_to_ldm(parts[3:])])
        return ".".join(["middle_block.1", *parts[3:]])
    if parts[0] == "up_blocks":
        level, kind, j = int(parts[1]), parts[2], int(parts[3])
        rest = parts[4:]
        if kind == "upsamplers":
            index = 2 if level in attention_levels else 1
            return ".".join([f"output_blocks.{level * per_level + layers_per_block}.{index}", *rest])
        block = level * per_level + j
        if kind == "resnets":
            return ".".join([f"output_blocks.{block}.0", *_resnet_to_ldm(rest)])
        return ".".join([f"output_blocks.{block}.1", *rest])
    raise KeyError(name)


def _resnet_to_ldm(rest: list[str]) -> list[str]:
    names = {
        "norm1": "in_layers.0",
        "conv1": "in_layers.2",
        "time_emb_proj": "emb_layers.1",
        "norm2": "out_layers.0",
        "conv2": "out_layers.3",
        "conv_shortcut": "skip_connection",
    }
    return [names[rest[0]], *rest[1:]]


def _vae_to_ldm(name: str, levels: int) -> str:
    """Rename one diffusers AutoencoderKL weight to the original layout."""
    parts = name.split(".")
    resnet = {"conv_shortcut": "nin_shortcut"}
    attention = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
    if parts[0] in ("encoder", "decoder") and parts[1] in ("down_blocks", "up_blocks"):
        side, level, kind = parts[0], int(parts[2]), parts[3]
        group = "down" if side == "encoder" else "up"
        index = level if side == "encoder" else levels - 1 - level
        if kind in ("downsamplers", "upsamplers"):
            sampler = "downsample" if side == "encoder" else "upsample"
            return ".".join([side, group, str(index), sampler, *parts[5:]])
        rest = [resnet.get(parts[5], parts[5]), *parts[6:]]
        return ".".join([side, group, str(index), "block", parts[4], *rest])
    if parts[0] in ("encoder", "decoder") and parts[1] == "mid_block":
        side, kind, j = parts[0], parts[2], int(parts[3])
        if kind == "resnets":
            return ".".join([side, "mid", f"block_{j + 1}", resnet.get(parts[4], parts[4]), *parts[5:]])
        rest = parts[4:] if parts[4] != "to_out" else ["to_out", *parts[6:]]
        return ".".join([side, "mid", "attn_1", attention[rest[0]], *rest[1:]])
    if parts[0] in ("encoder", "decoder") and parts[1] == "conv_norm_out":
        return ".".join([parts[0], "norm_out", *parts[2:]])
    return name


def write_ldm_checkpoint(model_dir: Path, out_file: Path) -> Path:
    """Write a diffusers folder as one original-layout `.safetensors` file (what users download)."""
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    text_encoder = CLIPTextModel.from_pretrained(model_dir / "text_encoder")
    layers = unet.config.layers_per_block
    attention_levels = {i for i, t in enumerate(unet.config.up_block_types) if t.startswith("CrossAttn")}
    state: dict[str, torch.Tensor] = {}
    for name, tensor in unet.state_dict().items():
        state["model.diffusion_model." + _unet_to_ldm(name, layers, attention_levels)] = tensor
    for name, tensor in vae.state_dict().items():
        is_attention = ".mid_block.attentions." in name and tensor.ndim == 2
        state["first_stage_model." + _vae_to_ldm(name, len(vae.config.block_out_channels))] = (
            tensor[:, :, None, None] if is_attention else tensor
        )
    for name, tensor in text_encoder.state_dict().items():
        # original checkpoints nest the text model (newer transformers flatten it)
        nested = name if name.startswith("text_model.") else "text_model." + name
        state["cond_stage_model.transformer." + nested] = tensor
    save_file({k: v.contiguous() for k, v in state.items()}, str(out_file))
    return out_file


def save_tiny_autoencoder(folder: Path) -> Path:
    """A random AutoencoderTiny with the SD latent space (4 channels, factor 8), like TAESD."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    ).save_pretrained(folder / "tiny-taesd")
    return folder / "tiny-taesd"


def save_tiny_lora(model_dir: Path, folder: Path) -> Path:
    """LoRA weights for the tiny UNet's attention projections, saved as users download them."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.5)
    StableDiffusionPipeline.save_lora_weights(folder / "tiny-lora", unet_lora_layers=get_peft_model_state_dict(unet))
    return folder / "tiny-lora"
