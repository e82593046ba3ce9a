"""Figures for loading, mode switching and the three image modes, each beside its baseline.

Baselines are what the original tool did: a fresh pipeline loaded for every call and every
mode, fp32 on the CPU / fp16 on a GPU, nothing else. "direct" is the diffusers pipeline called
by hand with the same arguments, to show what sdplay itself costs on top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from .. import images
from ..api import model_for
from ..devices import cpu_has_native_bf16
from ..engine import Job, run
from ..models import Model, unload_all
from ..settings import ImageSettings
from .timing import peak_memory_mb, ratio, reset_peak_memory, timed, timed_side_by_side

PROMPT = "a red circle on a blue background"
LESS_IS_BETTER = ("s", "ms", "MiB")  # a ratio above 1 is always the better side: faster, or less memory


def figure(name: str, unit: str, ours: float, baseline: float | None = None, baseline_is: str = "") -> dict:
    row: dict[str, Any] = {"figure": name, "unit": unit, "ours": round(ours, 5)}
    if baseline is not None:
        row.update(baseline=round(baseline, 5), baseline_is=baseline_is)
        row["ratio"] = ratio(baseline, ours) if unit in LESS_IS_BETTER else ratio(ours, baseline)
    return row


def naive_pipeline(model: Model, mode: str) -> Any:
    """Load the weights again from scratch for one call, as the original tool did."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    auto = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image}.get(
        mode, AutoPipelineForInpainting
    )
    dtype = torch.float16 if model.device.type == "cuda" else torch.float32
    kwargs = {"safety_checker": None} if hasattr(model.base, "safety_checker") else {}
    pipe = auto.from_pretrained(model.source.location, dtype=dtype, **kwargs).to(model.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def call_kwargs(settings: ImageSettings, init: Image.Image | None, mask: Image.Image | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "prompt": settings.prompt,
        "num_inference_steps": settings.steps,
        "guidance_scale": settings.guidance,
        "generator": torch.Generator("cpu").manual_seed(settings.seed),
    }
    if init is None or mask is not None:
        kwargs.update(width=settings.width, height=settings.height)
    if init is not None:
        kwargs.update(image=init, strength=settings.strength)
    if mask is not None:
        kwargs["mask_image"] = mask
    return kwargs


def bench_images(base: ImageSettings, repeats: int, naive: bool = True) -> list[dict]:
    """Load, switch and per-image figures for txt2img, img2img and inpaint."""
    unload_all()
    load_time = timed(lambda: model_for(base), torch.device("cpu"))
    model = model_for(base)
    device = model.device
    switch = timed(lambda: (model.pipeline("img2img"), model.pipeline("inpaint")), device)
    rows = [
        figure("model load", "s", load_time),
        figure("switch txt2img -> img2img -> inpaint", "s", switch, 2 * load_time, "reload per mode"),
    ]
    first_call = timed(lambda: run(Job(base.mode, base, write=False)), device)  # warm-up (compiles when --compile)
    settings = run(Job(base.mode, base, write=False)).settings  # the resolved size/steps/seed
    rows.append(figure("first txt2img call (warm-up, compile)", "s", first_call))
    init = run(Job(settings.mode, settings, write=False)).images[0]
    mask = right_half(init.size)
    for mode in ("txt2img", "img2img", "inpaint"):
        rows.extend(bench_mode(model, settings, mode, init, mask, repeats, naive))
    rows.extend(bench_parts(model, settings, repeats))
    if device.type == "cuda":
        rows.extend(bench_memory_savers(base, repeats))
    return rows


MEMORY_SAVERS = ("attention_slicing", "vae_tiling", "cpu_offload", "sequential_offload")


def bench_memory_savers(base: ImageSettings, repeats: int) -> list[dict]:
    """Peak GPU memory and speed of txt2img with each memory saver, beside the plain setup."""
    rows = []
    for saver in (None, *MEMORY_SAVERS):
        settings = base.with_values(**({saver: True} if saver else {}))
        unload_all()
        torch.cuda.empty_cache()
        run(Job(settings.mode, settings, write=False))
        reset_peak_memory(torch.device("cuda"))
        seconds = timed(lambda s=settings: run(Job(s.mode, s, write=False)), torch.device("cuda"), repeats)
        label = saver or "no memory saver"
        rows.append(figure(f"txt2img s/image, {label}", "s", seconds))
        rows.append(figure(f"txt2img peak memory, {label}", "MiB", peak_memory_mb(torch.device("cuda"))))
    unload_all()
    return rows


def right_half(size: tuple[int, int]) -> Image.Image:
    """An inpainting mask: the right half of the picture is redrawn."""
    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] // 2, 0, size[0], size[1]))
    return mask


def prepare_mode(
    model: Model, settings: ImageSettings, mode: str, init: Image.Image | None, mask: Image.Image | None
) -> images.PreparedRun:
    """The bench's settings as `mode` with its inputs, resolved against the model."""
    mode_settings = settings.with_values(
        mode=mode,
        init="<memory>" if mode != "txt2img" else None,
        mask="<memory>" if mode == "inpaint" else None,
        strength=None if mode == "txt2img" else (0.75 if mode == "img2img" else 1.0),
    )
    inputs = (init if mode != "txt2img" else None, mask if mode == "inpaint" else None)
    return images.prepare(mode_settings, model, inputs)


