"""Everything one animation frame needs: prompts (encoded once each), seeds, motion, preparation, diffusion.

Frames are (1, 3, H, W) tensors in [0, 1] that stay on the model's device from one frame to the
next. Every diffused frame is rounded to 8 bits exactly as its PNG stores it, so a run resumed
from the files on disk continues bit for bit like an uninterrupted one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from .. import flow
from ..controlnet import controlled, load_controlnets
from ..depth import DepthEstimator
from ..devices import depth_dtype
from ..errors import out_of_memory_as_user_error
from ..images import use_scheduler
from ..models import Model
from ..output import format_parameters
from ..weighting import encode_weighted
from .color import ColorCoherence, adjust_contrast, unsharp_mask
from .control import FrameControls
from .noise import add_noise, scaled_start_noise
from .settings import AnimationSettings, frame_seed
from .warp import Motion2D, Motion3D, warp_2d, warp_3d

if TYPE_CHECKING:
    from ..engine.steps import StepReporter

log = logging.getLogger("sdplay")

KEYS_FOLDER = "keys"  # diffused pictures of a run with a cadence, to resume from


@dataclass(frozen=True)
class Frame:
    """One finished frame: its picture on the device, its PNG parameters, and how it was made."""

    index: int
    image: torch.Tensor
    parameters: str
    diffused: bool
    depth: torch.Tensor | None = None  # normalised depth (1 = near) of a diffused frame, when computed
    key_image: torch.Tensor | None = None  # a diffused frame's own picture where the frame shows a blend


@dataclass(frozen=True)
class FrameRequest:
    """One frame to diffuse: txt2img when `image` is None, else img2img denoising `strength` of it.

    `strength` is diffusers' (the share of the schedule that is denoised); Deforum's strength is
    the share of the picture that is kept. `FrameRequest.keeping` is the one place that converts.
    """

    frame: int
    image: torch.Tensor | None = None
    strength: float = 1.0
    embeds: dict[str, torch.Tensor] | None = None  # instead of the frame's own prompt (Interpolation)
    seed: int | None = None  # instead of the frame's own seed (a redo's throwaway generation)

    @classmethod
    def keeping(cls, frame: int, image: torch.Tensor, keep: float) -> FrameRequest:
        """img2img that keeps `keep` of `image`, in Deforum's sense of strength."""
        return cls(frame, image, 1.0 - keep)

    def parameters(self) -> dict[str, Any]:
        """What a frame's PNG records about its diffusion."""
        return {} if self.image is None else {"Denoising strength": round(self.strength, 4)}


