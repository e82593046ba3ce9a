"""The frame loop: warp -> colour coherence -> contrast -> unsharp mask -> noise -> img2img.

Frames are (1, 3, H, W) tensors in [0, 1] that stay on the model's device from one frame to the
next. Every diffused frame is rounded to 8 bits exactly as its PNG stores it, so a run resumed
from the files on disk continues bit for bit like an uninterrupted one.

Strength follows Deforum: `strength_schedule` is the share of the previous frame that is KEPT;
img2img denoises `1 - strength` of its schedule (diffusers' `strength` is the opposite).

With `diffusion_cadence` N only frames 0, N, 2N, ... are diffused. A frame between two of them
cross-fades the earlier one warped forward to it with the later one warped back to it; frames
after the last diffused one are that frame warped forward. Every one of `max_frames` is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..devices import depth_dtype
from ..errors import SdplayError, out_of_memory_as_user_error
from ..images import StepCallback, load_image, use_scheduler
from ..models import Model
from ..output import (
    SETTINGS_FILE,
    BackgroundWriter,
    finished_frames,
    format_parameters,
    frame_path,
    new_run_dir,
    save_frame,
    save_png,
    write_settings,
)
from .color import ColorReference, adjust_contrast, color_reference, match_colors, unsharp_mask
from .depth import DepthEstimator
from .noise import add_noise
from .settings import AnimationSettings, frame_seed, load_settings_file
from .warp import Motion2D, Motion3D, warp_2d, warp_3d

log = logging.getLogger("sdplay")

VIDEO_NAME = "animation"
DEPTH_FOLDER = "depth"


@dataclass(frozen=True)
class Frame:
    """One finished frame: its picture on the device, its PNG parameters, and how it was made."""

    index: int
    image: torch.Tensor
    parameters: str
    diffused: bool
    depth: torch.Tensor | None = None  # normalised depth (1 = near) of a diffused frame, when computed


@dataclass(frozen=True)
class Job:
    """One frame to diffuse: txt2img when `image` is None, else img2img keeping `keep` of `image`."""

    frame: int
    image: torch.Tensor | None = None
    keep: float = 0.0
    embeds: dict[str, torch.Tensor] | None = None  # instead of the frame's own prompt (Interpolation)


def to_pil(image: torch.Tensor) -> Image.Image:
    pixels = (image[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(pixels)


def from_pil(image: Image.Image, device: torch.device) -> torch.Tensor:
    pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)[None]
    return pixels.to(device).float() / 255


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit values the PNG will hold, so what is reused equals what is on disk."""
    return (image.clamp(0, 1) * 255).round() / 255


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)


