"""Each CPU backend beside PyTorch fp32, measured in turns in one process (`sdplay bench --backend`).

A variant is a backend and the precision asked of it (`openvino` = OpenVINO's own pick, `openvino:fp32`,
`pytorch:bf16`, ...). Every variant and PyTorch fp32 stay loaded side by side, and each figure times
them in turns (a, b, a, b, ...), so a change in the machine's load hits all alike. Rows per variant:
OpenVINO's conversion (into a fresh cache folder, so it is really timed) and its memory peak, the
first UNet call at each size (OpenVINO compiles there), ms per UNet step (batch 2, as with guidance)
at 256 and 512 px with the largest difference of its output from PyTorch fp32's (as a share of that
output's range), the same step through OpenVINO called directly (what sdplay's wrapper adds),
s per image of each image mode, how far a txt2img picture moves from PyTorch fp32's (same seed),
dream and animate frames/s, and the memory the loaded model holds. `figures` picks groups of them
(FIGURES), for a model whose every figure would take hours, such as SD 1.5 at 512 px on a small CPU.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import models
from ..animate.inputs import read_animation_inputs
from ..animate.renderer import Renderer
from ..animate.run import resolve
from ..api import model_for
from ..backends import choose_backend
from ..devices import check_dtype_name, default_batch_size
from ..engine import Job, run
from ..errors import SdplayError
from ..settings import ImageSettings
from .animate import animation, time_run
from .dream import walk_settings
from .images import figure, image_maker, prepare_mode, right_half
from .timing import resident_mb, resident_peak, timed, timed_side_by_side

CPU = torch.device("cpu")
BASELINE = ("pytorch", "fp32")
BASELINE_IS = "PyTorch fp32"
UNET_SIZES = (256, 512)
MODES = ("txt2img", "img2img", "inpaint")
FIGURES = ("conversion", "memory", "unet", *MODES, "dream", "animate")  # the groups of rows, in order


def check_figures(names: list[str] | None) -> tuple[str, ...]:
    """The figure groups asked for (comma-separated or repeated; all when none), or an error naming them."""
    if not names:
        return FIGURES
    chosen = [n.strip().lower() for n in ",".join(names).split(",") if n.strip()]
    unknown = [n for n in chosen if n not in FIGURES]
    if unknown:
        raise SdplayError(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    return tuple(f for f in FIGURES if f in chosen)


def parse_variants(specs: list[str], dtype: str) -> list[tuple[str, str]]:
    """`openvino`, `openvino:fp32`, `pytorch:bf16`, comma-separated or repeated -> (backend, precision);
    a bare backend takes `dtype`, `auto` the backend it picks here. PyTorch fp32 is always measured."""
    variants = []
    for spec in ",".join(specs).split(","):
        name, _, precision = spec.strip().partition(":")
        precision = check_dtype_name(precision or dtype)
        variant = (choose_backend(name, CPU, precision, False), precision)
        if variant != BASELINE and variant not in variants:
            variants.append(variant)
    return variants


def label(variant: tuple[str, str]) -> str:
    backend, precision = variant
    return f"{backend} {precision}"


@contextmanager
def side_by_side(count: int) -> Iterator[None]:
    """Keep `count` models loaded at once and convert into a fresh cache, undone afterwards."""
    kept, cache = models.KEEP_MODELS, os.environ.get("SDPLAY_CACHE_DIR")
    with tempfile.TemporaryDirectory() as scratch:
        models.KEEP_MODELS, os.environ["SDPLAY_CACHE_DIR"] = count, scratch
        try:
            yield
        finally:
            models.unload_all()
            models.KEEP_MODELS = kept
            if cache is None:
                os.environ.pop("SDPLAY_CACHE_DIR", None)
            else:
                os.environ["SDPLAY_CACHE_DIR"] = cache


def bench_backends(
    base: ImageSettings,
    variants: list[tuple[str, str]],
    repeats: int,
    figures: tuple[str, ...] = FIGURES,
    dream_frames: int = 8,
    animate_frames: int = 4,
) -> list[dict]:
    """The chosen figures of every variant beside PyTorch fp32 (see the module's docstring)."""
    settings = {v: base.with_values(device="cpu", backend=v[0], dtype=v[1]) for v in [BASELINE, *variants]}
    with side_by_side(len(settings)):
        rows = conversion_rows(settings, variants) if "conversion" in figures else []
        loaded, held = load_each(settings, measure_memory="memory" in figures)
        rows += [figure(f"{label(v)}: memory of the loaded model", "MiB", held[v], held[BASELINE], BASELINE_IS)
                 for v in variants if held]  # fmt: skip
        if "unet" in figures:
            for size in UNET_SIZES:
                rows += unet_rows(loaded, variants, size, repeats)
        modes = [m for m in MODES if m in figures]
        if modes:
            rows += mode_rows(loaded, settings, variants, repeats, modes)
        if "dream" in figures:
            rows += dream_rows(settings, variants, repeats, dream_frames)
        if "animate" in figures:
            rows += animate_rows(settings, variants, repeats, animate_frames)
    return rows


def conversion_rows(settings: dict[tuple[str, str], ImageSettings], variants: list[tuple[str, str]]) -> list[dict]:
    """OpenVINO's conversion, timed with the first load of an OpenVINO variant (later ones find it
    cached: the precision is a compile setting), and the memory it peaks at above what was held."""
    for variant in variants:
        if variant[0] == "openvino":
            held = resident_mb()
            with resident_peak() as peak:
                seconds = timed(lambda v=variant: model_for(settings[v]), CPU)
            models.unload_all()
            rows = [figure("openvino: conversion and first load (once per model)", "s", seconds)]
            if held is not None:
                name = "openvino: conversion's memory peak above the process's"
                rows.append(figure(name, "MiB", peak["peak"] - held))
            return rows
    return []


def load_each(
    settings: dict[tuple[str, str], ImageSettings], measure_memory: bool
) -> tuple[dict[tuple[str, str], models.Model], dict[tuple[str, str], float]]:
    """Every variant loaded, one after the other, and (measure_memory) the memory each holds after a txt2img
    (empty off Linux)."""
    loaded, held = {}, {}
    for variant, model_settings in settings.items():
        before = resident_mb()
        loaded[variant] = model = model_for(model_settings)
        if not measure_memory:
            continue
        image_maker(prepare_mode(model, model_settings, "txt2img", None, None), model)()
        after = resident_mb()
        if before is not None and after is not None:
            held[variant] = after - before
    return loaded, held


def unet_rows(
    loaded: dict[tuple[str, str], models.Model], variants: list[tuple[str, str]], size: int, repeats: int
) -> list[dict]:
    """ms per UNet step at `size` px (batch 2, as with guidance), OpenVINO's compile at its first call,
    and OpenVINO called directly on the same compiled model."""
    steps = {v: unet_step(model, size) for v, model in loaded.items()}
    rows = []
    expected = steps[BASELINE]()[0].float()
    for variant in variants:
        start = time.perf_counter()
        out = steps[variant]()[0].float()
        if variant[0] == "openvino":
            rows.append(
                figure(f"{label(variant)}: first UNet call at {size} px (compiles)", "s", time.perf_counter() - start)
            )
        moved = float((out - expected).abs().max() / (expected.max() - expected.min()))
        rows.append(
            figure(
                f"{label(variant)}: UNet output at {size} px, largest difference from PyTorch fp32",
                "share of its range",
                moved,
            )
        )
    direct = {v: direct_step(loaded[v], size) for v in variants if v[0] == "openvino"}
    seconds = in_turns({**steps, **{(v, "direct"): call for v, call in direct.items()}}, repeats)
    for variant in variants:
        ms, baseline_ms = 1000 * seconds[variant], 1000 * seconds[BASELINE]
        rows.append(figure(f"{label(variant)}: UNet step at {size} px", "ms", ms, baseline_ms, BASELINE_IS))
        if variant in direct:
            name = f"{label(variant)}: UNet step at {size} px through sdplay"
            rows.append(figure(name, "ms", ms, 1000 * seconds[(variant, "direct")], "OpenVINO called directly"))
    return rows


def in_turns(calls: dict[Any, Callable[[], Any]], repeats: int) -> dict[Any, float]:
    """Best seconds of each call by its key, the calls taken in turns (timed_side_by_side)."""
    return dict(zip(calls, timed_side_by_side(list(calls.values()), CPU, repeats), strict=True))


def unet_inputs(model: models.Model, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    config = model.base.unet.config
    side = size // model.vae_scale_factor
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, config.in_channels, side, side, generator=generator).to(model.dtype)
    context = torch.randn(2, model.base.tokenizer.model_max_length, config.cross_attention_dim, generator=generator)
    return latents, torch.tensor(500), context.to(model.dtype)


def unet_step(model: models.Model, size: int) -> Callable[[], Any]:
    latents, timestep, context = unet_inputs(model, size)

    def step() -> Any:
        with torch.inference_mode():
            return model.base.unet(latents, timestep, context, return_dict=False)

    return step


def direct_step(model: models.Model, size: int) -> Callable[[], Any]:
    """The UNet step on OpenVINO's compiled model itself, with the arrays made once."""
    latents, timestep, context = unet_inputs(model, size)
    run_ = model.base.unet.openvino
    arrays = [latents.numpy(), timestep.float().expand(2).numpy().copy(), context.numpy()]
    compiled = run_.by_shape[tuple(a.shape for a in arrays)]  # compiled by the step through sdplay
    return lambda: compiled(arrays, share_inputs=True)


def mode_rows(
    loaded: dict[tuple[str, str], models.Model],
    settings: dict[tuple[str, str], ImageSettings],
    variants: list[tuple[str, str]],
    repeats: int,
    modes: list[str],
) -> list[dict]:
    """s per image of each of `modes`, the same settings and inputs for every variant, and how far each
    variant's txt2img picture is from PyTorch fp32's (same seed). That picture's run is txt2img's warm-up."""
    pictures = {v: np.asarray(run(Job("txt2img", s, write=False)).images[0], np.float32) for v, s in settings.items()}
    rows = [
        figure(
            f"{label(v)}: txt2img mean pixel difference from PyTorch fp32",
            "levels of 255",
            float(np.abs(pictures[v] - pictures[BASELINE]).mean()),
        )  # fmt: skip
        for v in variants
    ]
    init = Image.fromarray(pictures[BASELINE].astype(np.uint8))
    mask = right_half(init.size)
    for mode in modes:
        makers = {v: image_maker(prepare_mode(loaded[v], settings[v], mode, init, mask), loaded[v]) for v in settings}
        for make in makers.values() if mode != "txt2img" else ():
            make()  # warm-up: a new shape compiles on OpenVINO
        seconds = in_turns(makers, repeats)
        rows += [
            figure(f"{label(v)}: {mode} s/image", "s", seconds[v], seconds[BASELINE], BASELINE_IS) for v in variants
        ]
    return rows


def dream_rows(
    settings: dict[tuple[str, str], ImageSettings], variants: list[tuple[str, str]], repeats: int, frames: int
) -> list[dict]:
    """Frames per second of the same walk, batched as sdplay batches it by default."""
    first = run(Job("dream", walk_settings(settings[BASELINE], 1, 2), write=False)).settings
    batch = default_batch_size(CPU, first.width * first.height)
    walks = {v: walk_settings(s, batch, frames) for v, s in settings.items()}
    calls = {v: (lambda w=walk: run(Job("dream", w, write=False))) for v, walk in walks.items()}
    for call in calls.values():
        call()
    seconds = in_turns(calls, repeats)
    return [
        figure(
            f"{label(v)}: dream frames/s (batch {batch})",
            "1/s",
            frames / seconds[v],
            frames / seconds[BASELINE],
            BASELINE_IS,
        )  # fmt: skip
        for v in variants
    ]


def animate_rows(
    settings: dict[tuple[str, str], ImageSettings], variants: list[tuple[str, str]], repeats: int, frames: int
) -> list[dict]:
    """Frames per second of a 2D camera move, cadence 1 (every frame diffused), flat depth."""
    runs = {}
    for variant, model_settings in settings.items():
        start = animation(model_settings, "none", frames + 1, model_settings.steps, model_settings.width)
        resolved = resolve(start, model_for(start), read_animation_inputs(start))
        runs[variant] = resolved.with_values(animation_mode="2D", diffusion_cadence=1)
    times: dict[tuple[str, str], list[float]] = {v: [] for v in runs}
    for animated in runs.values():
        time_run(Renderer, animated)  # warm-up
    for _ in range(max(1, repeats)):  # in turns, the best kept, as timed_side_by_side does
        for variant, animated in runs.items():
            times[variant].append(time_run(Renderer, animated))
    seconds = {v: min(t) for v, t in times.items()}
    return [
        figure(f"{label(v)}: animate 2D frames/s", "1/s", frames / seconds[v], frames / seconds[BASELINE], BASELINE_IS)
        for v in variants
    ]
