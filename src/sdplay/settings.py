"""Validated settings for the image modes: the one object every front door builds.

The CLI, run.py, config files and the Python API all end in an ImageSettings; the modes only
read it. `resolved()` fills what was left open (size, steps, seed, ...) from the model, and the
result is what settings.json records, so a run can be repeated exactly.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import SdplayError
from .schedulers import canonical_sampler

if TYPE_CHECKING:
    from .models import Model
    from .runtime import LoadOptions

log = logging.getLogger("sdplay")

MIN_SIZE = 64
DEFAULT_STRENGTH = {"txt2img": 1.0, "img2img": 0.75, "inpaint": 1.0}
SIZE_MULTIPLE = 8


S = TypeVar("S", bound="ModelSettings")


@dataclass(frozen=True)
class ModelSettings:
    """Which model a run uses and how it is loaded and run: shared by every mode's settings."""

    model: str | None = None
    model_config: str | None = None
    safety_checker: bool = True
    device: str = "auto"
    dtype: str = "auto"
    limit: bool = False
    cpu_offload: bool = False
    sequential_offload: bool = False
    attention_slicing: bool = False
    vae_tiling: bool = False
    compile: bool = False
    tiny_vae: str | None = None
    lora: str | None = None
    lora_scale: float = 1.0

    def model_fields(self) -> dict[str, Any]:
        """Just the model/runtime part, to build another mode's settings on the same model."""
        return {f.name: getattr(self, f.name) for f in fields(ModelSettings)}

    def load_options(self, token: str | None = None, local_only: bool = False) -> LoadOptions:
        """These settings plus the credentials, which are never recorded."""
        from .runtime import LoadOptions

        return LoadOptions(**self.model_fields(), token=token, local_only=local_only)

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any]) -> S:
        """Settings from a mapping (a settings.json, a config file); an unknown key is an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SdplayError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


@dataclass(frozen=True)
class ImageSettings(ModelSettings):
    mode: str = "txt2img"
    prompt: str = ""
    negative: str = ""
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    num: int = 1
    batch_size: int = 1
    scheduler: str | None = None
    strength: float | None = None
    init: str | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject values no model could use, with the option's name in the message."""
        if self.mode not in ("txt2img", "img2img", "inpaint"):
            raise SdplayError(f"unknown mode {self.mode!r}; choose txt2img, img2img or inpaint")
        _check_size(self.width, self.height)
        _check_int("steps", self.steps, 1)
        _check_int("num", self.num, 1)
        _check_int("batch-size", self.batch_size, 1)
        if self.seed is not None and (not isinstance(self.seed, int) or not 0 <= self.seed < 2**64):
            raise SdplayError(f"--seed must be a whole number between 0 and 2^64-1, got {self.seed!r}")
        if self.guidance is not None and (not isinstance(self.guidance, (int, float)) or self.guidance < 0):
            raise SdplayError(f"--guidance must be a number >= 0, got {self.guidance!r}")
        if self.strength is not None and (
            not isinstance(self.strength, (int, float)) or not 0.0 <= self.strength <= 1.0
        ):
            raise SdplayError(f"--strength must be between 0 and 1, got {self.strength!r}")
        if self.scheduler is not None:
            canonical_sampler(self.scheduler)
        if self.mode in ("img2img", "inpaint") and not self.init:
            raise SdplayError(f"{self.mode} needs an init image (--init FILE)")
        if self.mode == "inpaint" and not self.mask:
            raise SdplayError("inpaint needs a mask image (--mask FILE; white = repaint)")

    def resolved(self, model: Model, init_size: tuple[int, int] | None = None) -> ImageSettings:
        """Fill every open value from the model (or the init image) so the run is reproducible."""
        width = self.width or (init_size[0] if init_size else model.native_size)
        height = self.height or (init_size[1] if init_size else model.native_size)
        steps = self.steps or model.default_steps
        strength = self.strength if self.strength is not None else DEFAULT_STRENGTH[self.mode]
        if self.mode != "txt2img" and strength > 0 and int(steps * strength) < 1:
            steps = math.ceil(1 / strength)  # diffusers runs int(steps * strength) steps: keep at least one
            log.warning("%s with strength %g needs at least %d steps; using %d", self.mode, strength, steps, steps)
        return replace(
            self,
            width=_round_size("width", width),
            height=_round_size("height", height),
            steps=steps,
            guidance=model.default_guidance if self.guidance is None else float(self.guidance),
            seed=random.randrange(2**32) if self.seed is None else self.seed,
            scheduler=canonical_sampler(self.scheduler) if self.scheduler else model.default_scheduler,
            strength=strength,
            model=self.model or model.name,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_size(width: Any, height: Any) -> None:
    for name, value in (("width", width), ("height", height)):
        if value is not None and (not isinstance(value, int) or value < MIN_SIZE):
            raise SdplayError(f"--{name} must be a whole number of at least {MIN_SIZE} pixels, got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
        raise SdplayError(f"--{name} must be a whole number >= {minimum}, got {value!r}")


def _round_size(name: str, value: int) -> int:
    if value < MIN_SIZE:
        raise SdplayError(f"{name} must be at least {MIN_SIZE} pixels, got {value}")
    rounded = value - value % SIZE_MULTIPLE
    if rounded != value:
        log.warning("%s %d rounded down to %d (a multiple of %d)", name, value, rounded, SIZE_MULTIPLE)
    return rounded


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a settings file (JSON, YAML or TOML) into a plain dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SdplayError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # each parser has its own error class; all mean "malformed file"
        raise SdplayError(f"cannot parse config file {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise SdplayError(f"config file {path} must hold a mapping of setting names to values")
    return data
