"""The server beside the Python API, measured in the same run; JSON out.

    python benchmarks/server.py                       # mini model, CPU
    python benchmarks/server.py --repeats 5 --json server.json

- latency: the 2nd and later txt2img jobs from POST /jobs to the PNG received, against the same job
  through the Python API in this process (both over an already loaded model; runs alternate).
- concurrency: 20 jobs from 4 concurrent clients (5 each, posted back to back): all finish, none lost
  or duplicated, each client's jobs in the order it posted them.
- cancel: DELETE of a running job answers (the job stopped) within the time of one denoising step.
- previews: a 20-step txt2img through the API with live previews against without (runs alternate).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from sdplay.bench.run import machine, print_json
from sdplay.engine import Job, run
from sdplay.quiet import silence_libraries
from sdplay.server.process import server_process


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="timed jobs of each kind (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads in both processes")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def settings(args: argparse.Namespace, seed: int, steps: int | None = None) -> dict[str, Any]:
    return {
        "prompt": "a red circle on a blue background",
        "model": args.model,
        "seed": seed,
        "steps": steps or args.steps,
        "safety_checker": False,
    }


def api_job(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """POST a job, wait for its end on a long poll, and fetch its PNG: what a client waits for."""
    job = client.post("/jobs", json=body).json()
    done = client.get(f"/jobs/{job['id']}", params={"wait": 60}).json()
    assert done["state"] == "finished", done
    png = next(f["url"] for f in done["files"] if f["kind"] == "frame")
    assert client.get(png).content[:4] == b"\x89PNG"
    return done


def latency(args: argparse.Namespace, client: httpx.Client, outdir: Path) -> dict[str, Any]:
    """The API's 2nd and later jobs against the same job through the Python API, alternating."""
    api_job(client, {"mode": "txt2img", "settings": settings(args, 0)})  # the first: warm the server
    run(Job.from_dict("txt2img", settings(args, 0), outdir=outdir))  # and this process
    api, python = [], []
    for turn in range(args.repeats):
        began = time.perf_counter()
        api_job(client, {"mode": "txt2img", "settings": settings(args, turn + 1)})
        api.append(time.perf_counter() - began)
        began = time.perf_counter()
        run(Job.from_dict("txt2img", settings(args, turn + 1), outdir=outdir))
        python.append(time.perf_counter() - began)
    api_s, python_s = statistics.median(api), statistics.median(python)
    return {
        "api_s": round(api_s, 3),
        "python_api_s": round(python_s, 3),
        "ratio": round(api_s / python_s, 3),
        "target": "<= 1.5",
    }


def concurrency(args: argparse.Namespace, url: str, clients: int = 4, each: int = 5) -> dict[str, Any]:
    posted: dict[int, list[str]] = {}

    def client_posts(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            ids = []
            for k in range(each):
                body = {"mode": "txt2img", "settings": settings(args, 100 * number + k, steps=4)}
                ids.append(client.post("/jobs", json=body).json()["id"])
            posted[number] = ids
            for job_id in ids:
                client.get(f"/jobs/{job_id}", params={"wait": 60})

    began = time.perf_counter()
    threads = [threading.Thread(target=client_posts, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    with httpx.Client(base_url=url, timeout=120) as client:
        jobs = {job["id"]: job for job in client.get("/jobs").json()}
    ids = [job_id for number in sorted(posted) for job_id in posted[number]]
    ended = [jobs[i] for i in ids if i in jobs]
    in_order = all(
        [jobs[i]["ended_at"] for i in posted[n]] == sorted(jobs[i]["ended_at"] for i in posted[n]) for n in posted
    )
    runs = [job["run"] for job in ended]
    return {
        "jobs": len(ids),
        "finished": sum(job["state"] == "finished" for job in ended),
        "distinct_runs": len(set(runs)),
        "in_order_per_client": in_order,
        "seconds": round(seconds, 2),
    }


def cancel(args: argparse.Namespace, client: httpx.Client, turns: int = 3) -> dict[str, Any]:
    """DELETE a running job a few steps in, `turns` times; the answer's time beside one step's and one request's."""
    cancels, requests, steps = [], [], []
    for turn in range(turns):
        body = {"mode": "txt2img", "settings": {**settings(args, 7 + turn, steps=100), "num": 4}}
        job = client.post("/jobs", json=body).json()
        seen: list[tuple[float, int]] = []
        while len(seen) < 6:
            progress = client.get(f"/jobs/{job['id']}").json()["progress"]
            if progress and (not seen or progress["step"] != seen[-1][1]):
                seen.append((time.perf_counter(), progress["step"]))
            time.sleep(0.005)
        steps.append((seen[-1][0] - seen[1][0]) / max(1, seen[-1][1] - seen[1][1]))
        began = time.perf_counter()
        client.get(f"/jobs/{job['id']}")
        requests.append(time.perf_counter() - began)  # one HTTP round trip while the job runs, for scale
        began = time.perf_counter()
        stopped = client.delete(f"/jobs/{job['id']}").json()
        cancels.append(time.perf_counter() - began)
        assert stopped["state"] == "cancelled", stopped
    cancel_s, request_s, step_s = (statistics.median(v) for v in (cancels, requests, steps))
    return {
        "turns": turns,
        "cancel_s": round(cancel_s, 3),
        "request_s": round(request_s, 3),
        "step_s": round(step_s, 3),
        "ratio_to_one_step": round(cancel_s / step_s, 2),
        "stop_ratio_to_one_step": round(max(0.0, cancel_s - request_s) / step_s, 2),
        "target": "<= 1 (the DELETE answers once the job has stopped; stop = answer - one request)",
    }


def previews(args: argparse.Namespace, client: httpx.Client) -> dict[str, Any]:
    """Job time (started to ended, on the server) with previews against without, alternating."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for turn in range(args.repeats):
        for with_previews in (False, True):
            body = {"mode": "txt2img", "settings": settings(args, 50 + turn), "previews": with_previews}
            done = api_job(client, body)
            times[with_previews].append(done["ended_at"] - done["started_at"])
    off, on = statistics.median(times[False]), statistics.median(times[True])
    best_off, best_on = min(times[False]), min(times[True])
    return {
        "without_s": round(off, 3),
        "with_s": round(on, 3),
        "slowdown": round(on / off - 1, 3),
        "best_without_s": round(best_off, 3),
        "best_with_s": round(best_on, 3),
        "best_slowdown": round(best_on / best_off - 1, 3),
        "target": "<= 0.10",
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    silence_libraries()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp)
        with (
            server_process(outdir / "served", "--max-steps", "200", model=args.model) as url,
            httpx.Client(base_url=url, timeout=120) as client,
        ):
            report = {
                "benchmark": "server",
                "model": args.model,
                "steps": args.steps,
                "threads": args.threads,
                "machine": machine(),
                "latency": latency(args, client, outdir / "python"),
                "concurrency": concurrency(args, url),
                "cancel": cancel(args, client),
                "previews": previews(args, client),
            }
    print_json(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
