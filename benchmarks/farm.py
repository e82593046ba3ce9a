"""The render farm: 16 image jobs and one long dream walk, run here and on a local Ray instance with
1 and 2 workers (sending their pictures back, and with 2 workers writing them into a shared output
root themselves), measured in the same run; JSON out.

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
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each way (best is reported)")
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
    gpus = args.gpus_per_worker * 3 or None  # a 1-worker pool and a 2-worker pool, side by side
    ray.init(
        num_cpus=args.threads * 3,
        num_gpus=gpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        pools, cold = {}, {}
        for count in (1, 2):
            way = f"ray_{count}_worker{'s' if count > 1 else ''}"
            started = time.perf_counter()
            pools[way] = WorkerPool(ray, count, cpus=args.threads, gpus=args.gpus_per_worker)
            warm_up = root / f"warm-{count}.yaml"
            sweep = {"mode": "txt2img", "settings": warm, "product": {"seed": list(range(count))}}
            warm_up.write_text(yaml.safe_dump({"jobs": [sweep]}))
            timed(warm_up, root / way, lambda m, pool=pools[way]: run_on_pool(m, pool))
            cold[way] = time.perf_counter() - started  # workers started, torch imported, model loaded
        ways = {"local": run_batch, **{way: lambda m, pool=pool: run_on_pool(m, pool) for way, pool in pools.items()}}
        ways["ray_2_workers_shared"] = lambda m: run_on_pool(m, pools["ray_2_workers"], shared=True)
        seconds: dict[str, dict[str, list[float]]] = {way: {name: [] for name in files} for way in ways}
        made: dict[str, dict[str, Manifest]] = {way: {} for way in ways}
        for _ in range(args.repeats):  # alternating, so that drifting machine load hits every way alike
            for way, go in ways.items():
                for name, file in files.items():
                    t, made[way][name] = timed(file, root / way, go)
                    seconds[way][name].append(t)
        for pool in pools.values():
            pool.close()
    finally:
        ray.shutdown()
    same = {
        way: all(outputs(made[way][n]) == outputs(made["local"][n]) for n in files) for way in ways if way != "local"
    }
    best = {way: {name: min(times) for name, times in kinds.items()} for way, kinds in seconds.items()}

    def ratio(a: str, b: str, minus: float = 0.0) -> dict[str, float]:
        return {kind: round(best[a][kind] / best[b][kind] - minus, 3) for kind in files}

    return {
        "benchmark": "farm",
        "model": args.model,
        "device": args.device,
        "steps": args.steps,
        "jobs": args.jobs,
        "dream_frames": args.frames,
        "threads_per_worker": args.threads,
        "repeats": args.repeats,
        "seconds": {way: {k: [round(v, 3) for v in t] for k, t in kinds.items()} for way, kinds in seconds.items()},
        "jobs_per_s": {way: round(args.jobs / t["jobs"], 3) for way, t in best.items()},
        "frames_per_s": {way: round(args.frames / t["dream"], 3) for way, t in best.items()},
        "ray_1_worker_overhead": ratio("ray_1_worker", "local", 1.0),
        "ray_2_workers_speedup_over_local": ratio("local", "ray_2_workers"),
        "ray_2_over_1_worker": ratio("ray_1_worker", "ray_2_workers"),
        "ray_2_workers_shared_over_sent_back": ratio("ray_2_workers", "ray_2_workers_shared"),
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
