"""The render farm: 16 image jobs and one long dream walk, run here and on a local Ray instance with
1 and 2 workers, measured in the same run; JSON out.

    python benchmarks/farm.py                       # mini model, 8 steps, 1 CPU thread per worker
    python benchmarks/farm.py --model path/to/diffusers-folder --device cuda --json farm.json

Every way runs the same batch files through `sdplay.farm` (manifest, run folders, PNGs, video).
The local run uses as many threads as one Ray worker gets, so the 1-worker figure is Ray's own
overhead (scheduling, sending frames back, joining); the workers are started and warmed up (model
loaded) before the clock starts, as they are after the first job of a long batch, and the cold
start is reported on its own. Outputs are compared byte for byte with the local run's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from sdplay.bench.run import machine, print_json
from sdplay.engine import Job, run
from sdplay.farm import open_batch, run_batch
from sdplay.farm.manifest import Manifest
from sdplay.quiet import silence_libraries


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini", help="model spec (default mini)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=16, help="image jobs (a seed sweep)")
    parser.add_argument("--frames", type=int, default=48, help="frames of the dream walk")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the local run and of each worker")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="on a GPU machine: 1")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def batch_files(args: argparse.Namespace, folder: Path) -> dict[str, Path]:
    common = {"model": args.model, "device": args.device, "steps": args.steps, "safety_checker": False}
    sweep = {"mode": "txt2img", "settings": {**common, "prompt": "a red circle"}}
    sweep["product"] = {"seed": list(range(1, args.jobs + 1))}
    dream = {"mode": "dream", "settings": {**common, "prompts": ["a red circle", "a blue square"], "seeds": [1, 2]}}
    dream["settings"]["total_frames"] = args.frames
    files = {}
    for name, job in (("jobs", sweep), ("dream", dream)):
        files[name] = folder / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump({"jobs": [job]}, sort_keys=False))
    return files


def outputs(manifest: Manifest) -> list[bytes]:
    return [Path(path).read_bytes() for job in manifest.jobs for path in [*job.paths, *job.videos]]


def timed(file: Path, outdir: Path, go: Any) -> tuple[float, Manifest]:
    manifest = open_batch(file, outdir=outdir)
    start = time.perf_counter()
    assert go(manifest)
    seconds = time.perf_counter() - start
    assert manifest.counts()["done"] == len(manifest.jobs), manifest.path
    return seconds, manifest


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from sdplay.farm.cluster import WorkerPool, run_on_pool

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="sdplay-farm-bench-"))
    files = batch_files(args, root)
    warm = {"prompt": "warm-up", "model": args.model, "device": args.device, "steps": 1, "safety_checker": False}
    run(Job.from_dict("txt2img", warm, write=False))  # the local model is loaded before the clock starts
    torch.set_num_threads(args.threads)  # loading asks for every core
    seconds: dict[str, dict[str, float]] = {}
    same: dict[str, bool] = {}
    cold: dict[str, float] = {}
    local = {name: timed(file, root / "local", run_batch) for name, file in files.items()}
    seconds["local"] = {name: t for name, (t, _) in local.items()}
    cpus = args.threads * 2 + 1  # two workers and the driver's share
    ray.init(
        num_cpus=cpus,
        num_gpus=args.gpus_per_worker * 2 or None,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        for count in (1, 2):
            way = f"ray_{count}_worker{'s' if count > 1 else ''}"
            started = time.perf_counter()
            pool = WorkerPool(ray, count, cpus=args.threads, gpus=args.gpus_per_worker)
            warm_up = root / f"warm-{count}.yaml"
            warm_up.write_text(
                yaml.safe_dump(
                    {"jobs": [{"mode": "txt2img", "settings": warm, "product": {"seed": list(range(count))}}]}
                )
            )
            timed(warm_up, root / way, lambda m, pool=pool: run_on_pool(m, pool))
            cold[way] = time.perf_counter() - started
            try:
                results = {
                    name: timed(file, root / way, lambda m, pool=pool: run_on_pool(m, pool))
                    for name, file in files.items()
                }
            finally:
                pool.close()
            seconds[way] = {name: t for name, (t, _) in results.items()}
            same[way] = all(outputs(results[name][1]) == outputs(local[name][1]) for name in files)
    finally:
        ray.shutdown()
    rate = {
        way: {"jobs_per_s": args.jobs / t["jobs"], "frames_per_s": args.frames / t["dream"]}
        for way, t in seconds.items()
    }
    return {
        "benchmark": "farm",
        "model": args.model,
        "device": args.device,
        "steps": args.steps,
        "jobs": args.jobs,
        "dream_frames": args.frames,
        "threads_per_worker": args.threads,
        "seconds": {way: {k: round(v, 3) for k, v in t.items()} for way, t in seconds.items()},
        "rates": {way: {k: round(v, 3) for k, v in r.items()} for way, r in rate.items()},
        "ray_1_worker_overhead": {
            kind: round(seconds["ray_1_worker"][kind] / seconds["local"][kind] - 1, 3) for kind in ("jobs", "dream")
        },
        "ray_2_workers_speedup_over_local": {
            kind: round(seconds["local"][kind] / seconds["ray_2_workers"][kind], 3) for kind in ("jobs", "dream")
        },
        "ray_2_over_1_worker": {
            kind: round(seconds["ray_1_worker"][kind] / seconds["ray_2_workers"][kind], 3) for kind in ("jobs", "dream")
        },
        "cold_start_s": {way: round(t, 3) for way, t in cold.items()},
        "outputs_identical_to_local": same,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    silence_libraries()
    print_json(measure(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
