"""Dream mode: a video that walks the latent space between key points (prompt, seed[, image]).

Every frame is a position on the walk: between key points a and b at fraction t, the initial
latents are slerp(t) of the key points' noise (or noised image latents) and the text embeddings
are lerp(t) (or slerp) of the key points' embeddings. Frames are independent, so they go through
the UNet `batch_size` at a time, with each prompt encoded once. A frame depends only on its
position, and batches always start at multiples of the batch size, so a resumed run repeats the
uninterrupted one exactly.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..devices import default_batch_size
from ..errors import SdplayError, out_of_memory_as_user_error
from ..output import SETTINGS_FILE, format_parameters, frame_path, new_run_dir, save_png, write_settings
from ..schedulers import canonical_sampler, make_scheduler, sampler_name_of
from ..settings import MIN_SIZE, ModelSettings, _check_int, _round_size, read_config

if TYPE_CHECKING:
    from ..models import Model

log = logging.getLogger("sdplay")

FORMATS = ("mp4", "gif", "frames")
PROMPT_INTERPOLATIONS = ("lerp", "slerp")
DEFAULT_FRAMES_PER_SEGMENT = 24
DEFAULT_IMAGE_STRENGTH = 0.75
AUDIO_SAMPLE_RATE = 22050
SILENCE = 0.02  # audio speed below this share of the loudest frame counts as silence: no movement
VIDEO_NAME = "dream"

StepCallback = Callable[[int, int, int, int], None]
"""on_step(step, steps_in_batch, batch_index, batch_count)"""


# ---------------------------------------------------------------------------------------- settings


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
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < MIN_SIZE):
                raise SdplayError(f"--{name} must be a whole number of at least {MIN_SIZE} pixels, got {value!r}")
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DreamSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SdplayError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------- interpolation


def lerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Straight-line blend; exact at t = 0 and t = 1."""
    if t == 0:
        return v0.clone()
    if t == 1:
        return v1.clone()
    return (1 - t) * v0 + t * v1


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, parallel: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation: the direction turns along the great circle, the norm moves linearly.

    Gaussian noise lives near a sphere; a straight line between two samples cuts inside it,
    where latents are too "quiet" and frames go grey mid-walk. Exact at t = 0 and t = 1.
    """
    if t == 0:
        return v0.clone()
    if t == 1:
        return v1.clone()
    a, b = v0.double(), v1.double()
    norm_a, norm_b = a.norm(), b.norm()
    if norm_a == 0 or norm_b == 0:
        return lerp(t, v0, v1)
    unit_a, unit_b = a / norm_a, b / norm_b
    cos = torch.clamp((unit_a * unit_b).sum(), -1.0, 1.0)
    if cos.abs() > parallel:  # nearly parallel: the great circle is a line
        direction = (1 - t) * unit_a + t * unit_b
        direction = direction / direction.norm()
    else:
        theta = torch.acos(cos)
        direction = (torch.sin((1 - t) * theta) * unit_a + torch.sin(t * theta) * unit_b) / torch.sin(theta)
    return (direction * ((1 - t) * norm_a + t * norm_b)).to(v0.dtype)


# ------------------------------------------------------------------------------------------ planning


def frame_positions(count: int, segments: int, loop: bool, speeds: np.ndarray | None = None) -> np.ndarray:
    """Where on the walk (0 .. segments) each frame lies.

    The move from frame j-1 to j is proportional to speeds[j] (evenly spaced without audio);
    a loop's last move, back to the start, uses speeds[0].
    """
    if speeds is None:
        speeds = np.ones(count)
    moves = np.asarray(speeds[1:count], dtype=np.float64)
    if loop:
        moves = np.append(moves, float(speeds[0]))
    total = moves.sum()
    if total == 0:
        return np.zeros(count)
    distance = np.concatenate([[0.0], np.cumsum(moves)[: count - 1]])
    return distance * segments / total


def locate(position: float, segments: int) -> tuple[int, float]:
    """(segment, t in 0..1) of a position; the walk's end is t = 1 of its last segment."""
    segment = min(int(math.floor(position)), segments - 1)
    return segment, float(position - segment)


