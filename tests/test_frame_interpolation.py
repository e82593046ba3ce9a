"""Frame interpolation of run folders and videos by optical flow: the moving shape is met halfway."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import sdplay
from sdplay.cli import app
from sdplay.frame_interpolation import interpolate_frames
from sdplay.output import read_parameters
from sdplay.video import video_info, write_video

STEP = 8  # px the square moves right from one original frame to the next


def square_at(x: int) -> Image.Image:
    """A red 16x16 square with its left edge at x, on a textured blue background (flow needs texture)."""
    rng = np.random.default_rng(0)
    pixels = np.zeros((64, 96, 3), np.uint8)
    pixels[:] = (30, 80, 200)
    pixels[..., 2] += rng.integers(0, 40, (64, 96), dtype=np.uint8)
    pixels[24:40, x : x + 16] = (230, 30, 30)
    return Image.fromarray(pixels)


def red_mask(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.int16)
    return (pixels[..., 0] > 150) & (pixels[..., 2] < 120)


@pytest.fixture
def moving_square(tmp_path: Path) -> Path:
    """A 4-frame animate-style run folder at 10 fps: the square moves STEP px a frame, with prompts."""
    from PIL.PngImagePlugin import PngInfo

    folder = tmp_path / "outputs" / "animate" / "20260101-000000-moving"
    folder.mkdir(parents=True)
    for n in range(4):
        info = PngInfo()
        info.add_text("parameters", f"a red square\nNegative prompt: \nSeed: {n}, Mode: animate")
        square_at(16 + STEP * n).save(folder / f"{n:04d}.png", pnginfo=info)
    (folder / "settings.json").write_text(json.dumps({"fps": 10}))
    write_video(sorted(folder.glob("*.png")), folder / "animation.mp4", 10)
    return folder


def test_the_in_between_frame_has_the_shape_halfway_not_a_double_exposure() -> None:
    frames = list(interpolate_frames([square_at(16), square_at(16 + STEP)], multiplier=2))
    assert [(f.index, f.t) for f in frames] == [(0, 0.0), (0, 0.5), (1, 0.0)]
    middle = red_mask(frames[1].image)
    columns = np.nonzero(middle.any(axis=0))[0]
    assert abs(columns.mean() - (16 + STEP / 2 + 7.5)) <= 1.0  # the square's centre moved half a step
    assert abs(middle.sum() - 256) <= 32  # one square (a crossfade would show two half-red ones)
    crossfade = np.asarray(Image.blend(square_at(16), square_at(16 + STEP), 0.5))
    assert red_mask(Image.fromarray(crossfade)).sum() < 0.75 * 256  # what the flow method is better than


def test_x4_places_the_shape_at_quarter_steps() -> None:
    frames = list(interpolate_frames([square_at(16), square_at(16 + STEP)], multiplier=4))
    centres = [np.nonzero(red_mask(f.image).any(axis=0))[0].mean() - 7.5 - 16 for f in frames]
    assert np.allclose(centres, [0, 2, 4, 6, 8], atol=1.0)


def test_smooth_run_folder_keeps_originals_and_multiplies_fps(moving_square, tmp_path) -> None:
    run = sdplay.interpolate(moving_square, multiplier=2, outdir=tmp_path)
    assert run.frame_count == 7 and len(run.paths) == 7 and run.settings.fps == 20
    for n in range(4):  # every original frame is in the result, pixel for pixel
        original = np.asarray(Image.open(moving_square / f"{n:04d}.png"))
        assert np.array_equal(np.asarray(Image.open(run.paths[2 * n])), original)
    assert read_parameters(run.paths[2])["Original frame"] == "1"
    made = read_parameters(run.paths[3])
    assert made["prompt"] == "a red square" and made["Interpolated between"] == "1 and 2" and made["At"] == "0.5"
    assert run.video == run.run_dir / "animation.mp4"
    frames, seconds = video_info(run.video)
    assert frames == 7 and seconds == pytest.approx(7 / 20, abs=0.02)
    assert json.loads((run.run_dir / "settings.json").read_text())["fps"] == 20


def test_slowmo_keeps_the_fps_from_a_video_file(moving_square, tmp_path) -> None:
    run = sdplay.interpolate(moving_square / "animation.mp4", multiplier=4, timing="slowmo", outdir=tmp_path)
    assert run.frame_count == 13 and run.settings.fps == pytest.approx(10)
    frames, seconds = video_info(run.video)
    assert frames == 13 and seconds == pytest.approx(1.3, abs=0.02)


def test_cli_interpolates_and_repeats_from_settings_json(moving_square, tmp_path) -> None:
    result = CliRunner().invoke(app, ["interpolate", str(moving_square), "-x", "2", "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    video = Path(result.stdout.strip())
    assert video.is_file() and video.parent.parent == tmp_path / "interpolate"
    again = CliRunner().invoke(
        app, ["interpolate", "--config", str(video.parent / "settings.json"), "-o", str(tmp_path)]
    )
    assert again.exit_code == 0, again.output
    second = Path(again.stdout.strip()).parent
    assert second != video.parent
    assert all(
        np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
        for a, b in zip(sorted(video.parent.glob("*.png")), sorted(second.glob("*.png")), strict=True)
    )


def test_bad_input_is_one_error_line(moving_square, tmp_path) -> None:
    single = tmp_path / "single"
    single.mkdir()
    square_at(0).save(single / "0000.png")
    write_video([square_at(0)], tmp_path / "one.mp4", 10)
    square_at(0).save(tmp_path / "picture.png")
    cases = [
        ([single], "has one frame"),
        ([tmp_path / "one.mp4"], "has one frame"),
        ([tmp_path / "picture.png"], "has one frame"),
        ([tmp_path / "missing.mp4"], "not found"),
        ([moving_square, "-x", 1], "multiplier: must be a whole number from 2 to 16, got 1"),
        ([moving_square, "--timing", "fast"], "timing: must be one of smooth, slowmo"),
        ([moving_square, "--method", "magic"], "method: must be flow"),
        ([moving_square, "--fps", 0], "fps: must be a finite number > 0"),
        ([], "nothing to interpolate"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, ["interpolate", *map(str, args), "--outdir", str(tmp_path / "out")])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (args, result.output)
    assert not (tmp_path / "out").exists()


def test_missing_interpolate_extra_is_one_line_naming_the_pip_command(monkeypatch, moving_square) -> None:
    import sys

    from sdplay.errors import SdplayError

    monkeypatch.setitem(sys.modules, "cv2", None)  # what `import cv2` meets when OpenCV is not installed
    with pytest.raises(SdplayError, match=r"needs OpenCV: pip install 'sdplay\[interpolate\]'"):
        sdplay.interpolate(moving_square, write=False)


def test_interpolate_resume_continues_an_interrupted_run_folder(moving_square, tmp_path) -> None:
    whole = sdplay.interpolate(moving_square, multiplier=2, outdir=tmp_path)
    for name in ("0004.png", "0005.png", "0006.png", "animation.mp4"):  # stopped after frame 3
        (whole.run_dir / name).unlink()
    (whole.run_dir / "0004.png").write_bytes(b"\x89PNG cut off")  # a frame cut off mid-write
    result = CliRunner().invoke(app, ["interpolate", "--resume", str(whole.run_dir)])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == whole.run_dir / "animation.mp4" and video_info(whole.video)[0] == 7
    again = sdplay.interpolate(moving_square, multiplier=2, outdir=tmp_path / "again")
    assert all(
        np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
        for a, b in zip(again.paths, sorted(whole.run_dir.glob("*.png")), strict=True)
    )
    refused = CliRunner().invoke(app, ["interpolate", str(moving_square), "--resume", str(whole.run_dir)])
    assert refused.exit_code == 2 and "leave out other settings" in refused.stderr
    nothing = CliRunner().invoke(app, ["interpolate", "--resume", str(tmp_path)])
    assert nothing.exit_code == 2 and "no settings.json there" in nothing.stderr


@pytest.fixture(scope="module")
def random_rife(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RIFE 4.26 with random weights, saved as the published files are (a `module.` prefix on every key)."""
    import torch
    from framelift.interpolation import IFNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rife") / "flownet_v4.26.pkl"
    torch.save({f"module.{key}": value for key, value in IFNet().state_dict().items()}, path)
    return path


