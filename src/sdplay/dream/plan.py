"""Planning a walk: encode each key point once into a WalkPlan, from the settings and the files read (inputs.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from ..errors import SdplayError
from ..schedulers import sampler_name_of
from ..weighting import encode_weighted
from .inputs import AUDIO_SAMPLE_RATE, DreamInputs
from .scheduler import fresh_scheduler, start_timestep
from .settings import DreamSettings
from .walk import WalkPlan, audio_speeds, frame_positions, key_point_value

if TYPE_CHECKING:
    from ..models import Model

log = logging.getLogger("sdplay")


def plan_walk(settings: DreamSettings, model: Model, inputs: DreamInputs) -> WalkPlan:
    """Encode each key point once: its prompt, its noise, and (image walks) its noised latents."""
    if "XL" in type(model.base).__name__:
        raise SdplayError(f"dream works with SD 1.x/2.x models for now; {model.name} is SDXL")
    count = settings.key_point_count()
    pipe = model.pipeline("img2img" if settings.images else "txt2img")
    sampler = settings.scheduler or sampler_name_of(model.original_scheduler)
    channels = model.base.unet.config.in_channels
    shape = (1, channels, settings.height // model.vae_scale_factor, settings.width // model.vae_scale_factor)
    noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in settings.seeds]
    noise = [key_point_value(noise, k) for k in range(count)]
    latents = noised_image_latents(settings, model, inputs.images, noise) if settings.images else noise
    embeds, negative = encode_prompts(settings, model, pipe, count)
    speeds = None
    if inputs.audio is not None:
        speeds = audio_speeds(inputs.audio, AUDIO_SAMPLE_RATE, settings.fps, settings.total_frames)
        if not speeds.any():
            log.warning("the audio is silent throughout: every frame shows the first key point")
    positions = frame_positions(settings.total_frames, settings.segments, settings.loop, speeds)
    return WalkPlan(settings, latents, embeds, negative, positions, sampler)


def encode_prompts(
    settings: DreamSettings, model: Model, pipe: Any, count: int
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """One text-encoder pass per distinct prompt (not per frame), and one for the negative prompt.

    Weighted prompts (`(word:1.3)`, `BREAK`, longer than the encoder's window) go through prompt
    weighting; plain ones are encoded exactly as the pipeline encodes them.
    """
    prompts = [key_point_value(settings.prompts, k) if settings.prompts else "" for k in range(count)]
    cfg = settings.guidance > 1
    clean = model.clean_prompt
    encoded: dict[str, torch.Tensor] = {}
    negative = None
    with torch.inference_mode():
        for prompt in dict.fromkeys(prompts):
            weighted = encode_weighted(pipe, prompt, settings.negative, clean)
            if weighted is None:
                embeds, neg = pipe.encode_prompt(clean(prompt), model.device, 1, cfg, clean(settings.negative))
            else:
                embeds, neg = weighted.kwargs["prompt_embeds"], weighted.kwargs["negative_prompt_embeds"]
            encoded[prompt] = embeds
            negative = (neg if neg is not None else negative) if cfg else None
    lengths = {tuple(embeds.shape) for embeds in encoded.values()}
    if len(lengths) > 1:
        raise SdplayError(
            "the key point prompts encode to different lengths (one is longer than 75 tokens or uses BREAK): "
            "a walk blends them, so give prompts of one window each"
        )
    return [encoded[p] for p in prompts], negative


def noised_image_latents(
    settings: DreamSettings, model: Model, images: list[Image.Image], noise: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Each key point's image through the VAE, noised to --strength with its seed's noise."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

    vae = model.base.vae
    processor = model.base.image_processor
    scheduler = fresh_scheduler(model, settings.scheduler)
    timestep, begin = start_timestep(scheduler, settings.steps, settings.strength)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    encoded = []
    with torch.inference_mode():
        for image in images:
            pixels = processor.preprocess(image, height=settings.height, width=settings.width)
            pixels = pixels.to(model.device, vae.dtype)
            latent = retrieve_latents(vae.encode(pixels), sample_mode="argmax") * vae.config.scaling_factor
            encoded.append(latent.float().cpu())
        return [
            scheduler.add_noise(key_point_value(encoded, k), noise[k], torch.tensor([timestep]))
            for k in range(len(noise))
        ]
