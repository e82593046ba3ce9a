"""Denoising a planned walk: frames go through the UNet `batch_size` at a time, in order.

A frame depends only on its position, and batches always start at multiples of the batch
size, so a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from ..errors import out_of_memory_as_user_error
from ..output import Picture
from .scheduler import use_dream_scheduler
from .walk import WalkPlan

if TYPE_CHECKING:
    from ..engine.steps import StepReporter
    from ..models import Model

log = logging.getLogger("sdplay")


def batch_starts(count: int, batch_size: int, start: int = 0) -> range:
    """Batches always begin at multiples of batch_size, so a resumed run batches exactly like a fresh one."""
    return range(start - start % batch_size, count, batch_size)


def iter_frames(
    plan: WalkPlan,
    model: Model,
    start: int = 0,
    previous: Image.Image | None = None,
    steps: StepReporter | None = None,
    controls: tuple[Any, dict[str, Any]] | None = None,
) -> Iterator[Picture]:
    """Yield frames `start ..` in order, each as soon as its batch is denoised; `controls`: a pipeline with
    ControlNets and its arguments, the same control maps for every frame."""
    s = plan.settings
    pipe, control = controls or (model.pipeline("img2img" if s.images else "txt2img"), {})
    use_dream_scheduler(pipe, model, s)
    starts = batch_starts(plan.count, s.batch_size, start)
    for first in starts:
        indices = range(first, min(first + s.batch_size, plan.count))
        kwargs = {**_batch_arguments(plan, model, indices), **control}
        if steps is not None:
            kwargs["callback_on_step_end"] = steps.callback(indices)
        with out_of_memory_as_user_error(), torch.inference_mode():
            result = pipe(**kwargs)
        flags = getattr(result, "nsfw_content_detected", None) or [False] * len(indices)
        for index, image, flagged in zip(indices, result.images, flags, strict=True):
            if index < start:
                continue  # finished before the interrupt; recomputed only to batch alike
            if flagged:
                log.warning("frame %d was blanked by the safety checker; the previous frame is shown again", index)
                image = previous if previous is not None else image
            previous = image
            made = ("diffused", "replaced") if flagged else ("diffused",)  # replaced: shows the previous frame
            yield Picture.of(index, plan.parameters(index), image, *made)


def _batch_arguments(plan: WalkPlan, model: Model, indices: range) -> dict[str, Any]:
    """Pipeline arguments for a batch of frames: their latents and embeddings, no prompts."""
    s = plan.settings
    inputs = [plan.frame_input(i) for i in indices]
    latents = torch.cat([latent for latent, _ in inputs]).to(model.device, model.dtype)
    embeds = torch.cat([embed for _, embed in inputs])
    ancestral_seed = s.seeds[0]  # per-step noise of ancestral samplers: the same for every frame
    kwargs: dict[str, Any] = {
        "prompt_embeds": embeds,
        "num_inference_steps": s.steps,
        "guidance_scale": s.guidance,
        "generator": [torch.Generator("cpu").manual_seed(ancestral_seed) for _ in indices],
    }
    if plan.negative is not None:
        kwargs["negative_prompt_embeds"] = plan.negative.expand(len(indices), -1, -1)
    if s.images:
        kwargs.update(image=latents, strength=s.strength)
    else:
        kwargs.update(latents=latents, width=s.width, height=s.height)
    return kwargs
