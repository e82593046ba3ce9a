"""Which code runs each mode, found by name; imported only when a job of that mode runs.

A mode gives the engine three things: its settings class, its input reader (the files the settings
name, read before torch or any model loads so mistakes fail in a moment) and `plan(settings, model,
inputs, job)`, which resolves the settings against the model and returns a Plan. The engine does the
rest: run folder, frame writers, events, cancel, resume and the video.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from PIL import Image

    from ..models import Model
    from ..output import Picture, RunFolder
    from .job import Job
    from .steps import StepReporter


class _Code(NamedTuple):
    """Where a mode's code lives: `engine` imports torch; `settings` and `inputs` import no torch."""

    engine: str  # module with the mode's ENGINE_MODE
    settings: str  # module:class
    inputs: str  # module:function(settings, **given) -> what plan() takes as inputs
    given: tuple[str, ...] = ()  # the pictures a job may pass in memory instead of files (Python API)


_IMAGES = _Code("sdplay.images", "sdplay.settings:ImageSettings", "sdplay.inputs:read_image_inputs", ("init", "mask"))
_MODES = {
    "txt2img": _IMAGES,
    "img2img": _IMAGES,
    "inpaint": _IMAGES,
    "dream": _Code("sdplay.dream.run", "sdplay.dream.settings:DreamSettings", "sdplay.dream.inputs:read_dream_inputs"),
    "animate": _Code(
        "sdplay.animate.run", "sdplay.animate.settings:AnimationSettings", "sdplay.animate.inputs:read_animation_inputs"
    ),
}
MODE_NAMES = tuple(_MODES)


@dataclass(frozen=True)
class VideoSpec:
    """The videos a run ends with: `name.<kind>` for each kind, at `fps`, with `audio` muxed into mp4s.

    With `interpolate` N > 1 the frames are also interpolated N times into `interpolated/` and encoded as
    `name-xN.<kind>`: at N times the fps (`smooth`), or at the same fps, N times as long (`slowmo`, silent).
    """

    name: str
    kinds: tuple[str, ...]
    fps: float
    audio: str | None = None
    interpolate: int = 1
    timing: str = "smooth"
    interpolate_model: str | None = None  # RIFE's weights; None: optical flow


@dataclass(frozen=True)
class Split:
    """How a plan's frames can be made apart (the farm's frame ranges) and come out identical to one run.

    A range starting at one of `cuts` makes exactly the frames an unbroken run makes (batches line up);
    it reads the frames in `needs` (made first) through the folder it is given.
    """

    cuts: tuple[int, ...]
    needs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Outline:
    """What a plan tells of its run before making it: what a farm needs to share the run out and join it."""

    total: int
    title: str
    video: VideoSpec | None
    split: Split | None


class Plan(Protocol):
    """A mode's run, resolved against the loaded model; made before the run folder exists."""

    settings: Any  # resolved: what settings.json records and a resume compares against
    total: int  # frames (or images) the whole run makes
    title: str  # text for the run folder's name
    video: VideoSpec | None
    split: Split | None  # None: each frame feeds the next, so the run is made whole

    def pictures(self, start: int, folder: RunFolder | None, steps: StepReporter) -> Iterator[Picture]:
        """The run's pictures from index `start` on, in order; `folder` holds frames made before `start`."""
        ...


class Mode(Protocol):
    def plan(self, settings: Any, model: Model, inputs: Any, job: Job) -> Plan: ...


def _named(where: str) -> Any:
    module, name = where.split(":")
    return getattr(import_module(module), name)


def settings_class(mode: str) -> type:
    return _named(_MODES[mode].settings)


def pictures_given(mode: str) -> tuple[str, ...]:
    """The names of the pictures a job of this mode may pass in memory instead of the files its settings name."""
    return _MODES[mode].given


def read_inputs(mode: str, settings: Any, given: Mapping[str, Image.Image]) -> Any:
    """The files the settings name, read without importing torch; `given`: pictures passed in memory instead."""
    return _named(_MODES[mode].inputs)(settings, **given)


def mode_runner(mode: str) -> Mode:
    return import_module(_MODES[mode].engine).ENGINE_MODE
