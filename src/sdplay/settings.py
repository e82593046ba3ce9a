"""The settings of every mode, declared once: type, bounds, default and meaning of each field.

Every front door (the CLI, run.py, settings files, settings.json, the Python API) ends in one of
these pydantic models, and the modes only read them. A value of the wrong type, NaN, infinity, an
out-of-range number or an unknown key is refused here, before any model loads, as one SdplayError
line naming the key and what is allowed. `resolved()` fills what was left open (size, steps, seed,
...) from the model; the result is what settings.json records, so a run can be repeated exactly.
"""

from __future__ import annotations

import json
import logging
import math
import random
import reprlib
import types
from collections.abc import Mapping
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from .controlnet_names import CONTROLNET_UNITS
from .depth_names import DEFAULT_DEPTH_MODEL
from .errors import SdplayError
from .schedulers import canonical_sampler
from .specs import is_missing_path

if TYPE_CHECKING:
    from .models import Model
    from .runtime import LoadOptions

log = logging.getLogger("sdplay")

# The bounds refuse what cannot finish or cannot fit, before anything loads (reasoned, not measured):
MIN_SIZE = 64  # 8 latent pixels: the UNet's three down-samplings leave one at the bottom
MAX_SIDE = 8192  # 16x SD 1.5's side, 8x SDXL's: a long strip, never a square (see MAX_PIXELS)
MAX_PIXELS = 4096 * 4096  # 16x SDXL's area, far past where these models draw one scene; attention grows as its square
MAX_STEPS = 1000  # Stable Diffusion models are trained on 1000 timesteps; more steps cannot add anything
MAX_IMAGES = 10_000  # images of one run: hours even at a fraction of a second an image
MAX_BATCH = 64  # images or frames held in memory at once: 8x the largest batch sdplay picks by itself
MAX_FRAMES = 100_000  # frames of one video: 70 minutes at 24 fps, more than a day at one second a frame
MAX_FPS = 240.0  # more frames a second than screens show
MAX_GUIDANCE = 100.0  # guidance above ~30 only burns the picture; 100 leaves room for odd models
MAX_SEED = 2**64 - 1  # torch generators take 64-bit seeds
# the settings that name a file to read (pictures, masks, videos, audio) and ControlNet's TYPE:IMAGE[:WEIGHT]
# inputs: a server checks them against its own files, a batch file's are relative to the batch file's folder
# animate's file keys, which may name an http(s) URL: downloaded where the settings read the key
URL_KEYS = ("init_image", "video_init_path", "color_coherence_image_path")
URL_KEYS += tuple(f"cn_{unit}_vid_path" for unit in CONTROLNET_UNITS)  # animate's ControlNet units
FILE_KEYS = ("init", "mask", "images", "audio", *URL_KEYS)
CONTROL_KEY = "control"
SIZE_MULTIPLE = 8  # diffusers pipelines want sizes divisible by 8, whatever the VAE
DEFAULT_STRENGTH = {"txt2img": 1.0, "img2img": 0.75, "inpaint": 1.0}

# Field types shared by the settings classes: one declaration of each kind of value.
Pixels = Annotated[int, Field(ge=MIN_SIZE, le=MAX_SIDE)]
Steps = Annotated[int, Field(ge=1, le=MAX_STEPS)]
Guidance = Annotated[float, Field(ge=0, le=MAX_GUIDANCE)]
Fraction = Annotated[float, Field(ge=0, le=1)]
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH)]
FramesPerSecond = Annotated[float, Field(gt=0, le=MAX_FPS)]
MAX_INTERPOLATION = 16  # frames per original interval: 15 new ones between every two
Interpolation = Annotated[int, Field(ge=1, le=MAX_INTERPOLATION)]
Timing = Literal["smooth", "slowmo"]


def interpolate_fields() -> tuple[Any, Any, Any]:
    """The `interpolate`, `interpolate_timing` and `interpolate_model` fields of the video modes (dream, animate)."""
    return (
        Field(
            1,
            description="Frame interpolation: 2 or 4 puts 1 or 3 new frames between every two, into interpolated/ "
            "beside the originals, and a second video (1 = off).",
        ),
        Field("smooth", description="Interpolated video: smooth multiplies the fps, slowmo keeps it (slow motion)."),
        Field(None, description="Frame interpolation by RIFE 4.26 from this weights file, instead of optical flow."),
    )


