"""Hires fix for txt2img: draw at the model's own size, upscale, then redraw the larger picture with img2img.

Drawn directly at twice its native size, a model repeats its subject and loses the composition; drawn
at its size and redrawn larger at a moderate strength, it keeps the composition and adds detail.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .errors import out_of_memory_as_user_error
from .models import Model
from .settings import ImageSettings, round_size, size_multiple

log = logging.getLogger("sdplay")

TILE_ABOVE = 4  # the VAE decodes tile by tile above this many times the model's native area


class HiresFix:
    """The second pass of a txt2img run: upscale each picture, then redraw it with img2img."""

    def __init__(self, model: Model, settings: ImageSettings) -> None:
        assert settings.hires_scale is not None and settings.width and settings.height and settings.steps
        self.model, self.settings = model, settings
        scale, multiple = settings.hires_scale, size_multiple(model)
        self.size = (
            round_size("hires width", round(settings.width * scale), multiple),
            round_size("hires height", round(settings.height * scale), multiple),
        )
        self.upscale = _upscaler(settings)
        # diffusers runs int(steps * strength) img2img steps: keep at least one
        self.steps = max(settings.steps, math.ceil(1 / settings.hires_strength)) if settings.hires_strength else 1

    def __call__(
        self, images: list[Image.Image], texts: dict[str, Any], seeds: list[int], callback: Callable | None
    ) -> tuple[list[Image.Image], list[bool]]:
        """The pictures redrawn at the hires size, and which of them the safety checker flagged."""
        larger = [self.upscale(image).resize(self.size, Image.Resampling.LANCZOS) for image in images]
        if not self.settings.hires_strength:
            return larger, [False] * len(images)
        pipe = self.model.pipeline("img2img")
        kwargs: dict[str, Any] = {
            **texts,
            "image": larger,
            "strength": self.settings.hires_strength,
            "num_inference_steps": self.steps,
            "guidance_scale": self.settings.guidance,
            "generator": [torch.Generator("cpu").manual_seed(seed) for seed in seeds],
        }
        if callback is not None:
            kwargs["callback_on_step_end"] = callback
        with _tiled_vae_if_large(pipe, self.model, self.size), out_of_memory_as_user_error(), torch.inference_mode():
            result = pipe(**kwargs)
        flags = getattr(result, "nsfw_content_detected", None) or [False] * len(images)
        return result.images, [bool(flag) for flag in flags]


def _upscaler(settings: ImageSettings) -> Callable[[Image.Image], Image.Image]:
    """Lanczos (the picture is resized to the hires size next anyway), or an upscaler model file."""
    if settings.hires_upscaler.lower() == "lanczos":
        return lambda image: image
    from .upscaling import ModelFileUpscaler

    model_file = ModelFileUpscaler(Path(settings.hires_upscaler), settings.device, settings.dtype)
    return lambda image: model_file([image], 0)[0]


@contextmanager
def _tiled_vae_if_large(pipe: Any, model: Model, size: tuple[int, int]) -> Iterator[None]:
    """VAE tiling for the hires pass when its pictures are far larger than the model's own, then as before."""
    vae = pipe.vae
    large = size[0] * size[1] > TILE_ABOVE * model.native_size**2
    switch = large and hasattr(vae, "enable_tiling") and not getattr(vae, "use_tiling", False)
    if switch:
        log.info("the VAE works tile by tile for the hires pass")
        vae.enable_tiling()
    try:
        yield
    finally:
        if switch:
            vae.disable_tiling()
