"""Start-up: whole `sdplay` commands timed as processes, the way a user waits for them.

    python benchmarks/startup.py [--baseline REF] [--candidate REF] [--repeats 5] [--only NAME ...]

Each command runs `--repeats` times as a fresh `python -m sdplay ...` process and the median wall
time is reported. With `--baseline REF` the sources of that git commit run too, in turns with this
tree's (new, old, new, old, ...), so a busy machine slows both alike and the ratio stays fair.
`--candidate REF` times a commit instead of the working tree (which may then change meanwhile).
Prints JSON: per command the median seconds of each side and old/new.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: dict[str, list[str]] = {
    "help": ["--help"],
    "models": ["models"],
    "info": ["info"],
    "input error": ["img2img", "x", "--init", "missing.png", "--model", "mini"],
    "txt2img mini": ["txt2img", "a red circle on a blue background", "--model", "mini", "-q"],
}


def export_sources(ref: str, into: Path) -> Path:
    """The `src` folder of a git commit, unpacked into a folder (the working tree is untouched)."""
    archive = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def time_command(args: list[str], src: Path, cwd: Path) -> float:
    """Seconds from start to exit of one `python -m sdplay ARGS` process importing sdplay from src."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "sdplay", *args], cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    expected = 2 if "missing.png" in args else 0
    if result.returncode != expected:
        raise SystemExit(f"sdplay {' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git commit whose sources run beside this tree's")
    parser.add_argument("--candidate", help="git commit to time instead of the working tree")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=list(COMMANDS), help="just these commands")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        sides = {"new": export_sources(options.candidate, Path(scratch) / "new") if options.candidate else ROOT / "src"}
        if options.baseline:
            sides["old"] = export_sources(options.baseline, Path(scratch) / "old")
        cwd = Path(scratch) / "run"  # outputs land here and vanish with it
        cwd.mkdir()
        report: dict[str, dict[str, float]] = {}
        for name in options.only or COMMANDS:
            times: dict[str, list[float]] = {side: [] for side in sides}
            for _ in range(options.repeats):
                for side, src in sides.items():
                    times[side].append(time_command(COMMANDS[name], src, cwd))
            figures = {f"{side} s": round(statistics.median(t), 3) for side, t in times.items()}
            if "old" in sides:
                figures["old/new"] = round(figures["old s"] / figures["new s"], 2)
            report[name] = figures
    print(json.dumps({"cpu cores": os.cpu_count(), "repeats": options.repeats, "commands": report}, indent=2))


if __name__ == "__main__":
    main()
