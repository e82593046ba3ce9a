"""Dream: frames per second batched vs one frame at a time, measured in the same run; JSON out.

    python benchmarks/dream.py --model mini --frames 16 --batch-size 4
    python benchmarks/dream.py --model path/to/diffusers-folder --device cpu --json dream.json

Both ways make the same walk with the same settings (prompts encoded once per key point in
both); only the number of frames per UNet call differs. Runs alternate (one-at-a-time, batched,
...) so drifting machine load hits both alike; the best of the repeats is reported.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from sdplay.bench.run import machine, print_json
from sdplay.dream import DreamSettings
from sdplay.engine import Job, run
from sdplay.quiet import silence_libraries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini", help="model spec (default mini; a diffusers folder works)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=16, help="frames in the walk")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per UNet call in the batched run")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=None, help="width = height (default: the model's)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each way (best is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace, batch_size: int) -> DreamSettings:
    return DreamSettings(
        prompts=("a red circle", "a blue square"),
        seeds=(1, 2),
        total_frames=args.frames,
        steps=args.steps,
        width=args.size,
        height=args.size,
        batch_size=batch_size,
        model=args.model,
        device=args.device,
        safety_checker=False,
    )


def time_walk(settings: DreamSettings) -> float:
    """Seconds for a whole walk in memory (plan, prompts, every frame); the model is already loaded."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    walk = run(Job("dream", settings, write=False))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    assert len(walk.images) == settings.total_frames
    return time.perf_counter() - start


def measure(args: argparse.Namespace) -> dict[str, Any]:
    ways = {"one_at_a_time": settings_for(args, 1), "batched": settings_for(args, args.batch_size)}
    warmup = DreamSettings(**{**ways["batched"].to_dict(), "total_frames": args.batch_size})
    run(Job("dream", warmup, write=False))  # loads the model and warms the kernels up
    if args.threads:  # after loading: loading a model on the CPU asks for every core
        torch.set_num_threads(args.threads)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, settings in ways.items():
            seconds[name].append(time_walk(settings))
    fps = {name: args.frames / min(times) for name, times in seconds.items()}
    resolved = run(Job("dream", DreamSettings(**{**warmup.to_dict(), "total_frames": 2}), write=False)).settings
    return {
        "benchmark": "dream",
        "model": args.model,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "size": f"{resolved.width}x{resolved.height}",
        "steps": args.steps,
        "frames": args.frames,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "seconds": {name: [round(t, 3) for t in times] for name, times in seconds.items()},
        "fps_one_at_a_time": round(fps["one_at_a_time"], 3),
        "fps_batched": round(fps["batched"], 3),
        "speedup": round(fps["batched"] / fps["one_at_a_time"], 3),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    silence_libraries()
    report = measure(args)
    print_json(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