def image_maker(prepared: images.PreparedRun, model: Model) -> Callable[[], None]:
    """Make the prepared run's pictures the way a job does, nothing written."""
    return lambda: list(images.iter_images(prepared, model))


def bench_mode(
    model: Model, settings: ImageSettings, mode: str, init: Image.Image, mask: Image.Image, repeats: int, naive: bool
) -> list[dict]:
    prepared = prepare_mode(model, settings, mode, init, mask)
    ours = image_maker(prepared, model)
    pipe = model.pipeline(mode)
    kwargs = call_kwargs(prepared.settings, prepared.init, prepared.mask)

    def direct() -> None:
        with torch.inference_mode():
            pipe(**kwargs)

    ours()  # warm-up: first calls allocate and tune
    reset_peak_memory(model.device)
    ours_time, direct_time = timed_side_by_side([ours, direct], model.device, repeats)
    rows = [
        figure(f"{mode} s/image", "s", ours_time, direct_time, "diffusers called directly"),
        figure(f"{mode} peak memory", "MiB", peak_memory_mb(model.device)),
    ]
    if naive:
        use_scheduler = images.use_scheduler

        def fresh() -> None:
            pipe = naive_pipeline(model, mode)
            use_scheduler(pipe, model, prepared.settings.scheduler)
            with torch.inference_mode():
                pipe(**kwargs)

        rows.append(
            figure(
                f"{mode} s/image (fresh pipeline)",
                "s",
                ours_time,
                timed(fresh, model.device, 1),
                "pipeline loaded per call",
            )
        )
    return rows


def bench_parts(model: Model, settings: ImageSettings, repeats: int) -> list[dict]:
    """UNet steps per second with guidance (batch 2), VAE decode time, and the share of peak FLOPs."""
    pipe = model.base
    unet, device, dtype = pipe.unet, model.device, model.dtype
    factor = model.vae_scale_factor
    with torch.inference_mode():  # inference tensors, as in a pipeline call: a compiled UNet would recompile for others
        latents = torch.randn(
            2, unet.config.in_channels, settings.height // factor, settings.width // factor, device=device, dtype=dtype
        )
        context = torch.randn(
            2, pipe.tokenizer.model_max_length, unet.config.cross_attention_dim, device=device, dtype=dtype
        )
        pipe.scheduler.set_timesteps(settings.steps, device=device)
        timestep = pipe.scheduler.timesteps[len(pipe.scheduler.timesteps) // 2]

    def step(module: Any = unet) -> None:  # called as the pipelines call it: a compiled UNet reuses their graph
        with torch.inference_mode():
            module(
                latents,
                timestep,
                encoder_hidden_states=context,
                timestep_cond=None,
                cross_attention_kwargs=None,
                added_cond_kwargs=None,
                return_dict=False,
            )

    def decode() -> None:
        with torch.inference_mode():
            pipe.vae.decode(latents[:1, : pipe.vae.config.latent_channels] / pipe.vae.config.scaling_factor)

    step()
    step_time = timed(step, device, max(3, repeats))
    # counted on the plain module: the counter's global module hooks, met by a compiled UNet, leave it
    # running at eager speed afterwards (every compiled figure after this one was eager-slow)
    flops = unet_flops(lambda: step(getattr(unet, "_orig_mod", unet)))
    peak = matmul_flops_per_s(device, dtype)
    rows = [
        figure("UNet steps/s (batch 2, CFG)", "1/s", 1 / step_time),
        figure("VAE decode s/image", "s", timed(decode, device, max(3, repeats))),
        figure("UNet GFLOP per step", "GFLOP", flops / 1e9),
        figure("share of matmul peak per UNet step", "fraction", flops / step_time / peak),
    ]
    eager = not hasattr(unet, "_orig_mod")  # a bf16 copy would compile again: compare eager with eager only
    if device.type == "cpu" and dtype == torch.float32 and eager and cpu_has_native_bf16():
        rows.append(bench_bf16_step(unet, latents, context, timestep, step_time, repeats))
    return rows


def bench_bf16_step(
    unet: Any, latents: torch.Tensor, context: torch.Tensor, timestep: torch.Tensor, fp32_time: float, repeats: int
) -> dict:
    """A UNet step with bf16 weights beside fp32, on a CPU with native bf16 (AVX512-BF16, AMX)."""
    import copy

    half = copy.deepcopy(unet).to(torch.bfloat16)
    latents, context = latents.to(torch.bfloat16), context.to(torch.bfloat16)

    def step() -> None:
        with torch.inference_mode():
            half(latents, timestep, encoder_hidden_states=context)

    step()
    seconds = timed(step, latents.device, max(3, repeats))
    return figure("UNet steps/s with --dtype bf16", "1/s", 1 / seconds, 1 / fp32_time, "fp32 (the CPU default)")


def unet_flops(step: Any) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matmul throughput in this dtype: the achievable limit for a UNet step."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    seconds = timed(lambda: torch.mm(a, b), device, 5)
    return 2 * n**3 / seconds
