"""Outpainting: the canvas and its soft mask, plain and inpainting models, the mini model's background."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from typer.testing import CliRunner

import sdplay
from sdplay.cli import app
from sdplay.mini.classify import classify, nearest_color
from sdplay.outpainting import Growth, canvas_and_mask
from sdplay.output import read_parameters


def test_canvas_stretches_the_edges_and_the_mask_fades_into_the_picture(picture) -> None:
    canvas, mask = canvas_and_mask(Image.open(picture), Growth(left=16, bottom=8), blend=4)
    assert canvas.size == (80, 72) and mask.size == (80, 72)
    pixels, soft = np.asarray(canvas), np.asarray(mask)
    assert np.array_equal(pixels[:64, 16:], np.asarray(Image.open(picture).convert("RGB")))
    assert np.array_equal(pixels[10, :16], np.repeat(pixels[10, 16:17], 16, axis=0))  # the left edge, stretched
    assert (soft[:, :16] == 255).all() and (soft[64:, :] == 255).all()  # new strips: drawn
    assert list(soft[30, 16:21]) == [204, 153, 102, 51, 0]  # the seam fades over 4 px inside the picture
    assert (soft[:60, 20:] == 0).all()  # the rest of the picture is kept


def test_growth_rounds_to_a_multiple_of_8_on_the_growing_side_and_expand_splits() -> None:
    assert Growth(left=30).rounded((64, 64)) == Growth(left=32)
    assert Growth(left=3, right=3).rounded((64, 60)) == Growth(left=3, right=5, bottom=4)
    assert Growth.to_size((64, 64), "96x80") == Growth(16, 16, 8, 8)
    assert Growth.to_size((64, 64), "97x64") == Growth(16, 17, 0, 0)


@pytest.fixture
def titled_picture(picture: Path) -> Path:
    info = PngInfo()
    info.add_text("parameters", "a red square\nNegative prompt: \nSteps: 2, Seed: 1")
    Image.open(picture).save(picture, pnginfo=info)
    return picture


def test_plain_model_keeps_the_picture_and_records_the_run(tiny_model, titled_picture, tmp_path) -> None:
    run = sdplay.outpaint(titled_picture, right=32, model=str(tiny_model), steps=3, seed=2, outdir=tmp_path)
    image = np.asarray(run.images[0], np.int16)
    original = np.asarray(Image.open(titled_picture).convert("RGB"), np.int16)
    assert run.images[0].size == (96, 64)
    assert np.array_equal(image[:, :56], original[:, :56])  # untouched up to the blend band
    parameters = read_parameters(run.paths[0])
    assert parameters["prompt"] == "a red square"  # the picture's own prompt, by default
    assert parameters["Outpaint"] == "right 32" and parameters["Mode"] == "inpaint"
    recorded = json.loads((run.run_dir / "settings.json").read_text())
    assert recorded["right"] == 32 and recorded["seed"] == 2 and recorded["prompt"] == "a red square"
    again = CliRunner().invoke(app, ["outpaint", "--config", str(run.run_dir / "settings.json"), "-o", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert np.array_equal(np.asarray(Image.open(again.stdout.strip())), np.asarray(run.images[0]))


def test_inpainting_checkpoint_and_expand(tiny_inpaint_model, picture) -> None:
    run = sdplay.outpaint(picture, "a red square", expand="80x80", model=str(tiny_inpaint_model), steps=2, write=False)
    assert run.images[0].size == (80, 80)
    assert run.settings.options.growth((64, 64)) == Growth(8, 8, 8, 8)


def test_the_new_strip_takes_the_background_colour_on_the_mini_model(tmp_path) -> None:
    """The strip's most common colour is the picture's background: measured in 20 of 20 seeds (0-19, eight
    background colours, red/blue/green circles, right 32 px, 20 steps); here ten of them, at least nine must."""
    backgrounds = ["blue", "green", "white", "yellow", "black", "purple", "blue", "green", "white", "yellow"]
    matches = 0
    for seed, background in enumerate(backgrounds):
        made = sdplay.generate(f"a red circle on a {background} background", model="mini", seed=seed).images[0]
        source = tmp_path / f"{seed}.png"
        info = PngInfo()
        info.add_text("parameters", made.info["parameters"])
        made.save(source, pnginfo=info)
        grown = np.asarray(sdplay.outpaint(source, right=32, model="mini", seed=seed, write=False).images[0])
        strip = grown[:, 64:].reshape(-1, 3)
        colours = [nearest_color(pixel) for pixel in strip[::7]]
        matches += max(set(colours), key=colours.count) == classify(np.asarray(made)).background
    assert matches >= 9, matches


def test_bad_input_is_one_error_line(picture, tmp_path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    Image.new("RGB", (32, 32)).save(tmp_path / "small.png")
    cases = [
        ([picture, "--left", "-8"], "left: must be a whole number from 0 to 4096, got -8"),
        ([picture], "nothing to add"),
        ([picture, "--expand", "32x32"], "smaller than the picture"),
        ([picture, "--expand", "big"], "expand: must be WIDTHxHEIGHT, e.g. 768x512"),
        ([picture, "--expand", "96x96", "--left", "8"], "either --expand or"),
        ([tmp_path / "missing.png", "--left", "8"], "not found"),
        ([tmp_path / "broken.png", "--left", "8"], "not an image file or damaged"),
        ([picture, "--left", "8", "--blend", "-1"], "blend: must be a whole number from 0 to 256"),
        ([picture, "--left", "8", "--strength", "2"], "strength: must be a finite number from 0 to 1"),
        ([], "nothing to outpaint"),
        ([tmp_path / "small.png", "--right", "16"], "the grown picture would be 48x32"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, ["outpaint", *map(str, args), "-o", str(tmp_path / "out")])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (args, result.output)
    assert not (tmp_path / "out").exists()
