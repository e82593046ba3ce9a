"""Upscaling pictures, run folders and videos, frame by frame, into a new run folder.

Three kinds of upscaler, picked by `model`:
- `lanczos`: plain resampling, no weights, any whole scale (the fallback);
- an upscaler model file (.pth/.safetensors: Real-ESRGAN, ESRGAN, SwinIR, HAT, ... as spandrel
  detects them from the weights; the `upscale` extra); its scale is the one it was trained for;
- the Stable Diffusion x4 upscaler (`sd-x4`, or a hub id / diffusers folder of that pipeline): a
  prompt-guided diffusion model that always upscales by 4.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from .errors import SdplayError, out_of_memory_as_user_error
from .postprocess import DEFAULT_FPS, Source, read_source, with_fields
from .settings import MAX_SEED, FramesPerSecond, Guidance, ModelSettings, PathText, Steps

log = logging.getLogger("sdplay")

LANCZOS = "lanczos"
SD_X4 = "sd-x4"
SD_X4_HUB = "stabilityai/stable-diffusion-x4-upscaler"
MODEL_FILE_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")
MAX_LANCZOS_SCALE = 8
EXTRA_HINT = "pip install 'sdplay[upscale]'"

FrameCallback = Callable[[int, int], None]
"""on_frame(done, total)"""


class UpscaleSettings(ModelSettings):
    """An upscale job; `model` names the upscaler (lanczos, a model file, sd-x4 or an SD upscaler spec)."""

    model: str | None = Field(LANCZOS, description="lanczos, an upscaler model file, sd-x4 or an SD x4 upscaler.")
    source: PathText = Field("", description="A picture, a run folder of numbered frames, or a video.")
    scale: Annotated[int, Field(ge=2, le=MAX_LANCZOS_SCALE)] | None = Field(
        None, description="How many times larger (default: the upscaler's own; Lanczos: 2)."
    )
    prompt: str = Field("", description="SD x4 upscaler: what the picture shows.")
    negative: str = Field("", description="SD x4 upscaler: what not to draw.")
    steps: Steps = Field(20, description="SD x4 upscaler: denoising steps.")
    guidance: Guidance = Field(9.0, description="SD x4 upscaler: classifier-free guidance scale.")
    noise_level: Annotated[int, Field(ge=0, le=350)] = Field(
        20, description="SD x4 upscaler: noise added to the small picture first."
    )
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        None, description="SD x4 upscaler: seed (random when left out; always recorded)."
    )
    fps: FramesPerSecond | None = Field(None, description="The video's frame rate (default: the source's).")

    @model_validator(mode="after")
    def _has_source(self) -> UpscaleSettings:
        if not self.source:
            raise ValueError("nothing to upscale: give a picture, a run folder or a video")
        return self


class Upscaler(Protocol):
    """Turns a list of same-size RGB pictures into pictures `scale` times larger."""

    name: str
    scale: int

    def __call__(self, images: list[Image.Image], seed: int) -> list[Image.Image]: ...


class LanczosUpscaler:
    def __init__(self, scale: int) -> None:
        self.name, self.scale = "Lanczos", scale

    def __call__(self, images: list[Image.Image], seed: int) -> list[Image.Image]:
        lanczos = Image.Resampling.LANCZOS
        return [image.resize((image.width * self.scale, image.height * self.scale), lanczos) for image in images]


class ModelFileUpscaler:
    """An upscaler network loaded from its weights by spandrel, run on the settings' device and dtype."""

    def __init__(self, path: Path, device: str = "auto", dtype: str = "auto") -> None:
        import torch

        from .devices import resolve_device

        descriptor = load_upscaler_file(path)
        self.device = resolve_device(device)
        self.dtype = upscaler_dtype(dtype, self.device, descriptor)
        # channels_last: 2.1x faster convolutions on this 2-core CPU (Compact x2 at 512 px, 16.3 -> 7.6 s)
        self.model = descriptor.to(self.device, self.dtype).eval()  # its call pads to the sizes it needs, crops back
        self.model.model.to(memory_format=torch.channels_last)
        self.name, self.scale = f"{path.name} ({descriptor.architecture.name})", int(descriptor.scale)

    def __call__(self, images: list[Image.Image], seed: int) -> list[Image.Image]:
        import torch

        array = np.stack([np.asarray(image, dtype=np.float32) for image in images]) / 255.0
        batch = torch.from_numpy(array).permute(0, 3, 1, 2).to(self.device, self.dtype)
        batch = batch.contiguous(memory_format=torch.channels_last)
        with out_of_memory_as_user_error(), torch.inference_mode():
            result = self.model(batch)
        pixels = (result.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(frame) for frame in pixels]