def audio_speeds(samples: np.ndarray, sample_rate: int, fps: float, count: int) -> np.ndarray:
    """Movement per frame from the audio: loudness (RMS) plus twice its rise (onsets), 0 in silence."""
    hop = sample_rate / fps
    rms = np.zeros(count)
    for j in range(count):
        window = samples[int(round(j * hop)) : int(round((j + 1) * hop))]
        if window.size:
            rms[j] = math.sqrt(float(np.mean(np.square(window, dtype=np.float64))))
    onset = np.maximum(0.0, np.diff(rms, prepend=0.0))
    speed = rms + 2 * onset
    peak = speed.max()
    if peak <= 0:
        return np.zeros(count)
    speed = speed / peak
    speed[speed < SILENCE] = 0.0
    return speed


@dataclass(frozen=True)
class DreamInputs:
    """What the settings name, read before any model loads so mistakes fail fast."""

    images: list[Image.Image] = field(default_factory=list)
    audio: np.ndarray | None = None

    @property
    def image_size(self) -> tuple[int, int] | None:
        return self.images[0].size if self.images else None

    def audio_frames(self, fps: float) -> int | None:
        if self.audio is None:
            return None
        return int(round(len(self.audio) / AUDIO_SAMPLE_RATE * fps))


def read_dream_inputs(settings: DreamSettings) -> DreamInputs:
    from ..images import load_image
    from ..video import read_audio

    images = [load_image(path, "key point image (--image)") for path in settings.images]
    audio = read_audio(settings.audio, AUDIO_SAMPLE_RATE) if settings.audio else None
    return DreamInputs(images, audio)


