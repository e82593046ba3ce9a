"""ControlNet in animate: Deforum's units cn_1 ... cn_5, each with a control picture per frame.

A unit's picture comes from its `vid_path` (a file or an http(s) URL): a video, frame by frame (in
Video Input mode over the init video's extract_* range, as Deforum extracts it, else from its first
frame on), or one picture (or a one-frame video) for every frame. With `loopback_mode`, or with no `vid_path` (where the
ControlNet extension falls back on img2img's input), it is the picture the frame is redrawn from:
the previous frame warped and prepared, the init image at frame 0, the video frame in Video Input.
A frame with no picture for a unit (frame 0 drawn from nothing, frames past the end of a short
video) runs that unit at weight 0, which is exactly no control. Each picture is fitted to the frame
by the unit's resize mode, then preprocessed (canny, depth, none); the weight and the guidance
start and end are schedules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageOps

from ..controlnet import CANNY_THRESHOLDS, preprocess
from ..controlnet_names import controlnet_model_spec, preprocessor_of
from .settings import AnimationSettings

if TYPE_CHECKING:
    from ..depth import DepthEstimator

log = logging.getLogger("sdplay")

SCHEDULED = ("weight", "guidance_start", "guidance_end")  # each unit's schedules


def fit_to(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    """The web UI's resize modes: Inner Fit covers the frame and crops, Outer Fit fits inside and pads
    with black, Just Resize stretches."""
    if image.size == size:
        return image
    if mode.startswith("Inner"):
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    if mode.startswith("Outer"):
        return ImageOps.pad(image, size, Image.Resampling.LANCZOS, color=(0, 0, 0))
    return image.resize(size, Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Unit:
    """One ControlNet unit turned on: where its pictures come from and how they become control maps."""

    number: int
    preprocessor: str
    model: str
    pictures: tuple[Image.Image, ...]  # empty: the picture each frame is redrawn from
    thresholds: tuple[float, float]
    resize: str

    def picture(self, frame: int, source: Image.Image | None) -> Image.Image | None:
        if not self.pictures:
            return source
        return self.pictures[0 if len(self.pictures) == 1 else frame] if self.has_picture(frame, True) else None

    def has_picture(self, frame: int, has_source: bool) -> bool:
        if not self.pictures:
            return has_source
        return len(self.pictures) == 1 or frame < len(self.pictures)


class FrameControls:
    """The control maps, weights and guidance fractions of each diffusion call, frame by frame."""

    def __init__(
        self, settings: AnimationSettings, pictures: dict[int, list[Image.Image]], depth: DepthEstimator
    ) -> None:
        self.settings, self.depth = settings, depth
        self.units = []
        for n in settings.controlnet_units():
            value = lambda name, n=n: getattr(settings, f"cn_{n}_{name}")  # noqa: E731
            low, high = value("threshold_a"), value("threshold_b")
            thresholds = (CANNY_THRESHOLDS[0] if low is None else low, CANNY_THRESHOLDS[1] if high is None else high)
            found = tuple(pictures.get(n, ()))
            self.units.append(
                Unit(
                    n,
                    preprocessor_of(value("module")),
                    controlnet_model_spec(value("model")),
                    found,
                    thresholds,
                    value("resize_mode"),
                )
            )
            if len(found) > 1 and len(found) < settings.max_frames:
                log.warning(
                    "cn_%d_vid_path has %d frames; frames %d to %d run without ControlNet %d",
                    n,
                    len(found),
                    len(found),
                    settings.max_frames - 1,
                    n,
                )

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(unit.model for unit in self.units)

    @property
    def loops_back(self) -> bool:
        """Whether a unit takes the picture each frame is redrawn from."""
        return any(not unit.pictures for unit in self.units)

    def values(self, frame: int, has_source: bool) -> tuple[float, ...]:
        """(weight, start, end) of each unit at a frame; weight 0 where the unit has no picture there.
        Frames diffused in one call share these."""
        out: list[float] = []
        for unit in self.units:
            weight, start, end = (
                self.value(unit, name, frame) for name in ("weight", "guidance_start", "guidance_end")
            )
            out += [weight if unit.has_picture(frame, has_source) else 0.0, start, end]
        return tuple(out)

    def value(self, unit: Unit, name: str, frame: int) -> float:
        return float(self.settings.series[f"cn_{unit.number}_{name}"][frame])

    def kwargs(self, frames: list[int], sources: list[Image.Image | None], txt2img: bool) -> dict[str, Any]:
        """The pipeline's ControlNet arguments for frames diffused in one call (`sources`: the pictures
        they are redrawn from where a unit loops back, else None)."""
        values = self.values(frames[0], has_source=not txt2img)
        maps = [self.maps(unit, frames, sources) for unit in self.units]
        weights, starts, ends = list(values[0::3]), list(values[1::3]), list(values[2::3])
        single = len(self.units) == 1
        return {
            "image" if txt2img else "control_image": maps[0] if single else maps,
            "controlnet_conditioning_scale": weights[0] if single else weights,
            "control_guidance_start": starts[0] if single else starts,
            "control_guidance_end": ends[0] if single else ends,
        }

    def maps(self, unit: Unit, frames: list[int], sources: list[Image.Image | None]) -> torch.Tensor:
        """One unit's control maps of the frames as (N, 3, H, W) in [0, 1]; black where it has no picture."""
        size = (self.settings.W, self.settings.H)
        out = []
        for frame, source in zip(frames, sources, strict=True):
            picture = unit.picture(frame, source)
            if picture is None:
                out.append(np.zeros((size[1], size[0], 3), np.uint8))
                continue
            fitted = fit_to(picture, size, unit.resize)
            out.append(np.asarray(preprocess(unit.preprocessor, fitted, self.depth, unit.thresholds).convert("RGB")))
        pixels = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
        return pixels.to(self.depth.device, torch.float32) / 255

    def describe(self, frame: int) -> str:
        """What a frame's PNG records: each unit's preprocessor, model and weight there."""
        return "; ".join(
            f"{unit.number}: {unit.preprocessor} {unit.model} {self.value(unit, 'weight', frame):g}"
            for unit in self.units
        )
