"""Which code runs each mode, found by name; imported only when a job of that mode runs.

A mode gives the engine two things: `read_inputs(settings, given)` (files the settings name,
read before any model loads so mistakes fail fast) and `plan(settings, model, inputs, job)`,
which resolves the settings against the model and returns a Plan. The engine does the rest:
run folder, frame writers, events, cancel, resume and the video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..models import Model
    from ..output import Picture, RunFolder
    from .job import Job
    from .steps import StepReporter

# mode -> (module of its engine entry, module:class of its settings); settings import no torch
_MODES = {
    "txt2img": ("sdplay.images", "sdplay.settings:ImageSettings"),
    "img2img": ("sdplay.images", "sdplay.settings:ImageSettings"),
    "inpaint": ("sdplay.images", "sdplay.settings:ImageSettings"),
    "dream": ("sdplay.dream.run", "sdplay.dream.settings:DreamSettings"),
    "animate": ("sdplay.animate.run", "sdplay.animate.settings:AnimationSettings"),
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
    def read_inputs(self, settings: Any, given: dict[str, Any]) -> Any: ...

    def plan(self, settings: Any, model: Model, inputs: Any, job: Job) -> Plan: ...


def settings_class(mode: str) -> type:
    module, name = _MODES[mode][1].split(":")
    return getattr(import_module(module), name)


def mode_runner(mode: str) -> Mode:
    return import_module(_MODES[mode][0]).ENGINE_MODE
