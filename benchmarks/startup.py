"""Start-up: whole `sdplay` commands timed as processes, the way a user waits for them.

    python benchmarks/startup.py [--baseline REF] [--candidate REF] [--repeats 5] [--only NAME ...]

Each command runs `--repeats` times as a fresh `python -m sdplay ...` process; the median wall time
is reported beside the command's target (issue 22: the whole mini txt2img within 4 s, listing,
`info` and input errors within 1.5 s), after one untimed run (files in memory, sdplay's import indexes
written to the benchmark's own cache folder; "txt2img mini, first run" starts from an empty one each time),
with the median CPU time (user + system) of the process:
on a machine others are using, the CPU time is the closer estimate of the wall time a quiet one
gives. The load average before and after says how busy it was. With `--baseline REF` the sources
of that git commit run too, in turns with this tree's (new, old, new, old, ...), so a busy machine
slows both alike and the ratio stays fair. `--candidate REF` times a commit instead of the working
tree (which may then change meanwhile).

Every row and side runs in turns, round after round. Three reference rows have no sides: `import torch` alone, and
`benchmarks/startup_floor.py`, the mini model's picture drawn with the libraries and no sdplay (the least a
program on them does), plainly and with sdplay's lean imports; they say how much of a command's time is sdplay's
to save.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TXT2IMG = ["txt2img", "a red circle on a blue background", "--model", "mini", "-q"]
FIRST_RUN = "txt2img mini, first run"  # with an empty cache folder each time: the libraries' indexes built anew
COMMANDS: dict[str, list[str]] = {
    "help": ["--help"],
    "models": ["models"],
    "info": ["info"],
    "input error": ["img2img", "x", "--init", "missing.png", "--model", "mini"],
    "txt2img mini": TXT2IMG,
    FIRST_RUN: TXT2IMG,
}
TARGET_S = {name: 4.0 if args is TXT2IMG else 1.5 for name, args in COMMANDS.items()}
REFERENCES: dict[str, list[str]] = {  # python arguments, not sdplay's
    "import torch": ["-c", "import torch"],
    "mini picture, libraries alone": [str(ROOT / "benchmarks" / "startup_floor.py"), "floor.png"],
    "mini picture, libraries with sdplay's lean imports": [
        str(ROOT / "benchmarks" / "startup_floor.py"),
        "floor.png",
        "--lean",
    ],
}


def export_sources(ref: str, into: Path) -> Path:
    """The `src` folder of a git commit, unpacked into a folder (the working tree is untouched)."""
    archive = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def time_command(args: list[str], src: Path, cwd: Path, cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `python -m sdplay ARGS` process importing sdplay from src, with `cache` as
    sdplay's cache folder."""
    return time_python(["-m", "sdplay", *args], {"PYTHONPATH": str(src), "SDPLAY_CACHE_DIR": str(cache)}, cwd)


def time_python(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds from start to exit of one `python ARGS` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    expected = 2 if "missing.png" in args else 0
    if result.returncode != expected:
        raise SystemExit(f"python {' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git commit whose sources run beside this tree's")
    parser.add_argument("--candidate", help="git commit to time instead of the working tree")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=[*COMMANDS, *REFERENCES], help="just these rows")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        sides = {"new": export_sources(options.candidate, Path(scratch) / "new") if options.candidate else ROOT / "src"}
        if options.baseline:
            sides["old"] = export_sources(options.baseline, Path(scratch) / "old")
        cwd = Path(scratch) / "run"  # outputs land here and vanish with it
        (cwd / "outputs").mkdir(parents=True)
        cache = Path(scratch) / "cache"  # the indexes a first command writes, read by the next ones

        def runs_of(name: str) -> dict[str, Callable[[], tuple[float, float]]]:
            """One timed process per side of a row (a reference row has one side, named '')."""
            if name in REFERENCES:
                return {"": lambda: time_python(REFERENCES[name], {}, cwd)}
            return {
                f"{side} ": lambda src=src: time_command(
                    COMMANDS[name], src, cwd, Path(tempfile.mkdtemp(dir=scratch)) if name == FIRST_RUN else cache
                )
                for side, src in sides.items()
            }

        rows = {name: runs_of(name) for name in options.only or [*COMMANDS, *REFERENCES]}
        load_before = os.getloadavg()[0]
        for runs in rows.values():  # untimed: reads the files into memory, writes the indexes
            for run in runs.values():
                run()
        times = {name: {side: [] for side in runs} for name, runs in rows.items()}
        for _ in range(options.repeats):  # every row and side in turns, so a busy spell slows them alike
            for name, runs in rows.items():
                for side, run in runs.items():
                    times[name][side].append(run())
        report = {name: summarise(name, by_side) for name, by_side in times.items()}
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    summary = {"cpu cores": os.cpu_count(), "load average": load, "repeats": options.repeats, "commands": report}
    print(json.dumps(summary, indent=2))


def summarise(name: str, by_side: dict[str, list[tuple[float, float]]]) -> dict[str, float | bool]:
    """Medians per side; for sdplay's commands the target, and old/new ratios when a baseline ran."""
    figures: dict[str, float | bool] = {} if name in REFERENCES else {"target s": TARGET_S[name]}
    for side, runs in by_side.items():
        figures[f"{side}s"] = round(statistics.median(wall for wall, _ in runs), 3)
        figures[f"{side}cpu s"] = round(statistics.median(cpu for _, cpu in runs), 3)
    if name in COMMANDS:
        figures["within target"] = figures["new s"] <= TARGET_S[name]
        if "old s" in figures:
            figures["old/new"] = round(figures["old s"] / figures["new s"], 2)
            figures["old/new cpu"] = round(figures["old cpu s"] / figures["new cpu s"], 2)
    return figures


if __name__ == "__main__":
    main()
