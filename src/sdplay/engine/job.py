"""A job: a mode plus its validated settings, and where and how its results are written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import SdplayError
from .modes import MODE_NAMES, pictures_given, settings_class

LAYOUTS = ("runs", "classic")


@dataclass(frozen=True)
class Job:
    """What to run. `settings` is the mode's settings object (what the run's settings.json records).

    - `outdir`: the output root (default ./outputs); each run gets its own folder under it.
    - `resume`: an interrupted run folder of this mode to continue (then `settings` may be None).
    - `write=False`: nothing is written; the pictures come back in memory.
    - `layout="classic"`: the image modes write `outdir/image_N.png` like the classic run.py --save.
    - `given`: init/mask pictures passed in memory (Python API) instead of the files the settings name.
    - `video_format`: animate's video (mp4 or gif); dream's formats are part of its settings.
    - `videos=False`: the frames only; whoever joins them makes the videos (a farm worker continuing a run).
    - `frames=(first, stop)`: a share of a dream or animate run (the farm): only frames first..stop-1,
      kept in memory, no video; `earlier` holds the frames before `first` it reads (its Split's needs).
      `frames=(0, 0)` makes nothing and tells the resolved settings, frame count and Split.
    The token is never recorded anywhere.
    """

    mode: str
    settings: Any = None
    outdir: Path | str | None = None
    resume: Path | str | None = None
    write: bool = True
    layout: str = "runs"
    given: Mapping[str, Image.Image] = field(default_factory=dict)
    video_format: str = "mp4"
    videos: bool = True
    local_only: bool = False
    frames: tuple[int, int] | None = None
    earlier: Mapping[int, Image.Image] = field(default_factory=dict)
    token: str | None = field(default=None, repr=False)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        for name in ("outdir", "resume"):  # paths may come as text (API bodies, scripts)
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Path(getattr(self, name)))
        if self.mode not in MODE_NAMES:
            raise SdplayError(f"unknown mode {self.mode!r}; choose {', '.join(MODE_NAMES)}")
        if self.layout not in LAYOUTS:
            raise SdplayError(f"unknown layout {self.layout!r}; choose {' or '.join(LAYOUTS)}")
        if self.settings is None and self.resume is None:
            raise SdplayError(f"nothing to run: give {self.mode} settings or a run folder to resume")
        if self.settings is not None and not isinstance(self.settings, settings_class(self.mode)):
            raise SdplayError(f"the settings given are not {self.mode} settings")
        unknown = sorted(set(self.given) - set(pictures_given(self.mode)))
        if unknown:
            raise SdplayError(f"{self.mode} takes no {' or '.join(unknown)} picture in memory")
        if self.resume is not None and self.mode in ("txt2img", "img2img", "inpaint"):
            raise SdplayError("only dream and animate runs resume; an image run is complete or has every image it made")
        if self.frames is not None:
            first, stop = self.frames
            if self.mode not in ("dream", "animate") or self.write or self.resume is not None:
                raise SdplayError("a frame range is a share of a new dream or animate run, made in memory")
            if not 0 <= first <= stop:
                raise SdplayError(f"frame range {first}..{stop} is empty or negative")
        if self.video_format not in ("mp4", "gif"):
            raise SdplayError(f"--format must be mp4 or gif, got {self.video_format!r}")

    @classmethod
    def from_dict(cls, mode: str, data: Mapping[str, Any], **options: Any) -> Job:
        """A job from plain data: a run's settings.json, an API request body, a batch file entry."""
        if mode not in MODE_NAMES:
            raise SdplayError(f"unknown mode {mode!r}; choose {', '.join(MODE_NAMES)}")
        if not isinstance(data, Mapping):
            raise SdplayError(f"{mode} settings must be a mapping of setting names to values")
        values = dict(data)
        if mode in ("txt2img", "img2img", "inpaint"):
            values.setdefault("mode", mode)
        return cls(mode, settings_class(mode).from_dict(values), **options)
