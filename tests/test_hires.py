"""The txt2img hires fix: drawn at the model's size, upscaled, redrawn larger with img2img."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_upscalers import make_spandrel_importable, save_tiny_esrgan
from typer.testing import CliRunner

import sdplay
from sdplay.cli import app
from sdplay.errors import SdplayError
from sdplay.mini.classify import classify
from sdplay.models import load_model
from sdplay.output import read_parameters


def test_hires_draws_larger_and_records_it(tiny_model, tmp_path) -> None:
    run = sdplay.generate("a cat", model=str(tiny_model), steps=4, seed=3, hires_scale=2.0, outdir=tmp_path)
    assert run.images[0].size == (128, 128)
    parameters = read_parameters(run.paths[0])
    assert parameters["Size"] == "64x64" and parameters["Hires upscale"] == "2.0"
    assert parameters["Denoising strength"] == "0.5" and parameters["Hires upscaler"] == "lanczos"
    recorded = json.loads((run.run_dir / "settings.json").read_text())
    assert recorded["hires_scale"] == 2.0 and recorded["hires_strength"] == 0.5
    again = CliRunner().invoke(app, ["txt2img", "--config", str(run.run_dir / "settings.json"), "-o", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert np.array_equal(np.asarray(Image.open(again.stdout.strip())), np.asarray(run.images[0]))


def test_strength_zero_is_the_picture_upscaled_and_a_strength_redraws_it(tiny_model) -> None:
    run = dict(model=str(tiny_model), steps=4, seed=3)
    base = sdplay.generate("a cat", **run).images[0].resize((128, 128), Image.Resampling.LANCZOS)
    kept = sdplay.generate("a cat", hires_scale=2.0, hires_strength=0.0, **run).images[0]
    redrawn = sdplay.generate("a cat", hires_scale=2.0, hires_strength=0.3, **run).images[0]
    assert np.array_equal(np.asarray(kept), np.asarray(base))
    assert not np.array_equal(np.asarray(redrawn), np.asarray(base))


def test_hires_keeps_the_mini_models_composition() -> None:
    """The redraw at 128x128 still shows the colour, shape and background drawn at 64x64."""
    prompt = "a red circle on a blue background"
    for seed in (1, 2):
        base = sdplay.generate(prompt, model="mini", seed=seed).images[0]
        hires = sdplay.generate(prompt, model="mini", seed=seed, hires_scale=2.0, hires_strength=0.4).images[0]
        assert hires.size == (128, 128)
        small = np.asarray(hires.resize((64, 64), Image.Resampling.BOX))
        seen, expected = classify(small), classify(np.asarray(base))
        assert (seen.background, seen.color, seen.shape) == (expected.background, expected.color, expected.shape)


def test_hires_with_an_upscaler_model_file(tiny_model, tmp_path) -> None:
    make_spandrel_importable()
    upscaler = save_tiny_esrgan(tmp_path / "x2.pth", scale=2)
    run = sdplay.generate("a cat", model=str(tiny_model), steps=2, seed=1, hires_scale=1.5, hires_upscaler=upscaler)
    assert run.images[0].size == (96, 96)


def test_large_hires_pass_decodes_in_tiles_and_leaves_the_vae_as_it_was(tiny_model, monkeypatch) -> None:
    vae = load_model(str(tiny_model), device="cpu").base.vae
    switched = []
    monkeypatch.setattr(type(vae), "enable_tiling", lambda self, *a, **k: switched.append("on"), raising=False)
    monkeypatch.setattr(type(vae), "disable_tiling", lambda self, *a, **k: switched.append("off"), raising=False)
    sdplay.generate("a cat", model=str(tiny_model), steps=2, seed=1, hires_scale=2.0, device="cpu")
    assert switched == []  # 128x128 is 4x the native area: not tiled
    sdplay.generate("a cat", model=str(tiny_model), steps=2, seed=1, hires_scale=2.5, device="cpu")
    assert switched == ["on", "off"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mode": "img2img", "init": "x.png", "hires_scale": 2.0}, "the hires fix is for txt2img"),
        ({"hires_scale": 5.0}, "hires_scale: must be a finite number from 1 to 4"),
        ({"hires_scale": 2.0, "hires_strength": 1.5}, "hires_strength: must be a finite number from 0 to 1"),
        ({"hires_scale": 2.0, "hires_upscaler": "missing.pth"}, "upscaler model not found: missing.pth"),
    ],
)
def test_bad_hires_settings_are_refused_before_loading(options, message) -> None:
    with pytest.raises(SdplayError, match=message):
        sdplay.generate("a cat", model="nowhere/not-loaded", **options)


def test_cli_flags(tiny_model, tmp_path: Path) -> None:
    hires = ["--hires-scale", "1.5", "--hires-strength", "0.4", "-o", str(tmp_path)]
    result = CliRunner().invoke(app, ["txt2img", "a cat", "-m", str(tiny_model), "--steps", "2", *hires])
    assert result.exit_code == 0, result.output
    assert Image.open(result.stdout.strip()).size == (96, 96)
