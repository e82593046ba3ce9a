"""Animate: frames per second for 2D and 3D at cadence 1, 2 and 4, beside a naive loop; JSON out.

    python benchmarks/animate.py                               # mini model, CPU
    python benchmarks/animate.py --model path/to/diffusers-folder --depth-model path/to/depth --json a.json

The naive loop is the same frame loop done the original tool's way: every warp goes through a
PIL image and back, the depth model is created again for every frame that needs depth, and the
pipelines are rebuilt (and the prompt encoded again, images passed as PIL) for every diffusion.
Both make the same frames from the same settings; runs alternate so drifting machine load hits
both alike, and the best of the repeats is reported. Without --depth-model a tiny random Depth
Anything model is built (no network): it times the loop's own cost, not a real depth network's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from sdplay.animate.depth import DepthEstimator
from sdplay.animate.loop import Renderer, first_frame, from_pil, motion_frames, resolve, to_pil
from sdplay.animate.settings import AnimationSettings
from sdplay.api import model_for
from sdplay.images import use_scheduler
from sdplay.quiet import silence_libraries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini", help="model spec (default mini; a diffusers folder works)")
    parser.add_argument("--depth-model", default=None, help="depth model folder or id (default: a tiny random one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=12, help="frames per animation")
    parser.add_argument("--steps", type=int, default=10, help="steps (img2img runs 35%% of them: strength 0.65)")
    parser.add_argument("--size", type=int, default=None, help="width = height (default: the model's)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each way (best is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


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


def settings_for(args: argparse.Namespace, depth_model: str, mode: str, cadence: int) -> AnimationSettings:
    return AnimationSettings(
        model=args.model,
        device=args.device,
        safety_checker=False,
        W=args.size,
        H=args.size,
        steps=args.steps,
        seed=1,
        max_frames=args.frames,
        animation_mode=mode,
        diffusion_cadence=cadence,
        zoom="0: (1.02)",
        angle="0: (0.5)",
        translation_z="0: (2)",
        rotation_3d_y="0: (0.5)",
        depth_model=depth_model,
        prompts={"0": "a red circle on a blue background", "max_f/2": "a blue square"},
    )


def time_run(cls: type[Renderer], settings: AnimationSettings) -> float:
    """Seconds to make every frame in memory (the model is already loaded)."""
    model = model_for(settings)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    renderer = cls(settings, model)
    made = first_frame(renderer, None)
    depth, _ = renderer.depth_of(made.image)
    count = 1 + sum(1 for _ in motion_frames(renderer, made, depth))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    assert count == settings.max_frames
    return time.perf_counter() - start


def measure(args: argparse.Namespace, depth_model: str) -> dict[str, Any]:
    base = settings_for(args, depth_model, "2D", 1)
    resolved, _ = resolve(base, model_for(base))
    time_run(Renderer, replace(resolved, animation_mode="3D", max_frames=2))  # warm-up: kernels, depth model
    if args.threads:  # after loading: loading a model on the CPU asks for every core
        torch.set_num_threads(args.threads)
    results = []
    for mode in ("2D", "3D"):
        for cadence in (1, 2, 4):
            settings = replace(resolved, animation_mode=mode, diffusion_cadence=cadence)
            seconds: dict[str, list[float]] = {"naive": [], "sdplay": []}
            for _ in range(args.repeats):
                seconds["naive"].append(time_run(NaiveRenderer, settings))
                seconds["sdplay"].append(time_run(Renderer, settings))
            fps = {name: args.frames / min(times) for name, times in seconds.items()}
            results.append(
                {
                    "mode": mode,
                    "cadence": cadence,
                    "fps": round(fps["sdplay"], 3),
                    "naive_fps": round(fps["naive"], 3),
                    "speedup": round(fps["sdplay"] / fps["naive"], 3),
                    "seconds": {name: [round(t, 3) for t in times] for name, times in seconds.items()},
                }
            )
    return {
        "benchmark": "animate",
        "model": args.model,
        "depth_model": args.depth_model or "tiny random Depth Anything (built here)",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "size": f"{resolved.W}x{resolved.H}",
        "steps": args.steps,
        "img2img_steps": int(args.steps * (1 - 0.65)),
        "frames": args.frames,
        "repeats": args.repeats,
        "results": results,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    silence_libraries()
    with tempfile.TemporaryDirectory() as folder:
        depth_model = args.depth_model
        if depth_model is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from animate_helpers import save_tiny_depth_model

            depth_model = str(save_tiny_depth_model(Path(folder)))
        report = measure(args, depth_model)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
