"""Animate figures: frames per second of the frame loop beside the naive per-frame loop.

The rate is that of a long run: frames 1..N after the first, whole cadence cycles (N = 8 ends on
a diffused frame at cadence 1, 2 and 4). Frame 0 is a full txt2img (every step, not the share
img2img redraws): one frame in hundreds of a real animation, but an eighth of the bench's, where
it would weigh as much as three later frames.

The naive loop is the same loop done the original tool's way: a pipeline loaded from disk for
every diffusion (prompt encoded again, images passed as PIL), one frame per call, every warp
through a PIL image and back, and the depth model created again for every frame that needs
depth. Both make the same frames from the same settings (up to float rounding where ours
batches independent frames).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..animate.frames import frames_from
from ..animate.inputs import read_animation_inputs
from ..animate.renderer import FrameRequest, Renderer, from_pil, to_pil
from ..animate.run import resolve
from ..animate.settings import AnimationSettings
from ..api import model_for
from ..depth import DepthEstimator
from ..images import use_scheduler
from ..settings import ModelSettings
from ..video import write_video
from .images import figure, naive_pipeline
from .timing import synchronize

SCENARIOS = (("2D", 1), ("2D", 2), ("2D", 4), ("3D", 1), ("3D", 2), ("3D", 4), ("Video Input", 1))


class NaiveRenderer(Renderer):
    """The frame loop with the costs the original tool paid on every frame."""

    def warp(
        self, image: torch.Tensor, depth: torch.Tensor | None, frame: int, inverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        image = from_pil(to_pil(image), self.device)
        out, depth = super().warp(image, depth, frame, inverse)
        return from_pil(to_pil(out), self.device), depth

    def depth_of(self, image: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        self.depth_model = DepthEstimator(self.depth_model.spec, self.device, dtype=self.model.dtype)  # no bf16 switch
        return super().depth_of(image)

    def encoded(self, frame: int) -> dict[str, torch.Tensor]:
        self._encoded.clear()
        return super().encoded(frame)

    def diffuse(self, jobs: list[FrameRequest]) -> list[torch.Tensor]:
        one_at_a_time = super().diffuse
        return [image for job in jobs for image in one_at_a_time([job])]

    def call_pipeline(self, pipe: Any, kwargs: dict[str, Any]) -> torch.Tensor:
        mode = "img2img" if "image" in kwargs else "txt2img"
        fresh = naive_pipeline(self.model, mode)
        use_scheduler(fresh, self.model, self.settings.sampler)
        if "image" in kwargs:
            kwargs["image"] = to_pil(kwargs["image"])
        kwargs["output_type"] = "pil"
        with torch.inference_mode():
            picture = fresh(**kwargs).images[0]
        return from_pil(picture, self.device)


def animation(
    base: ModelSettings, depth_model: str, frames: int, steps: int | None, size: int | None
) -> AnimationSettings:
    """A short camera move with a prompt change halfway: zoom, rotation, forward motion and a pan."""
    return AnimationSettings(
        **{**base.model_options(), "safety_checker": False},
        W=size,
        H=size,
        steps=steps,
        seed=1,
        max_frames=frames,
        zoom="0: (1.02)",
        angle="0: (0.5)",
        translation_z="0: (2)",
        rotation_3d_y="0: (0.5)",
        depth_model=depth_model,
        prompts={"0": "a red circle on a blue background", "max_f/2": "a blue square on a yellow background"},
    )


def moving_disc_video(path: Path, frames: int, size: int) -> Path:
    """A clip of a red disc crossing a blue picture: the input of the Video Input figures."""
    y, x = np.mgrid[:size, :size]
    pictures = []
    for i in range(frames):
        picture = np.zeros((size, size, 3), np.uint8)
        picture[...] = (30, 60, 200)
        inside = (x - size * (0.2 + 0.6 * i / max(1, frames - 1))) ** 2 + (y - size / 2) ** 2 < (size / 5) ** 2
        picture[inside] = (220, 30, 30)
        pictures.append(picture)
    return write_video(pictures, path, fps=8)


def time_run(cls: type[Renderer], settings: AnimationSettings) -> float:
    """Seconds to make the frames after the first in memory (the model is already loaded, the video read)."""
    model = model_for(settings)
    inputs = read_animation_inputs(settings)
    resolved = resolve(settings, model, inputs)
    frames = frames_from(cls(resolved, model), None, 0, None, inputs.video)
    next(frames)
    synchronize(model.device)
    start = time.perf_counter()
    count = 1 + sum(1 for _ in frames)
    synchronize(model.device)
    if count != resolved.max_frames:
        raise RuntimeError(f"made {count} frames instead of {resolved.max_frames}")
    return time.perf_counter() - start


def measure_animate(
    base: ModelSettings,
    depth_model: str,
    frames: int,
    steps: int | None,
    size: int | None,
    repeats: int,
    naive: bool = True,
) -> list[dict[str, Any]]:
    """fps of ours and of the naive loop for each mode and cadence; runs alternate, best is kept."""
    start = animation(base, depth_model, frames + 1, steps, size)
    resolved = resolve(start, model_for(start), read_animation_inputs(start))
    time_run(Renderer, resolved.with_values(animation_mode="3D", max_frames=2))  # warm-up: kernels, depth model
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        video = moving_disc_video(Path(scratch) / "input.mp4", frames + 1, resolved.W or 64)
        for mode, cadence in SCENARIOS:
            settings = resolved.with_values(animation_mode=mode, diffusion_cadence=cadence, video_init_path=str(video))
            timings: dict[str, list[float]] = {"sdplay": [], "naive": []}
            for _ in range(max(1, repeats)):
                if naive:
                    timings["naive"].append(time_run(NaiveRenderer, settings))
                timings["sdplay"].append(time_run(Renderer, settings))
            result = {
                "mode": mode,
                "cadence": cadence,
                "batch_size": settings.batch_size if mode == "Video Input" else 1,
                "fps": frames / min(timings["sdplay"]),
                "seconds": timings,
            }
            if naive:
                result["naive_fps"] = frames / min(timings["naive"])
            results.append(result)
    return results


def bench_animate(
    base: ModelSettings,
    repeats: int,
    depth_model: str = "none",
    depth_label: str | None = None,
    frames: int = 8,
    naive: bool = True,
) -> list[dict]:
    """The animate rows of `sdplay bench` (depth `none` = flat depth: no depth network is timed);
    `depth_label` names the depth model in the rows where its spec is a scratch folder."""
    rows = []
    for result in measure_animate(base, depth_model, frames, base.steps, base.width, repeats, naive):
        if result["mode"] == "Video Input":
            name = f"animate Video Input frames/s (batch {result['batch_size']})"
        else:
            name = f"animate {result['mode']} cadence {result['cadence']} frames/s"
        if result["mode"] == "3D":
            name += f" (depth: {depth_label or depth_model})"
        rows.append(figure(name, "1/s", result["fps"], result.get("naive_fps"), "naive per-frame loop"))
    return rows
