"""Upscaling a picture, a run folder and a video: Lanczos, an upscaler model file (spandrel), SD's x4 upscaler."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from tiny_upscalers import make_spandrel_importable, save_tiny_esrgan, save_tiny_sd_upscaler
from typer.testing import CliRunner

import sdplay
from sdplay.cli import app
from sdplay.errors import SdplayError
from sdplay.output import read_parameters
from sdplay.video import video_info, write_video

make_spandrel_importable()


@pytest.fixture(scope="session")
def esrgan_x2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_esrgan(tmp_path_factory.mktemp("upscalers") / "RealESRGAN_x2plus.pth", scale=2)


@pytest.fixture(scope="session")
def esrgan_x4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_esrgan(tmp_path_factory.mktemp("upscalers") / "4x-esrgan.safetensors", scale=4)


@pytest.fixture(scope="session")
def sd_upscaler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd_upscaler(tmp_path_factory.mktemp("models"))


@pytest.fixture
def generated(picture: Path) -> Path:
    """The 64x64 picture with the parameters text a txt2img run writes."""
    info = PngInfo()
    info.add_text("parameters", "a red square\nNegative prompt: blurry\nSteps: 20, Seed: 7, Size: 64x64")
    Image.open(picture).save(picture, pnginfo=info)
    return picture


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A finished video run: three numbered frames, its settings.json (12 fps) and its mp4."""
    folder = tmp_path / "outputs" / "dream" / "20260101-000000-a-walk"
    folder.mkdir(parents=True)
    for n, shade in enumerate((40, 120, 200)):
        Image.new("RGB", (32, 24), (shade, 60, 255 - shade)).save(folder / f"{n:04d}.png")
    (folder / "settings.json").write_text(json.dumps({"fps": 12}))
    write_video(sorted(folder.glob("*.png")), folder / "dream.mp4", 12)
    return folder


def run_cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_lanczos_doubles_a_picture_and_keeps_its_parameters(generated, tmp_path) -> None:
    run = sdplay.upscale(generated, scale=2, outdir=tmp_path)
    assert run.images[0].size == (128, 128)
    assert run.paths == [run.run_dir / "0000.png"] and run.run_dir.parent == tmp_path / "upscale"
    parameters = read_parameters(run.paths[0])
    assert parameters["prompt"] == "a red square" and parameters["Seed"] == "7"
    assert parameters["Postprocess upscale by"] == "2" and parameters["Postprocess upscaler"] == "Lanczos"
    # the red square is still where it was, twice as large
    pixels = np.asarray(run.images[0])
    assert tuple(pixels[64, 64]) == (220, 30, 30) and tuple(pixels[8, 8]) == (30, 80, 220)


def test_a_run_repeats_from_its_settings_json_into_a_new_folder(generated, tmp_path) -> None:
    first = sdplay.upscale(generated, scale=3, outdir=tmp_path)
    result = run_cli("upscale", "--config", first.run_dir / "settings.json", "--outdir", tmp_path)
    assert result.exit_code == 0, result.output
    again = Path(result.stdout.split()[-1])
    assert again.parent != first.run_dir and again.parent.parent == first.run_dir.parent
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(first.images[0]))


def test_model_file_upscales_by_the_scale_it_was_trained_for(esrgan_x2, esrgan_x4, generated) -> None:
    two = sdplay.upscale(generated, model=str(esrgan_x2), write=False)
    four = sdplay.upscale(generated, model=str(esrgan_x4), scale=4, write=False)
    assert two.settings.scale == 2 and two.images[0].size == (128, 128)
    assert four.images[0].size == (256, 256)
    again = sdplay.upscale(generated, model=str(esrgan_x2), write=False)
    assert np.array_equal(np.asarray(two.images[0]), np.asarray(again.images[0]))


def test_model_file_handles_sizes_its_architecture_cannot_take_directly(esrgan_x2, tmp_path) -> None:
    odd = tmp_path / "odd.png"
    Image.new("RGB", (33, 17), (10, 200, 10)).save(odd)  # the x2 model unshuffles by 2: odd sides are padded
    assert sdplay.upscale(odd, model=str(esrgan_x2), write=False).images[0].size == (66, 34)


def test_sd_x4_upscaler_pipeline_from_a_folder(sd_upscaler, tmp_path) -> None:
    small = tmp_path / "small.png"
    Image.new("RGB", (16, 16), (200, 40, 40)).save(small)
    options = dict(model=str(sd_upscaler), prompt="a red square", steps=2, seed=5, device="cpu")
    run = sdplay.upscale(small, outdir=tmp_path, **options)
    again = sdplay.upscale(small, write=False, **options)
    assert run.settings.scale == 4 and run.images[0].size == (64, 64)
    assert np.array_equal(np.asarray(run.images[0]), np.asarray(again.images[0]))
    parameters = read_parameters(run.paths[0])
    assert parameters["Upscale prompt"] == "a red square" and parameters["Upscale seed"] == "5"
    assert parameters["Postprocess upscaler"].startswith("SD x4")