class DiffusionUpscaler:
    """Stable Diffusion's x4 upscaler pipeline: redraws detail guided by a prompt."""

    def __init__(self, settings: UpscaleSettings, token: str | None, local_only: bool) -> None:
        from .api import model_for

        spec = SD_X4_HUB if (settings.model or "").lower() == SD_X4 else settings.model
        model = model_for(settings.with_values(model=spec), token, local_only)
        pipe = model.base
        if type(pipe).__name__ != "StableDiffusionUpscalePipeline":
            raise SdplayError(f"{settings.model} is a {type(pipe).__name__}, not Stable Diffusion's x4 upscaler")
        self.pipe, self.settings, self.name, self.scale = pipe, settings, f"SD x4 ({model.name})", 4

    def __call__(self, images: list[Image.Image], seed: int) -> list[Image.Image]:
        import torch

        settings = self.settings
        with out_of_memory_as_user_error(), torch.inference_mode():
            return self.pipe(
                prompt=[settings.prompt] * len(images),
                negative_prompt=[settings.negative] * len(images),
                image=images,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                noise_level=settings.noise_level,
                generator=[torch.Generator("cpu").manual_seed(seed) for _ in images],
            ).images


def upscaler_dtype(requested: str, device: Any, descriptor: Any) -> Any:
    """The settings' dtype where the architecture supports it, else fp32. `auto` is fp16 on GPUs and, unlike
    the diffusion models' fp32, bf16 on CPUs with native bf16: 2.2x faster there (Compact x2 at 512 px,
    7.6 -> 3.5 s); `--dtype fp32` keeps full precision."""
    import torch

    from .devices import cpu_has_native_bf16, resolve_dtype

    dtype = resolve_dtype(requested, device)
    if (requested or "auto") == "auto" and device.type == "cpu" and cpu_has_native_bf16():
        dtype = torch.bfloat16
    supported = {torch.float16: descriptor.supports_half, torch.bfloat16: descriptor.supports_bfloat16}
    return dtype if supported.get(dtype, True) else torch.float32


