"""Stopping a real `sdplay` process at any frame (Ctrl-C or kill -9) and resuming it from the command line gives
the frames and the video of an unbroken run; two identical commands in the same second lose nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from animate_helpers import save_tiny_depth_model
from PIL import Image

from sdplay.engine import Job, run
from sdplay.video import video_info


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_depth_model(tmp_path_factory.mktemp("depth"))


def sdplay(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sdplay", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )


def stop_after(process: subprocess.Popen, root: Path, frames: int, how: signal.Signals) -> tuple[Path, str]:
    """Wait until `frames` frames of the run exist under `root`, then send `how`; the run folder and stderr."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        folders = [p.parent for p in root.glob("*/*/settings.json")]
        assert process.poll() is None, f"the run ended before it could be stopped: {process.communicate()}"
        if folders and len(list(folders[0].glob("[0-9]*.png"))) >= frames:
            process.send_signal(how)
            return folders[0], process.communicate(timeout=120)[1]
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"no {frames} frames within the time limit: {process.communicate()}")


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def unbroken_twin(mode: str, run_dir: Path, outdir: Path) -> list[Path]:
    """The same run (its resolved settings.json) made in one go, in this process."""
    settings = json.loads((run_dir / "settings.json").read_text())
    return run(Job.from_dict(mode, settings, outdir=outdir)).paths


ANIMATE = {"W": 64, "H": 64, "steps": 12, "seed": 5, "device": "cpu", "sampler": "euler", "prompts": {"0": "a cat"}}
CASES = {
    "dream, kill -9 at frame 2": ("dream", ["a cat", "a dog", "--total-frames", "14", "--steps", "12"], 2, "KILL"),
    "dream, Ctrl-C at frame 1": ("dream", ["a cat", "a dog", "--total-frames", "14", "--steps", "12"], 1, "INT"),
    "animate 2D cadence 3, Ctrl-C at frame 4": (
        "animate",
        {"max_frames": 16, "diffusion_cadence": 3, "zoom": "0: (1.05)", "strength_schedule": "0: (0.5)"},
        4,
        "INT",
    ),
    "animate 3D cadence 2, kill -9 at frame 3": (
        "animate",
        {"animation_mode": "3D", "max_frames": 14, "diffusion_cadence": 2, "translation_z": 5, "rotation_3d_y": 2},
        3,
        "KILL",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_stopped_run_resumes_to_the_frames_and_video_of_an_unbroken_one(case, tiny_model, depth_model, tmp_path):
    mode, args, frames, how = CASES[case]
    if mode == "animate":
        config = tmp_path / "animation.json"
        config.write_text(json.dumps({**ANIMATE, **args}))
        args = ["--config", str(config), "--depth-model", str(depth_model)]
    else:
        args = [*args, "--seeds", "1,2", "--width", "64", "--height", "64", "--scheduler", "euler", "--device", "cpu"]
    out = tmp_path / "out"
    process = sdplay(mode, *args, "--model", str(tiny_model), "-o", str(out))
    run_dir, stderr = stop_after(process, out, frames, getattr(signal, f"SIG{how}"))
    if how == "INT":  # Ctrl-C goes through the engine's cancel: a clean stop that says how to go on
        assert process.returncode == 130 and f"--resume {run_dir}" in stderr and "Traceback" not in stderr, stderr
    video = run_dir / ("dream.mp4" if mode == "dream" else "animation.mp4")
    assert not video.exists()
    resumed = sdplay(mode, "--resume", str(run_dir))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    twin = unbroken_twin(mode, run_dir, tmp_path / "twin")
    mine = sorted(run_dir.glob("[0-9]*.png"))
    assert [p.name for p in mine] == [p.name for p in twin]
    for a, b in zip(mine, twin, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), a.name
    assert video_info(video)[0] == len(twin)


def test_two_identical_commands_in_the_same_second_both_complete(tiny_model, tmp_path) -> None:
    args = ["txt2img", "a cat", "--model", str(tiny_model), "--steps", "1", "--num", "2", "--seed", "1"]
    processes = [sdplay(*args, "--device", "cpu", "-o", str(tmp_path)) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    folders = sorted((tmp_path / "txt2img").iterdir())
    assert len(folders) == 2 and all(len(list(f.glob("*.png"))) == 2 for f in folders)
    printed = sorted(line for stdout, _ in outputs for line in stdout.split())
    assert printed == sorted(str(p) for f in folders for p in f.glob("*.png"))


def test_two_classic_runs_saving_at_once_take_different_numbers(tiny_model, tmp_path) -> None:
    run_py = Path(__file__).resolve().parent.parent / "run.py"
    command = [sys.executable, str(run_py), "--mode", "txt2img", "--save", "--num", "2", "--local"]
    command += ["--model", str(tiny_model)]
    processes = [
        subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
        )
        for _ in range(2)
    ]
    outputs = [p.communicate("a cat\n64 64\n", timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [f"image_{n}.png" for n in range(4)]