def test_a_run_folder_is_upscaled_frame_by_frame_with_its_video(run_folder, tmp_path) -> None:
    run = sdplay.upscale(run_folder, scale=2, outdir=tmp_path)
    assert [p.name for p in run.paths] == ["0000.png", "0001.png", "0002.png"]
    assert all(image.size == (64, 48) for image in run.images)
    assert run.video == run.run_dir / "dream.mp4"
    frames, seconds = video_info(run.video)
    assert frames == 3 and seconds == pytest.approx(3 / 12, abs=0.01)
    assert sorted(p.name for p in run_folder.iterdir()) == [
        "0000.png",
        "0001.png",
        "0002.png",
        "dream.mp4",
        "settings.json",
    ]


def test_upscale_resume_continues_an_interrupted_run_folder(run_folder, esrgan_x2, tmp_path) -> None:
    whole = sdplay.upscale(run_folder, model=str(esrgan_x2), outdir=tmp_path, device="cpu")
    before = [np.asarray(Image.open(path)) for path in whole.paths]
    for path in [*whole.paths[1:], whole.video]:  # stopped after frame 0
        path.unlink()
    (whole.run_dir / "0001.png").write_bytes(b"\x89PNG cut off")  # a frame cut off mid-write
    result = run_cli("upscale", "--resume", whole.run_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(whole.video) and video_info(whole.video)[0] == 3
    assert all(
        np.array_equal(np.asarray(Image.open(path)), image) for path, image in zip(whole.paths, before, strict=True)
    )
    refused = run_cli("upscale", run_folder, "--resume", whole.run_dir)
    assert refused.exit_code == 2 and "leave out other settings" in refused.stderr


def test_a_video_file_is_upscaled_frame_by_frame(run_folder, tmp_path) -> None:
    run = sdplay.upscale(run_folder / "dream.mp4", scale=2, outdir=tmp_path)
    assert len(run.paths) == 3 and run.images[0].size == (64, 48)
    assert run.video.name == "dream.mp4" and run.settings.fps == pytest.approx(12)


def test_cli_prints_the_written_picture(generated, tmp_path) -> None:
    result = run_cli("upscale", generated, "--scale", 2, "--outdir", tmp_path)
    assert result.exit_code == 0, result.output
    assert Image.open(result.stdout.strip()).size == (128, 128)


def _bad_inputs(tmp: Path, esrgan_x2: Path) -> list[tuple[list[object], str]]:
    torch.save(torch.nn.Linear(3, 4).state_dict(), tmp / "linear.pth")
    (tmp / "garbage.safetensors").write_bytes(b"not a model")
    (tmp / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.new("RGB", (8, 8)).save(tmp / "ok.png")
    return [
        (["upscale", tmp / "ok.png", "--model", tmp / "missing.pth"], "upscaler model not found"),
        (["upscale", tmp / "ok.png", "--model", tmp / "linear.pth"], "not an upscaler model of any architecture"),
        (["upscale", tmp / "ok.png", "--model", tmp / "garbage.safetensors"], "cannot read upscaler model"),
        (["upscale", tmp / "ok.png", "--model", esrgan_x2, "--scale", 4], "upscales by 2, not 4"),
        (["upscale", tmp / "broken.png"], "not an image file or damaged"),
        (["upscale", tmp / "nowhere.png"], "not found"),
        (["upscale", tmp], "no numbered frames"),
        (["upscale"], "nothing to upscale"),
        (["upscale", tmp / "ok.png", "--scale", 1], "scale: must be a whole number from 2 to 8, got 1"),
        (["upscale", tmp / "ok.png", "--model", "sd-x4", "--noise-level", 400], "noise_level: must be a whole number"),
        (["upscale", tmp / "ok.png", "--model", tmp / "nowhere"], "not found"),
    ]


def test_bad_input_is_one_error_line_and_writes_nothing(esrgan_x2, tmp_path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for args, message in _bad_inputs(bad, esrgan_x2):
        result = run_cli(*args, "--outdir", tmp_path / "out")
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (args, lines)
    assert not (tmp_path / "out").exists()


def test_missing_upscale_extra_is_one_line_naming_the_pip_command(monkeypatch, esrgan_x2, generated) -> None:
    monkeypatch.setitem(sys.modules, "spandrel", None)  # what `import spandrel` meets when it is not installed
    with pytest.raises(SdplayError, match=r"need spandrel: pip install 'sdplay\[upscale\]'"):
        sdplay.upscale(generated, model=str(esrgan_x2))
