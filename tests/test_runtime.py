"""Runtime options: memory savers, tiny VAE, LoRA and few-step defaults, on the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_autoencoder, save_tiny_lora

import sdplay
from sdplay.errors import SdplayError
from sdplay.models import load_model


def image(**options) -> np.ndarray:
    return np.asarray(sdplay.generate("a cat", steps=2, seed=5, device="cpu", **options).images[0], dtype=float)


def test_memory_savers_keep_the_picture(tiny_model) -> None:
    plain = image(model=str(tiny_model))
    saved = image(model=str(tiny_model), attention_slicing=True, vae_tiling=True, limit=True)
    assert np.abs(plain - saved).mean() < 1.0


def test_offloading_is_ignored_with_a_warning_on_the_cpu(tiny_model, caplog) -> None:
    image(model=str(tiny_model), cpu_offload=True)
    assert "only applies to CUDA" in caplog.text


def test_tiny_vae_decodes_instead_of_the_full_one(tiny_model, tmp_path) -> None:
    taesd = save_tiny_autoencoder(tmp_path)
    model = load_model(str(tiny_model), device="cpu", tiny_vae=str(taesd))
    assert type(model.pipeline("img2img").vae).__name__ == "AutoencoderTiny"
    assert image(model=str(tiny_model), tiny_vae=str(taesd)).shape == (64, 64, 3)


def test_lora_changes_the_picture(tiny_model, tmp_path) -> None:
    lora = save_tiny_lora(tiny_model, tmp_path)
    plain = image(model=str(tiny_model))
    with_lora = image(model=str(tiny_model), lora=str(lora))
    assert np.abs(plain - with_lora).mean() > 1.0
    with pytest.raises(SdplayError, match="could not load LoRA"):
        image(model=str(tiny_model), lora=str(tmp_path / "nothing-here"))


def test_img2img_with_too_few_steps_for_its_strength_gets_one(tiny_model, picture, caplog) -> None:
    run = sdplay.generate("x", mode="img2img", init=str(picture), strength=0.3, steps=1, model=str(tiny_model))
    assert run.settings.steps == 4 and "needs at least 4 steps" in caplog.text


def test_a_missing_lora_file_is_named(tiny_model, tmp_path) -> None:
    with pytest.raises(SdplayError, match="could not load LoRA .*: file or folder not found"):
        image(model=str(tiny_model), lora=str(tmp_path / "missing.safetensors"))


def test_compile_wraps_the_unet_and_both_vae_halves_and_keeps_the_picture(
    tiny_model, picture, mask, monkeypatch
) -> None:
    pipe = load_model(str(tiny_model), device="cpu", compile=True).pipeline("img2img")
    assert all(type(part).__name__ == "OptimizedModule" for part in (pipe.unet, pipe.vae.encoder, pipe.vae.decoder))
    plain = image(model=str(tiny_model), mode="img2img", init=str(picture))
    compiled = image(model=str(tiny_model), mode="img2img", init=str(picture), compile=True)
    assert np.abs(plain - compiled).mean() < 1.0
    # every mode hands the compiled modules tensors of one layout: switching modes compiles nothing again
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    image(model=str(tiny_model), compile=True)
    image(model=str(tiny_model), mode="inpaint", init=str(picture), mask=str(mask), compile=True)


def test_pipelines_know_their_device_without_walking_their_modules(tiny_model, picture, monkeypatch) -> None:
    model = load_model(str(tiny_model), device="cpu")
    modes = [model.pipeline(mode) for mode in ("txt2img", "img2img", "inpaint")]
    assert [pipe._execution_device for pipe in modes] == [torch.device("cpu")] * 3
    assert [type(pipe).__name__ for pipe in modes] == [
        "StableDiffusionPipeline",
        "StableDiffusionImg2ImgPipeline",
        "StableDiffusionInpaintPipeline",
    ]
    walks = []
    monkeypatch.setattr(torch.nn.Module, "modules", lambda module: walks.append(module) or iter(()))
    image(model=str(tiny_model), mode="img2img", init=str(picture))
    assert walks == []
