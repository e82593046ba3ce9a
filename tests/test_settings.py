"""Settings validation: every bad value is a one-line SdplayError naming the option."""

from __future__ import annotations

import json

import pytest

from sdplay.errors import SdplayError
from sdplay.models import load_model
from sdplay.settings import ImageSettings, read_config


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"width": 32}, "width: must be a whole number from 64"),
        ({"height": "big"}, "height: must be a whole number"),
        ({"strength": 1.5, "mode": "img2img", "init": "x.png"}, "strength: must be a finite number from 0 to 1"),
        ({"strength": -0.1, "mode": "img2img", "init": "x.png"}, "strength:"),
        ({"steps": 0}, "steps: must be a whole number from 1 to 1000, got 0"),
        ({"num": 0}, "num:"),
        ({"seed": -1}, "seed: must be a whole number from 0 to 2\\^64-1, got -1"),
        ({"scheduler": "warp_drive"}, "scheduler: unknown scheduler"),
        ({"mode": "img2img"}, "init: img2img needs an init image"),
        ({"mode": "inpaint", "init": "x.png"}, "mask"),
        ({"mode": "paint"}, "mode: must be one of txt2img, img2img, inpaint"),
    ],
)
def test_bad_values_are_rejected_with_the_option_named(bad: dict, message: str) -> None:
    with pytest.raises(SdplayError, match=message) as info:
        ImageSettings(prompt="x", **bad)
    assert "\n" not in str(info.value)


def test_open_values_are_filled_from_the_model(tiny_model, caplog) -> None:
    model = load_model(str(tiny_model), device="cpu")
    resolved = ImageSettings(prompt="x", width=100, model=str(tiny_model)).resolved(model)
    assert (resolved.width, resolved.height) == (96, model.native_size)
    assert "width 100 rounded down to 96" in caplog.text
    assert resolved.seed is not None and resolved.steps == model.default_steps
    assert ImageSettings.from_dict(resolved.to_dict()) == resolved


def test_config_files_in_three_formats(tmp_path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"prompt": "p", "steps": 3}))
    (tmp_path / "a.yaml").write_text("prompt: p\nsteps: 3\n")
    (tmp_path / "a.toml").write_text('prompt = "p"\nsteps = 3\n')
    for name in ("a.json", "a.yaml", "a.toml"):
        assert read_config(tmp_path / name) == {"prompt": "p", "steps": 3}
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SdplayError, match="cannot parse"):
        read_config(tmp_path / "bad.json")
    with pytest.raises(SdplayError, match="unknown setting"):
        ImageSettings.from_dict({"prompt": "p", "colour": "red"})
