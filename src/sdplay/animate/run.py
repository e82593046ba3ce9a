"""Animate for the engine: resolve the settings against the model and the files read (inputs.py), hand over frames."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ..engine.modes import Split, VideoSpec
from ..output import Picture
from .frames import frames_from
from .inputs import AnimationInputs
from .renderer import KEYS_FOLDER, Frame, Renderer, to_pil
from .settings import AnimationSettings

if TYPE_CHECKING:
    from ..engine.job import Job
    from ..engine.steps import StepReporter
    from ..models import Model
    from ..output import RunFolder

log = logging.getLogger("sdplay")

VIDEO_NAME = "animation"
DEPTH_FOLDER = "depth"


def resolve(settings: AnimationSettings, model: Model, inputs: AnimationInputs) -> AnimationSettings:
    """Fill what the model decides, and fix the frame count where the mode decides it."""
    resolved = settings.resolved(model)
    if resolved.animation_mode == "Video Input":
        resolved = resolved.with_values(max_frames=len(inputs.video))
    elif resolved.animation_mode == "Interpolation" and not resolved.interpolate_key_frames:
        texts = list(resolved.keyed_prompts().values())
        per = resolved.interpolate_x_frames + 1
        prompts = {str(i * per): text for i, text in enumerate(texts)}  # where each key prompt lands
        resolved = resolved.with_values(prompts=prompts, max_frames=(len(texts) - 1) * per + 1)
    if resolved.diffusion_cadence > 1 and resolved.animation_mode not in ("2D", "3D"):
        log.warning(
            "diffusion_cadence %d has no effect in animation_mode %s",
            resolved.diffusion_cadence,
            resolved.animation_mode,
        )
    return resolved


def picture_of(frame: Frame) -> Picture:
    """A frame for the writer: converted to 8 bits on the writer's thread, with its depth map when one was made."""
    depth, key = frame.depth, frame.key_image

    def extras() -> dict[str, Image.Image]:
        found = {} if key is None else {KEYS_FOLDER: to_pil(key)}
        if depth is not None:
            grey = (depth[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            found[DEPTH_FOLDER] = Image.fromarray(grey)
        return found

    flags = frozenset({"diffused"}) if frame.diffused else frozenset()
    return Picture(frame.index, frame.parameters, lambda: to_pil(frame.image), extras, flags)


def split_of(settings: AnimationSettings) -> Split | None:
    """Video Input, None and Interpolation frames do not depend on each other: ranges begin where
    `independent_batches` begins a call, and read frame 0 when it is the colour reference."""
    if settings.animation_mode not in ("Video Input", "None", "Interpolation"):
        return None
    cuts = (0, *range(1, settings.max_frames, settings.batch_size or 1))
    return Split(cuts, () if settings.color_coherence in ("None", "Video Input") else (0,))


class AnimationPlan:
    """A resolved animation: the renderer (and its depth model) exist before the run folder does."""

    def __init__(self, settings: AnimationSettings, renderer: Renderer, inputs: AnimationInputs, video_format: str):
        self.settings, self.renderer, self.inputs = settings, renderer, inputs
        self.total = settings.max_frames
        self.title = settings.frame_prompts()[0][0] or "animation"
        interpolated = settings.interpolate, settings.interpolate_timing, settings.interpolate_model
        self.video = VideoSpec(VIDEO_NAME, (video_format,), settings.fps, None, *interpolated)
        self.split = split_of(settings)

    def pictures(self, start: int, folder: RunFolder | None, steps: StepReporter) -> Iterator[Picture]:
        self.renderer.steps_reporter = steps
        inputs = self.inputs
        for frame in frames_from(self.renderer, folder, start, inputs.init, inputs.video, inputs.color_image):
            yield picture_of(frame)


class AnimationMode:
    def plan(self, settings: AnimationSettings, model: Model, inputs: AnimationInputs, job: Job) -> AnimationPlan:
        resolved = resolve(settings, model, inputs)
        # before the folder: a missing depth model or ControlNet leaves none
        renderer = Renderer(resolved, model, job.local_only, job.token, inputs.controls)
        return AnimationPlan(resolved, renderer, inputs, job.video_format)


ENGINE_MODE = AnimationMode()