def test_a_rife_weights_file_draws_the_new_frames_and_the_originals_stay(moving_square, random_rife, tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["interpolate", str(moving_square), "-x", "2", "--model", str(random_rife), "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip()).parent
    made = sorted(run_dir.glob("*.png"))
    assert len(made) == 7 and np.array_equal(
        np.asarray(Image.open(made[2])), np.asarray(Image.open(moving_square / "0001.png"))
    )
    assert read_parameters(made[1])["Interpolation"] == "RIFE 4.26 (flownet_v4.26.pkl) x2"
    flow = sdplay.interpolate(moving_square, multiplier=2, write=False).images[1]
    assert not np.array_equal(np.asarray(Image.open(made[1])), np.asarray(flow))  # drawn by the network, not the flow
    assert json.loads((run_dir / "settings.json").read_text())["model"] == str(random_rife)


def test_bad_rife_weights_are_one_error_line(moving_square, tmp_path) -> None:
    import torch

    torch.save({"module.nothing": torch.zeros(1)}, tmp_path / "other.pkl")
    (tmp_path / "text.pkl").write_text("not weights")
    cases = [
        (tmp_path / "missing.pkl", "model: interpolator weights not found"),
        (tmp_path / "other.pkl", "cannot load"),
        (tmp_path / "text.pkl", "cannot load"),
    ]
    for weights, message in cases:
        result = CliRunner().invoke(
            app, ["interpolate", str(moving_square), "--model", str(weights), "-o", str(tmp_path / "o")]
        )
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (weights, result.output)
    assert not (tmp_path / "o").exists()  # refused before a run folder was made


def test_missing_rife_package_is_one_line_naming_the_pip_command(monkeypatch, moving_square, random_rife) -> None:
    import sys

    from sdplay.errors import SdplayError

    monkeypatch.setitem(sys.modules, "framelift.interpolation", None)
    with pytest.raises(SdplayError, match="--interpolate-model needs RIFE: pip install --no-deps framelift-video"):
        sdplay.interpolate(moving_square, model=str(random_rife), write=False)
