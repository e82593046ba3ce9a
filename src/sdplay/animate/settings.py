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
import types
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import AfterValidator, Field, ValidationInfo, create_model, model_validator

from ..controlnet_names import CONTROLNET_UNITS, check_unit
from ..depth_names import DEFAULT_DEPTH_MODEL, depth_model_for
from ..errors import SdplayError
from ..flow import flow_method
from ..settings import (
    MAX_FRAMES,
    MAX_SIDE,
    BatchSize,
    Fraction,
    FramesPerSecond,
    Guidance,
    Interpolation,
    ModelSettings,
    PathText,
    Pixels,
    SamplerName,
    Steps,
    Timing,
    check_interpolator_file,
    check_pixels,
    interpolate_fields,
    read_config,
    round_size,
    short_repr,
    size_multiple,
)
from .schedule import keyed_values, prompt_maths, schedule_values, string_keyframes
from .unsupported import report_ignored, turned_on

if TYPE_CHECKING:
    from ..models import Model

log = logging.getLogger("sdplay")

SPELLINGS = {  # older Deforum spellings of a value -> the value used here (any case goes for every choice)
    "color_coherence": {"match frame 0 rgb": "RGB", "match frame 0 hsv": "HSV", "match frame 0 lab": "LAB"},
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
MAX_SEED = 2**32 - 1
INTERPOLATE = interpolate_fields()
FEW_STEPS = 8  # a model whose default is this many steps or fewer is a few-step model (LCM, turbo)
MAX_RAISED_STEPS = 50
MAX_CADENCE = 50  # as Deforum allows; long cadences drift, but a Deforum file with one must load
MAX_OCTAVES = 10  # each Perlin octave is twice as fine as the last: ten give 512x the base cells
CLAMPED: set[tuple[str, bytes]] = set()  # schedules already reported as clamped
MAX_REDO = 50  # throwaway generations before each frame's own: each costs a whole img2img
Count = Annotated[int, Field(ge=1, le=MAX_FRAMES)]  # a number of frames, 1 or more


def _flow_or_none(name: str, info: ValidationInfo) -> str:
    """An optical flow's name in any case, "None" for off; RAFT becomes DIS Fine with a warning."""
    return "None" if name.strip().lower() in ("", "none") else flow_method(name, info.field_name or "optical flow")


FlowChoice = Annotated[str, AfterValidator(_flow_or_none)]


def _schedule(default: str | None, description: str) -> Any:
    """A keyframe schedule such as `0: (1.0), 30: (1.05)` (a plain number is a constant one)."""
    allowed = 'a schedule such as "0: (1.0), 30: (1.05)", or a finite number'
    return Field(
        default, description=f"Schedule: {description}", json_schema_extra={"x-schedule": True, "x-allowed": allowed}
    )


class ScheduleSeries:
    """Every schedule's value at every frame, by schedule name. Compared by identity, so that settings
    holding one (cached after validation) still compare equal by their fields alone."""

    def __init__(self, values: dict[str, np.ndarray]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> np.ndarray:
        return self._values[name]


def _controlnet_unit_fields() -> dict[str, Any]:
    """Deforum's five ControlNet units, `cn_1_*` ... `cn_5_*`, declared once for all of them. Of the
    extension's other unit keys, sdplay reads videos directly (`overwrite_frames`) and sizes control
    maps to the frame (`processor_res`, `pixel_perfect`): they are ignored, as unknown keys are."""
    fields: dict[str, Any] = {}
    for i in CONTROLNET_UNITS:
        fields.update(
            {
                f"cn_{i}_enabled": (bool, Field(False, description=f"ControlNet {i}: on.")),
                f"cn_{i}_module": (
                    str,
                    Field("none", description=f"ControlNet {i}: preprocessor: canny, depth (depth_midas, ...), none."),
                ),
                f"cn_{i}_model": (
                    str,
                    Field(
                        "None",
                        description=f"ControlNet {i}: model, a folder, .safetensors file, hub id or web-UI name.",
                    ),
                ),
                f"cn_{i}_weight": (str, _schedule("0:(1)", f"ControlNet {i}: weight, 0..2.")),
                f"cn_{i}_guidance_start": (str, _schedule("0:(0.0)", f"ControlNet {i}: from this fraction of steps.")),
                f"cn_{i}_guidance_end": (str, _schedule("0:(1.0)", f"ControlNet {i}: until this fraction of steps.")),
                f"cn_{i}_vid_path": (
                    PathText,
                    Field("", description=f"ControlNet {i}: video (frame by frame) or picture (every frame)."),
                ),
                f"cn_{i}_loopback_mode": (
                    bool,
                    Field(False, description=f"ControlNet {i}: control by the picture each frame is redrawn from."),
                ),
                f"cn_{i}_threshold_a": (
                    Annotated[float, Field(ge=0, le=1024)] | None,
                    Field(None, description=f"ControlNet {i}: canny's low threshold (default 100)."),
                ),
                f"cn_{i}_threshold_b": (
                    Annotated[float, Field(ge=0, le=1024)] | None,
                    Field(None, description=f"ControlNet {i}: canny's high threshold (default 200)."),
                ),
                f"cn_{i}_resize_mode": (
                    Literal["Inner Fit (Scale to Fit)", "Outer Fit (Shrink to Fit)", "Just Resize"],
                    Field(
                        "Inner Fit (Scale to Fit)", description=f"ControlNet {i}: crop, pad or stretch to the frame."
                    ),
                ),
            }
        )
    return fields


ControlNetUnits = create_model("ControlNetUnits", __base__=ModelSettings, **_controlnet_unit_fields())


class AnimationSettings(ControlNetUnits):  # type: ignore[valid-type, misc]
    """Everything one animation needs; `to_dict()` of a resolved one re-runs it exactly.

    The model fields (model, device, dtype, lora, compile, ...) come from ModelSettings, Deforum's
    ControlNet units (`cn_1_*` ... `cn_5_*`) from ControlNetUnits.
    """

    W: Pixels | None = Field(None, description="Width in pixels (default: the model's).")
    H: Pixels | None = Field(None, description="Height in pixels (default: the model's).")
    seed: Annotated[int, Field(ge=-1, le=MAX_SEED)] = Field(-1, description="Seed of frame 0; -1 = random.")
    seed_behavior: Literal["iter", "fixed", "random", "ladder", "alternate", "schedule"] = Field(
        "iter", description="How the seed changes from frame to frame."
    )
    seed_iter_N: Count = Field(1, description="iter: frames that share a seed.")
    seed_schedule: str = _schedule("0: (s)", "the seed of each frame with seed_behavior schedule (s = seed).")
    sampler: SamplerName | None = Field(None, description="Sampler, also in web-UI spellings (default: the model's).")
    steps: Steps | None = Field(None, description="Denoising steps (default: the model's).")
    scale: Guidance | None = Field(None, description="Classifier-free guidance scale (default: the model's).")
    animation_mode: Literal["None", "2D", "3D", "Video Input", "Interpolation"] = Field(
        "2D", description="None (txt2img frames), 2D, 3D, Video Input or Interpolation."
    )
    max_frames: Count = Field(120, description="Frames of the animation.")
    border: Literal["wrap", "replicate"] = Field("replicate", description="2D: how the edges are filled.")
    use_init: bool = Field(False, description="Start from init_image.")
    init_image: PathText | None = Field(None, description="Image file of frame 0 (with use_init).")
    strength: Fraction = Field(0.65, description="How much of the init image is kept.")
    angle: str = _schedule("0: (0)", "2D rotation in degrees a frame.")
    zoom: str = _schedule("0: (1.0)", "2D zoom factor a frame.")
    translation_x: str = _schedule("0: (0)", "pixels a frame to the right (3D: units).")
    translation_y: str = _schedule("0: (0)", "pixels a frame downwards (3D: units).")
    translation_z: str = _schedule("0: (0)", "3D: units a frame towards the scene.")
    rotation_3d_x: str = _schedule("0: (0)", "3D: degrees a frame about the x axis.")
    rotation_3d_y: str = _schedule("0: (0)", "3D: degrees a frame about the y axis.")
    rotation_3d_z: str = _schedule("0: (0)", "3D: degrees a frame about the z axis.")
    transform_center_x: str = _schedule("0: (0.5)", "2D: centre of rotation and zoom, 0..1 of the width.")
    transform_center_y: str = _schedule("0: (0.5)", "2D: centre of rotation and zoom, 0..1 of the height.")
    noise_schedule: str = _schedule("0: (0.02)", "noise added to each frame before it is diffused.")
    strength_schedule: str = _schedule("0: (0.65)", "the share of the previous frame that is kept, clamped to 0..1.")
    contrast_schedule: str = _schedule("0: (1.0)", "contrast of each frame before it is diffused.")
    cfg_scale_schedule: str | None = _schedule(None, "guidance scale of each frame (default: scale).")
    enable_steps_scheduling: bool = Field(False, description="Use steps_schedule instead of steps.")
    steps_schedule: str = _schedule("0: (25)", "denoising steps of each frame (with enable_steps_scheduling).")
    fov_schedule: str = _schedule("0: (70)", "3D: field of view in degrees, 1..179.")
    near_schedule: str = _schedule("0: (200)", "3D: near plane of the depth range.")
    far_schedule: str = _schedule("0: (10000)", "3D: far plane of the depth range.")
    aspect_ratio_schedule: str = _schedule("0: (1)", "3D: aspect ratio of the camera (Deforum's default 1).")
    aspect_ratio_use_old_formula: bool = Field(False, description="3D: use W/H as the aspect ratio instead.")
    kernel_schedule: str = _schedule("0: (5)", "anti-blur: kernel size in pixels.")
    sigma_schedule: str = _schedule("0: (1.0)", "anti-blur: Gaussian sigma.")
    amount_schedule: str = _schedule("0: (0)", "anti-blur: amount of sharpening (0 = off).")
    threshold_schedule: str = _schedule("0: (0)", "anti-blur: threshold of the sharpening.")
    enable_perspective_flip: bool = Field(False, description="2D and 3D: apply the perspective flip.")
    perspective_flip_theta: str = _schedule("0: (0)", "perspective flip: theta in degrees.")
    perspective_flip_phi: str = _schedule("0: (t%15)", "perspective flip: phi in degrees.")
    perspective_flip_gamma: str = _schedule("0: (0)", "perspective flip: gamma in degrees.")
    perspective_flip_fv: str = _schedule("0: (53)", "perspective flip: field of view in degrees, 1..179.")
    color_coherence: Literal["None", "RGB", "HSV", "LAB", "Image", "Video Input"] = Field(
        "LAB", description="Match each frame's colours to the first frame's, an image's or the video's."
    )
    color_coherence_video_every_N_frames: Count = Field(1, description="Video Input: take the colours every N frames.")
    color_coherence_image_path: PathText | None = Field(None, description="Image: the picture whose colours to keep.")
    legacy_colormatch: bool = Field(False, description="Match only img2img's input, not each generated frame.")
    diffusion_cadence: Annotated[int, Field(ge=1, le=MAX_CADENCE)] = Field(
        1, description="Diffuse every Nth frame; warp and cross-fade the frames between."
    )
    optical_flow_cadence: FlowChoice = Field(
        "None", description="Cadence: move in-between frames' two keys along their optical flow (DIS Medium, ...)."
    )
    cadence_flow_factor_schedule: str = _schedule("0: (1)", "optical-flow cadence: factor on the flow.")
    optical_flow_redo_generation: FlowChoice = Field(
        "None", description="Generate once more first and start from that draft moved along its flow (2D/3D)."
    )
    redo_flow_factor_schedule: str = _schedule("0: (1)", "optical-flow redo: factor on the flow.")
    diffusion_redo: Annotated[int, Field(ge=0, le=MAX_REDO)] = Field(
        0, description="Throwaway img2img passes before each 2D/3D frame's own, each from the last one's result."
    )
    batch_size: BatchSize | None = Field(
        None, description="Frames per denoising call where frames are independent (default: by device)."
    )
    noise_type: Literal["uniform", "normal", "perlin"] = Field(
        "normal", description="The noise added to each frame: white grain (uniform, normal) or Perlin-modulated."
    )
    perlin_w: Annotated[int, Field(ge=1, le=MAX_SIDE)] = Field(8, description="Perlin noise: cells across.")
    perlin_h: Annotated[int, Field(ge=1, le=MAX_SIDE)] = Field(8, description="Perlin noise: cells down.")
    perlin_octaves: Annotated[int, Field(ge=1, le=MAX_OCTAVES)] = Field(4, description="Perlin noise: octaves.")
    perlin_persistence: Fraction = Field(0.5, description="Perlin noise: strength of each octave against the last.")
    enable_noise_multiplier_scheduling: bool = Field(True, description="Use noise_multiplier_schedule.")
    noise_multiplier_schedule: str = _schedule("0: (1.05)", "factor on img2img's starting noise.")
    use_depth_warping: bool = Field(True, description="3D: warp by the depth model's map (off: a flat scene).")
    midas_weight: Fraction = Field(0.2, description="3D: weight of the depth map.")
    padding_mode: Literal["border", "reflection", "zeros"] = Field("border", description="3D: how edges are filled.")
    sampling_mode: Literal["bicubic", "bilinear", "nearest"] = Field("bicubic", description="3D: warp interpolation.")
    save_depth_maps: bool = Field(False, description="3D: also write each frame's depth map.")
    video_init_path: PathText | None = Field(None, description="Video Input: the video file.")
    extract_nth_frame: Count = Field(1, description="Video Input: use every Nth frame of the video.")
    extract_from_frame: Annotated[int, Field(ge=0)] = Field(0, description="Video Input: first frame to use.")
    extract_to_frame: Annotated[int, Field(ge=-1)] = Field(-1, description="Video Input: last frame to use; -1 = end.")
    interpolate_key_frames: bool = Field(
        True, description="Interpolation: blend between the prompts' own frames over max_frames (the web UI's way)."
    )
    interpolate_x_frames: Annotated[int, Field(ge=0, le=MAX_FRAMES)] = Field(
        4, description="Interpolation with interpolate_key_frames off: frames between two key prompts (Colab)."
    )
    fps: FramesPerSecond = Field(15.0, description="Frames per second of the video.")
    interpolate: Interpolation = INTERPOLATE[0]
    interpolate_timing: Timing = INTERPOLATE[1]
    interpolate_model: PathText | None = INTERPOLATE[2]
    prompts: dict[str, str] = Field(
        default_factory=lambda: {"0": ""},
        description="Prompts by frame (`max_f/2` works); `--neg` starts a negative.",
        json_schema_extra={"x-allowed": "a mapping of frame numbers to prompt text"},
    )
    positive_prompts: str = Field("", description="Added to every frame's prompt.")
    negative_prompts: str = Field("", description="Added to every frame's negative prompt.")
    depth_algorithm: str | None = Field(None, description="Deforum's depth algorithm; names depth_model if not given.")
    depth_model: str | None = Field(
        None, description="3D: depth model (folder or hub id; default Depth Anything V2); none = flat."
    )

    @model_validator(mode="before")
    @classmethod
    def _deforum_values(cls, data: Any) -> Any:
        """Deforum's files and `--set` write numbers and switches as text, and a schedule as a plain number."""
        if not isinstance(data, dict):
            return data
        data = {
            key: _deforum_value(key, cls.model_fields[key].annotation, value) if key in cls.model_fields else value
            for key, value in data.items()
        }
        if data.get("depth_model") is None:  # Deforum's depth_algorithm names it, else Depth Anything V2
            algorithm = data.get("depth_algorithm")
            data["depth_model"] = depth_model_for(algorithm) if isinstance(algorithm, str) else DEFAULT_DEPTH_MODEL
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AnimationSettings:
        """Reject what no run could use, naming the key; schedules are parsed here, once, to fail early."""
        check_pixels(self.W, self.H, ("W", "H"))
        check_interpolator_file("interpolate_model", self.interpolate_model)
        if self.interpolate > 1 and self.max_frames < 2 and self.animation_mode != "Video Input":
            raise ValueError("interpolate: needs at least two frames to put new ones between; max_frames is 1")
        if self.use_init and not self.init_image:
            raise ValueError("init_image: use_init is on but no init_image is given")
        if self.animation_mode == "Video Input" and not self.video_init_path:
            raise ValueError("video_init_path: animation_mode 'Video Input' needs a video file")
        if self.color_coherence == "Video Input" and not self.video_init_path:
            raise ValueError("color_coherence: 'Video Input' needs a video_init_path")
        if self.color_coherence == "Image" and not self.color_coherence_image_path:
            raise ValueError("color_coherence: 'Image' needs a color_coherence_image_path")
        finest = max(self.perlin_w, self.perlin_h) * 2 ** (self.perlin_octaves - 1)
        if self.noise_type == "perlin" and finest > MAX_SIDE:
            raise ValueError(
                f"perlin_w, perlin_h, perlin_octaves: the finest octave would have {finest} cells across; "
                f"at most {MAX_SIDE}"
            )
        for unit in self.controlnet_units():
            check_unit(unit, getattr(self, f"cn_{unit}_module"), getattr(self, f"cn_{unit}_model"))
        self.series  # noqa: B018 - parsed here, once, to fail early
        self.frame_prompts()
        return self

    @cached_property
    def series(self) -> ScheduleSeries:
        """Every schedule as one float per frame, parsed once per settings object (at validation) and kept."""
        out = {}
        for name in SCHEDULES:
            spec = getattr(self, name)
            spec = self.scale if spec is None else spec  # cfg_scale_schedule defaults to scale
            out[name] = schedule_values(7.5 if spec is None else spec, self.max_frames, max(self.seed, 0), name)
        for name in ("steps_schedule", "kernel_schedule", "seed_schedule"):
            out[name] = np.trunc(out[name])  # Deforum's int()
        _clamp(out, "strength_schedule", 0.0, 1.0)  # as Deforum; noise, contrast, sigma and zoom below 0 work as
        _check_range(out, "cfg_scale_schedule", 0.0, math.inf)  # there (extrapolated blend, black, OpenCV's sigma
        _check_range(out, "steps_schedule", 1.0, math.inf)  # from the kernel, a half turn); what no run can use
        _check_range(out, "kernel_schedule", 1.0, math.inf)  # stays an error
        _check_nonzero(out, "zoom")
        _check_range(out, "aspect_ratio_schedule", 1e-3, math.inf)
        _check_range(out, "fov_schedule", 1.0, 179.0)
        _check_range(out, "perspective_flip_fv", 1.0, 179.0)
        for unit in CONTROLNET_UNITS:
            _check_range(out, f"cn_{unit}_weight", 0.0, 2.0)
            _check_range(out, f"cn_{unit}_guidance_start", 0.0, 1.0)
            _check_range(out, f"cn_{unit}_guidance_end", 0.0, 1.0)
            start, end = out[f"cn_{unit}_guidance_start"], out[f"cn_{unit}_guidance_end"]
            if (start >= end).any():
                frame = int(np.flatnonzero(start >= end)[0])
                raise SdplayError(
                    f"cn_{unit}_guidance_start must stay below cn_{unit}_guidance_end; frame {frame} gives "
                    f"{start[frame]:g} and {end[frame]:g}"
                )
        return ScheduleSeries(out)

    def files_read(self) -> dict[str, str | None]:
        """The input files (or http(s) URLs) this animation reads, by key: only the keys its settings put to use
        (Deforum's files name an init picture and a video even where they are switched off)."""
        used = {
            "init_image": self.use_init,
            "video_init_path": self.animation_mode == "Video Input" or self.color_coherence == "Video Input",
            "color_coherence_image_path": self.color_coherence == "Image",
        }
        for unit in self.controlnet_units():
            key = f"cn_{unit}_vid_path"
            used[key] = bool(getattr(self, key)) and not getattr(self, f"cn_{unit}_loopback_mode")
        return {key: getattr(self, key) for key, on in used.items() if on}

    def controlnet_units(self) -> list[int]:
        """The numbers of the ControlNet units turned on."""
        return [unit for unit in CONTROLNET_UNITS if getattr(self, f"cn_{unit}_enabled")]

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
        from ..devices import default_batch_size  # here: validating settings needs no torch

        width = self.W or model.native_size
        height = self.H or model.native_size
        return self.with_values(
            W=round_size("W", width, size_multiple(model)),
            H=round_size("H", height, size_multiple(model)),
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
        keeps = self.series["strength_schedule"]
        kept = float(keeps[keeps < 1].max(initial=0.0))
        steps = model_steps
        while int(steps * (1 - kept)) < model_steps and steps < MAX_RAISED_STEPS:
            steps += 1
        return steps

    @classmethod
    def from_dict(cls, data: Any, source: str = "settings") -> AnimationSettings:
        """Build from any mapping: old Deforum names renamed, features sdplay does not do named in one line."""
        if not isinstance(data, dict):
            raise SdplayError(f"{source}: settings must be a mapping of names to values, got {short_repr(data)}")
        known = cls.known_keys()
        values: dict[str, Any] = {}
        ignored = []
        # the Colab notebook keeps a list `prompts` for still images beside the animation's dict
        still_list = isinstance(data.get("prompts"), list) and "animation_prompts" in data
        interpolation = _deforum_interpolation(data)
        for key, value in data.items():
            name = RENAMED.get(key, key)
            superseded = (key == "prompts" and still_list) or (name != key and name in data and not still_list)
            if interpolation and key in DEFORUM_INTERPOLATION:
                continue  # read as interpolate and interpolate_timing
            if name not in known or superseded:  # unknown, or superseded by another spelling
                ignored.append(str(key))
            else:
                values[name] = value
        report_ignored(source, data, sorted(ignored))
        return cls(**{**interpolation, **values})


DEFORUM_INTERPOLATION = (
    "frame_interpolation_engine",
    "frame_interpolation_x_amount",
    "frame_interpolation_slow_mo_enabled",
    "frame_interpolation_slow_mo_amount",
)


def _deforum_interpolation(data: dict[str, Any]) -> dict[str, Any]:
    """Deforum's frame interpolation keys -> interpolate and interpolate_timing, where the file turns it on
    and does not say `interpolate` itself. Deforum divides the fps by `slow_mo_amount`; sdplay's slow
    motion keeps the fps, which is that with `slow_mo_amount` equal to `x_amount`."""
    engine = data.get("frame_interpolation_engine")
    if not turned_on(engine) or "interpolate" in data:
        return {}
    amount = data.get("frame_interpolation_x_amount", 2)
    slow = _deforum_value(
        "frame_interpolation_slow_mo_enabled", bool, data.get("frame_interpolation_slow_mo_enabled", False)
    )
    log.info("frame_interpolation_engine %s: sdplay interpolates by optical flow", engine)
    slow_amount = data.get("frame_interpolation_slow_mo_amount", amount)
    if slow is True and str(slow_amount) != str(amount):
        log.warning(
            "frame_interpolation_slow_mo_amount %s: sdplay's slow motion keeps the fps (the video lasts %s times "
            "longer); Deforum's divides the interpolated fps by it",
            slow_amount,
            amount,
        )
    return {"interpolate": amount, "interpolate_timing": "slowmo" if slow is True else "smooth"}


SCHEDULES = tuple(
    name for name, f in AnimationSettings.model_fields.items() if (f.json_schema_extra or {}).get("x-schedule")
)


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


def _deforum_value(name: str, annotation: Any, value: Any) -> Any:
    """Text and plain numbers as Deforum writes them -> the key's type; what does not convert is left
    as it is, for the type check to name."""
    if name == "prompts":
        return _prompt_table(value)
    kind = _plain_type(annotation)
    if get_origin(kind) is Literal and isinstance(value, str):
        spellings = {**{choice.lower(): choice for choice in get_args(kind)}, **SPELLINGS.get(name, {})}
        return spellings.get(" ".join(value.strip().lower().split()), value)
    if name in SCHEDULES and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"0: ({value})"  # a plain number is a constant schedule
    try:
        if kind is bool and isinstance(value, str):
            return _boolean(value)
        if kind is int and isinstance(value, (str, float)):
            return _integer(value)
        if kind is float and isinstance(value, str):
            return float(value)
    except (ValueError, OverflowError):
        pass
    return value


def _plain_type(annotation: Any) -> Any:
    """`Annotated[int, ...] | None` -> int."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _plain_type(options[0]) if len(options) == 1 else annotation
    if origin is Annotated:
        return _plain_type(get_args(annotation)[0])
    return annotation


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off", ""):
        return False
    raise ValueError


def _integer(value: str | float) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


def _prompt_table(value: Any) -> Any:
    """A prompt, a JSON mapping as text, a list (one prompt per frame from 0) or a mapping -> {frame: text}."""
    if isinstance(value, str):
        if not value.strip().startswith("{"):
            return {"0": value}
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"prompts: cannot read the JSON mapping {short_repr(value)}: {exc}") from None
    if isinstance(value, list):
        return {str(i): text for i, text in enumerate(value)}
    if isinstance(value, dict):
        return {str(key): text for key, text in value.items()}
    return value


def _clamp(series: dict[str, np.ndarray], name: str, low: float, high: float) -> None:
    """Clamp a schedule into its range as Deforum does, saying so once per schedule and process."""
    values = series[name]
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size and (name, values.tobytes()) not in CLAMPED:
        CLAMPED.add((name, values.tobytes()))
        frame = int(bad[0])
        log.warning(
            "%s: %d frame(s) outside %g..%g (frame %d gives %g) are clamped into it, as Deforum does",
            *(name, bad.size, low, high, frame, values[frame]),
        )
    series[name] = np.clip(values, low, high)


def _check_nonzero(series: dict[str, np.ndarray], name: str) -> None:
    values = series[name]
    bad = np.flatnonzero(np.abs(values) < 1e-6)
    if bad.size:
        frame = int(bad[0])
        raise SdplayError(f"{name} must not be 0 (it would shrink the picture to a point); frame {frame} gives 0")


def _check_range(series: dict[str, np.ndarray], name: str, low: float, high: float) -> None:
    values = series[name]
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        frame = int(bad[0])
        raise SdplayError(f"{name} must stay between {low:g} and {high:g}; frame {frame} gives {values[frame]:g}")


def load_settings_file(path: str | Path) -> dict[str, Any]:
    """Our YAML/JSON/TOML files and Deforum's `.txt` (JSON) files, as a plain mapping."""
    deforum = Path(path).suffix.lower() == ".txt"
    return read_config(path, "Deforum settings file" if deforum else "config file")


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