def check_interpolator_file(key: str, path: str | None) -> None:
    """A learned interpolator's weights file must be there, before anything loads."""
    if path and not Path(path).expanduser().is_file():
        raise ValueError(f"{key}: interpolator weights not found: {path}")


def _path_as_text(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def as_tuple(value: Any) -> Any:
    """One text or a list of them -> a tuple (a Path counts as text); anything else is left for the type check."""
    if isinstance(value, (str, Path)):
        return (str(value),)
    if isinstance(value, list):
        return tuple(str(v) if isinstance(v, Path) else v for v in value)
    return value


def _known_sampler(name: str) -> str:
    try:
        return canonical_sampler(name)
    except SdplayError as exc:
        raise ValueError(str(exc)) from None


def _lower_case(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


PathText = Annotated[str, BeforeValidator(_path_as_text)]  # a file name; a pathlib.Path is welcome too
DeviceName = Annotated[str, BeforeValidator(_lower_case), Field(pattern=r"^(auto|cpu|gpu|mps|cuda(:[0-9]+)?)$")]
DtypeName = Annotated[Literal["auto", "fp32", "fp16", "bf16"], BeforeValidator(_lower_case)]
BackendName = Annotated[Literal["auto", "pytorch", "openvino"], BeforeValidator(_lower_case)]
SamplerName = Annotated[str, AfterValidator(_known_sampler)]  # any accepted spelling -> our canonical name


class Settings(BaseModel):
    """What every settings class shares: strict types, no NaN or infinity, no unknown keys, immutable,
    and every validation error as one SdplayError line."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, validate_by_name=True, validate_by_alias=True
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise validation_error_line(type(self), exc) from None

    @model_validator(mode="before")
    @classmethod
    def _plain_integers(cls, data: Any) -> Any:
        """numpy integers (a seed from np.random) are whole numbers too; bools are not."""
        if isinstance(data, dict):
            return {
                k: int(v) if isinstance(v, Integral) and not isinstance(v, (int, bool)) else v for k, v in data.items()
            }
        return data

    @classmethod
    def known_keys(cls) -> set[str]:
        """The names a settings mapping uses: each field's public alias where it has one, else its name."""
        return {f.alias or key for key, f in cls.model_fields.items()}

    @classmethod
    def from_dict(cls, data: Mapping[Any, Any]) -> Any:
        """Settings from a mapping (a settings.json, a config file, the CLI's flags); an unknown key is an error."""
        if not isinstance(data, Mapping):
            raise SdplayError(f"settings must be a mapping of names to values, got {short_repr(data)}")
        known = cls.known_keys()
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise SdplayError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """What settings.json records: plain JSON values under the public names; `from_dict` reads it back equal."""
        return self.model_dump(mode="json", by_alias=True)

    def with_values(self, **changes: Any) -> Any:
        """A copy with some values changed, validated like any other settings."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**fields, **changes})


def validation_error_line(cls: type[Settings], exc: ValidationError) -> SdplayError:
    """Pydantic's errors -> the first one as `key: must be <what the declaration allows>, got <value>`."""
    errors = exc.errors(include_url=False)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return SdplayError(_describe_error(cls, errors[0]) + more)


def _describe_error(cls: type[Settings], error: Any) -> str:
    loc = error["loc"]
    key = str(loc[0]) if loc else ""
    if error["type"] in ("value_error", "assertion_error"):  # our own validators say what is wrong themselves
        message = str(error["ctx"]["error"])
        return f"{key}: {message}" if key else message
    if error["type"] == "extra_forbidden":
        return f"unknown setting(s) {key}; known: {', '.join(sorted(cls.known_keys()))}"
    field = _field_named(cls, key)
    where = "".join(f"[{part!r}]" for part in loc[1:])
    got = f"{short_repr(error['input'])}" + (f" at {key}{where}" if where else "")
    if field is None:
        return f"{key}: {error['msg']}, got {got}"
    return f"{key}: must be {allowed_values(field)}, got {got}"


def _field_named(cls: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in cls.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def short_repr(value: Any) -> str:
    """A value as the user wrote it, cut short: a settings file can hold a huge or deeply nested value."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 2


def allowed_values(field: FieldInfo) -> str:
    """What a field's declaration allows, in words: `a whole number from 1 to 1000`, `true or false`, ..."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("x-allowed"), str):  # a declaration's own words
        return extra["x-allowed"]
    return _describe_type(field.annotation, list(field.metadata))


def _describe_type(annotation: Any, metadata: list[Any]) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return (
            _describe_type(options[0], metadata)
            if len(options) == 1
            else " or ".join(_describe_type(a, metadata) for a in options)
        )
    if origin is Annotated:
        base, *extra = get_args(annotation)
        for item in extra:
            metadata = metadata + (list(item.metadata) if isinstance(item, FieldInfo) else [item])
        return _describe_type(base, metadata)
    if origin is Literal:
        choices = [str(a) for a in get_args(annotation)]
        return choices[0] if len(choices) == 1 else "one of " + ", ".join(choices)
    if origin is tuple:
        return f"a list of {_plural(_describe_type(get_args(annotation)[0], []))}"
    if origin is dict:
        key, value = (_describe_type(a, []) for a in get_args(annotation))
        return f"a mapping of {key} to {value}"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "a whole number" + _bounds(metadata)
    if annotation is float:
        return "a finite number" + _bounds(metadata)
    if annotation is str:
        return "text"
    return str(annotation)


def _plural(description: str) -> str:
    if description.startswith("a whole number"):
        return "whole numbers" + description.removeprefix("a whole number")
    return description


def _bounds(metadata: list[Any]) -> str:
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = (">=", item.ge)
        elif isinstance(item, annotated_types.Gt):
            low = (">", item.gt)
        elif isinstance(item, annotated_types.Le):
            high = ("<=", item.le)
        elif isinstance(item, annotated_types.Lt):
            high = ("<", item.lt)
    if low and high and (low[0], high[0]) == (">=", "<="):
        return f" from {_number(low[1])} to {_number(high[1])}"
    return " and".join(f" {part[0]} {_number(part[1])}" for part in (low, high) if part)


def _number(value: float) -> str:
    if isinstance(value, int) and value >= 2**16 and (value + 1) & value == 0:
        return f"2^{(value + 1).bit_length() - 1}-1"
    return f"{value:g}" if isinstance(value, float) else str(value)


def round_size(name: str, value: int, multiple: int = SIZE_MULTIPLE) -> int:
    """Round a side down to what both the pipelines (8) and the model's VAE (its scale factor) accept,
    never below one multiple; the one size rule of every mode."""
    rounded = max(multiple, value - value % multiple)
    if rounded != value:
        log.warning("%s %d rounded down to %d (a multiple of %d)", name, value, rounded, multiple)
    return rounded


def size_multiple(model: Model) -> int:
    return math.lcm(SIZE_MULTIPLE, model.vae_scale_factor)


def check_pixels(width: int | None, height: int | None, names: tuple[str, str] = ("width", "height")) -> None:
    """Each side has its bound, and so does their product: 8192 pixels a side is fine for a strip, not a square."""
    if width is not None and height is not None and width * height > MAX_PIXELS:
        side = math.isqrt(MAX_PIXELS)
        raise ValueError(
            f"{names[0]} x {names[1]}: {width}x{height} is more than {MAX_PIXELS} pixels ({side}x{side}); "
            "make the picture smaller"
        )


class ModelSettings(Settings):
    """Which model a run uses and how it is loaded and run: shared by every mode's settings."""

    model: str | None = Field(
        None, description="Model: an alias, a hub id[@revision], a diffusers folder or a .safetensors/.ckpt file."
    )
    checkpoint_config: PathText | None = Field(
        None, alias="model_config", description="Diffusers config (folder or hub id) for a single-file checkpoint."
    )
    safety_checker: bool = Field(True, description="Run the model's safety checker, when it has one.")
    device: DeviceName = Field(
        "auto",
        description="Where to run: auto, cpu, cuda, cuda:N or mps.",
        json_schema_extra={"x-allowed": "one of auto, cpu, cuda, cuda:N, gpu, mps"},
    )
    dtype: DtypeName = Field("auto", description="auto (fp16 on a GPU, fp32 on the CPU), fp32, fp16 or bf16.")
    backend: BackendName = Field(
        "pytorch",
        description="Where the model runs: pytorch, openvino (CPU: pip install 'sdplay[openvino]'; --dtype auto "
        "lets it pick bf16 or fp32) or auto (OpenVINO on a CPU when installed).",
    )
    limit: bool = Field(False, description="Keep memory low: offload, attention and VAE slicing.")
    cpu_offload: bool = Field(False, description="CUDA: keep each model on the CPU until it runs.")
    sequential_offload: bool = Field(False, description="CUDA: offload layer by layer (least memory).")
    attention_slicing: bool = Field(False, description="Compute attention in slices (less memory).")
    vae_tiling: bool = Field(False, description="Decode large images tile by tile.")
    compile: bool = Field(False, description="torch.compile the UNet, VAE and depth model (slow first call).")
    tiny_vae: str | None = Field(None, description="Tiny VAE for fast decoding: auto, a folder or a hub id.")
    lora: PathText | None = Field(None, description="LoRA weights (file, folder or hub id), fused into the model.")
    lora_scale: float = Field(1.0, description="Strength of the LoRA.")

    def model_options(self) -> dict[str, Any]:
        """Just the model/runtime part, to build another mode's settings on the same model."""
        return {name: getattr(self, name) for name in ModelSettings.model_fields}

    def load_options(self, token: str | None = None, local_only: bool = False) -> LoadOptions:
        """These settings plus the credentials, which are never recorded."""
        from .runtime import LoadOptions

        return LoadOptions(**self.model_options(), token=token, local_only=local_only)


class ControlSettings(Settings):
    """ControlNet for the modes that draw with a prompt (txt2img, img2img, inpaint, dream)."""

    control: tuple[str, ...] = Field(
        (), description="ControlNet inputs TYPE:IMAGE[:WEIGHT]; TYPE is canny, depth or none."
    )
    control_model: tuple[str, ...] = Field(
        (), description="ControlNet model per control, or one for all: a folder, a hub id or a .safetensors file."
    )
    control_start: Fraction = Field(0.0, description="ControlNet: fraction of the steps where control starts.")
    control_end: Fraction = Field(1.0, description="ControlNet: fraction of the steps where control ends.")
    depth_model: str | None = Field(
        None, description="ControlNet depth preprocessor: depth model, a folder or hub id (default Depth Anything V2)."
    )
    _control_tuples = field_validator("control", "control_model", mode="before")(as_tuple)

    @model_validator(mode="after")
    def _controls(self) -> ControlSettings:
        if self.control:
            from .controlnet import parse_control

            for text in self.control:
                parse_control(text)
            if len(self.control_model) not in (1, len(self.control)):
                raise ValueError("control_model: give one control model for all controls, or one per --control")
            if self.control_start >= self.control_end:
                raise ValueError("control_start: must be below control_end")
        if self.depth_model and is_missing_path(self.depth_model):
            raise ValueError(f"depth_model: folder not found: {self.depth_model}")
        return self

    def control_kinds(self) -> set[str]:
        """The preprocessors the controls use."""
        from .controlnet import parse_control

        return {parse_control(text).kind for text in self.control}

    def control_images(self) -> tuple[str, ...]:
        """The picture each control reads, in order."""
        from .controlnet import parse_control

        return tuple(parse_control(text).image for text in self.control)

    def control_models(self) -> tuple[str, ...]:
        """One ControlNet model per control (one given for all is repeated)."""
        return self.control_model * (len(self.control) if len(self.control_model) == 1 else 1)

    def resolved_depth_model(self) -> str | None:
        """The depth model a depth control uses: the one given, else Depth Anything V2 (recorded either way)."""
        return self.depth_model or (DEFAULT_DEPTH_MODEL if "depth" in self.control_kinds() else None)


class ImageSettings(ControlSettings, ModelSettings):
    """One txt2img, img2img or inpaint run."""

    mode: Literal["txt2img", "img2img", "inpaint"] = Field("txt2img", description="What to make.")
    prompt: str = Field("", description="What to draw.")
    negative: str = Field("", description="What not to draw.")
    width: Pixels | None = Field(None, description="Width in pixels (default: the model's or the init image's).")
    height: Pixels | None = Field(None, description="Height in pixels (default: the model's or the init image's).")
    steps: Steps | None = Field(None, description="Denoising steps (default: the model's).")
    guidance: Guidance | None = Field(None, description="Classifier-free guidance scale (default: the model's).")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        None, description="Seed of the first image; the next ones count up (random when left out; always recorded)."
    )
    num: Annotated[int, Field(ge=1, le=MAX_IMAGES)] = Field(1, description="Number of images.")
    batch_size: BatchSize = Field(1, description="Images per denoising call.")
    scheduler: SamplerName | None = Field(None, description="Sampler: ddim, pndm, lms, euler, euler_a, dpm++_2m, ...")
    strength: Fraction | None = Field(None, description="img2img/inpaint: how much of the init image to change.")
    init: PathText | None = Field(None, description="Init image file (img2img, inpaint).")
    mask: PathText | None = Field(None, description="Mask image file: white = repaint, black = keep (inpaint).")
    hires_scale: Annotated[float, Field(ge=1, le=4)] | None = Field(
        None, description="txt2img hires fix: draw at the size, upscale by this, redraw with img2img (off when absent)."
    )
    hires_strength: Fraction = Field(0.5, description="Hires fix: how much the redraw changes the upscaled picture.")
    hires_upscaler: PathText = Field("lanczos", description="Hires fix: lanczos or an upscaler model file.")

    @model_validator(mode="after")
    def _consistent(self) -> ImageSettings:
        check_pixels(self.width, self.height)
        if self.hires_scale is not None and self.mode != "txt2img":
            raise ValueError(f"hires_scale: the hires fix is for txt2img; {self.mode} starts from your picture")
        if self.hires_upscaler.lower() != "lanczos" and not Path(self.hires_upscaler).is_file():
            raise ValueError(f"hires_upscaler: upscaler model not found: {self.hires_upscaler}")
        if self.mode in ("img2img", "inpaint") and not self.init:
            raise ValueError(f"init: {self.mode} needs an init image (--init FILE)")
        if self.mode == "inpaint" and not self.mask:
            raise ValueError("mask: inpaint needs a mask image (--mask FILE; white = repaint)")
        return self

    def resolved(self, model: Model, init_size: tuple[int, int] | None = None) -> ImageSettings:
        """Fill every open value from the model (or the init image) so the run is reproducible."""
        width = self.width or (init_size[0] if init_size else model.native_size)
        height = self.height or (init_size[1] if init_size else model.native_size)
        steps = self.steps or model.default_steps
        strength = self.strength if self.strength is not None else DEFAULT_STRENGTH[self.mode]
        if self.mode != "txt2img" and strength > 0 and int(steps * strength) < 1:
            steps = math.ceil(1 / strength)  # diffusers runs int(steps * strength) steps: keep at least one
            log.warning("%s with strength %g needs at least %d steps; using %d", self.mode, strength, steps, steps)
        return self.with_values(
            width=round_size("width", width, size_multiple(model)),
            height=round_size("height", height, size_multiple(model)),
            steps=steps,
            guidance=model.default_guidance if self.guidance is None else self.guidance,
            seed=random.randrange(2**32) if self.seed is None else self.seed,
            scheduler=self.scheduler or model.default_scheduler,
            strength=strength,
            model=self.model or model.name,
            depth_model=self.resolved_depth_model(),
        )


def read_config(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a settings file (JSON, YAML or TOML; anything else is read as JSON) into a plain dict.

    Whatever is wrong with the file (missing, a folder, empty, binary, not UTF-8, malformed, a key
    given twice, not a mapping) is one SdplayError naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SdplayError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if b"\0" in raw:
        raise SdplayError(f"{what} {path} is a binary file, not JSON, YAML or TOML text")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark from a Windows editor is fine
    except UnicodeDecodeError as exc:
        raise SdplayError(f"{what} {path} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})") from exc
    if not text.strip():
        raise SdplayError(f"{what} {path} is empty; it must hold a mapping of setting names to values")
    try:
        data = _parse(text, path.suffix.lower())
    except Exception as exc:  # each parser has its own error class; all mean "malformed file"
        raise SdplayError(f"cannot parse {what} {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SdplayError(f"{what} {path} must hold a mapping of setting names to values, not {short_repr(data)}")
    return data


def _parse(text: str, suffix: str) -> Any:
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.load(text, Loader=_unique_key_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    if suffix == ".toml":  # TOML itself refuses a key given twice
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        return tomllib.loads(text)
    return json.loads(text, object_pairs_hook=_unique_keys)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"the key {key!r} is given twice")
        data[key] = value
    return data


def _unique_key_yaml_loader() -> type:
    """yaml's SafeLoader, except that a key given twice in one mapping is an error (yaml keeps the last)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise ValueError(f"the key {key!r} is given twice (line {key_node.start_mark.line + 1})")
                    seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader
