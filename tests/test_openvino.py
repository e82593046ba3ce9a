"""The OpenVINO backend: PyTorch's pictures in f32, conversions cached and invalidated, clean failures."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openvino
import pytest
import torch
from PIL import Image
from rich.console import Console

import sdplay
from sdplay.backends import choose_backend, run_on_backend
from sdplay.backends.openvino import fingerprint
from sdplay.engine import events as ev
from sdplay.errors import SdplayError
from sdplay.models import load_model, unload_all
from sdplay.progress import ProgressBar

MODES = ("txt2img", "img2img", "inpaint")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion cache for the module's tests: each converts the tiny model at most once."""
    return tmp_path_factory.mktemp("openvino-cache")


@pytest.fixture(autouse=True)
def fresh_process_state(cache: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SDPLAY_CACHE_DIR", str(cache))
    unload_all()
    yield
    unload_all()


def pictures(model_path: str, size: int = 64, **options) -> dict[str, np.ndarray]:
    """Each mode's picture of one prompt and seed, through the modes' own diffusers pipelines."""
    model = load_model(model_path, device="cpu", **options)
    init = Image.new("RGB", (size, size), (200, 30, 30))
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    out = {}
    for mode in MODES:
        call = {"prompt": "a red circle on a blue background", "num_inference_steps": 4, "guidance_scale": 5.0}
        call.update(height=size, width=size, output_type="np", generator=torch.Generator().manual_seed(3))
        if mode != "txt2img":
            call["image"] = init
        if mode == "inpaint":
            call["mask_image"] = mask
        with torch.inference_mode():
            out[mode] = model.pipeline(mode)(**call).images[0]
    return out


def test_every_mode_in_f32_gives_pytorchs_picture_and_bf16_stays_close(tiny_model) -> None:
    expected = pictures(str(tiny_model))
    unload_all()
    f32 = pictures(str(tiny_model), backend="openvino", dtype="fp32")
    model = load_model(str(tiny_model), device="cpu", backend="openvino", dtype="fp32")
    assert model.backend == "openvino" and type(model.base.vae.decoder).__name__ == "OpenVINOModule"
    for mode in MODES:
        assert np.abs(f32[mode] - expected[mode]).max() < 1e-3, mode  # pixels in 0..1
    unload_all()
    # bf16 after f32 in the same process (OpenVINO's compiled-blob cache once handed the f32 blob to bf16)
    bf16 = pictures(str(tiny_model), backend="openvino", dtype="bf16")
    for mode in MODES:
        assert np.isfinite(bf16[mode]).all() and np.abs(bf16[mode] - expected[mode]).mean() < 0.15, mode


def test_a_new_size_compiles_again_and_stays_exact(tiny_model) -> None:
    expected = pictures(str(tiny_model), size=96)
    unload_all()
    assert all(
        np.abs(pictures(str(tiny_model), size=96, backend="openvino", dtype="fp32")[m] - expected[m]).max() < 1e-3
        for m in MODES
    )


def test_conversions_are_reused_from_the_cache(tiny_model, cache, monkeypatch) -> None:
    load_model(str(tiny_model), device="cpu", backend="openvino", dtype="fp32")
    unload_all()
    converted = sorted(p.parent.name for p in cache.glob("openvino/*/*/model.xml"))
    assert {name.rsplit("-", 1)[0] for name in converted} == {"unet", "text_encoder", "vae_encoder", "vae_decoder"}

    def refuse(*args, **kwargs):
        raise AssertionError("converted again instead of reusing the cache")

    monkeypatch.setattr(openvino, "convert_model", refuse)
    assert load_model(str(tiny_model), device="cpu", backend="openvino", dtype="fp32").backend == "openvino"
    assert sorted(p.parent.name for p in cache.glob("openvino/*/*/model.xml")) == converted


def test_a_first_conversion_is_shown_part_by_part_and_a_cached_one_not_at_all(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SDPLAY_CACHE_DIR", str(tmp_path / "cache"))
    options = {"model": str(tiny_model), "device": "cpu", "backend": "openvino", "steps": 2}
    heard: list[ev.Event] = []
    sdplay.generate("x", on_event=heard.append, **options)
    converting = [(e.component, e.done, e.total) for e in heard if isinstance(e, ev.Converting)]
    parts = ["unet", "text_encoder", "vae_encoder", "vae_decoder"]
    assert converting == [*((part, i, 4) for i, part in enumerate(parts)), ("", 4, 4)]
    first_step = next(i for i, e in enumerate(heard) if isinstance(e, ev.Progress))
    assert all(not isinstance(e, ev.Converting) for e in heard[first_step:])  # all before the first step

    output = io.StringIO()
    with ProgressBar(Console(file=output, force_terminal=True, width=120)) as bar:
        for event in heard:
            bar(event)
    assert "converting the text encoder for OpenVINO (once per model)" in output.getvalue()

    unload_all()
    heard.clear()
    sdplay.generate("x", on_event=heard.append, **options)
    assert not any(isinstance(e, ev.Converting) for e in heard)


def test_changed_weights_convert_again_and_replace_the_stale_entry(tiny_model, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SDPLAY_CACHE_DIR", str(tmp_path / "cache"))
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    load_model(str(model_dir), device="cpu", backend="openvino", dtype="fp32")
    unload_all()
    before = {p.parent.name for p in (tmp_path / "cache").glob("openvino/*/*/model.xml")}

    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    with torch.no_grad():
        unet.conv_out.bias += 0.5  # a fine-tune, as far as the cache can tell
    unet.save_pretrained(model_dir / "unet")
    load_model(str(model_dir), device="cpu", backend="openvino", dtype="fp32")
    after = {p.parent.name for p in (tmp_path / "cache").glob("openvino/*/*/model.xml")}
    assert {n for n in before if n.startswith("unet-")} != {n for n in after if n.startswith("unet-")}
    assert len([n for n in after if n.startswith("unet-")]) == 1  # the stale UNet is gone
    assert before - after == {n for n in before if n.startswith("unet-")}  # the rest was reused


def test_a_library_upgrade_changes_the_cache_key(monkeypatch) -> None:
    module = torch.nn.Linear(4, 4)
    key = fingerprint(module, "unet", {"in_channels": 4})
    assert fingerprint(module, "unet", {"in_channels": 4}) == key
    monkeypatch.setattr("sdplay.backends.openvino.version", lambda name: "99.0")
    assert fingerprint(module, "unet", {"in_channels": 4}) != key


def test_without_openvino_the_backend_is_one_install_line_and_auto_is_pytorch(tiny_model, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    with pytest.raises(SdplayError, match=r"pip install 'sdplay\[openvino\]'"):
        load_model(str(tiny_model), device="cpu", backend="openvino")
    assert load_model(str(tiny_model), device="cpu", backend="auto").backend == "pytorch"


def test_auto_picks_openvino_on_a_cpu_unless_something_needs_pytorch() -> None:
    cpu = torch.device("cpu")
    assert choose_backend("auto", cpu, "auto", compile=False) == "openvino"
    assert choose_backend("auto", cpu, "fp16", compile=False) == "pytorch"
    assert choose_backend("auto", cpu, "auto", compile=True) == "pytorch"
    assert choose_backend("auto", torch.device("cuda"), "auto", compile=False) == "pytorch"
    for dtype, compile, message in (("fp16", False, "fp32, bf16"), ("auto", True, "--compile")):
        with pytest.raises(SdplayError, match=message):
            choose_backend("openvino", cpu, dtype, compile)
    with pytest.raises(SdplayError, match="unknown backend 'tpu'"):
        choose_backend("tpu", cpu, "auto", False)


class SVDAttention:
    """An attention processor using an operation OpenVINO cannot convert (an SVD)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        weights = (query @ key.transpose(-1, -2)).softmax(-1)
        weights = weights + 0 * torch.linalg.svd(weights)[1].sum()
        return attn.to_out[1](attn.to_out[0](weights @ value))


def test_a_model_openvino_cannot_convert_is_one_error_line_or_stays_on_pytorch_with_auto(tiny_model) -> None:
    pipe = load_model(str(tiny_model), device="cpu").base
    pipe.unet.set_attn_processor(SVDAttention())
    with pytest.raises(SdplayError) as info:
        run_on_backend(pipe, "openvino", "openvino", "fp32", "tiny")
    message = str(info.value)
    assert "aten::linalg_svd" in message and "--backend pytorch" in message and "\n" not in message
    assert run_on_backend(pipe, "openvino", "auto", "fp32", "tiny") == "pytorch"
    assert type(pipe.vae.decoder).__name__ == "Decoder"  # nothing was swapped: the pipeline still runs on PyTorch
    pipe(prompt="x", num_inference_steps=1, height=64, width=64, output_type="np")


def test_the_mini_model_draws_the_same_picture_on_openvino() -> None:
    expected = pictures("mini")
    unload_all()
    f32 = pictures("mini", backend="openvino", dtype="fp32")
    for mode in MODES:
        assert np.abs(f32[mode] - expected[mode]).max() < 2e-3, mode


def test_the_cli_runs_a_mode_on_openvino_and_records_the_backend(cache, tmp_path) -> None:
    env = {**os.environ, "SDPLAY_CACHE_DIR": str(cache)}
    args = ["txt2img", "a red circle", "--model", "mini", "--backend", "openvino", "--steps", "2", "-o", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "sdplay", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr
    picture = Path(result.stdout.splitlines()[0])
    assert json.loads((picture.parent / "settings.json").read_text())["backend"] == "openvino"


def test_the_cli_without_openvino_says_how_to_install_it(tmp_path) -> None:
    hide = "import sys; sys.modules['openvino'] = None; from sdplay.cli import main; main()"
    args = ["txt2img", "x", "--model", "mini", "--backend", "openvino", "-o", str(tmp_path)]
    result = subprocess.run([sys.executable, "-c", hide, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr == "error: --backend openvino needs OpenVINO: pip install 'sdplay[openvino]'\n"
