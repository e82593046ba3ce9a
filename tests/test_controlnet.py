"""ControlNet in the image modes, with a tiny random-weight ControlNet built from the tiny UNet's config
(`tiny_controlnet` in conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from animate_helpers import save_tiny_depth_model
from PIL import Image
from typer.testing import CliRunner

import sdplay
from sdplay.cli import app
from sdplay.controlnet import Control, control_map, parse_control
from sdplay.depth import DepthEstimator
from sdplay.output import read_parameters


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_depth_model(tmp_path_factory.mktemp("depth"))


@pytest.fixture
def edges(tmp_path: Path) -> Path:
    """A white square outline on black: a control map as is."""
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[16:48, 16] = pixels[16:48, 47] = pixels[16, 16:48] = pixels[47, 16:48] = 255
    path = tmp_path / "edges.png"
    Image.fromarray(pixels).save(path)
    return path


def test_control_syntax() -> None:
    assert parse_control("canny:photo.png") == Control("canny", "photo.png", 1.0)
    assert parse_control("none:C:/maps/pose.png:0.6") == Control("none", "C:/maps/pose.png", 0.6)


def test_canny_finds_the_edges_of_a_square(tmp_path) -> None:
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[16:48, 16:48] = 230
    Image.fromarray(pixels).save(tmp_path / "square.png")
    edges = np.asarray(control_map(Control("canny", str(tmp_path / "square.png")), (64, 64)))[..., 0]
    assert set(np.unique(edges)) == {0, 255}
    assert edges[16:48, 14:18].any() and not edges[24:40, 24:40].any()  # on the border, not inside


def test_depth_preprocessor_maps_the_nearest_pixel_white(tiny_depth, picture) -> None:
    depth = DepthEstimator(str(tiny_depth), torch.device("cpu"))
    grey = np.asarray(control_map(Control("depth", str(picture)), (64, 64), depth))
    assert (grey == grey[..., :1]).all()  # one grey map in three channels, as depth ControlNets take it
    pixels = torch.from_numpy(np.asarray(Image.open(picture).convert("RGB")).copy()).permute(2, 0, 1)[None] / 255
    nearness = depth.nearness(pixels.float())[0, 0].numpy()
    nearest, farthest = (
        np.unravel_index(nearness.argmax(), nearness.shape),
        np.unravel_index(nearness.argmin(), (64, 64)),
    )
    assert grey[nearest][0] == 255 and grey[farthest][0] == 0  # min-max over the picture, near = white


def test_depth_control_in_a_run_records_its_depth_model(tiny_model, tiny_controlnet, tiny_depth, picture, tmp_path):
    result = sdplay.generate(
        "a cat",
        model=str(tiny_model),
        steps=2,
        seed=1,
        control=f"depth:{picture}",
        control_model=str(tiny_controlnet),
        depth_model=str(tiny_depth),
        outdir=tmp_path,
    )
    recorded = json.loads((result.run_dir / "settings.json").read_text())
    assert recorded["depth_model"] == str(tiny_depth) and recorded["control"] == [f"depth:{picture}"]
    plain = sdplay.generate(
        "a cat", model=str(tiny_model), steps=2, seed=1, control=f"none:{picture}", control_model=str(tiny_controlnet)
    ).images[0]
    assert not np.array_equal(np.asarray(result.images[0]), np.asarray(plain))  # the depth map, not the picture


def test_txt2img_follows_the_control_and_its_weight(tiny_model, tiny_controlnet, edges, tmp_path) -> None:
    run = dict(model=str(tiny_model), steps=3, seed=1, device="cpu", control_model=str(tiny_controlnet))
    plain = sdplay.generate("a cat", model=str(tiny_model), steps=3, seed=1, device="cpu").images[0]
    off = sdplay.generate("a cat", control=f"none:{edges}:0", **run).images[0]
    on = sdplay.generate("a cat", control=f"none:{edges}:1.0", outdir=tmp_path, **run)
    assert np.array_equal(np.asarray(off), np.asarray(plain))  # weight 0: no control at all
    assert not np.array_equal(np.asarray(on.images[0]), np.asarray(plain))
    assert read_parameters(on.paths[0])["ControlNet"] == f"none:{edges}:1.0"


def test_two_controls_img2img_and_a_resized_control_image(tiny_model, tiny_controlnet, edges, picture, caplog) -> None:
    big = edges.parent / "big.png"
    Image.open(edges).resize((128, 128)).save(big)
    image = sdplay.generate(
        "a cat",
        mode="img2img",
        init=str(picture),
        model=str(tiny_model),
        steps=4,
        seed=1,
        control=[f"none:{edges}:0.5", f"canny:{big}:0.8"],
        control_model=str(tiny_controlnet),
        control_start=0.2,
        control_end=0.8,
    ).images[0]
    assert image.size == (64, 64)
    assert "control image" in caplog.text and "resized from 128x128 to 64x64" in caplog.text


def test_cli_flags_and_bad_controls(tiny_model, tiny_controlnet, edges, tmp_path) -> None:
    base = ["txt2img", "a cat", "-m", str(tiny_model), "--steps", "2", "-o", str(tmp_path / "out")]
    ok = CliRunner().invoke(app, [*base, "--control", f"none:{edges}", "--control-model", str(tiny_controlnet)])
    assert ok.exit_code == 0, ok.output
    cases = [
        (["--control", f"edge:{edges}", "--control-model", str(tiny_controlnet)], "unknown preprocessor 'edge'"),
        (["--control", str(edges), "--control-model", str(tiny_controlnet)], "is not TYPE:IMAGE[:WEIGHT]"),
        (["--control", f"none:{edges}"], "give one control model for all controls"),
        (["--control", f"none:{tmp_path}/missing.png", "--control-model", str(tiny_controlnet)], "not found"),
        (["--control", f"none:{edges}", "--control-model", str(tmp_path / "nowhere")], "control model not found"),
        (["--control", f"none:{edges}:5", "--control-model", str(tiny_controlnet)], "must be from 0 to 2"),
        (
            ["--control", f"depth:{edges}", "--control-model", str(tiny_controlnet), "--depth-model", "./no-such"],
            "depth_model: folder not found",
        ),
        (
            ["--control", f"none:{edges}", "--control-model", "x", "--control-start", "0.9", "--control-end", "0.1"],
            "below",
        ),
    ]
    for extra, message in cases:
        result = CliRunner().invoke(app, [*base, *extra])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (extra, result.output)


def test_dream_walks_under_one_control_map_and_weight_0_is_no_control(tiny_model, tiny_controlnet, edges, tmp_path):
    walk = dict(model=str(tiny_model), width=64, height=64, steps=2, seeds=[1, 2], frames=2, device="cpu")
    control = dict(control_model=str(tiny_controlnet), formats="frames")
    plain = sdplay.dream("a cat", "a dog", **walk, write=False).images
    silent = sdplay.dream("a cat", "a dog", **walk, control=f"none:{edges}:0", **control, write=False).images
    run = sdplay.dream("a cat", "a dog", **walk, control=f"canny:{edges}", **control, outdir=tmp_path)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(silent, plain, strict=True))
    steered = [np.asarray(Image.open(path).convert("RGB")) for path in run.paths]
    assert not any(np.array_equal(a, np.asarray(b)) for a, b in zip(steered, plain, strict=True))
    assert read_parameters(run.paths[1])["ControlNet"] == f"canny:{edges}"
    assert json.loads((run.run_dir / "settings.json").read_text())["control"] == [f"canny:{edges}"]


def test_an_image_walk_takes_the_control_too(tiny_model, tiny_controlnet, edges, picture) -> None:
    walk = dict(model=str(tiny_model), steps=3, seeds=[1], frames=2, device="cpu", images=[picture, picture])
    plain = sdplay.dream("a cat", **walk, write=False).images
    steered = sdplay.dream("a cat", **walk, control=f"none:{edges}", control_model=str(tiny_controlnet), write=False)
    assert steered.images[0].size == (64, 64) and not np.array_equal(
        np.asarray(steered.images[0]), np.asarray(plain[0])
    )


def test_dream_cli_takes_controls_and_refuses_bad_ones(tiny_model, tiny_controlnet, edges, tmp_path) -> None:
    base = ["dream", "a cat", "-m", str(tiny_model), "--steps", "2", "--frames", "2", "--format", "frames"]
    base += ["-W", "64", "-H", "64", "-o", str(tmp_path)]
    ok = CliRunner().invoke(app, [*base, "--control", f"none:{edges}", "--control-model", str(tiny_controlnet)])
    assert ok.exit_code == 0, ok.output
    for extra, message in [
        (["--control", f"pose:{edges}", "--control-model", str(tiny_controlnet)], "unknown preprocessor 'pose'"),
        (["--control", f"none:{tmp_path}/no.png", "--control-model", str(tiny_controlnet)], "control image not found"),
    ]:
        result = CliRunner().invoke(app, [*base, *extra])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], (extra, result.output)
