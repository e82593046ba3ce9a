"""Animate figures: frames per second of the frame loop beside the naive per-frame loop.

The naive loop is the same loop done the original tool's way: every warp goes through a PIL
image and back, the depth model is created again for every frame that needs depth, and the
pipelines are rebuilt (prompt encoded again, images passed as PIL) for every diffusion. Both
make the same frames from the same settings.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from ..animate.depth import DepthEstimator
from ..animate.loop import Renderer, first_frame, from_pil, motion_frames, resolve, to_pil
from ..animate.settings import AnimationSettings
from ..api import model_for
from ..images import use_scheduler
from ..settings import ModelSettings
from .images import figure
from .timing import synchronize

MODES = ("2D", "3D")
CADENCES = (1, 2, 4)


class NaiveRenderer(Renderer):
    """The frame loop with the costs the original tool paid on every frame."""

    def warp(
        self, image: torch.Tensor, depth: torch.Tensor | None, frame: int, inverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        image = from_pil(to_pil(image), self.device)
        out, depth = super().warp(image, depth, frame, inverse)
        return from_pil(to_pil(out), self.device), depth

    def depth_of(self, image: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        self.depth_model = DepthEstimator(self.depth_model.spec, self.device)
        return super().depth_of(image)

    def encoded(self, frame: int) -> dict[str, torch.Tensor]:
        self._encoded.clear()
        return super().encoded(frame)

    def _run(self, pipe: Any, kwargs: dict[str, Any]) -> torch.Tensor:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

        auto = AutoPipelineForImage2Image if "image" in kwargs else AutoPipelineForText2Image
        fresh = auto.from_pipe(self.model.base)
        fresh.set_progress_bar_config(disable=True)
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
        **{**base.model_fields(), "safety_checker": False},
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


def time_run(cls: type[Renderer], settings: AnimationSettings) -> float:
    """Seconds to make every frame in memory (the model is already loaded)."""
    model = model_for(settings)
    synchronize(model.device)
    start = time.perf_counter()
    renderer = cls(settings, model)
    made = first_frame(renderer, None)
    depth, _ = renderer.depth_of(made.image)
    count = 1 + sum(1 for _ in motion_frames(renderer, made, depth))
    synchronize(model.device)
    if count != settings.max_frames:
        raise RuntimeError(f"made {count} frames instead of {settings.max_frames}")
    return time.perf_counter() - start


def measure_animate(
    base: ModelSettings, depth_model: str, frames: int, steps: int | None, size: int | None, repeats: int
) -> list[dict[str, Any]]:
    """fps of ours and of the naive loop for each mode and cadence; runs alternate, best is kept."""
    start = animation(base, depth_model, frames, steps, size)
    resolved, _ = resolve(start, model_for(start))
    time_run(Renderer, replace(resolved, animation_mode="3D", max_frames=2))  # warm-up: kernels, depth model
    results = []
    for mode in MODES:
        for cadence in CADENCES:
            settings = replace(resolved, animation_mode=mode, diffusion_cadence=cadence)
            naive, ours = [], []
            for _ in range(max(1, repeats)):
                naive.append(time_run(NaiveRenderer, settings))
                ours.append(time_run(Renderer, settings))
            results.append(
                {
                    "mode": mode,
                    "cadence": cadence,
                    "fps": frames / min(ours),
                    "naive_fps": frames / min(naive),
                    "seconds": {"sdplay": ours, "naive": naive},
                }
            )
    return results


def bench_animate(base: ModelSettings, repeats: int, depth_model: str = "none", frames: int = 8) -> list[dict]:
    """The animate rows of `sdplay bench` (depth `none` = flat depth: no depth network is timed)."""
    rows = []
    for result in measure_animate(base, depth_model, frames, base.steps, base.width, repeats):
        name = f"animate {result['mode']} cadence {result['cadence']} frames/s"
        if result["mode"] == "3D":
            name += f" (depth: {depth_model})"
        rows.append(figure(name, "1/s", result["fps"], result["naive_fps"], "naive per-frame loop"))
    return rows
