"""Upscaling and frame interpolation beside the naive per-frame loop, measured in turns in one run; JSON out.

    python benchmarks/toolkit.py                                   # what the issue asks for, on this machine
    python benchmarks/toolkit.py --upscaler RealESRGAN_x2plus.pth --json benchmarks/results/cpu-toolkit.json

- upscale: a 512x512 picture by 2. Naive: spandrel's loader and the model called on the picture as a
  script would (fp32, autograd on, contiguous tensors). Ours: `sdplay.upscale` (inference mode,
  channels_last, bf16 on CPUs with native bf16). Both load the file each time. Lanczos is timed too.
  Without --upscaler the model is a random-weight Real-ESRGAN Compact x2 (realesr-general-x4v3's shape
  at scale 2), built from spandrel's architecture: the time does not depend on the weights.
- interpolate: a 48-frame 512x512 run folder by 2 (95 frames, mp4). Naive: one pair after another,
  flow, warp, each PNG written in line, then the video. Ours: `sdplay.interpolate` (pairs on two
  threads, PNGs written on background threads). Same flow method (OpenCV DIS) both ways. With --rife
  (a RIFE 4.26 weights file, or `random` for random weights: the time does not depend on them) the
  learned interpolator is timed in the same turns (`sdplay.interpolate(..., model=FILE)`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdplay.bench.run import machine, print_json
from sdplay.quiet import silence_libraries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upscaler", type=Path, default=None, help="upscaler model file (default: random Compact x2)")
    parser.add_argument("--size", type=int, default=512, help="picture and frame side in pixels")
    parser.add_argument("--frames", type=int, default=48, help="frames of the video to interpolate")
    parser.add_argument("--repeats", type=int, default=2, help="turns of each way (the best is reported)")
    parser.add_argument("--skip", choices=("upscale", "interpolate"), action="append", default=[])
    parser.add_argument("--rife", default=None, help="also time RIFE 4.26: a weights file, or random")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def best_in_turns(ways: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each way, called in turns (a, b, a, b) so that the machine's load hits all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            seconds[name].append(round(time.perf_counter() - start, 3))
    return seconds


def scene(size: int, shift: int) -> Image.Image:
    """A textured picture with a disc and a bar moving by `shift` px: flow has something to follow."""
    rng = np.random.default_rng(0)
    pixels = (rng.integers(0, 60, (size, size, 3)) + np.array([20, 60, 140])).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    disc = (xx - size // 3 - shift) ** 2 + (yy - size // 2) ** 2 < (size // 8) ** 2
    pixels[disc] = (230, 40, 40)
    pixels[size // 5 : size // 5 + size // 16, (size // 2 + shift // 2) % size :] = (240, 220, 60)
    return Image.fromarray(pixels)


def random_compact_x2(folder: Path) -> Path:
    import torch
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    path = folder / "compact-x2.pth"
    torch.save({"params": Compact(upscale=2).state_dict()}, path)
    return path


def measure_upscale(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import spandrel
    import torch

    import sdplay

    upscaler = args.upscaler or random_compact_x2(folder)
    picture = folder / "picture.png"
    scene(args.size, 0).save(picture)

    def naive() -> None:
        model = spandrel.ModelLoader().load_from_file(str(upscaler)).eval()
        pixels = torch.from_numpy(np.asarray(Image.open(picture).convert("RGB"), np.float32) / 255)
        out = model(pixels.permute(2, 0, 1)[None])
        Image.fromarray((out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy())

    def ours() -> None:
        sdplay.upscale(picture, model=str(upscaler), scale=2, write=False)

    def lanczos() -> None:
        sdplay.upscale(picture, scale=2, write=False)

    seconds = best_in_turns({"naive": naive, "sdplay": ours, "lanczos": lanczos}, args.repeats)
    best = {name: min(times) for name, times in seconds.items()}
    return {
        "task": f"2x upscale of a {args.size}x{args.size} picture",
        "upscaler": str(args.upscaler or "random-weight Real-ESRGAN Compact x2 (64 features, 16 convs)"),
        "seconds": seconds,
        "speedup_vs_naive": round(best["naive"] / best["sdplay"], 2),
        "dtype": str(sdplay.upscaling.upscaler_dtype("auto", torch.device("cpu"), _descriptor(upscaler))),
    }


def _descriptor(path: Path) -> Any:
    import spandrel

    return spandrel.ModelLoader().load_from_file(str(path))


def measure_interpolate(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import sdplay
    from sdplay.frame_interpolation import FlowInterpolator
    from sdplay.output import save_png
    from sdplay.video import write_video

    run = folder / "run"
    run.mkdir()
    for n in range(args.frames):
        scene(args.size, 4 * n).save(run / f"{n:04d}.png")
    (run / "settings.json").write_text(json.dumps({"fps": 24}))
    outputs = folder / "outputs"

    def naive() -> None:
        target = Path(tempfile.mkdtemp(dir=folder))
        interpolator = FlowInterpolator()
        frames = [Image.open(run / f"{n:04d}.png").convert("RGB") for n in range(args.frames)]
        written = []
        for i in range(len(frames) - 1):
            middle = interpolator.between(np.asarray(frames[i]), np.asarray(frames[i + 1]), [0.5])[0]
            for image in (frames[i], Image.fromarray(middle)):
                written.append(save_png(image, lambda n, d=target: d / f"{n:04d}.png", len(written), ""))
        written.append(save_png(frames[-1], lambda n: target / f"{n:04d}.png", len(written), ""))
        write_video(written, target / "video.mp4", 48)

    def ours() -> None:
        sdplay.interpolate(run, multiplier=2, outdir=outputs)

    ways = {"naive": naive, "sdplay": ours}
    if args.rife:
        weights = random_rife(folder) if args.rife == "random" else Path(args.rife)
        ways["sdplay_rife"] = lambda: sdplay.interpolate(run, multiplier=2, outdir=outputs, model=str(weights))
    seconds = best_in_turns(ways, args.repeats)
    best = {name: min(times) for name, times in seconds.items()}
    report = {
        "task": f"2x interpolation of a {args.frames}-frame {args.size}x{args.size} run folder (PNGs and mp4 out)",
        "method": "optical flow (OpenCV DIS, medium preset), both ways",
        "frames_out": 2 * args.frames - 1,
        "seconds": seconds,
        "frames_per_second": round((2 * args.frames - 1) / best["sdplay"], 2),
        "speedup_vs_naive": round(best["naive"] / best["sdplay"], 2),
    }
    if args.rife:
        report["rife"] = "random-weight RIFE 4.26" if args.rife == "random" else args.rife
        report["rife_frames_per_second"] = round((2 * args.frames - 1) / best["sdplay_rife"], 2)
    return report


def random_rife(folder: Path) -> Path:
    import torch
    from framelift.interpolation import IFNet

    torch.manual_seed(0)
    path = folder / "flownet_v4.26.pkl"
    torch.save({f"module.{key}": value for key, value in IFNet().state_dict().items()}, path)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    silence_libraries()
    report: dict[str, Any] = {"benchmark": "toolkit", "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as scratch:
        if "upscale" not in args.skip:
            report["upscale"] = measure_upscale(args, Path(scratch))
        if "interpolate" not in args.skip:
            report["interpolate"] = measure_interpolate(args, Path(scratch))
    report["machine"] = machine()
    print_json(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
