"""Dream for the engine: plan the walk against the model and the files read (inputs.py), hand over its frames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..controlnet import controls_for
from ..engine.modes import Split, VideoSpec
from ..output import Picture
from .denoise import iter_frames
from .inputs import DreamInputs
from .plan import plan_walk
from .settings import DreamSettings

if TYPE_CHECKING:
    from ..engine.job import Job
    from ..engine.steps import StepReporter
    from ..models import Model
    from ..output import RunFolder

VIDEO_NAME = "dream"


class DreamPlan:
    """A resolved walk: every frame's position is fixed, so any frame range can be made on its own."""

    def __init__(
        self, settings: DreamSettings, model: Model, inputs: DreamInputs, controls: tuple[Any, dict[str, Any]] | None
    ) -> None:
        """`controls`: the pipeline with the settings' ControlNets and its arguments (controlnet.controls_for)."""
        self.settings, self.model, self.inputs, self.controls = settings, model, inputs, controls
        self.total = settings.total_frames
        self.title = (settings.prompts or ("dream",))[0]
        kinds = tuple(kind for kind in settings.formats if kind != "frames")
        interpolated = settings.interpolate, settings.interpolate_timing, settings.interpolate_model
        wanted = kinds or settings.interpolate > 1  # frames only: still interpolated
        self.video = VideoSpec(VIDEO_NAME, kinds, settings.fps, settings.audio, *interpolated) if wanted else None
        self.split = Split(tuple(range(0, self.total, settings.batch_size)))  # batches begin at multiples

    def pictures(self, start: int, folder: RunFolder | None, steps: StepReporter) -> Iterator[Picture]:
        previous = folder.frame(start - 1) if folder is not None and start else None
        walk = plan_walk(self.settings, self.model, self.inputs)
        yield from iter_frames(walk, self.model, start, previous, steps, self.controls)


class DreamMode:
    def plan(self, settings: DreamSettings, model: Model, inputs: DreamInputs, job: Job) -> DreamPlan:
        resolved = settings.resolved(model, inputs.image_size, inputs.audio_frames(settings.fps))
        controls = None
        if resolved.control:
            mode = "img2img" if resolved.images else "txt2img"
            controls = controls_for(resolved, model, mode, (resolved.width, resolved.height), job)
        return DreamPlan(resolved, model, inputs, controls)


ENGINE_MODE = DreamMode()
