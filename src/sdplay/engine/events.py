"""What a running job tells its listeners: plain frozen records, in the order they happen.

A listener is any callable taking one event. The CLI's progress bar, the classic run.py, the
Python API and the servers all listen the same way; no mode prints anything itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class Started:
    """The run is under way: its folder exists (None when nothing is written), frames `start..total-1` follow."""

    job_id: str
    mode: str
    run_dir: Path | None
    total: int
    start: int = 0


@dataclass(frozen=True)
class Converting:
    """The model is being converted for its backend, once per model (OpenVINO: minutes for SD 1.5):
    `component` is converting now and `done` of `total` are converted; `done == total` when finished."""

    job_id: str
    component: str
    done: int
    total: int


@dataclass(frozen=True)
class Progress:
    """Step `step` of `steps` of the denoising call that makes frame `frame` (0-based) of `frames`."""

    job_id: str
    step: int
    steps: int
    frame: int
    frames: int
    eta: float | None  # seconds left for the whole job, from the pace so far


@dataclass(frozen=True)
class Preview:
    """A small RGB picture of the current latents of `frame`; made only for listeners that ask for previews."""

    job_id: str
    frame: int
    step: int
    image: Image.Image


@dataclass(frozen=True)
class FileWritten:
    """A file of the run is complete on disk: a frame (`frame` is its index), a video, or settings.json."""

    job_id: str
    path: Path
    kind: str  # "frame", "video" or "settings"
    frame: int | None = None


@dataclass(frozen=True)
class PictureMade:
    """A picture of a run that writes nothing (kept in memory): its pixels, with the parameters text in
    `image.info["parameters"]`, and its extras by sub-folder (a 3D frame's depth map, a key picture)."""

    job_id: str
    index: int
    image: Image.Image
    extras: dict[str, Image.Image]


@dataclass(frozen=True)
class Finished:
    job_id: str
    result: Any  # the engine's RunResult


@dataclass(frozen=True)
class Failed:
    """The job stopped on a user mistake or a fault; `message` is the one line the CLI prints after `error:`."""

    job_id: str
    message: str
    run_dir: Path | None = None


@dataclass(frozen=True)
class Cancelled:
    """The job was cancelled; every finished frame is on disk and the folder resumes with --resume."""

    job_id: str
    run_dir: Path | None
    frames_done: int


Event = Started | Converting | Progress | Preview | FileWritten | PictureMade | Finished | Failed | Cancelled
Listener = Callable[[Event], None]
