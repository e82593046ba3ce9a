"""txt2img, img2img and inpaint as one mode over a loaded model.

`iter_images` yields each image as soon as its batch is done, so the engine writes it at
once: an interrupted run keeps everything finished before the interrupt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from .controlnet import controls_for
from .errors import out_of_memory_as_user_error
from .hires import HiresFix
from .models import Model
from .output import Picture, format_parameters
from .schedulers import make_scheduler, sampler_name_of
from .settings import ImageSettings
from .weighting import PlainPrompts, encode_weighted

if TYPE_CHECKING:
    from .engine.job import Job
    from .engine.steps import StepReporter
    from .output import RunFolder

log = logging.getLogger("sdplay")


@dataclass(frozen=True)
class PreparedRun:
    """Resolved settings plus the images they name, read and sized: everything a run needs."""

    settings: ImageSettings
    init: Image.Image | None
    mask: Image.Image | None


def prepare(
    settings: ImageSettings, model: Model, inputs: tuple[Image.Image | None, Image.Image | None]
) -> PreparedRun:
    """Resolve the settings against the model and the init image; size the init image and its mask to the run.

    `inputs`: the init image and its fitted mask (inputs.read_image_inputs)."""
    init, mask = inputs
    resolved = settings.resolved(model, init.size if init else None)
    size = (resolved.width, resolved.height)
    if init is not None and init.size != size:
        init = init.resize(size, Image.Resampling.LANCZOS)
        mask = mask.resize(size, Image.Resampling.NEAREST) if mask is not None else None
    return PreparedRun(resolved, init, mask)


def image_parameters(settings: ImageSettings, seed: int, sampler: str) -> str:
    fields: dict[str, Any] = {
        "Steps": settings.steps,
        "Sampler": sampler,
        "CFG scale": settings.guidance,
        "Seed": seed,
        "Size": f"{settings.width}x{settings.height}",
        "Model": settings.model,
    }
    if settings.mode != "txt2img":
        fields["Denoising strength"] = settings.strength
    if settings.control:
        fields["ControlNet"] = "; ".join(settings.control)
    if settings.hires_scale:
        fields.update({"Denoising strength": settings.hires_strength, "Hires upscale": settings.hires_scale})
        fields["Hires upscaler"] = settings.hires_upscaler
    fields["Mode"] = settings.mode
    return format_parameters(settings.prompt, settings.negative, fields)


def use_scheduler(pipe: Any, model: Model, name: str | None) -> str:
    """Put the named scheduler (or the model's own) on the pipeline; return its display name."""
    if name is None:
        pipe.scheduler = model.original_scheduler
        return sampler_name_of(model.original_scheduler)
    pipe.scheduler = make_scheduler(name, model.original_scheduler.config)
    return name


def iter_images(
    run: PreparedRun,
    model: Model,
    steps: StepReporter | None = None,
    pipe: Any = None,
    control: dict[str, Any] | None = None,
) -> Iterator[Picture]:
    """Generate `settings.num` images, `settings.batch_size` at a time; image i uses seed + i.

    `pipe` replaces the mode's pipeline (one with ControlNets attached), `control` its control maps."""
    settings, init, mask = run.settings, run.init, run.mask
    pipe = pipe or model.pipeline(settings.mode)
    control = control or {}
    sampler = use_scheduler(pipe, model, settings.scheduler)
    texts = encode_weighted(pipe, settings.prompt, settings.negative, model.clean_prompt) or PlainPrompts(
        model.clean_prompt(settings.prompt), model.clean_prompt(settings.negative)
    )
    hires = HiresFix(model, settings) if settings.hires_scale else None
    batches = range(0, settings.num, settings.batch_size)
    for start in batches:
        count = min(settings.batch_size, settings.num - start)
        seeds = [settings.seed + start + i for i in range(count)]
        kwargs: dict[str, Any] = {
            **texts.batched(count),
            **control,
            "num_inference_steps": settings.steps,
            "guidance_scale": settings.guidance,
            "generator": [torch.Generator("cpu").manual_seed(s) for s in seeds],
        }
        if settings.mode in ("txt2img", "inpaint"):
            kwargs.update(width=settings.width, height=settings.height)
        if init is not None:
            kwargs.update(image=init, strength=settings.strength)
        if mask is not None:
            kwargs["mask_image"] = mask
        if steps is not None:
            kwargs["callback_on_step_end"] = steps.callback(range(start, start + count))
        with out_of_memory_as_user_error(), torch.inference_mode():
            result = pipe(**kwargs)
        flags = getattr(result, "nsfw_content_detected", None) or [False] * count
        images = result.images
        if hires is not None:
            images, hires_flags = hires(images, texts.batched(count), seeds, kwargs.get("callback_on_step_end"))
            flags = [a or b for a, b in zip(flags, hires_flags, strict=True)]
        if mask is not None:  # black = keep: the kept part is the original's pixels, not a VAE round trip
            images = [pipe.image_processor.apply_overlay(mask, init, image) for image in images]
        for i, (image, seed) in enumerate(zip(images, seeds, strict=True)):
            if flags[i]:
                log.warning("image %d (seed %d) was blanked by the safety checker", start + i, seed)
            made = ("diffused", "nsfw") if flags[i] else ("diffused",)
            yield Picture.of(start + i, image_parameters(settings, seed, sampler), image, *made)


class ImagesPlan:
    """A resolved image run for the engine: `num` pictures, `batch_size` per pipeline call."""

    video = None
    split = None  # pictures are cheap alone; a farm splits a sweep into jobs instead

    def __init__(self, run: PreparedRun, model: Model, pipe: Any = None, control: dict[str, Any] | None = None):
        self.run, self.model, self.pipe, self.control = run, model, pipe, control
        self.settings = run.settings
        self.total = run.settings.num
        self.title = run.settings.prompt

    def pictures(self, start: int, folder: RunFolder | None, steps: StepReporter) -> Iterator[Picture]:
        yield from iter_images(self.run, self.model, steps, self.pipe, self.control)


class ImagesMode:
    """txt2img, img2img and inpaint for the engine."""

    def plan(self, settings: ImageSettings, model: Model, inputs: Any, job: Job) -> ImagesPlan:
        run = prepare(settings, model, inputs)
        if not settings.control:
            return ImagesPlan(run, model)
        resolved = run.settings
        pipe, control = controls_for(resolved, model, resolved.mode, (resolved.width, resolved.height), job)
        return ImagesPlan(run, model, pipe, control)


ENGINE_MODE = ImagesMode()
