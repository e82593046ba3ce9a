"""Dream settings: what a walk needs, declared once, validated on the way in and filled in by `resolved()`."""

from __future__ import annotations

import random
import re
from numbers import Integral
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from ..errors import SdplayError
from ..settings import (
    MAX_FRAMES,
    MAX_SEED,
    BatchSize,
    ControlSettings,
    FramesPerSecond,
    Guidance,
    Interpolation,
    ModelSettings,
    PathText,
    Pixels,
    SamplerName,
    Steps,
    Timing,
    as_tuple,
    check_interpolator_file,
    check_pixels,
    interpolate_fields,
    round_size,
    short_repr,
    size_multiple,
)

if TYPE_CHECKING:
    from ..models import Model

Format = Literal["mp4", "gif", "frames"]
FORMATS = get_args(Format)
DEFAULT_FRAMES_PER_SEGMENT = 24
DEFAULT_IMAGE_STRENGTH = 0.75
INTERPOLATE = interpolate_fields()


def parse_seeds(value: Any) -> Any:
    """`"1,2,3"`, `[1, 2, 3]` or `7` -> a tuple of seeds (bounds are the field's); a fraction, a bool
    or a word is refused here."""
    if value is None or isinstance(value, tuple) and all(type(item) is int for item in value):
        return value
    if isinstance(value, str):
        items: list[Any] = [item for item in value.replace(" ", ",").split(",") if item.strip()]
    elif isinstance(value, Integral) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"must be whole numbers separated by commas, got {short_repr(value)}")
    seeds = []
    for item in items:
        if isinstance(item, Integral) and not isinstance(item, bool):  # numpy integers too
            seeds.append(int(item))
        elif isinstance(item, str) and re.fullmatch(r"[+-]?[0-9]{1,40}", item.strip()):
            seeds.append(int(item.strip()))
        else:
            raise ValueError(f"must be whole numbers separated by commas, got {short_repr(item)}")
    if not seeds:
        raise ValueError("is empty; give whole numbers separated by commas, e.g. --seeds 1,2,3")
    return tuple(seeds)


def _parse_formats(value: Any) -> Any:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"must be mp4, gif or frames (or a comma list), got {short_repr(value)}")
    formats = tuple(dict.fromkeys(item.strip().lower().lstrip(".") for item in items if item.strip()))
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"must be mp4, gif or frames (or a comma list), got {short_repr(value)}")
    return formats


