"""Validated animation settings under Deforum's key names, and Deforum settings-file import.

Deforum's files (`.txt` or `.json`, from the Colab notebook or the web-UI extension) are read
unchanged: older spellings are renamed (`fov` -> `fov_schedule`, `flip_2d_perspective` ->
`enable_perspective_flip`, ...), string numbers are converted, and features the file turns on that
sdplay does not do are named in one warning line. Every bad value is one SdplayError that starts
with the key's name.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..devices import default_batch_size
from ..errors import SdplayError
from ..schedulers import canonical_sampler
from ..settings import ModelSettings
from .depth import DEFAULT_DEPTH_MODEL, depth_model_for
from .schedule import keyed_values, prompt_maths, schedule_values, string_keyframes
from .unsupported import report_ignored

if TYPE_CHECKING:
    from ..models import Model

log = logging.getLogger("sdplay")

MODES = {"none": "None", "2d": "2D", "3d": "3D", "video input": "Video Input", "interpolation": "Interpolation"}
COLOR_COHERENCE = {
    "none": "None",
    "rgb": "RGB",
    "hsv": "HSV",
    "lab": "LAB",
    "match frame 0 rgb": "RGB",
    "match frame 0 hsv": "HSV",
    "match frame 0 lab": "LAB",
    "video input": "Video Input",
    "image": "Image",
}
SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
CHOICES = {
    "border": ("wrap", "replicate"),
    "padding_mode": ("border", "reflection", "zeros"),
    "sampling_mode": ("bicubic", "bilinear", "nearest"),
    "noise_type": ("uniform", "normal", "perlin"),
}
RENAMED = {  # older Deforum spellings -> the names used here
    "fov": "fov_schedule",
    "near_plane": "near_schedule",
    "far_plane": "far_schedule",
    "flip_2d_perspective": "enable_perspective_flip",
    "animation_prompts": "prompts",
    "animation_prompts_positive": "positive_prompts",
    "animation_prompts_negative": "negative_prompts",
}
SIZE_MULTIPLE = 8  # diffusers pipelines want sizes divisible by 8, whatever the VAE
MAX_SEED = 2**32 - 1
FEW_STEPS = 8  # a model whose default is this many steps or fewer is a few-step model (LCM, turbo)
MAX_RAISED_STEPS = 50


def _schedule(default: str) -> Any:
    return field(default=default, metadata={"schedule": True})


@dataclass(frozen=True)
class AnimationSettings(ModelSettings):
    """Everything one animation needs; `to_dict()` of a resolved one re-runs it exactly.

    The model fields (model, device, dtype, lora, compile, ...) come from ModelSettings.
    """

    W: int | None = None
    H: int | None = None
    seed: int = -1
    seed_behavior: str = "iter"
    seed_iter_N: int = 1
    seed_schedule: str = _schedule("0: (s)")
    sampler: str | None = None
    steps: int | None = None
    scale: float | None = None
    animation_mode: str = "2D"
    max_frames: int = 120
    border: str = "replicate"
    use_init: bool = False
    init_image: str | None = None
    strength: float = 0.65
    angle: str = _schedule("0: (0)")
    zoom: str = _schedule("0: (1.0)")
    translation_x: str = _schedule("0: (0)")
    translation_y: str = _schedule("0: (0)")
    translation_z: str = _schedule("0: (0)")
    rotation_3d_x: str = _schedule("0: (0)")
    rotation_3d_y: str = _schedule("0: (0)")
    rotation_3d_z: str = _schedule("0: (0)")
    transform_center_x: str = _schedule("0: (0.5)")
    transform_center_y: str = _schedule("0: (0.5)")
    noise_schedule: str = _schedule("0: (0.02)")
    strength_schedule: str = _schedule("0: (0.65)")
    contrast_schedule: str = _schedule("0: (1.0)")
    cfg_scale_schedule: str | None = _schedule(None)
    enable_steps_scheduling: bool = False
    steps_schedule: str = _schedule("0: (25)")
    fov_schedule: str = _schedule("0: (70)")
    near_schedule: str = _schedule("0: (200)")
    far_schedule: str = _schedule("0: (10000)")
    aspect_ratio_schedule: str = _schedule("0: (1)")
    aspect_ratio_use_old_formula: bool = False
    kernel_schedule: str = _schedule("0: (5)")
    sigma_schedule: str = _schedule("0: (1.0)")
    amount_schedule: str = _schedule("0: (0)")
    threshold_schedule: str = _schedule("0: (0)")
    enable_perspective_flip: bool = False
    perspective_flip_theta: str = _schedule("0: (0)")
    perspective_flip_phi: str = _schedule("0: (t%15)")
    perspective_flip_gamma: str = _schedule("0: (0)")
    perspective_flip_fv: str = _schedule("0: (53)")
    color_coherence: str = "LAB"
    color_coherence_video_every_N_frames: int = 1
    color_coherence_image_path: str | None = None
    legacy_colormatch: bool = False
    diffusion_cadence: int = 1
    batch_size: int | None = None  # frames per denoising call where frames are independent (None = by device)
    noise_type: str = "normal"
    perlin_w: int = 8
    perlin_h: int = 8
    perlin_octaves: int = 4
    perlin_persistence: float = 0.5
    enable_noise_multiplier_scheduling: bool = True
    noise_multiplier_schedule: str = _schedule("0: (1.05)")
    use_depth_warping: bool = True
    midas_weight: float = 0.2
    padding_mode: str = "border"
    sampling_mode: str = "bicubic"
    save_depth_maps: bool = False
    video_init_path: str | None = None
    extract_nth_frame: int = 1
    extract_from_frame: int = 0
    extract_to_frame: int = -1
    interpolate_x_frames: int = 4
    fps: float = 15.0
    prompts: dict[str, str] = field(default_factory=lambda: {"0": ""})
    positive_prompts: str = ""
    negative_prompts: str = ""
    depth_algorithm: str | None = None  # Deforum's; names depth_model when that is not given
    depth_model: str | None = None  # a transformers depth model: hub id or folder (default Depth Anything V2)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("schedule") and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = f"0: ({value})"  # a plain number is a constant schedule
            object.__setattr__(self, f.name, _coerce(f.name, f.type, value))
        self._normalise()
        self.validate()

    def _normalise(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("animation_mode", _choice("animation_mode", self.animation_mode, MODES))
        if self.depth_model is None:
            algorithm = self.depth_algorithm
            put("depth_model", depth_model_for(algorithm) if algorithm else DEFAULT_DEPTH_MODEL)
        put("color_coherence", _choice("color_coherence", self.color_coherence, COLOR_COHERENCE))
        for name, allowed in CHOICES.items():
            put(name, _choice(name, getattr(self, name), {a: a for a in allowed}))
        put("seed_behavior", _choice("seed_behavior", self.seed_behavior, {b: b for b in SEED_BEHAVIORS}))
        if self.sampler is not None:
            try:
                put("sampler", canonical_sampler(self.sampler))
            except SdplayError as exc:
                raise SdplayError(f"sampler: {exc}") from None

    def validate(self) -> None:
        """Reject what no run could use, naming the key; schedules are parsed here, once, to fail early."""
        for name in ("W", "H"):
            value = getattr(self, name)
            if value is not None and value < 64:
                raise SdplayError(f"{name} must be at least 64 pixels, got {value}")
        _at_least("max_frames", self.max_frames, 1)
        _at_least("steps", self.steps, 1)
        _at_least("seed_iter_N", self.seed_iter_N, 1)
        _at_least("extract_nth_frame", self.extract_nth_frame, 1)
        _at_least("extract_from_frame", self.extract_from_frame, 0)
        _at_least("interpolate_x_frames", self.interpolate_x_frames, 0)
        _at_least("perlin_octaves", self.perlin_octaves, 1)
        _at_least("color_coherence_video_every_N_frames", self.color_coherence_video_every_N_frames, 1)
        _at_least("perlin_w", self.perlin_w, 1)
        _at_least("perlin_h", self.perlin_h, 1)
        _at_least("batch_size", self.batch_size, 1)
        if not 1 <= self.diffusion_cadence <= 8:
            raise SdplayError(f"diffusion_cadence must be a whole number from 1 to 8, got {self.diffusion_cadence}")
        if not -1 <= self.seed <= MAX_SEED:
            raise SdplayError(f"seed must be -1 (random) or a whole number from 0 to 2^32-1, got {self.seed}")
        for name in ("strength", "midas_weight", "perlin_persistence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SdplayError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.scale is not None and self.scale < 0:
            raise SdplayError(f"scale must be >= 0, got {self.scale}")
        if not self.fps > 0:
            raise SdplayError(f"fps must be > 0, got {self.fps}")
        if self.use_init and not self.init_image:
            raise SdplayError("init_image: use_init is on but no init_image is given")
        if self.animation_mode == "Video Input" and not self.video_init_path:
            raise SdplayError("video_init_path: animation_mode 'Video Input' needs a video file")
        if self.color_coherence == "Video Input" and not self.video_init_path:
            raise SdplayError("color_coherence: 'Video Input' needs a video_init_path")
        if self.color_coherence == "Image" and not self.color_coherence_image_path:
            raise SdplayError("color_coherence: 'Image' needs a color_coherence_image_path")
        self.series()
        self.frame_prompts()

    def series(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Every schedule as one float per frame (seed-dependent schedules use `seed`, else self.seed)."""
        s = self.seed if seed is None else seed
        out = {}
        for f in fields(self):
            if f.metadata.get("schedule"):
                spec = getattr(self, f.name)
                spec = self.scale if spec is None else spec  # cfg_scale_schedule defaults to scale
                out[f.name] = schedule_values(7.5 if spec is None else spec, self.max_frames, max(s, 0), f.name)
        for name in ("steps_schedule", "kernel_schedule", "seed_schedule"):
            out[name] = np.trunc(out[name])  # Deforum's int()
        _check_range(out, "strength_schedule", 0.0, 1.0)
        _check_range(out, "noise_schedule", 0.0, math.inf)
        _check_range(out, "contrast_schedule", 0.0, math.inf)
        _check_range(out, "cfg_scale_schedule", 0.0, math.inf)
        _check_range(out, "steps_schedule", 1.0, math.inf)
        _check_range(out, "kernel_schedule", 1.0, math.inf)
        _check_range(out, "sigma_schedule", 0.0, math.inf)
        _check_range(out, "zoom", 1e-6, math.inf)
        _check_range(out, "aspect_ratio_schedule", 1e-3, math.inf)
        _check_range(out, "noise_multiplier_schedule", 0.0, math.inf)
        _check_range(out, "fov_schedule", 1.0, 179.0)
        _check_range(out, "perspective_flip_fv", 1.0, 179.0)
        return out

    def frame_prompts(self) -> list[tuple[str, str]]:
        """(prompt, negative) of every frame; backtick maths evaluated at the frame, `--neg` splits a prompt,
        positive/negative_prompts are added."""
        texts = string_keyframes(self.prompts, self.max_frames, "prompts")
        return [self._split(text, frame) for frame, text in enumerate(texts)]

    def keyed_prompts(self) -> dict[int, str]:
        """The prompts as written, by frame number (keys like `max_f/2` evaluated), in frame order."""
        return dict(sorted(keyed_values(self.prompts.items(), self.max_frames, "prompts").items()))

    def key_prompts(self) -> list[tuple[int, str, str]]:
        """The keyed prompts in frame order, for Interpolation mode: (frame, prompt, negative)."""
        return [(frame, *self._split(text, frame)) for frame, text in self.keyed_prompts().items()]

    def _split(self, text: str, frame: int) -> tuple[str, str]:
        prompt = prompt_maths(text, frame, self.max_frames)
        return _split_prompt(prompt, self.positive_prompts, self.negative_prompts)

    def resolved(self, model: Model) -> AnimationSettings:
        """Fill size, steps, guidance, sampler and a random seed from the model, so the run repeats exactly."""
        width = self.W or model.native_size
        height = self.H or model.native_size
        multiple = math.lcm(SIZE_MULTIPLE, model.vae_scale_factor)
        return replace(
            self,
            W=_round_size("W", width, multiple),
            H=_round_size("H", height, multiple),
            steps=self.steps or self._steps_for(model.default_steps),
            scale=model.default_guidance if self.scale is None else self.scale,
            sampler=self.sampler or model.default_scheduler,
            seed=random.randrange(MAX_SEED + 1) if self.seed == -1 else self.seed,
            batch_size=self.batch_size or default_batch_size(model.device, width * height, self.limit),
            model=self.model or model.name,
        )

    def _steps_for(self, model_steps: int) -> int:
        """The model's own step count, raised for few-step models (LCM, turbo) so that every img2img
        frame still runs that many steps: Deforum keeps 65% of a frame, and 1 step x 35% is none."""
        if model_steps > FEW_STEPS or self.animation_mode not in ("2D", "3D", "Video Input"):
            return model_steps
        keeps = self.series()["strength_schedule"]
        kept = float(keeps[keeps < 1].max(initial=0.0))
        steps = model_steps
        while int(steps * (1 - kept)) < model_steps and steps < MAX_RAISED_STEPS:
            steps += 1
        return steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "settings") -> AnimationSettings:
        """Build from any mapping: old Deforum names renamed, features sdplay does not do named in one line."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        ignored = []
        # the Colab notebook keeps a list `prompts` for still images beside the animation's dict
        still_list = isinstance(data.get("prompts"), list) and "animation_prompts" in data
        for key, value in data.items():
            name = RENAMED.get(key, key)
            superseded = (key == "prompts" and still_list) or (name != key and name in data and not still_list)
            if name not in known or superseded:  # unknown, or superseded by another spelling
                ignored.append(key)
            else:
                values[name] = value
        report_ignored(source, data, sorted(ignored))
        return cls(**values)


def frame_seed(settings: AnimationSettings, frame: int, diffused: int, scheduled: float) -> int:
    """The seed of a frame, Deforum's way: `diffused` counts the frames diffused before this one."""
    base, behavior = settings.seed, settings.seed_behavior
    if behavior == "iter":
        return (base + (diffused + settings.seed_iter_N - 1) // settings.seed_iter_N) % (MAX_SEED + 1)
    if behavior == "ladder":
        return (base + (diffused // 2 if diffused % 2 == 0 else diffused // 2 + 2)) % (MAX_SEED + 1)
    if behavior == "alternate":
        return (base + diffused % 2) % (MAX_SEED + 1)
    if behavior == "fixed":
        return base
    if behavior == "schedule" and scheduled >= 0:
        return int(scheduled) % (MAX_SEED + 1)
    if behavior == "random" and diffused == 0:
        return base  # Deforum draws a new seed after each frame, so the first one keeps the given seed
    return random.Random(base * 1_000_003 + frame).randrange(MAX_SEED + 1)  # "random", or -1 in a seed schedule


def _split_prompt(text: str, positive: str, negative: str) -> tuple[str, str]:
    prompt, _, neg = text.partition("--neg")
    return _join(positive, prompt), _join(neg, negative)


def _join(*parts: str) -> str:
    """Join the non-empty parts of a prompt with a space, as Deforum does."""
    return " ".join(p.strip() for p in parts if p and p.strip())


def _choice(name: str, value: Any, table: dict[str, str]) -> str:
    key = " ".join(str(value).strip().lower().split())
    if key not in table:
        allowed = ", ".join(dict.fromkeys(table.values()))
        raise SdplayError(f"{name} must be one of {allowed}; got {value!r}")
    return table[key]


def _coerce(name: str, kind: str, value: Any) -> Any:
    """Turn strings and numbers from config files and --set into the key's type, or fail naming it."""
    if value is None:
        if "None" in kind:
            return None
        raise SdplayError(f"{name} must be given a value")
    base = kind.replace(" | None", "")
    try:
        if base == "bool":
            return _boolean(value)
        if base == "int":
            return _integer(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base.startswith("dict"):
            return _prompt_table(value)
        if isinstance(value, (dict, list, bool)):
            raise ValueError
        return str(value)
    except (ValueError, TypeError, OverflowError):
        expected = {"bool": "true or false", "int": "a whole number", "float": "a number"}.get(base, "text")
        raise SdplayError(f"{name} must be {expected}, got {value!r}") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    number = float(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


def _prompt_table(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("{") else {"0": value}
    if isinstance(value, list):
        value = {str(i): text for i, text in enumerate(value)}
    if not isinstance(value, dict):
        raise ValueError
    return {str(key): text for key, text in value.items()}


def _at_least(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise SdplayError(f"{name} must be a whole number >= {minimum}, got {value}")


def _check_range(series: dict[str, np.ndarray], name: str, low: float, high: float) -> None:
    values = series[name]
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        frame = int(bad[0])
        raise SdplayError(f"{name} must stay between {low:g} and {high:g}; frame {frame} gives {values[frame]:g}")


def _round_size(name: str, value: int, multiple: int) -> int:
    """Round down to what both the pipelines (8) and the model's VAE (its scale factor) accept."""
    rounded = max(multiple, value - value % multiple)
    if rounded != value:
        log.warning("%s %d rounded down to %d (a multiple of %d)", name, value, rounded, multiple)
    return rounded


def load_settings_file(path: str | Path) -> dict[str, Any]:
    """Our YAML/JSON/TOML files and Deforum's `.txt` (JSON) files, as a plain mapping."""
    from ..settings import read_config

    path = Path(path)
    if path.suffix.lower() == ".txt":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SdplayError(f"cannot read settings file {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise SdplayError(f"cannot parse Deforum settings file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise SdplayError(f"settings file {path} must hold a mapping of setting names to values")
        return data
    return read_config(path)


def settings_from(path: str | Path | None, overrides: dict[str, Any]) -> AnimationSettings:
    """One run's settings: the file's values (ours or Deforum's), then the overrides on top."""
    data = load_settings_file(path) if path is not None else {}
    return AnimationSettings.from_dict({**data, **overrides}, Path(path).name if path is not None else "--set")


TEMPLATE = """\
# sdplay animate settings (Deforum's key names; a Deforum settings .txt works too).
# Edit, then run again: python run.py --mode animate ...  or  sdplay animate --config animation.yaml
animation_mode: 2D          # None, 2D, 3D, Video Input, Interpolation
max_frames: 48
fps: 12
W: 512                      # size in pixels (leave out for the model's own size)
H: 512
seed: -1                    # -1 = random (the seed used is recorded in settings.json)
seed_behavior: iter         # iter, fixed, random, ladder, alternate, schedule
sampler: euler_ancestral    # also web-UI spellings such as "Euler a", "DPM++ 2M Karras"
steps: 25
scale: 7
diffusion_cadence: 2        # diffuse every Nth frame, warp and cross-fade the rest
# Schedules: "frame: (value)", linear between keys; t = frame, max_f = last frame, s = seed.
zoom: "0: (1.02)"
angle: "0: (0)"
translation_x: "0: (0), 24: (3)"
strength_schedule: "0: (0.65)"     # the share of the previous frame that is KEPT
noise_schedule: "0: (0.02)"
color_coherence: LAB        # None, RGB, HSV, LAB
prompts:
  0: "a lighthouse on a cliff at dusk, oil painting --neg blurry"
  max_f/2: "a lighthouse in a snow storm, oil painting"
negative_prompts: "lowres, watermark"
"""


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--set key=value` pairs; values stay text and are converted by the key's type."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SdplayError(f"--set needs key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