def load_upscaler_file(path: Path) -> Any:
    """An upscaler network from its weights file, through spandrel's architecture detection."""
    spandrel = import_spandrel()
    if not path.is_file():
        raise SdplayError(f"upscaler model not found: {path}")
    try:
        descriptor = spandrel.ModelLoader().load_from_file(str(path))
    except spandrel.UnsupportedModelError as exc:
        raise SdplayError(f"{path.name} is not an upscaler model of any architecture spandrel knows") from exc
    except Exception as exc:  # torch.load and safetensors raise many kinds for a damaged or foreign file
        raise SdplayError(f"cannot read upscaler model {path}: not a model file or damaged") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale < 2:
        raise SdplayError(
            f"{path.name} is a {descriptor.architecture.name} {descriptor.purpose} model that does not enlarge "
            "pictures; give an upscaler (super-resolution) model"
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise SdplayError(f"{path.name} works on {descriptor.input_channels}-channel pictures, not RGB")
    return descriptor


def import_spandrel() -> Any:
    """spandrel, or one line saying how to install it (it needs a torchvision built for this torch)."""
    try:
        import spandrel
    except ModuleNotFoundError as exc:
        if exc.name == "torchvision":
            raise SdplayError(f"spandrel needs torchvision: {torchvision_hint()}") from exc
        raise SdplayError(f"upscaler model files need spandrel: {EXTRA_HINT}") from exc
    except (ImportError, RuntimeError, OSError) as exc:  # a torchvision built for another torch fails to load
        reason = str(exc).splitlines()[0]
        raise SdplayError(f"spandrel cannot load torchvision ({reason}): {torchvision_hint()}") from exc
    return spandrel


def torchvision_hint() -> str:
    import torch

    return (
        f"install the torchvision release made for torch {torch.__version__} "
        "(for a CPU-only torch, from the same CPU wheel index)"
    )


def make_upscaler(settings: UpscaleSettings, token: str | None = None, local_only: bool = False) -> Upscaler:
    """The upscaler `settings.model` names, checked against the asked scale before any frame is made."""
    spec = (settings.model or LANCZOS).strip()
    if spec.lower() == LANCZOS:
        return LanczosUpscaler(settings.scale or 2)
    path = Path(spec).expanduser()
    if path.suffix.lower() in MODEL_FILE_SUFFIXES:
        if not path.is_file():
            raise SdplayError(f"upscaler model not found: {spec}")
        upscaler: Upscaler = ModelFileUpscaler(path, settings.device, settings.dtype)
    else:
        upscaler = DiffusionUpscaler(settings, token, local_only)
    if settings.scale is not None and settings.scale != upscaler.scale:
        raise SdplayError(
            f"{upscaler.name} upscales by {upscaler.scale}, not {settings.scale}: use --scale {upscaler.scale} "
            "(or leave --scale out), or --model lanczos for other scales"
        )
    return upscaler


@dataclass
class UpscaleRun:
    """What an upscale made: the resolved settings, the pictures, and where they were written."""

    settings: UpscaleSettings
    images: list[Image.Image]
    run_dir: Path | None = None
    paths: list[Path] | None = None
    video: Path | None = None


def iter_upscaled(
    source: Source,
    upscaler: Upscaler,
    settings: UpscaleSettings,
    on_frame: FrameCallback | None = None,
    start: int = 0,
) -> Iterator[tuple[Image.Image, str]]:
    """Each frame from `start` on upscaled, with its parameters text extended by the upscaler's name and scale."""
    fields = {"Postprocess upscale by": upscaler.scale, "Postprocess upscaler": upscaler.name}
    if isinstance(upscaler, DiffusionUpscaler):
        fields.update(
            {"Upscale prompt": settings.prompt or None, "Upscale steps": settings.steps, "Upscale seed": settings.seed}
        )
    total = len(source.frames)
    for index, (frame, parameters) in enumerate(zip(source.frames, source.parameters, strict=True)):
        if index < start:
            continue
        image = upscaler([frame], settings.seed or 0)[0]
        if on_frame is not None:
            on_frame(index + 1, total)
        yield image, with_fields(parameters, fields)


def run_upscale(
    settings: UpscaleSettings | None,
    outdir: str | Path | None = None,
    write: bool = True,
    token: str | None = None,
    local_only: bool = False,
    on_frame: FrameCallback | None = None,
    resume: str | Path | None = None,
) -> UpscaleRun:
    """Read the source, make the upscaler, upscale every frame into a new run folder (and video), each frame
    written as it is made. `resume` continues an interrupted run folder of this tool instead: its
    settings.json (seed included) makes the missing frames exactly as the first run would have."""
    from .output import finished_frames, frame_path
    from .postprocess import ResultWriter

    if resume is not None:
        writer = ResultWriter.reopen(resume, "upscale")
        settings = UpscaleSettings.from_dict(writer.settings)
    assert settings is not None
    source = read_source(settings.source)
    upscaler = make_upscaler(settings, token, local_only)
    settings = settings.with_values(
        scale=upscaler.scale,
        seed=random.randrange(2**32) if settings.seed is None else settings.seed,
        fps=settings.fps or source.fps,
    )
    if not write:
        return UpscaleRun(settings, [image for image, _ in iter_upscaled(source, upscaler, settings, on_frame)])
    if resume is None:
        writer = ResultWriter.create(outdir, "upscale", source.path, settings.to_dict())
    done = finished_frames(writer.run_dir)  # a frame cut off mid-write is made again
    writer.paths = [frame_path(writer.run_dir)(n) for n in range(done)]
    images = []
    for image, parameters in iter_upscaled(source, upscaler, settings, on_frame, done):
        writer.save(image, parameters)
        images.append(image)
    video = None
    if source.video is not None:
        video = writer.encode(source.video, settings.fps or DEFAULT_FPS)
    return UpscaleRun(settings, images, writer.run_dir, writer.paths, video)


def upscale(
    source: str | Path,
    *,
    scale: int | None = None,
    model: str = LANCZOS,
    outdir: str | Path | None = None,
    write: bool = True,
    token: str | None = None,
    local_only: bool = False,
    **options: Any,
) -> UpscaleRun:
    """Python entry point: `sdplay.upscale("picture.png", scale=2).images[0]`.

    `source` is a picture, a run folder of numbered frames or a video; `model` is `lanczos`, an
    upscaler model file, `sd-x4` or an SD x4 upscaler folder/hub id. Other keywords are the fields of
    UpscaleSettings (prompt, steps, noise_level, seed, device, dtype, ...). With `write=False` the
    pictures come back in memory only.
    """
    settings = UpscaleSettings(source=str(source), scale=scale, model=model, **options)
    return run_upscale(settings, outdir, write, token, local_only)