@dataclass
class WalkPlan:
    """The resolved settings plus one latent and one embedding per key point, and each frame's position."""

    settings: DreamSettings
    latents: list[torch.Tensor]  # CPU float32, 1x4xhxw: noise, or noised image latents
    embeds: list[torch.Tensor]  # on the device: 1xTxD
    negative: torch.Tensor | None
    positions: np.ndarray
    sampler: str

    @property
    def count(self) -> int:
        return len(self.positions)

    def key_index(self, segment: int, end: bool) -> int:
        return (segment + int(end)) % len(self.latents)

    def frame_input(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The initial latents and prompt embedding of one frame."""
        segment, t = locate(self.positions[index], self.settings.segments)
        a, b = self.key_index(segment, False), self.key_index(segment, True)
        mix = slerp if self.settings.prompt_interp == "slerp" else lerp
        return slerp(t, self.latents[a], self.latents[b]), mix(t, self.embeds[a], self.embeds[b])

    def parameters(self, index: int) -> str:
        """The frame's PNG `parameters` text: the nearer key point's prompt and seed, and where it lies."""
        s = self.settings
        segment, t = locate(self.positions[index], s.segments)
        a, b = self.key_index(segment, False), self.key_index(segment, True)
        near = a if t < 0.5 else b
        details: dict[str, Any] = {
            "Steps": s.steps,
            "Sampler": self.sampler,
            "CFG scale": s.guidance,
            "Seed": _pick(s.seeds, near),
            "Size": f"{s.width}x{s.height}",
            "Model": s.model,
            "Denoising strength": s.strength,
            "Mode": "dream",
            "Frame": index,
            "Walk": f"key {a} to {b} at {t:.4f}",
        }
        return format_parameters(_pick(s.prompts, near) if s.prompts else "", s.negative, details)


def _pick(values: Sequence[Any], index: int) -> Any:
    return values[index] if len(values) > 1 else values[0]


def plan_walk(settings: DreamSettings, model: Model, inputs: DreamInputs) -> WalkPlan:
    """Encode each key point once: its prompt, its noise, and (image walks) its noised latents."""
    if "XL" in type(model.base).__name__:
        raise SdplayError(f"dream works with SD 1.x/2.x models for now; {model.name} is SDXL")
    count = settings.key_point_count()
    pipe = model.pipeline("img2img" if settings.images else "txt2img")
    sampler = settings.scheduler or sampler_name_of(model.original_scheduler)
    channels = model.base.unet.config.in_channels
    shape = (1, channels, settings.height // model.vae_scale_factor, settings.width // model.vae_scale_factor)
    noise = [torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in settings.seeds]
    noise = [_pick(noise, k) for k in range(count)]
    latents = noised_image_latents(settings, model, inputs.images, noise) if settings.images else noise
    embeds, negative = encode_prompts(settings, model, pipe, count)
    speeds = None
    if inputs.audio is not None:
        speeds = audio_speeds(inputs.audio, AUDIO_SAMPLE_RATE, settings.fps, settings.total_frames)
        if not speeds.any():
            log.warning("the audio is silent throughout: every frame shows the first key point")
    positions = frame_positions(settings.total_frames, settings.segments, settings.loop, speeds)
    return WalkPlan(settings, latents, embeds, negative, positions, sampler)


def encode_prompts(
    settings: DreamSettings, model: Model, pipe: Any, count: int
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """One text-encoder pass per distinct prompt (not per frame), and one for the negative prompt."""
    prompts = [model.clean_prompt(_pick(settings.prompts, k)) if settings.prompts else "" for k in range(count)]
    cfg = settings.guidance > 1
    negative_text = model.clean_prompt(settings.negative)
    encoded: dict[str, torch.Tensor] = {}
    negative = None
    with torch.inference_mode():
        for prompt in dict.fromkeys(prompts):
            embeds, neg = pipe.encode_prompt(prompt, model.device, 1, cfg, negative_text)
            encoded[prompt] = embeds
            negative = neg if neg is not None else negative
    return [encoded[p] for p in prompts], negative


def fresh_scheduler(model: Model, name: str | None) -> Any:
    base = model.original_scheduler
    return make_scheduler(name, base.config) if name else type(base).from_config(base.config)


def use_dream_scheduler(pipe: Any, model: Model, settings: DreamSettings) -> None:
    """A private scheduler for the walk; image walks get one that keeps our own noising."""
    scheduler = fresh_scheduler(model, settings.scheduler)
    pipe.scheduler = _prenoised(scheduler) if settings.images else scheduler


_PRENOISED: dict[type, type] = {}


def _prenoised(scheduler: Any) -> Any:
    """The same scheduler, but `add_noise` leaves latents as they are.

    The img2img pipeline noises its input itself; an image walk hands it latents that are
    already noised (and slerped), so that step must do nothing.
    """
    cls = type(scheduler)
    if cls not in _PRENOISED:
        _PRENOISED[cls] = type(f"Prenoised{cls.__name__}", (cls,), {"add_noise": _keep_noised})
    return _PRENOISED[cls].from_config(scheduler.config)


def _keep_noised(self: Any, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
    return original_samples


def start_timestep(scheduler: Any, steps: int, strength: float) -> tuple[Any, int]:
    """The timestep an img2img pipeline starts denoising from (and its index), as diffusers computes it."""
    scheduler.set_timesteps(steps, device="cpu")
    denoised = min(int(steps * strength), steps)
    if denoised < 1:
        raise SdplayError(f"--strength {strength} with {steps} steps leaves no step to run; raise either")
    begin = (steps - denoised) * scheduler.order
    return scheduler.timesteps[begin], begin


def noised_image_latents(
    settings: DreamSettings, model: Model, images: list[Image.Image], noise: list[torch.Tensor]
) -> list[torch.Tensor]:
    """Each key point's image through the VAE, noised to --strength with its seed's noise."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

    vae = model.base.vae
    processor = model.base.image_processor
    scheduler = fresh_scheduler(model, settings.scheduler)
    timestep, begin = start_timestep(scheduler, settings.steps, settings.strength)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    encoded = []
    with torch.inference_mode():
        for image in images:
            pixels = processor.preprocess(image, height=settings.height, width=settings.width)
            pixels = pixels.to(model.device, vae.dtype)
            latent = retrieve_latents(vae.encode(pixels), sample_mode="argmax") * vae.config.scaling_factor
            encoded.append(latent.float().cpu())
        return [scheduler.add_noise(_pick(encoded, k), noise[k], torch.tensor([timestep])) for k in range(len(noise))]


# -------------------------------------------------------------------------------------- generating


@dataclass(frozen=True)
class DreamFrame:
    index: int
    image: Image.Image
    parameters: str
    replaced: bool = False  # blanked by the safety checker and replaced by the previous good frame


def batch_starts(count: int, batch_size: int, start: int = 0) -> range:
    """Batches always begin at multiples of batch_size, so a resumed run batches exactly like a fresh one."""
    return range(start - start % batch_size, count, batch_size)


def iter_frames(
    plan: WalkPlan,
    model: Model,
    start: int = 0,
    previous: Image.Image | None = None,
    on_step: StepCallback | None = None,
) -> Iterator[DreamFrame]:
    """Yield frames `start ..` in order, each as soon as its batch is denoised."""
    s = plan.settings
    pipe = model.pipeline("img2img" if s.images else "txt2img")
    use_dream_scheduler(pipe, model, s)
    starts = batch_starts(plan.count, s.batch_size, start)
    for batch_index, first in enumerate(starts):
        indices = range(first, min(first + s.batch_size, plan.count))
        kwargs = _batch_arguments(plan, model, indices)
        if on_step is not None:
            kwargs["callback_on_step_end"] = _step_reporter(on_step, batch_index, len(starts))
        with out_of_memory_as_user_error(), torch.inference_mode():
            result = pipe(**kwargs)
        flags = getattr(result, "nsfw_content_detected", None) or [False] * len(indices)
        for index, image, flagged in zip(indices, result.images, flags, strict=True):
            if index < start:
                continue  # finished before the interrupt; recomputed only to batch alike
            if flagged:
                log.warning("frame %d was blanked by the safety checker; the previous frame is shown again", index)
                image = previous if previous is not None else image
            previous = image
            yield DreamFrame(index, image, plan.parameters(index), bool(flagged))


def _batch_arguments(plan: WalkPlan, model: Model, indices: range) -> dict[str, Any]:
    """Pipeline arguments for a batch of frames: their latents and embeddings, no prompts."""
    s = plan.settings
    inputs = [plan.frame_input(i) for i in indices]
    latents = torch.cat([latent for latent, _ in inputs]).to(model.device, model.dtype)
    embeds = torch.cat([embed for _, embed in inputs])
    ancestral_seed = s.seeds[0]  # per-step noise of ancestral samplers: the same for every frame
    kwargs: dict[str, Any] = {
        "prompt_embeds": embeds,
        "num_inference_steps": s.steps,
        "guidance_scale": s.guidance,
        "generator": [torch.Generator("cpu").manual_seed(ancestral_seed) for _ in indices],
    }
    if plan.negative is not None:
        kwargs["negative_prompt_embeds"] = plan.negative.expand(len(indices), -1, -1)
    if s.images:
        kwargs.update(image=latents, strength=s.strength)
    else:
        kwargs.update(latents=latents, width=s.width, height=s.height)
    return kwargs


def _step_reporter(on_step: StepCallback, batch_index: int, batch_count: int) -> Callable[..., dict]:
    def report(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        on_step(step + 1, pipe.num_timesteps, batch_index, batch_count)
        return tensors

    return report


# ------------------------------------------------------------------------------- run folders, resume


@dataclass
class DreamRun:
    """What a walk made: the resolved settings, where it was written, and how many frames were replaced."""

    settings: DreamSettings
    run_dir: Path | None = None
    frame_paths: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    frames: list[Image.Image] = field(default_factory=list)  # kept only when nothing is written
    replaced: int = 0


def finished_frames(run_dir: Path) -> int:
    """How many frames (0000.png, 0001.png, ...) an interrupted run finished.

    A frame cut off mid-write does not open; it is removed so it gets written again.
    """
    path_of = frame_path(run_dir)
    done = 0
    while path_of(done).exists():
        try:
            with Image.open(path_of(done)) as image:
                image.load()
        except (UnidentifiedImageError, OSError):
            log.warning("%s was cut off by the interrupt; it is made again", path_of(done).name)
            path_of(done).unlink()
            break
        done += 1
    return done


def read_run_settings(run_dir: str | Path) -> DreamSettings:
    run_dir = Path(run_dir)
    if not (run_dir / SETTINGS_FILE).is_file():
        raise SdplayError(f"--resume {run_dir}: no {SETTINGS_FILE} there; give a dream run folder")
    return DreamSettings.from_dict(read_config(run_dir / SETTINGS_FILE))


def write_frame(run_dir: Path, frame: DreamFrame) -> Path:
    """Write frame N as exactly NNNN.png; a file already there is never replaced."""
    path = save_png(frame.image, frame_path(run_dir), frame.index, frame.parameters)
    if path != frame_path(run_dir)(frame.index):
        path.unlink()
        raise SdplayError(f"{frame_path(run_dir)(frame.index)} already exists; resume from a copy of {run_dir}")
    return path


def write_videos(run_dir: Path, settings: DreamSettings, count: int) -> list[Path]:
    """Encode the run's frames into each requested video format; existing videos are kept."""
    from ..video import write_video

    paths = [frame_path(run_dir)(n) for n in range(count)]
    written = []
    for kind in (f for f in settings.formats if f != "frames"):
        target = run_dir / f"{VIDEO_NAME}.{kind}"
        if target.exists():
            log.info("%s is already there; kept as it is", target)
            written.append(target)
            continue
        partial = run_dir / f".{VIDEO_NAME}.partial.{kind}"
        audio = settings.audio if kind == "mp4" else None
        write_video(paths, partial, settings.fps, audio=audio)
        _claim(partial, target)
        written.append(target)
    return written


def _claim(partial: Path, target: Path) -> None:
    """Give the finished file its name only if that name is free (an interrupted encode leaves no half video)."""
    import os

    try:
        os.link(partial, target)
    except FileExistsError:
        raise SdplayError(f"{target} appeared while encoding; the new video is kept as {partial}") from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise SdplayError(f"{target} appeared while encoding; the new video is kept as {partial}") from None
        partial.rename(target)
        return
    partial.unlink()


FrameCallback = Callable[[DreamFrame, Path | None], None]


def run_dream(
    settings: DreamSettings | None = None,
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    on_step: StepCallback | None = None,
    on_frame: FrameCallback | None = None,
    write: bool = True,
) -> DreamRun:
    """A whole walk: read inputs, load the model, plan, make and write frames, then the videos.

    With `resume` the run folder's settings.json is the source of truth and the walk goes on
    after its last finished frame. With `write=False` nothing is written and frames are returned.
    """
    from ..api import model_for

    run_dir = Path(resume) if resume is not None else None
    if run_dir is not None:
        settings = read_run_settings(run_dir)
    if settings is None:
        raise SdplayError("nothing to dream: give prompts (or --resume RUN_DIR)")
    inputs = read_dream_inputs(settings)
    model = model_for(settings, token, local_only)
    resolved = settings.resolved(model, inputs.image_size, inputs.audio_frames(settings.fps))
    if run_dir is not None and resolved != settings:
        raise SdplayError(f"{run_dir / SETTINGS_FILE} is not a finished plan (edited?); start a new run instead")
    start, previous = 0, None
    if run_dir is not None:
        start = finished_frames(run_dir)
        if start:
            with Image.open(frame_path(run_dir)(start - 1)) as last:
                previous = last.convert("RGB")
        log.info("resuming %s at frame %d of %d", run_dir, start, resolved.total_frames)
    elif write:
        run_dir = new_run_dir(outdir, "dream", (resolved.prompts or ("dream",))[0])
        write_settings(run_dir, resolved.to_dict())
    run = DreamRun(resolved, run_dir if write else None)
    if start < resolved.total_frames:
        plan = plan_walk(resolved, model, inputs)
        for frame in iter_frames(plan, model, start, previous, on_step):
            path = write_frame(run_dir, frame) if run.run_dir is not None else None
            _record(run, frame, path)
            if on_frame is not None:
                on_frame(frame, path)
    if run.replaced:
        log.warning("%d frame(s) blanked by the safety checker were replaced by the previous frame", run.replaced)
    if run.run_dir is not None:
        run.frame_paths = [frame_path(run.run_dir)(n) for n in range(resolved.total_frames)]
        run.videos = write_videos(run.run_dir, resolved, resolved.total_frames)
    return run


def _record(run: DreamRun, frame: DreamFrame, path: Path | None) -> None:
    run.replaced += int(frame.replaced)
    if path is None:
        run.frames.append(frame.image)