class Renderer:
    """Everything per frame: prompts (encoded once each), seeds, motion, preparation, diffusion."""

    def __init__(
        self, settings: AnimationSettings, model: Model, on_step: StepCallback | None = None, local_only: bool = False
    ) -> None:
        self.settings, self.model, self.on_step = settings, model, on_step
        self.device = model.device
        self.series = settings.series()
        self.prompts = settings.frame_prompts()
        self.txt2img = model.pipeline("txt2img")
        self.img2img = model.pipeline("img2img")
        self.sampler = use_scheduler(self.txt2img, model, settings.sampler)
        use_scheduler(self.img2img, model, settings.sampler)
        wants_depth = (settings.animation_mode == "3D" and settings.use_depth_warping) or settings.save_depth_maps
        depth_spec = settings.depth_model if wants_depth else "none"
        dtype = depth_dtype(settings.dtype, self.device, model.dtype)
        self.depth_model = DepthEstimator(depth_spec, self.device, local_only, dtype, settings.compile)
        self.keys = {frame: order for order, frame in enumerate(key_frames(settings))}  # frame -> diffused before it
        self.reference: ColorReference | None = None
        self._encoded: dict[tuple[str, str], dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ per-frame values

    def value(self, name: str, frame: int) -> float:
        return float(self.series[name][frame])

    def steps(self, frame: int) -> int:
        if self.settings.enable_steps_scheduling:
            return int(self.value("steps_schedule", frame))
        return int(self.settings.steps)

    def seed(self, frame: int) -> int:
        diffused = self.keys.get(frame, frame)
        return frame_seed(self.settings, frame, diffused, self.value("seed_schedule", frame))

    def encoded(self, frame: int) -> dict[str, torch.Tensor]:
        """The frame's prompt and negative prompt through the text encoder, once per distinct pair."""
        prompt, negative = self.prompts[frame]
        return self.encode(prompt, negative)

    def encode(self, prompt: str, negative: str) -> dict[str, torch.Tensor]:
        key = (prompt, negative)
        if key not in self._encoded:
            clean = self.model.clean_prompt
            with torch.inference_mode():
                out = self.txt2img.encode_prompt(
                    prompt=clean(prompt),
                    device=self.device,
                    num_images_per_prompt=1,
                    do_classifier_free_guidance=True,
                    negative_prompt=clean(negative),
                )
            names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
            self._encoded[key] = dict(zip(names, out, strict=False))
        return self._encoded[key]

    def parameters(self, frame: int, extra: dict[str, Any]) -> str:
        prompt, negative = self.prompts[frame]
        s = self.settings
        fields = {
            "Steps": self.steps(frame),
            "Sampler": self.sampler,
            "CFG scale": round(self.value("cfg_scale_schedule", frame), 4),
            "Seed": self.seed(frame),
            "Size": f"{s.W}x{s.H}",
            "Model": s.model,
            **extra,
            "Frame": frame,
            "Mode": f"animate {s.animation_mode}",
        }
        return format_parameters(prompt, negative, fields)

    # ------------------------------------------------------------------ motion

    def warp(
        self, image: torch.Tensor, depth: torch.Tensor | None, frame: int, inverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Move a picture by one frame's motion (or undo it); 3D carries the picture's depth along."""
        s, v = self.settings, lambda name: self.value(name, frame)
        if s.animation_mode == "3D":
            motion = Motion3D(
                v("translation_x"),
                v("translation_y"),
                v("translation_z"),
                v("rotation_3d_x"),
                v("rotation_3d_y"),
                v("rotation_3d_z"),
                v("fov_schedule"),
            )
            assert depth is not None
            return warp_3d(image, depth, motion, s.padding_mode, s.sampling_mode, inverse)
        flip = None
        if s.enable_perspective_flip:
            names = ("perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv")
            flip = tuple(v(name) for name in names)
        motion = Motion2D(
            v("angle"),
            v("zoom"),
            v("translation_x"),
            v("translation_y"),
            v("transform_center_x"),
            v("transform_center_y"),
            flip,  # type: ignore[arg-type]
        )
        return warp_2d(image, motion, s.border, inverse), depth

    def depth_of(self, image: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(depth for the 3D warp, normalised map to save) of a diffused frame: one model pass."""
        s = self.settings
        if s.animation_mode != "3D" and not s.save_depth_maps:
            return None, None
        normalised = self.depth_model.normalised(image)
        warp_depth = 2.0 - normalised if s.use_depth_warping else torch.ones_like(normalised)
        return warp_depth, normalised if s.save_depth_maps else None

    # ------------------------------------------------------------------ diffusion

    def use_reference(self, image: torch.Tensor) -> None:
        """The frame later frames' colours are matched to; its histograms are computed once here."""
        coherence = self.settings.color_coherence
        space = "LAB" if coherence == "Video Input" else coherence  # Deforum matches a video in LAB
        self.reference = color_reference(image, space)

    def prepare(self, image: torch.Tensor, frame: int) -> torch.Tensor:
        """Colour coherence, contrast, unsharp mask and noise: what img2img starts from."""
        s, v = self.settings, lambda name: self.value(name, frame)
        if s.color_coherence != "None" and self.reference is not None:
            image = match_colors(image, self.reference)
        image = adjust_contrast(image, v("contrast_schedule"))
        image = unsharp_mask(
            image, int(v("kernel_schedule")), v("sigma_schedule"), v("amount_schedule"), v("threshold_schedule")
        )
        size = (s.perlin_w, s.perlin_h)
        return add_noise(
            image, v("noise_schedule"), self.seed(frame), s.noise_type, size, s.perlin_octaves, s.perlin_persistence
        )

    def draw(self, frame: int) -> torch.Tensor:
        """txt2img for one frame with its own prompt."""
        return self.diffuse([Job(frame)])[0]

    def redraw(self, image: torch.Tensor, frame: int, keep: float) -> tuple[torch.Tensor, bool]:
        """img2img keeping `keep` of the picture (Deforum's strength); (result, whether it diffused)."""
        return self.diffuse_all([Job(frame, image, keep)])[0]

    def diffuses(self, job: Job) -> bool:
        """False where img2img would keep so much that not one step is left: Deforum keeps the picture."""
        return job.image is None or int(self.steps(job.frame) * (1 - job.keep)) >= 1

    def call_shape(self, frame: int) -> tuple[float, ...]:
        """What frames must share to be diffused in one call: steps, guidance and strength."""
        names = ("cfg_scale_schedule", "strength_schedule")
        return (self.steps(frame), *(self.value(name, frame) for name in names))

    def diffuse(self, jobs: list[Job]) -> list[torch.Tensor]:
        """One pipeline call for frames of the same call shape and kind; each keeps its own prompt
        and seed (a generator per frame draws exactly the noise a call of its own would)."""
        first, frames = jobs[0], [job.frame for job in jobs]
        encoded = [job.embeds if job.embeds is not None else self.encoded(job.frame) for job in jobs]
        generators = [torch.Generator("cpu").manual_seed(self.seed(frame)) for frame in frames]
        kwargs: dict[str, Any] = {
            **{name: torch.cat([e[name] for e in encoded]) for name, value in encoded[0].items() if value is not None},
            "num_inference_steps": self.steps(first.frame),
            "guidance_scale": self.value("cfg_scale_schedule", first.frame),
            "generator": generators if len(generators) > 1 else generators[0],
            "output_type": "pt",
        }
        if self.on_step is not None:
            on_step, total = self.on_step, self.settings.max_frames

            def report(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
                on_step(step + 1, pipe.num_timesteps, frames[-1], total)
                return tensors

            kwargs["callback_on_step_end"] = report
        if first.image is None:
            kwargs.update(width=self.settings.W, height=self.settings.H)
            return list(self._run(self.txt2img, kwargs).split(1))
        kwargs.update(image=torch.cat([job.image for job in jobs]), strength=1 - first.keep)  # type: ignore[misc]
        return list(self._run(self.img2img, kwargs).split(1))

    def diffuse_all(self, jobs: list[Job]) -> list[tuple[torch.Tensor, bool]]:
        """`redraw`/`draw` for frames of one call shape at once: (result, whether it diffused) each."""
        if not self.diffuses(jobs[0]):
            return [(quantise(job.image), False) for job in jobs]  # type: ignore[arg-type]
        return [(image, True) for image in self.diffuse(jobs)]

    def _run(self, pipe: Any, kwargs: dict[str, Any]) -> torch.Tensor:
        with out_of_memory_as_user_error(), torch.inference_mode():
            result = pipe(**kwargs)
        blanked = sum(bool(flag) for flag in getattr(result, "nsfw_content_detected", None) or [])
        if blanked:
            log.warning("%d frame(s) blanked by the safety checker (--set safety_checker=false turns it off)", blanked)
        return quantise(result.images.to(self.device, torch.float32))


def key_frames(settings: AnimationSettings) -> list[int]:
    """The frames that are diffused: every Nth with a cadence in 2D/3D, else all of them."""
    step = settings.diffusion_cadence if settings.animation_mode in ("2D", "3D") else 1
    return list(range(0, settings.max_frames, step))


# ---------------------------------------------------------------------------------- the modes


def first_frame(r: Renderer, init: Image.Image | None) -> Frame:
    """Frame 0: txt2img, or the init image redrawn keeping `strength` of it."""
    s = r.settings
    if init is None:
        image, extra = r.draw(0), {}
    else:
        image, _ = r.redraw(from_pil(fit(init, s.W, s.H), r.device), 0, s.strength)
        extra = {"Denoising strength": round(1 - s.strength, 4)}
    return Frame(0, image, r.parameters(0, extra), True)


def motion_frames(r: Renderer, start: Frame, depth: torch.Tensor | None) -> Iterator[Frame]:
    """2D/3D from a diffused frame (and its depth) on: the frames after it, in order, cadence included."""
    keys = [k for k in r.keys if k > start.index]
    previous = start
    for key in keys:
        chain, image, moving_depth = [], previous.image, depth
        for frame in range(previous.index + 1, key + 1):
            image, moving_depth = r.warp(image, moving_depth, frame)
            chain.append(image)
        keep = r.value("strength_schedule", key)
        new, diffused = r.redraw(r.prepare(chain[-1], key), key, keep)
        new_depth, depth_map = r.depth_of(new)
        back, back_depth, between = new, new_depth, {}
        for frame in range(key - 1, previous.index, -1):
            back, back_depth = r.warp(back, back_depth, frame + 1, inverse=True)
            between[frame] = back
        span = key - previous.index
        for frame in range(previous.index + 1, key):
            weight = (frame - previous.index) / span
            blend = chain[frame - previous.index - 1] * (1 - weight) + between[frame] * weight
            extra = {"Cadence": f"{weight:.3f} of frame {key} over frame {previous.index}"}
            yield Frame(frame, quantise(blend), r.parameters(frame, extra), False)
        extra = {"Denoising strength": round(1 - keep, 4)} if diffused else {"Kept": "previous frame, warped"}
        previous, depth = Frame(key, new, r.parameters(key, extra), True, depth_map), new_depth
        yield previous
    image, moving_depth = previous.image, depth
    for frame in range(previous.index + 1, r.settings.max_frames):
        image, moving_depth = r.warp(image, moving_depth, frame)
        extra = {"Cadence": f"frame {previous.index} warped forward"}
        yield Frame(frame, quantise(image), r.parameters(frame, extra), False)


def independent_batches(r: Renderer, start: int) -> Iterator[list[int]]:
    """Frames that do not depend on each other (Video Input, None, Interpolation), grouped for
    one diffusion call each: frame 0 alone (later frames may match its colours), then up to
    `batch_size` frames counted from frame 1, cut where the call shape changes.

    The groups depend on the settings alone, so a resumed run redoes the group it stopped in
    and makes the same frames as an unbroken one; frames before `start` come out too and are
    skipped by the caller.
    """
    size, count = r.settings.batch_size or 1, r.settings.max_frames
    chunks = [[0]] + [list(range(a, min(a + size, count))) for a in range(1, count, size)]
    for chunk in chunks:
        if chunk[-1] < start:
            continue
        group, shape = [chunk[0]], r.call_shape(chunk[0])
        for frame in chunk[1:]:
            if r.call_shape(frame) != shape:
                yield group
                group, shape = [], r.call_shape(frame)
            group.append(frame)
        yield group


def video_frames(r: Renderer, video: list[Image.Image], start: int) -> Iterator[Frame]:
    """Video Input: each extracted frame redrawn keeping `strength_schedule` of it, in batches.

    Colour coherence matches against frame 0's result, or with `Video Input` against the video
    frame of every `color_coherence_video_every_N_frames`-th frame.
    """
    s = r.settings
    every = s.color_coherence_video_every_N_frames
    anchor = None  # the video frame the reference was made from
    for frames in independent_batches(r, start):
        jobs = []
        for frame in frames:
            source = from_pil(fit(video[frame], s.W, s.H), r.device)
            if s.color_coherence == "Video Input" and anchor != frame - frame % every:
                anchor = frame - frame % every
                r.use_reference(from_pil(fit(video[anchor], s.W, s.H), r.device))
            jobs.append(Job(frame, r.prepare(source, frame), r.value("strength_schedule", frame)))
        for job, (image, diffused) in zip(jobs, r.diffuse_all(jobs), strict=True):
            if job.frame == 0 and s.color_coherence in ("RGB", "HSV", "LAB"):
                r.use_reference(image)
            extra = {"Denoising strength": round(1 - job.keep, 4)} if diffused else {}
            yield Frame(job.frame, image, r.parameters(job.frame, extra), True, r.depth_of(image)[1])


def still_frames(r: Renderer, start: int) -> Iterator[Frame]:
    """animation_mode None: every frame drawn on its own with its prompt and seed, in batches."""
    for frames in independent_batches(r, start):
        for frame, image in zip(frames, r.diffuse([Job(frame) for frame in frames]), strict=True):
            yield Frame(frame, image, r.parameters(frame, {}), True, r.depth_of(image)[1])


def interpolation_frames(r: Renderer, start: int) -> Iterator[Frame]:
    """Interpolation: the key prompts' text embeddings blended, `interpolate_x_frames` between each pair."""
    from ..dream import lerp

    keys = r.settings.key_prompts()
    encoded = [r.encode(prompt, negative) for _, prompt, negative in keys]
    per = r.settings.interpolate_x_frames + 1

    def job(frame: int) -> Job:
        segment, offset = divmod(frame, per)
        if segment >= len(keys) - 1:
            return Job(frame, embeds=encoded[-1])
        t = offset / per
        return Job(frame, embeds={name: lerp(t, a, encoded[segment + 1][name]) for name, a in encoded[segment].items()})

    for frames in independent_batches(r, start):
        for frame, image in zip(frames, r.diffuse([job(frame) for frame in frames]), strict=True):
            segment, offset = divmod(frame, per)
            extra = {"Interpolation": f"{offset}/{per} from key {segment}"} if offset else {}
            yield Frame(frame, image, r.parameters(frame, extra), True, r.depth_of(image)[1])


# ---------------------------------------------------------------------------------- a whole run


@dataclass
class AnimationRun:
    """What an animation made: the resolved settings, its folder, its frames and its video."""

    settings: AnimationSettings
    run_dir: Path
    frame_paths: list[Path] = field(default_factory=list)
    video: Path | None = None
    diffused: list[int] = field(default_factory=list)  # key frames made in this session (see key_frames)


def resolve(settings: AnimationSettings, model: Model) -> tuple[AnimationSettings, list[Image.Image]]:
    """Fill what the model decides, and fix the frame count where the mode decides it."""
    resolved = settings.resolved(model)
    video: list[Image.Image] = []
    if resolved.animation_mode == "Video Input":
        from ..video import read_video_frames

        end = None if resolved.extract_to_frame < 0 else resolved.extract_to_frame + 1
        video = read_video_frames(
            resolved.video_init_path, resolved.extract_nth_frame, resolved.extract_from_frame, end
        )
        if not video:
            raise SdplayError(f"video_init_path: no frames in {resolved.video_init_path} for the extract_* range")
        resolved = resolved.with_values(max_frames=len(video))
    elif resolved.animation_mode == "Interpolation":
        texts = list(resolved.keyed_prompts().values())
        per = resolved.interpolate_x_frames + 1
        prompts = {str(i * per): text for i, text in enumerate(texts)}  # where each key prompt lands
        resolved = resolved.with_values(prompts=prompts, max_frames=(len(texts) - 1) * per + 1)
    ignored = ignored_for_mode(resolved)
    if ignored:
        log.warning("%s", ignored)
    return resolved, video


def ignored_for_mode(s: AnimationSettings) -> str:
    if s.diffusion_cadence > 1 and s.animation_mode not in ("2D", "3D"):
        return f"diffusion_cadence {s.diffusion_cadence} has no effect in animation_mode {s.animation_mode}"
    return ""


def run_animation(
    settings: AnimationSettings | None = None,
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    video_format: str = "mp4",
    on_step: StepCallback | None = None,
    on_frame: Callable[[Frame, Path], None] | None = None,
) -> AnimationRun:
    """A whole animation: model, frames written as they are made (PNG + metadata), then the video.

    With `resume` the run folder's settings.json is the source of truth; the run continues after
    its last frame on disk and makes exactly the frames an uninterrupted run makes.
    """
    from ..api import model_for

    run_dir = Path(resume) if resume is not None else None
    if run_dir is not None:
        if not (run_dir / SETTINGS_FILE).is_file():
            raise SdplayError(f"--resume {run_dir}: no {SETTINGS_FILE} there; give an animate run folder")
        settings = AnimationSettings.from_dict(load_settings_file(run_dir / SETTINGS_FILE), str(run_dir))
    if settings is None:
        raise SdplayError("nothing to animate: give a settings file (--config) or --resume RUN_DIR")
    init = load_image(settings.init_image, "init_image") if settings.use_init else None
    model = model_for(settings, token, local_only)
    resolved, video = resolve(settings, model)
    if run_dir is not None and resolved != settings:
        raise SdplayError(f"{run_dir / SETTINGS_FILE} was edited since the run started; start a new run instead")
    renderer = Renderer(resolved, model, on_step, local_only)  # before the folder: a missing depth model leaves none
    done = 0
    if run_dir is None:
        run_dir = new_run_dir(outdir, "animate", resolved.frame_prompts()[0][0] or "animation")
        write_settings(run_dir, resolved.to_dict())
    else:
        done = finished_frames(run_dir)
        log.info("resuming %s after frame %d of %d", run_dir, done, resolved.max_frames)
    run = AnimationRun(resolved, run_dir)
    if done < resolved.max_frames:

        def record(written: list[tuple[Frame, Path]]) -> None:
            for frame, path in written:
                if frame.diffused:
                    run.diffused.append(frame.index)
                if on_frame is not None:
                    on_frame(frame, path)

        with BackgroundWriter(partial(write_frame, run_dir)) as writer:
            for frame in frames_from(renderer, run_dir, done, init, video):
                if frame.index >= done:
                    record(writer.submit(frame))
            record(writer.finish())
    run.frame_paths = [frame_path(run_dir)(n) for n in range(resolved.max_frames)]
    run.video = write_animation_video(run_dir, run.frame_paths, resolved.fps, video_format)
    return run


def frames_from(
    r: Renderer, run_dir: Path | None, done: int, init: Image.Image | None, video: list[Image.Image]
) -> Iterator[Frame]:
    """The frames of the run from where it stands: fresh, or after `done` frames already in `run_dir`."""
    s = r.settings
    if done and s.color_coherence not in ("None", "Video Input"):
        r.use_reference(from_pil(_read_frame(run_dir, 0), r.device))
    if s.animation_mode == "Video Input":
        yield from video_frames(r, video, done)
        return
    if s.animation_mode == "None":
        yield from still_frames(r, done)
        return
    if s.animation_mode == "Interpolation":
        yield from interpolation_frames(r, done)
        return
    if done:  # restart from the last diffused frame on disk; what follows it is made again identically
        key = max(k for k in r.keys if k < done)
        image = from_pil(_read_frame(run_dir, key), r.device)
        depth, _ = r.depth_of(image)
        start = Frame(key, image, "", True)
    else:
        made = first_frame(r, init)
        depth, depth_map = r.depth_of(made.image)
        start = replace(made, depth=depth_map)
        yield start
        if s.color_coherence != "None":
            r.use_reference(start.image)
    yield from motion_frames(r, start, depth)


def _read_frame(run_dir: Path | None, index: int) -> Image.Image:
    if run_dir is None:
        raise ValueError("continuing a run needs its folder")
    with Image.open(frame_path(run_dir)(index)) as image:
        return image.convert("RGB")


def write_frame(run_dir: Path, frame: Frame) -> Path:
    """Frame N as exactly NNNN.png (never replacing a file), and its depth map when one was made."""
    path = save_frame(run_dir, frame.index, to_pil(frame.image), frame.parameters)
    if frame.depth is not None:
        folder = run_dir / DEPTH_FOLDER
        folder.mkdir(exist_ok=True)
        target = frame_path(folder)(frame.index)
        if not target.exists():
            grey = (frame.depth[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            save_png(Image.fromarray(grey), frame_path(folder), frame.index, f"depth map of frame {frame.index}")
    return path


def write_animation_video(run_dir: Path, paths: list[Path], fps: float, video_format: str) -> Path:
    """animation.mp4 (H.264, yuv420p) or animation.gif from the frames on disk; an existing one is kept."""
    from ..video import write_video

    if video_format not in ("mp4", "gif"):
        raise SdplayError(f"--format must be mp4 or gif, got {video_format!r}")
    target = run_dir / f"{VIDEO_NAME}.{video_format}"
    if target.exists():
        log.info("%s is already there; kept as it is", target)
        return target
    return write_video(paths, target, fps)
