"""Small timing helpers: synchronised wall-clock timing and peak-memory readings."""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 1) -> float:
    """Median seconds of `repeats` calls (each synchronised with the device)."""
    times = []
    for _ in range(max(1, repeats)):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return median(times)


def timed_side_by_side(fns: list[Callable[[], Any]], device: torch.device, repeats: int = 1) -> list[float]:
    """Best seconds of each function, their calls taken in turns (a, b, a, b, ...) so that a change
    in the machine's load hits all of them alike. The best, not the median: a busy machine only adds
    time, and on a shared 2-core VM the median of five turns moved the same two calls' ratio by up
    to 17% from run to run (txt2img beside diffusers called directly: 0.83x to 1.03x)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(max(1, repeats)):
        for fn, record in zip(fns, times, strict=True):
            record.append(timed(fn, device))
    return [min(record) for record in times]


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA's max allocated memory since the last reset, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def ratio(baseline: float, ours: float) -> float:
    """How many times faster ours is (baseline time / our time)."""
    return round(baseline / ours, 2) if ours > 0 else float("inf")


def resident_mb() -> float | None:
    """The process's resident memory now (Linux), to tell what one loaded model adds; None elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def resident_peak(every_s: float = 0.05) -> Iterator[dict[str, float]]:
    """The highest resident memory (MiB) while the block runs, sampled by a thread; the process's
    own peak (ru_maxrss) would also count whatever ran before. Empty off Linux."""
    found: dict[str, float] = {}
    if resident_mb() is None:
        yield found
        return
    done = threading.Event()

    def sample() -> None:
        while True:
            found["peak"] = max(found.get("peak", 0.0), resident_mb() or 0.0)
            if done.wait(every_s):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join()
