"""Dream settings: what a walk needs, validated on the way in and filled in by `resolved()`."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import default_batch_size
from ..errors import SdplayError
from ..schedulers import canonical_sampler
from ..settings import ModelSettings, _check_int, _check_size, _round_size

if TYPE_CHECKING:
    from ..models import Model

FORMATS = ("mp4", "gif", "frames")
PROMPT_INTERPOLATIONS = ("lerp", "slerp")
DEFAULT_FRAMES_PER_SEGMENT = 24
DEFAULT_IMAGE_STRENGTH = 0.75


def parse_seeds(value: Any) -> tuple[int, ...] | None:
    """`"1,2,3"`, `[1, 2, 3]` or `7` -> a tuple of seeds; anything else names --seeds."""
    if value is None:
        return None
    items = value.replace(" ", ",").split(",") if isinstance(value, str) else value
    items = [items] if isinstance(items, int) else list(items)
    seeds = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            seed = item if isinstance(item, int) and not isinstance(item, bool) else int(str(item).strip(), 10)
        except ValueError:
            raise SdplayError(f"--seeds must be whole numbers separated by commas, got {item!r}") from None
        if not 0 <= seed < 2**64:
            raise SdplayError(f"--seeds must be between 0 and 2^64-1, got {seed}")
        seeds.append(seed)
    if not seeds:
        raise SdplayError("--seeds is empty; give whole numbers separated by commas, e.g. --seeds 1,2,3")
    return tuple(seeds)


def _as_tuple(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        return (str(value),)
    return tuple(str(v) for v in value)


def _parse_formats(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    formats = tuple(dict.fromkeys(str(item).strip().lower().lstrip(".") for item in items if str(item).strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SdplayError(f"--format must be mp4, gif or frames (or a comma list), got {value!r}")
    return formats


@dataclass(frozen=True)
class DreamSettings(ModelSettings):
    """Everything a walk needs; `resolved()` fills the open values, and settings.json records them."""

    mode: str = "dream"
    prompts: tuple[str, ...] = ()
    negative: str = ""
    seeds: tuple[int, ...] | None = None
    images: tuple[str, ...] = ()
    strength: float | None = None
    frames: int | None = None
    total_frames: int | None = None
    loop: bool = False
    fps: float = 24
    formats: tuple[str, ...] = ("mp4",)
    audio: str | None = None
    prompt_interp: str = "lerp"
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    batch_size: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # normalise lists/strings from JSON, YAML or the CLI to tuples
        set_(self, "prompts", _as_tuple(self.prompts))
        set_(self, "images", _as_tuple(self.images))
        set_(self, "seeds", parse_seeds(self.seeds))
        set_(self, "formats", _parse_formats(self.formats))
        if isinstance(self.audio, Path):
            set_(self, "audio", str(self.audio))
        self.validate()

    def validate(self) -> None:
        """Reject what no walk could use, naming the option."""
        if self.mode != "dream":
            raise SdplayError(f"these settings are for {self.mode!r}, not dream")
        if not any(p.strip() for p in self.prompts) and not self.images:
            raise SdplayError('no prompt given: sdplay dream "a prompt" ["another prompt" ...] (or --image FILE)')
        _check_size(self.width, self.height)
        _check_int("steps", self.steps, 1)
        _check_int("frames", self.frames, 1)
        _check_int("total-frames", self.total_frames, 2)
        _check_int("batch-size", self.batch_size, 1)
        if self.frames is not None and self.total_frames is not None:
            raise SdplayError("give --frames (per key point) or --total-frames, not both")
        if self.audio and self.frames is not None:
            raise SdplayError("--audio sets the number of frames from its length; leave out --frames")
        if not _is_number(self.fps) or self.fps <= 0:
            raise SdplayError(f"--fps must be a number > 0, got {self.fps!r}")
        if self.guidance is not None and (not _is_number(self.guidance) or self.guidance < 0):
            raise SdplayError(f"--guidance must be a number >= 0, got {self.guidance!r}")
        if self.strength is not None and (not _is_number(self.strength) or not 0.0 < self.strength <= 1.0):
            raise SdplayError(f"--strength must be above 0 and at most 1, got {self.strength!r}")
        if not _is_number(self.lora_scale):
            raise SdplayError(f"--lora-scale must be a number, got {self.lora_scale!r}")
        if self.prompt_interp not in PROMPT_INTERPOLATIONS:
            raise SdplayError(f"--prompt-interp must be lerp or slerp, got {self.prompt_interp!r}")
        if self.scheduler is not None:
            canonical_sampler(self.scheduler)
        self.key_point_count()

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
        return replace(
            self,
            width=_round_size("width", width),
            height=_round_size("height", height),
            steps=self.steps or model.default_steps,
            guidance=model.default_guidance if self.guidance is None else float(self.guidance),
            seeds=self.seeds or tuple(random.randrange(2**32) for _ in range(self.key_point_count())),
            scheduler=canonical_sampler(self.scheduler) if self.scheduler else model.default_scheduler,
            strength=(self.strength or DEFAULT_IMAGE_STRENGTH) if self.images else None,
            frames=None,
            total_frames=frames,
            batch_size=self.batch_size or default_batch_size(model.device, width * height, self.limit),
            model=self.model or model.name,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
