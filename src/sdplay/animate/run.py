"""Animate for the engine: read the inputs, resolve the settings against the model, hand over the frames."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from ..downloads import is_url, local_file
from ..engine.modes import Split, VideoSpec
from ..errors import SdplayError
from ..flow import import_cv2
from ..images import load_image
from ..output import Picture
from .control import read_unit_pictures
from .frames import frames_from
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


@dataclass(frozen=True)
class AnimationInputs:
    """The files the settings name, read before any model loads so mistakes fail fast."""

    init: Image.Image | None = None
    video: list[Image.Image] = field(default_factory=list)
    color_image: Image.Image | None = None  # the reference of color_coherence: Image
    controls: dict[int, list[Image.Image]] = field(default_factory=dict)  # ControlNet unit -> its pictures


def read_animation_inputs(settings: AnimationSettings) -> AnimationInputs:
    """The init picture, video frames and colour picture the settings name (http(s) URLs downloaded)."""
    for key in ("optical_flow_cadence", "optical_flow_redo_generation"):
        if getattr(settings, key) != "None":
            import_cv2(key)  # before any model loads
    files = settings.files_read()
    init = _picture(files["init_image"], "init_image") if "init_image" in files else None
    video: list[Image.Image] = []
    if "video_init_path" in files:
        from ..video import read_video_frames

        end = None if settings.extract_to_frame < 0 else settings.extract_to_frame + 1
        path = local_file(files["video_init_path"] or "", "video_init_path")
        video = read_video_frames(path, settings.extract_nth_frame, settings.extract_from_frame, end)
        if not video:
            raise SdplayError(f"video_init_path: no frames in {settings.video_init_path} for the extract_* range")
    color_image = None
    if "color_coherence_image_path" in files:
        color_image = _picture(files["color_coherence_image_path"], "color_coherence_image_path")
    return AnimationInputs(init, video, color_image, read_unit_pictures(settings))


def _picture(location: str | None, key: str) -> Image.Image:
    what = f"{key} {location}" if is_url(location or "") else key
    return load_image(local_file(location or "", key), what)


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
    def read_inputs(self, settings: AnimationSettings, given: dict[str, Any]) -> AnimationInputs:
        return read_animation_inputs(settings)

    def plan(self, settings: AnimationSettings, model: Model, inputs: AnimationInputs, job: Job) -> AnimationPlan:
        resolved = resolve(settings, model, inputs)
        # before the folder: a missing depth model or ControlNet leaves none
        renderer = Renderer(resolved, model, job.local_only, job.token, inputs.controls)
        return AnimationPlan(resolved, renderer, inputs, job.video_format)


ENGINE_MODE = AnimationMode()