def to_pil(image: torch.Tensor) -> Image.Image:
    pixels = (image[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(pixels)


def from_pil(image: Image.Image, device: torch.device) -> torch.Tensor:
    pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)[None]
    return pixels.to(device).float() / 255


def to_array(image: torch.Tensor) -> np.ndarray:
    """A (1, 3, H, W) frame as an HxWx3 float32 array in [0, 1], for OpenCV."""
    return np.ascontiguousarray(image[0].permute(1, 2, 0).float().cpu().numpy())


def from_array(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].to(device)


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit values the PNG will hold, so what is reused equals what is on disk."""
    return (image.clamp(0, 1) * 255).round() / 255


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)


class Renderer:
    """Everything per frame: prompts (encoded once each), seeds, motion, preparation, diffusion."""

    def __init__(
        self,
        settings: AnimationSettings,
        model: Model,
        local_only: bool = False,
        token: str | None = None,
        control_pictures: dict[int, list[Image.Image]] | None = None,
    ) -> None:
        """`control_pictures`: the pictures of the ControlNet units that read a file (AnimationInputs.controls)."""
        self.settings, self.model = settings, model
        self.steps_reporter: StepReporter | None = None  # set by the engine's run for progress, previews, cancel
        self.device = model.device
        self.series = settings.series
        self.prompts = settings.frame_prompts()
        wants_depth = (settings.animation_mode == "3D" and settings.use_depth_warping) or settings.save_depth_maps
        depth_spec = settings.depth_model if wants_depth else "none"
        dtype = depth_dtype(settings.dtype, self.device, model.dtype)
        self.depth_model = DepthEstimator(depth_spec, self.device, local_only, dtype, settings.compile)
        self.control: FrameControls | None = None
        if settings.controlnet_units():
            maps_depth = (
                self.depth_model if wants_depth else DepthEstimator(settings.depth_model, self.device, local_only)
            )
            self.control = FrameControls(settings, control_pictures or {}, maps_depth)
            nets = load_controlnets(model, self.control.models, token, local_only)
            self.txt2img, self.img2img = controlled(model, "txt2img", nets), controlled(model, "img2img", nets)
        else:
            self.txt2img, self.img2img = model.pipeline("txt2img"), model.pipeline("img2img")
        self.sampler = use_scheduler(self.txt2img, model, settings.sampler)
        use_scheduler(self.img2img, model, settings.sampler)
        self.keys = {frame: order for order, frame in enumerate(key_frames(settings))}  # frame -> diffused before it
        self.coherence = ColorCoherence(settings.color_coherence, settings.legacy_colormatch)
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
                weighted = encode_weighted(self.txt2img, prompt, negative, clean)  # `(word:1.3)`, BREAK, long
                if weighted is not None:
                    self._encoded[key] = weighted.kwargs
                    return weighted.kwargs
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
            **({"ControlNet": self.control.describe(frame)} if self.control else {}),
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
        flip = None
        if s.enable_perspective_flip:
            names = ("perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv")
            flip = tuple(v(name) for name in names)
        if s.animation_mode == "3D":
            aspect = None if s.aspect_ratio_use_old_formula else v("aspect_ratio_schedule")
            motion = Motion3D(
                v("translation_x"),
                v("translation_y"),
                v("translation_z"),
                v("rotation_3d_x"),
                v("rotation_3d_y"),
                v("rotation_3d_z"),
                v("fov_schedule"),
                aspect,
                flip,  # type: ignore[arg-type]
            )
            assert depth is not None
            return warp_3d(image, depth, motion, s.padding_mode, s.sampling_mode, inverse, s.border)
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

    def prepare(self, image: torch.Tensor, frame: int) -> torch.Tensor:
        """Colour coherence, contrast, unsharp mask and noise: what img2img starts from."""
        s, v = self.settings, lambda name: self.value(name, frame)
        image = self.coherence.before(image)
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
        return self.diffuse([FrameRequest(frame)])[0]

    def redraw(self, request: FrameRequest) -> tuple[torch.Tensor, bool]:
        """img2img of one frame; (result, whether it diffused)."""
        return self.diffuse_all([request])[0]

    def redraw_key(self, request: FrameRequest, previous: torch.Tensor) -> tuple[torch.Tensor, bool, dict[str, Any]]:
        """img2img of a 2D/3D frame after frame 0, after Deforum's redo passes: (result, whether it diffused,
        what its PNG records).

        Where the frame keeps some of `previous` (the frame before, warped to this one) and has steps to
        run: with `optical_flow_redo_generation`, a throwaway generation is made, moved along the flow from
        `previous` to it (times `redo_flow_factor_schedule`) and becomes the input; then `diffusion_redo`
        throwaway generations each start from the one before. The frame's own generation starts from what
        they leave. Deforum draws their seeds at random; here they follow from the frame's seed, so runs repeat.
        """
        s, frame = self.settings, request.frame
        extra: dict[str, Any] = {}
        if self.diffuses(request) and request.strength < 1:
            method = s.optical_flow_redo_generation
            if method != "None":
                draft = to_array(self.diffuse([replace(request, seed=self.redo_seed(frame, 0))])[0])
                along = flow.measure(to_array(previous), draft, method)
                moved = flow.push(draft, along, self.value("redo_flow_factor_schedule", frame))
                request = replace(request, image=quantise(from_array(moved, self.device)))
                extra["Optical flow redo"] = method
            for n in range(1, s.diffusion_redo + 1):
                request = replace(request, image=self.diffuse([replace(request, seed=self.redo_seed(frame, n))])[0])
            if s.diffusion_redo:
                extra["Diffusion redo"] = s.diffusion_redo
        image, diffused = self.redraw(request)
        return image, diffused, {**request.parameters(), **extra}

    def redo_seed(self, frame: int, n: int) -> int:
        """The seed of a frame's n-th throwaway generation (0: the optical-flow redo's)."""
        return int(np.random.SeedSequence([self.seed(frame), frame, n]).generate_state(1)[0])

    def cadence_blend(
        self, older: torch.Tensor, newer: torch.Tensor, weight: float, key: int, frame: int
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """An in-between frame: `weight` of key `key` over the key before it, both warped to `frame`
        (and what its PNG records of the flow).

        With `optical_flow_cadence` (and a key that keeps some of the frame before it, as in Deforum), both
        keys are first moved along the optical flow between them to where the content stands at `weight`,
        times `cadence_flow_factor_schedule`, so moving shapes slide instead of fading through each other.
        """
        method = self.settings.optical_flow_cadence
        if method == "None" or self.value("strength_schedule", key) <= 0:
            return older * (1 - weight) + newer * weight, {}
        factor = self.value("cadence_flow_factor_schedule", frame)
        blended = flow.between(to_array(older), to_array(newer), [weight], method, factor)[0]
        return from_array(blended, self.device), {"Optical flow cadence": method}

    def diffuses(self, request: FrameRequest) -> bool:
        """False where img2img would keep so much that not one step is left: Deforum keeps the picture."""
        return request.image is None or int(self.steps(request.frame) * request.strength) >= 1

    def noise_multiplier(self, frame: int) -> float:
        """The factor on img2img's starting noise (Deforum's noise_multiplier_schedule, when scheduling is on)."""
        if not self.settings.enable_noise_multiplier_scheduling:
            return 1.0
        return self.value("noise_multiplier_schedule", frame)

    def call_shape(self, frame: int) -> tuple[float, ...]:
        """What frames must share to be diffused in one call: steps, guidance, strength, noise multiplier and
        the length of the prompt's encoding (a long or BREAK prompt spans several encoder windows)."""
        names = ("cfg_scale_schedule", "strength_schedule")
        tokens = self.encoded(frame)["prompt_embeds"].shape[1]
        control = self.control.values(frame, self.settings.animation_mode == "Video Input") if self.control else ()
        shape = (self.steps(frame), *(self.value(name, frame) for name in names), self.noise_multiplier(frame), tokens)
        return shape + control

    def diffuse(self, jobs: list[FrameRequest]) -> list[torch.Tensor]:
        """One pipeline call for frames of the same call shape and kind; each keeps its own prompt
        and seed (a generator per frame draws exactly the noise a call of its own would)."""
        first, frames = jobs[0], [job.frame for job in jobs]
        encoded = [job.embeds if job.embeds is not None else self.encoded(job.frame) for job in jobs]
        seeds = [self.seed(job.frame) if job.seed is None else job.seed for job in jobs]
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        kwargs: dict[str, Any] = {
            **{name: torch.cat([e[name] for e in encoded]) for name, value in encoded[0].items() if value is not None},
            "num_inference_steps": self.steps(first.frame),
            "guidance_scale": self.value("cfg_scale_schedule", first.frame),
            "generator": generators if len(generators) > 1 else generators[0],
            "output_type": "pt",
        }
        if self.steps_reporter is not None:
            kwargs["callback_on_step_end"] = self.steps_reporter.callback(frames)
        if self.control is not None:
            redrawn = first.image is not None and self.control.loops_back
            sources = [to_pil(job.image) if redrawn else None for job in jobs]  # type: ignore[arg-type]
            kwargs.update(self.control.kwargs(frames, sources, txt2img=first.image is None))
        if first.image is None:
            kwargs.update(width=self.settings.W, height=self.settings.H)
            return list(self.call_pipeline(self.txt2img, kwargs).split(1))
        kwargs.update(image=torch.cat([job.image for job in jobs]), strength=first.strength)  # type: ignore[misc]
        with scaled_start_noise(self.img2img.scheduler, self.noise_multiplier(first.frame)):
            return list(self.call_pipeline(self.img2img, kwargs).split(1))

    def diffuse_all(self, jobs: list[FrameRequest]) -> list[tuple[torch.Tensor, bool]]:
        """`redraw`/`draw` for frames of one call shape at once: (result, whether it diffused) each."""
        if not self.diffuses(jobs[0]):
            return [(quantise(job.image), False) for job in jobs]  # type: ignore[arg-type]
        return [(image, True) for image in self.diffuse(jobs)]

    def call_pipeline(self, pipe: Any, kwargs: dict[str, Any]) -> torch.Tensor:
        """The one place a diffusers pipeline is called: (N, 3, H, W) frames in [0, 1], rounded to 8 bits."""
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
