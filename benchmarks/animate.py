"""Animate: frames per second for 2D and 3D at cadence 1, 2 and 4 and Video Input, beside a naive loop; JSON out.

    python benchmarks/animate.py                               # mini model, CPU
    python benchmarks/animate.py --model path/to/diffusers-folder --depth-model path/to/depth --json a.json

The naive loop is the same frame loop done the original tool's way: a pipeline loaded from disk
for every diffusion (prompt encoded again, images passed as PIL), one frame per call, every warp
through a PIL image and back, and the depth model created again for every frame that needs
depth. Both make the same frames from the same settings; runs alternate so drifting machine load hits
both alike, and the best of the repeats is reported. Without --depth-model a tiny random Depth
Anything model is built (no network): it times the loop's own cost, not a real depth network's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from sdplay.bench.animate import measure_animate
from sdplay.bench.run import machine, print_json
from sdplay.quiet import silence_libraries
from sdplay.settings import ModelSettings


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


def measure(args: argparse.Namespace, depth_model: str) -> dict[str, Any]:
    base = ModelSettings(model=args.model, device=args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure_animate(base, depth_model, args.frames, args.steps, args.size, args.repeats)
    for result in results:
        result["speedup"] = round(result["fps"] / result["naive_fps"], 3)
        result["seconds"] = {name: [round(t, 3) for t in times] for name, times in result["seconds"].items()}
    return {
        "benchmark": "animate",
        "model": args.model,
        "depth_model": args.depth_model or "tiny random Depth Anything (built here)",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "steps": args.steps,
        "frames": args.frames,
        "repeats": args.repeats,
        "results": results,
        "machine": machine(),
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
    print_json(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
