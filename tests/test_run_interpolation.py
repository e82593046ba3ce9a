"""`interpolate` on dream and animate runs themselves: new frames into interpolated/ beside the originals,
a second video, settings.json and the PNGs say so, and an interrupted run continues."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdplay
from sdplay.animate.settings import AnimationSettings
from sdplay.output import read_parameters
from sdplay.video import video_info

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def animation(tiny_model: Path, outdir: Path, **options: object) -> sdplay.engine.RunResult:
    small = dict(W=64, H=64, steps=2, seed=5, max_frames=3, sampler="euler", device="cpu", prompts={"0": "a"})
    return sdplay.animate(model=str(tiny_model), outdir=outdir, zoom="0: (1.1)", **{**small, **options})


def test_an_animation_interpolated_2x_keeps_its_frames_and_adds_a_smooth_video(tiny_model, tmp_path) -> None:
    run = animation(tiny_model, tmp_path, interpolate=2, fps=10)
    folder = run.run_dir / "interpolated"
    assert [p.name for p in sorted(run.run_dir.glob("*.png"))] == ["0000.png", "0001.png", "0002.png"]
    assert [p.name for p in sorted(folder.glob("*.png"))] == [f"{n:04d}.png" for n in range(5)]
    for n in range(3):  # the originals stand in the new sequence pixel for pixel
        assert np.array_equal(pixels(folder / f"{2 * n:04d}.png"), pixels(run.paths[n]))
    between = read_parameters(folder / "0001.png")
    assert between["Interpolated between"] == "0 and 1" and between["Interpolation"] == "optical flow (DIS) x2"
    assert [v.name for v in run.videos] == ["animation.mp4", "animation-x2.mp4"]
    frames, seconds = video_info(run.videos[1])
    assert frames == 5 and math.isclose(seconds, 5 / 20, abs_tol=0.02)  # smooth: twice the fps
    assert json.loads((run.run_dir / "settings.json").read_text())["interpolate"] == 2


def test_an_interrupted_interpolation_continues_on_resume(tiny_model, tmp_path) -> None:
    run = animation(tiny_model, tmp_path, interpolate=4, interpolate_timing="slowmo", fps=10)
    folder = run.run_dir / "interpolated"
    before = {p.name: pixels(p) for p in folder.glob("*.png")}
    for path in [*sorted(folder.glob("*.png"))[6:], run.videos[1]]:
        path.unlink()
    resumed = sdplay.animate(resume=run.run_dir)
    assert {p.name for p in folder.glob("*.png")} == set(before)
    assert all(np.array_equal(pixels(folder / name), image) for name, image in before.items())
    frames, seconds = video_info(resumed.videos[1])
    assert frames == 9 and math.isclose(seconds, 9 / 10, abs_tol=0.02)  # slowmo: the same fps, 4x as long


def test_dream_cli_interpolates_frames_only_runs_too(tiny_model, tmp_path) -> None:
    command = [sys.executable, "-m", "sdplay", "dream", "a cat", "a dog", "-m", str(tiny_model), "-W", "64"]
    command += ["-H", "64", "--steps", "2", "--seeds", "1,2", "--frames", "2", "--format", "frames", "-q"]
    done = subprocess.run([*command, "--interpolate", "2", "-o", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    run_dir = next((tmp_path / "dream").iterdir())
    assert len(list((run_dir / "interpolated").glob("*.png"))) == 5 and not list(run_dir.glob("*.mp4"))
    for bad, message in [
        ("0", "interpolate: must be a whole number from 1 to 16, got 0"),
        ("x", "Invalid value for '--interpolate'"),
    ]:
        refused = subprocess.run([*command, "--interpolate", bad, "-o", str(tmp_path)], capture_output=True, text=True)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and message in lines[0], refused.stderr
    timing = subprocess.run(
        [*command, "--interpolate", "2", "--interpolate-timing", "fast"], capture_output=True, text=True
    )
    assert timing.returncode == 2 and "interpolate_timing: must be one of smooth, slowmo" in timing.stderr


@pytest.mark.parametrize(
    ("deforum", "expected"),
    [
        ({"frame_interpolation_engine": "RIFE v4.6", "frame_interpolation_x_amount": 3}, (3, "smooth")),
        (
            {
                "frame_interpolation_engine": "FILM",
                "frame_interpolation_x_amount": "4",
                "frame_interpolation_slow_mo_enabled": True,
                "frame_interpolation_slow_mo_amount": 4,
            },
            (4, "slowmo"),
        ),  # fmt: skip
        ({"frame_interpolation_engine": "None", "frame_interpolation_x_amount": 3}, (1, "smooth")),
    ],
)
def test_deforum_frame_interpolation_keys_turn_it_on(deforum, expected, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="sdplay"):
        settings = AnimationSettings.from_dict({**json.loads(DEFORUM_FILE.read_text()), **deforum}, "d.txt")
    assert (settings.interpolate, settings.interpolate_timing) == expected
    assert "turns on" not in caplog.text


def test_an_animation_interpolated_by_rife_and_a_bad_weights_file_refused_before_the_run(tiny_model, tmp_path) -> None:
    import torch
    from framelift.interpolation import IFNet

    torch.manual_seed(0)
    weights = tmp_path / "flownet_v4.26.pkl"
    torch.save({f"module.{key}": value for key, value in IFNet().state_dict().items()}, weights)
    run = animation(tiny_model, tmp_path / "out", interpolate=2, interpolate_model=str(weights))
    made = read_parameters(run.run_dir / "interpolated" / "0001.png")
    assert made["Interpolation"] == "RIFE 4.26 (flownet_v4.26.pkl) x2" and video_info(run.videos[1])[0] == 5
    torch.save({"module.nothing": torch.zeros(1)}, tmp_path / "other.pkl")
    with pytest.raises(sdplay.errors.SdplayError, match="cannot load .*other.pkl as RIFE 4.26 weights"):
        animation(tiny_model, tmp_path / "refused", interpolate=2, interpolate_model=str(tmp_path / "other.pkl"))
    assert not any((tmp_path / "refused").rglob("settings.json"))  # no run folder was made


def test_one_frame_cannot_be_interpolated() -> None:
    with pytest.raises(sdplay.errors.SdplayError, match="interpolate: needs at least two frames"):
        AnimationSettings(max_frames=1, interpolate=2)
