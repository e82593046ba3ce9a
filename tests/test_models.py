"""Model specs, loading once, and deriving every mode's pipeline from the same weights."""

from __future__ import annotations

import pytest
import torch

import sdplay
from sdplay.devices import DTYPES
from sdplay.errors import SdplayError
from sdplay.models import load_model, unload_all
from sdplay.specs import ALIASES, resolve_spec


def test_spec_forms(tiny_model, tiny_checkpoint, monkeypatch) -> None:
    assert resolve_spec("sd15").location == ALIASES["sd15"].location
    hub = resolve_spec("someone/some-model@v2")
    assert (hub.kind, hub.location, hub.revision) == ("hub", "someone/some-model", "v2")
    assert resolve_spec(str(tiny_model)).kind == "folder"
    assert resolve_spec(str(tiny_checkpoint)).kind == "file"
    monkeypatch.setenv("SDPLAY_MODEL", "sd21")
    assert resolve_spec(None).name == "sd21"


@pytest.mark.parametrize("spec, message", [("nonsense", "unknown model"), ("./missing.safetensors", "not found")])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(SdplayError, match=message):
        resolve_spec(spec)


def test_unreachable_hub_model_is_one_line_suggesting_a_local_model() -> None:
    with pytest.raises(SdplayError) as info:
        load_model("sdplay-tests/does-not-exist", device="cpu", local_only=True)
    message = str(info.value)
    assert "sdplay-tests/does-not-exist" in message and "--model mini" in message and "\n" not in message


def test_weights_load_once_and_modes_share_them(tiny_model) -> None:
    model = load_model(str(tiny_model), device="cpu")
    assert load_model(str(tiny_model), device="cpu") is model
    txt2img, img2img, inpaint = (model.pipeline(m) for m in ("txt2img", "img2img", "inpaint"))
    assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(inpaint).__name__ == "StableDiffusionInpaintPipeline"
    assert txt2img.unet is img2img.unet is inpaint.unet
    assert model.vae_scale_factor == 8 and model.native_size == 64


def test_modes_derived_from_a_bf16_model_keep_its_weights_in_bf16(tiny_model) -> None:
    model = load_model(str(tiny_model), device="cpu", dtype="bf16")
    img2img = model.pipeline("img2img")  # diffusers' from_pipe casts to fp32 unless told the dtype
    assert model.base.unet.dtype == img2img.vae.dtype == model.base.text_encoder.dtype == torch.bfloat16
    image = sdplay.generate("x", model=str(tiny_model), device="cpu", dtype="bf16", steps=2).images[0]
    assert image.size == (64, 64)


@pytest.mark.parametrize(
    ("native", "threshold", "expected"), [(True, 1, "bf16"), (True, 10**9, "fp32"), (False, 1, "fp32")]
)
def test_dtype_auto_on_the_cpu_takes_bf16_for_large_unets_where_bf16_is_native(
    tiny_model, monkeypatch, native, threshold, expected
) -> None:
    monkeypatch.setattr("sdplay.devices.cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr("sdplay.devices.BF16_FROM_PARAMETERS", threshold)  # the tiny UNet stands in for SD's
    unload_all()
    auto = load_model(str(tiny_model), device="cpu", dtype="auto")
    assert auto.dtype == getattr(torch, DTYPES[expected]) and auto.base.unet.dtype == auto.dtype
    assert auto.base.text_encoder.dtype == auto.base.vae.dtype == auto.dtype
    explicit = load_model(str(tiny_model), device="cpu", dtype="fp32")  # asked for by name: fp32 whatever the size
    assert explicit.dtype == torch.float32 and explicit.base.unet.dtype == torch.float32
    unload_all()


def test_single_file_checkpoint_loads_the_same_weights(tiny_model, tiny_checkpoint) -> None:
    folder = load_model(str(tiny_model), device="cpu").base.unet.state_dict()
    single = load_model(str(tiny_checkpoint), device="cpu", model_config=str(tiny_model)).base
    assert all(torch.equal(folder[k], v) for k, v in single.unet.state_dict().items())


def test_inpainting_model_only_inpaints(tiny_inpaint_model) -> None:
    model = load_model(str(tiny_inpaint_model), device="cpu")
    assert model.is_inpainting_model and model.pipeline("inpaint").unet.config.in_channels == 9
    with pytest.raises(SdplayError, match="inpainting model"):
        model.pipeline("txt2img")


def test_gpu_asked_without_one_is_a_clear_error(tiny_model) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")  # the CI machines have none
    with pytest.raises(SdplayError, match="no CUDA GPU"):
        load_model(str(tiny_model), device="cuda")