class DreamSettings(ControlSettings, ModelSettings):
    """Everything a walk needs; `resolved()` fills the open values, and settings.json records them."""

    mode: Literal["dream"] = Field("dream", description="Always dream: a walk through the latent space.")
    prompts: tuple[str, ...] = Field((), description="Key point prompts: one for all, or one per key point.")
    negative: str = Field("", description="What not to draw, in every frame.")
    seeds: tuple[Annotated[int, Field(ge=0, le=MAX_SEED)], ...] | None = Field(
        None, description="Key point seeds: one for all, or one per key point (random when left out)."
    )
    images: tuple[str, ...] = Field((), description="Key point image files, in order with the prompts.")
    strength: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description=f"With images: how far each image is noised (default {DEFAULT_IMAGE_STRENGTH})."
    )
    frames: Annotated[int, Field(ge=1, le=MAX_FRAMES)] | None = Field(
        None, description=f"Frames per key point (default {DEFAULT_FRAMES_PER_SEGMENT})."
    )
    total_frames: Annotated[int, Field(ge=2, le=MAX_FRAMES)] | None = Field(
        None, description="Frames of the whole walk, instead of frames per key point."
    )
    loop: bool = Field(False, description="Walk back to the first key point at the end.")
    fps: FramesPerSecond = Field(24.0, description="Frames per second of the video.")
    formats: tuple[Format, ...] = Field(("mp4",), description="What to write: mp4, gif and/or frames (a comma list).")
    audio: PathText | None = Field(None, description="wav/mp3/ogg: sets the length, moves on loud beats, muxed in.")
    interpolate: Interpolation = INTERPOLATE[0]
    interpolate_timing: Timing = INTERPOLATE[1]
    interpolate_model: PathText | None = INTERPOLATE[2]
    prompt_interp: Literal["lerp", "slerp"] = Field("lerp", description="How text embeddings are interpolated.")
    width: Pixels | None = Field(None, description="Width in pixels (default: the model's or the first image's).")
    height: Pixels | None = Field(None, description="Height in pixels (default: the model's or the first image's).")
    steps: Steps | None = Field(None, description="Denoising steps (default: the model's).")
    guidance: Guidance | None = Field(None, description="Classifier-free guidance scale (default: the model's).")
    scheduler: SamplerName | None = Field(None, description="Sampler: ddim, euler, euler_a, dpm++_2m, ...")
    batch_size: BatchSize | None = Field(None, description="Frames per denoising call (default: by device).")

    _tuples = field_validator("prompts", "images", mode="before")(as_tuple)
    _seeds = field_validator("seeds", mode="before")(parse_seeds)
    _formats = field_validator("formats", mode="before")(_parse_formats)

    @model_validator(mode="after")
    def _consistent(self) -> DreamSettings:
        """Reject what no walk could use, naming the option."""
        if not any(p.strip() for p in self.prompts) and not self.images:
            raise ValueError('no prompt given: sdplay dream "a prompt" ["another prompt" ...] (or --image FILE)')
        check_pixels(self.width, self.height)
        check_interpolator_file("interpolate_model", self.interpolate_model)
        self.key_point_count()
        if self.frames is not None and self.total_frames is not None:
            raise ValueError("give --frames (per key point) or --total-frames, not both")
        if self.audio and self.frames is not None:
            raise ValueError("--audio sets the number of frames from its length; leave out --frames")
        per_segment = self.frames or DEFAULT_FRAMES_PER_SEGMENT
        if self.total_frames is None and not self.audio and per_segment * self.segments + 1 > MAX_FRAMES:
            raise ValueError(
                f"frames: {per_segment} per key point x {self.segments} segments is more than {MAX_FRAMES} frames; "
                "give fewer frames or key points, or --total-frames"
            )
        return self

    def key_point_count(self) -> int:
        """Prompts, seeds and images each come one for all or one per key point."""
        lists = {"prompts": self.prompts, "--seeds": self.seeds or (), "--image files": self.images}
        count = max(len(v) for v in lists.values())
        if self.seeds is None:
            count = max(count, 2)  # one prompt, no seeds: walk between two random seeds
        for name, values in lists.items():
            if len(values) not in (0, 1, count):
                raise SdplayError(
                    f"{len(values)} {name.lstrip('-')} for {count} key points: give one for all or one per key point"
                )
        if count < 2:
            raise SdplayError("a walk needs two key points: give two prompts, two --seeds or two --image files")
        return count

    @property
    def segments(self) -> int:
        count = self.key_point_count()
        return count if self.loop else count - 1

    def resolved(self, model: Model, image_size: tuple[int, int] | None, audio_frames: int | None) -> DreamSettings:
        """Fill every open value from the model, the first image and the audio length."""
        width = self.width or (image_size[0] if image_size else model.native_size)
        height = self.height or (image_size[1] if image_size else model.native_size)
        frames = self.total_frames or audio_frames
        if audio_frames is not None and self.total_frames not in (None, audio_frames):
            raise SdplayError(f"--total-frames {self.total_frames} does not match the audio: it gives {audio_frames}")
        if frames is None:
            per_segment = self.frames or DEFAULT_FRAMES_PER_SEGMENT
            frames = per_segment * self.segments + (0 if self.loop else 1)
        if frames < 2:
            raise SdplayError(f"the walk would have {frames} frame; it needs at least 2 (a longer audio file?)")
        from ..devices import default_batch_size  # here: validating settings needs no torch

        return self.with_values(
            width=round_size("width", width, size_multiple(model)),
            height=round_size("height", height, size_multiple(model)),
            steps=self.steps or model.default_steps,
            guidance=model.default_guidance if self.guidance is None else self.guidance,
            seeds=self.seeds or tuple(random.randrange(2**32) for _ in range(self.key_point_count())),
            scheduler=self.scheduler or model.default_scheduler,
            strength=(self.strength or DEFAULT_IMAGE_STRENGTH) if self.images else None,
            frames=None,
            total_frames=frames,
            batch_size=self.batch_size or default_batch_size(model.device, width * height, self.limit),
            model=self.model or model.name,
            depth_model=self.resolved_depth_model(),
        )
