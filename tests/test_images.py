"""The three image modes through the Python API, on the tiny random pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import sdplay
from sdplay.errors import SdplayError
from sdplay.output import read_parameters
from sdplay.schedulers import SAMPLERS


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_txt2img_same_seed_same_pixels(tiny_model, tmp_path) -> None:
    run = dict(model=str(tiny_model), steps=3, device="cpu")
    a = sdplay.generate("a cat", seed=11, num=2, batch_size=2, outdir=tmp_path, **run)
    b = sdplay.generate("a cat", seed=11, num=2, batch_size=2, **run)
    c = sdplay.generate("a cat", seed=12, **run)
    assert [read_parameters(path)["Seed"] for path in a.paths] == ["11", "12"]
    assert all(np.array_equal(pixels(x), pixels(y)) for x, y in zip(a.images, b.images, strict=True))
    assert not np.array_equal(pixels(a.images[0]), pixels(c.images[0]))
    assert a.images[0].size == (64, 64)


def test_seed_is_random_when_absent_and_always_recorded(tiny_model) -> None:
    first = sdplay.generate("x", model=str(tiny_model), steps=2, device="cpu")
    second = sdplay.generate("x", model=str(tiny_model), steps=2, device="cpu")
    assert first.settings.seed != second.settings.seed
    assert f"Seed: {first.settings.seed}" in first.images[0].info["parameters"]


def test_img2img_strength_zero_keeps_the_picture_and_one_replaces_it(tiny_model, picture) -> None:
    run = dict(model=str(tiny_model), steps=4, seed=3, device="cpu", mode="img2img", init=str(picture))
    original = pixels(Image.open(picture).convert("RGB"))
    kept = sdplay.generate("x", strength=0.0, **run).images[0]
    changed = sdplay.generate("x", strength=1.0, **run).images[0]
    assert np.abs(pixels(kept) - original).mean() < np.abs(pixels(changed) - original).mean()


def test_img2img_output_takes_the_init_size_or_the_asked_size(tiny_model, picture) -> None:
    run = dict(model=str(tiny_model), steps=2, seed=1, device="cpu", mode="img2img", init=str(picture))
    assert sdplay.generate("x", **run).images[0].size == (64, 64)
    assert sdplay.generate("x", width=96, **run).images[0].size == (96, 64)


def test_inpaint_keeps_the_black_part_of_the_mask(tiny_model, picture, mask) -> None:
    result = sdplay.generate(
        "x", mode="inpaint", init=str(picture), mask=str(mask), model=str(tiny_model), steps=3, seed=2, device="cpu"
    ).images[0]
    diff = np.abs(pixels(result) - pixels(Image.open(picture).convert("RGB"))).mean(axis=2)
    assert diff[:, :24].mean() < diff[:, 40:].mean()


def test_dedicated_inpainting_model(tiny_inpaint_model, picture, mask) -> None:
    result = sdplay.generate(
        "x", mode="inpaint", init=str(picture), mask=str(mask), model=str(tiny_inpaint_model), steps=2, device="cpu"
    )
    assert result.images[0].size == (64, 64)


def test_mask_of_another_scale_is_resized_with_a_warning(tiny_model, picture, tmp_path, caplog) -> None:
    big_mask = tmp_path / "big.png"
    Image.new("L", (128, 128), 255).save(big_mask)
    sdplay.generate("x", mode="inpaint", init=str(picture), mask=str(big_mask), model=str(tiny_model), steps=2)
    assert "mask resized from 128x128 to 64x64" in caplog.text


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda tmp: tmp / "missing.png", "not found"),
        (lambda tmp: (tmp / "text.png").write_text("not an image") and tmp / "text.png", "cannot read"),
        (lambda tmp: Image.new("L", (64, 32)).save(tmp / "wide.png") or tmp / "wide.png", "different shape"),
    ],
)
def test_bad_masks(tiny_model, picture, tmp_path, make_bad, message) -> None:
    with pytest.raises(SdplayError, match=message):
        sdplay.generate("x", mode="inpaint", init=str(picture), mask=str(make_bad(tmp_path)), model=str(tiny_model))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_scheduler_runs(tiny_model, name: str) -> None:
    result = sdplay.generate("x", scheduler=name, model=str(tiny_model), steps=2, seed=0, device="cpu")
    assert f"Sampler: {name}" in result.images[0].info["parameters"]
    assert np.isfinite(pixels(result.images[0])).all()


def test_outdir_writes_images_and_settings(tiny_model, tmp_path) -> None:
    result = sdplay.generate("a cat", model=str(tiny_model), steps=2, num=2, outdir=tmp_path, device="cpu")
    assert [p.name for p in result.paths] == ["0000.png", "0001.png"]
    assert (result.paths[0].parent / "settings.json").exists()


def test_safety_checker_is_on_by_default_and_can_be_turned_off(tiny_checked_model, caplog) -> None:
    run = dict(model=str(tiny_checked_model), steps=2, seed=4, device="cpu")
    checked = sdplay.generate("x", **run)
    assert checked.flagged == [0] and pixels(checked.images[0]).max() == 0
    assert "blanked by the safety checker" in caplog.text
    unchecked = sdplay.generate("x", safety_checker=False, **run)
    assert not unchecked.flagged and pixels(unchecked.images[0]).max() > 0


def test_out_of_memory_is_a_user_error_with_a_hint(tiny_model, monkeypatch) -> None:
    model = sdplay.load_model(str(tiny_model), device="cpu")

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(type(model.pipeline("txt2img")), "__call__", exhausted)
    with pytest.raises(SdplayError, match="out of memory: try a smaller"):
        sdplay.generate("x", model=str(tiny_model), device="cpu")


def test_cancel_stops_within_one_step_and_keeps_the_images_already_written(tiny_model, tmp_path) -> None:
    from sdplay.engine import CancelToken, Job, run
    from sdplay.engine.events import Cancelled, Progress
    from sdplay.settings import ImageSettings

    cancel = CancelToken()
    seen = []

    def cancel_in_second_image(event) -> None:
        seen.append(event)
        if isinstance(event, Progress) and event.frame == 1:
            cancel.cancel()

    settings = ImageSettings(prompt="x", model=str(tiny_model), steps=3, num=3, device="cpu")
    result = run(Job("txt2img", settings, outdir=tmp_path), cancel_in_second_image, cancel)
    assert result.cancelled and isinstance(seen[-1], Cancelled)
    assert [e.step for e in seen if isinstance(e, Progress) and e.frame == 1] == [1]  # no step after the cancel
    assert [p.name for p in sorted(result.run_dir.glob("*.png"))] == ["0000.png"]
