"""Train the bundled mini model from scratch: `python -m sdplay.mini.train --out DIR [--seed N] [--stage ...]`.

Stage `vae` trains a factor-4 AutoencoderKL as an (almost) deterministic autoencoder and checks that its
reconstructions of drawn pictures still classify right (the gate); stage `unet` loads that VAE and trains
a UNet2DConditionModel with cross-attention together with a small CLIP text encoder; `all` does both.
Every random draw comes from the seed and the step number, so a staged run equals an `all` run.
Writes a complete StableDiffusionPipeline folder to DIR/model; sample grids go to DIR/samples.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sdplay.mini import DEFAULT_GUIDANCE, DEFAULT_STEPS
from sdplay.mini.classify import score
from sdplay.mini.dataset import (
    FREE_RANGE,
    HELD_OUT,
    SEEN_TRIPLES,
    SIZE,
    Scene,
    draw_all,
    free_geometry,
    make_caption,
    random_scene,
    sample_batch,
    to_tensor_range,
    vocabulary,
)
from sdplay.mini.tokenizer import MAX_LENGTH, build_tokenizer, build_vocab_and_merges
from sdplay.quiet import silence_libraries

VAE_STAGE, UNET_STAGE, EVAL_STREAM = 1, 2, 3  # separate random streams per stage
VAE_GROUPS, UNET_GROUPS, TEXT_HEADS = 8, 16, 4  # norm groups divide the widths; heads divide the text width
N = TypeVar("N", int, float)  # what a checked option holds
GATE = 0.90  # VAE reconstructions must classify at least this well on fg, bg and shape


def device_auto() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def step_rng(seed: int, stream: int, step: int) -> np.random.Generator:
    """Independent generator per (seed, stage, step): data does not depend on what ran before."""
    return np.random.default_rng([seed, stream, step])


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def save_grid(images: list[Image.Image], path: Path, cols: int = 8) -> None:
    """Paste pictures into one PNG (for looking at progress; never committed)."""
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h), (128, 128, 128))
    for i, im in enumerate(images):
        grid.paste(im, ((i % cols) * w, (i // cols) * h))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def to_pil(batch: torch.Tensor) -> list[Image.Image]:
    """[-1, 1] NCHW -> PIL pictures."""
    arr = ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


# ----------------------------------------------------------------------------------------------- VAE


def build_vae(channels: tuple[int, ...]) -> torch.nn.Module:
    """Factor 2**(len(channels)-1) autoencoder; no mid-block attention (it only blurred colours here)."""
    from diffusers import AutoencoderKL

    n = len(channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        sample_size=SIZE,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=channels,
        layers_per_block=1,
        norm_num_groups=VAE_GROUPS,
        mid_block_add_attention=False,
    )


@torch.inference_mode()
def vae_reconstruction_scores(vae: torch.nn.Module, seed: int, n: int = 400) -> dict[str, float]:
    """Draw fresh pictures (all triples), encode to the posterior mean, decode, classify."""
    dev = next(vae.parameters()).device
    rng = step_rng(seed, EVAL_STREAM, 0)
    scenes = [random_scene(rng, allow_held_out=True) for _ in range(n)]
    pixels = draw_all(scenes)
    recon: list[Image.Image] = []
    abs_err = 0.0
    for i in range(0, n, 100):
        x = torch.from_numpy(to_tensor_range(pixels[i : i + 100])).to(dev)
        y = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        abs_err += float((y - x).abs().sum()) * 127.5
        recon += to_pil(y)
    out = score(recon, [(s.color, s.shape, s.background, s.position_word) for s in scenes])
    out["mean_abs_error_0_255"] = abs_err / pixels.size
    return out


@torch.inference_mode()
def latent_std(vae: torch.nn.Module, seed: int, n: int = 512) -> float:
    dev = next(vae.parameters()).device
    pixels, _, _ = sample_batch(step_rng(seed, EVAL_STREAM, 1), n)
    z = vae.encode(torch.from_numpy(to_tensor_range(pixels)).to(dev)).latent_dist.mean
    return float(z.std())


def train_vae(args: argparse.Namespace, out: Path, dev: torch.device) -> None:
    """Autoencoder on the posterior mean with L1 + MSE and a tiny KL; saves DIR/vae + gate scores."""
    torch.manual_seed(args.seed * 1000 + VAE_STAGE)
    vae = build_vae(tuple(args.vae_channels)).to(dev)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    t0 = time.time()
    with make_progress() as bar:
        task = bar.add_task("VAE", total=args.vae_steps, info="")
        for step in range(args.vae_steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, args.vae_steps, args.vae_lr, 100)
            pixels, _, _ = sample_batch(step_rng(args.seed, VAE_STAGE, step), args.vae_batch)
            x = torch.from_numpy(to_tensor_range(pixels)).to(dev)
            post = vae.encode(x).latent_dist
            y = vae.decode(post.mean).sample
            loss = F.l1_loss(y, x) + F.mse_loss(y, x) + 1e-6 * post.kl().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            bar.update(task, advance=1, info=f"loss {loss.item():.4f}")
            if step % 100 == 0 or step == args.vae_steps - 1:
                print(f"vae step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
            if (step + 1) % args.grid_every == 0 or step == args.vae_steps - 1:
                with torch.inference_mode():
                    save_grid(to_pil(x[:16]) + to_pil(y[:16]), out / "samples" / f"vae_{step + 1:05d}.png")
    make_posterior_deterministic(vae)
    vae.half().float()  # the shipped weights are fp16: train the UNet on exactly those
    vae.eval()
    scaling = 1.0 / latent_std(vae, args.seed)
    vae.register_to_config(scaling_factor=scaling)
    scores = vae_reconstruction_scores(vae, args.seed)
    scores.update(
        steps=args.vae_steps,
        seconds=round(time.time() - t0, 1),
        scaling_factor=scaling,
        channels=list(args.vae_channels),
        passed=all(scores[k] >= GATE for k in ("foreground", "background", "shape")),
    )
    vae.save_pretrained(out / "vae")
    (out / "vae" / "gate.json").write_text(json.dumps(scores, indent=2))
    print("VAE gate:", json.dumps(scores), flush=True)


def make_posterior_deterministic(vae: torch.nn.Module) -> None:
    """Declare the posterior variance zero: training decodes the posterior mean only, so the learned log-variance
    means nothing (the tiny KL term pulls it to the prior's std of 1, larger than the latents' own spread). Pipelines
    encode img2img and inpaint inputs with `latent_dist.sample()`; with that variance every input picture came back
    under latent noise stronger than the picture, which is what scattered specks over low-strength img2img and
    animation frames. The log-variance half of `quant_conv` is set to the lowest value diffusers keeps (-30, a
    standard deviation of 3e-7); the mean half is untouched, so decoding and txt2img do not change."""
    conv = vae.quant_conv
    half = conv.out_channels // 2
    with torch.no_grad():
        conv.weight[half:] = 0.0
        conv.bias[half:] = -30.0


def load_vae(out: Path, dev: torch.device, check_gate: bool) -> torch.nn.Module:
    """Load the stage-1 VAE and refuse to go on if its reconstructions failed the gate."""
    from diffusers import AutoencoderKL

    if check_gate:
        gate = json.loads((out / "vae" / "gate.json").read_text())
        print("VAE gate scores:", json.dumps(gate), flush=True)
        if not gate["passed"]:
            raise SystemExit(f"VAE reconstructions below the {GATE:.0%} gate; rerun the vae stage longer")
    vae = AutoencoderKL.from_pretrained(out / "vae").to(dev).eval()
    vae.requires_grad_(False)
    return vae


# ---------------------------------------------------------------------------------------------- UNet


def build_text_encoder(vocab_size: int, hidden: int, layers: int, bos: int, eos: int) -> torch.nn.Module:
    """A small CLIP text encoder with exactly as many positions as the tokenizer's max length."""
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=TEXT_HEADS,
        max_position_embeddings=MAX_LENGTH,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
        projection_dim=hidden,
    )
    return CLIPTextModel(cfg)


def build_unet(channels: tuple[int, ...], text_dim: int) -> torch.nn.Module:
    """Cross-attention at every level, the 16x16 one included (captions are <= 13 tokens, so it is cheap),
    plus the pooled caption added to the time embedding so every ResNet sees the colours."""
    from diffusers import UNet2DConditionModel

    n = len(channels)
    return UNet2DConditionModel(
        sample_size=SIZE // 4,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=channels,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        cross_attention_dim=text_dim,
        attention_head_dim=4,
        norm_num_groups=UNET_GROUPS,
        addition_embed_type="text",
        addition_embed_type_num_heads=TEXT_HEADS,
    )


def build_scheduler() -> object:
    """DDIM, v-prediction on SD's scaled-linear betas rescaled to zero terminal SNR, trailing spacing:
    the first sampling step starts from pure noise, as in training, so plain backgrounds come out right."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=1,
    )


def make_pipeline(vae, text_encoder, tokenizer, unet):  # noqa: ANN001, ANN201 - diffusers types
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def export_pipeline(vae, text_encoder, tokenizer, unet, path: Path) -> None:  # noqa: ANN001
    """Save a diffusers folder plus vocab.json/merges.txt. VAE and UNet are stored in fp16 (diffusers loads
    them as fp32 by default); the tiny text encoder stays fp32 because transformers keeps the stored dtype."""
    parts = [
        copy.deepcopy(vae).to("cpu", torch.float16),
        copy.deepcopy(text_encoder).to("cpu", torch.float32),
        copy.deepcopy(unet).to("cpu", torch.float16),
    ]
    tmp = path.with_name(path.name + ".tmp")
    make_pipeline(parts[0], parts[1], tokenizer, parts[2]).save_pretrained(tmp, safe_serialization=True)
    write_slow_tokenizer_files(tmp / "tokenizer")
    if path.exists():
        import shutil

        shutil.rmtree(path)
    tmp.rename(path)


@torch.inference_mode()
def sample_scores(
    pipe,  # noqa: ANN001 - diffusers pipeline
    seed: int,
    n_per_set: int = 48,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
) -> dict:
    """Quick quality read-out during training: seen and held-out triples, classified."""
    rng = np.random.default_rng([seed, EVAL_STREAM, 2])
    out: dict[str, object] = {}
    for name, pool in (("seen", SEEN_TRIPLES), ("held_out", HELD_OUT)):
        triples = [pool[int(i)] for i in rng.choice(len(pool), n_per_set, replace=len(pool) < n_per_set)]
        prompts = [make_caption(*t) for t in triples]
        gen = torch.Generator("cpu").manual_seed(seed)
        images = pipe(
            prompts, num_inference_steps=steps, guidance_scale=guidance, generator=gen, height=SIZE, width=SIZE
        ).images
        out[name] = score(images, [(*t, None) for t in triples])
        out[name + "_images"] = images
    return out


def load_denoiser(folder: Path, dev: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Text encoder and UNet of an exported pipeline folder in fp32, to go on training them (`--init`)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", torch_dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=torch.float32)
    return text_encoder.to(dev).train(), unet.to(dev).train()


def train_unet(args: argparse.Namespace, out: Path, dev: torch.device, vae: torch.nn.Module) -> None:
    """UNet + text encoder trained jointly on VAE latents; their weight averages (decay --ema; 0 keeps the trained
    weights) are sampled and exported."""
    from diffusers import DDPMScheduler

    torch.manual_seed(args.seed * 1000 + UNET_STAGE)
    gen = torch.Generator("cpu").manual_seed(args.seed * 1000 + UNET_STAGE)
    tokenizer = build_tokenizer()
    if args.init:
        text_encoder, unet = load_denoiser(args.init, dev)
    else:
        text_encoder = build_text_encoder(
            len(tokenizer), args.text_hidden, args.text_layers, tokenizer.bos_token_id, tokenizer.eos_token_id
        ).to(dev)
        unet = build_unet(tuple(args.unet_channels), args.text_hidden).to(dev)
    ema_te, ema_unet = copy.deepcopy(text_encoder).eval(), copy.deepcopy(unet).eval()
    for m in (ema_te, ema_unet):
        m.requires_grad_(False)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    print(
        f"unet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M, text encoder "
        f"{sum(p.numel() for p in text_encoder.parameters()) / 1e6:.2f} M parameters",
        flush=True,
    )
    opt = torch.optim.AdamW(params, lr=args.unet_lr, weight_decay=0.01)
    noise_sched = DDPMScheduler.from_config(build_scheduler().config)
    alphas = noise_sched.alphas_cumprod.to(dev)
    scaling = vae.config.scaling_factor
    latent_channels = vae.config.latent_channels
    latent_side = SIZE // 2 ** (len(vae.config.block_out_channels) - 1)
    steps, t0 = args.unet_steps, time.time()
    latent_shape = (latent_channels, latent_side, latent_side)
    inputs = step_inputs(args, gen, tokenizer, latent_shape, noise_sched.config.num_train_timesteps)
    with make_progress() as bar, pictures_drawn(inputs, args.workers) as batches:
        task = bar.add_task("UNet", total=steps, info="")
        for step, (ids, noise, t, pixels) in enumerate(batches):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, args.unet_lr, args.warmup)
            noise, t = noise.to(dev), t.to(dev)
            with torch.inference_mode():
                x = torch.from_numpy(to_tensor_range(pixels)).to(dev)
                latents = vae.encode(x).latent_dist.mean * scaling
            latents = latents.clone()
            noisy = noise_sched.add_noise(latents, noise, t)
            target = noise_sched.get_velocity(latents, noise, t)
            cond = text_encoder(ids.to(dev)).last_hidden_state
            pred = unet(noisy, t, encoder_hidden_states=cond).sample
            snr = alphas[t] / (1 - alphas[t]).clamp(min=1e-8)
            weight = (args.snr_gamma / snr.clamp(min=1e-8)).clamp(max=1.0)  # min-SNR: tame near-clean steps
            loss = (weight * (pred - target).pow(2).mean(dim=(1, 2, 3))).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            decay = min(args.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for ema, live in ((ema_unet, unet), (ema_te, text_encoder)):
                    for pe, pl in zip(ema.parameters(), live.parameters(), strict=True):
                        pe.lerp_(pl, 1 - decay)
            bar.update(task, advance=1, info=f"loss {loss.item():.4f}")
            if step % 100 == 0:
                print(f"unet step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
            last_step = step == steps - 1
            if last_step or (step + 1) % args.save_every == 0:
                checkpoint(vae, ema_te, tokenizer, ema_unet, out, args.seed, step + 1, time.time() - t0, last_step)


class StepInputs(NamedTuple):
    """What one UNet step trains on, before its pictures are drawn."""

    ids: torch.Tensor
    noise: torch.Tensor
    t: torch.Tensor
    scenes: list[Scene]


def step_inputs(
    args: argparse.Namespace,
    gen: torch.Generator,
    tokenizer,  # noqa: ANN001 - transformers tokenizer
    latent_shape: tuple[int, ...],
    timesteps: int,
) -> Iterator[StepInputs]:
    """Each step's captions, noise, timesteps and scenes, drawn in order from the seed and the step number, so that
    a run is the same whatever --workers draws its pictures."""

    @functools.cache
    def token_ids(caption: str) -> list[int]:  # the captions are few: each is tokenized once
        return tokenizer(caption, padding="max_length", max_length=MAX_LENGTH, truncation=True).input_ids

    for step in range(args.unet_steps):
        rng = step_rng(args.seed, UNET_STAGE, step)
        scenes = [random_scene(rng, square_share=args.square_share) for _ in range(args.unet_batch)]
        drop = rng.random(args.unet_batch) < 0.1  # empty captions teach the unconditional branch (CFG)
        ids = torch.tensor([token_ids("" if d else s.caption) for s, d in zip(scenes, drop, strict=True)])
        noise = torch.randn((args.unet_batch, *latent_shape), generator=gen)
        t = torch.randint(0, timesteps, (args.unet_batch,), generator=gen)
        if args.free_geometry_share > 0:
            scenes = free_at_low_noise(scenes, t.numpy(), args, rng)
        yield StepInputs(ids, noise, t, scenes)


@contextmanager
def pictures_drawn(
    inputs: Iterator[StepInputs], workers: int
) -> Iterator[Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]]]:
    """(ids, noise, t, pixels) per step. Drawing a step's 64 supersampled pictures takes about 20 ms of a CPU
    core, little beside a CPU step (about 1 s) but not beside a GPU step of this small UNet, so with `workers` > 0
    that many processes draw a few steps ahead, in order."""
    if workers == 0:
        yield ((i.ids, i.noise, i.t, draw_all(i.scenes)) for i in inputs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:

        def ahead() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]]:
            queue: deque = deque()
            for item in inputs:
                queue.append((item, pool.apply_async(draw_all, (item.scenes,))))
                if len(queue) > 2 * workers:
                    done, pixels = queue.popleft()
                    yield done.ids, done.noise, done.t, pixels.get()
            for done, pixels in queue:
                yield done.ids, done.noise, done.t, pixels.get()

        yield ahead()


def free_at_low_noise(
    scenes: list[Scene], t: np.ndarray, args: argparse.Namespace, rng: np.random.Generator
) -> list[Scene]:
    """Scenes whose timestep is below --free-geometry-below get free geometry with probability
    --free-geometry-share (dataset.free_geometry: what img2img and animation hand the model)."""
    chosen = (t < args.free_geometry_below) & (rng.random(len(scenes)) < args.free_geometry_share)
    return [
        free_geometry(s, rng, args.free_geometry_largest, args.free_geometry_centred) if c else s
        for s, c in zip(scenes, chosen, strict=True)
    ]


def checkpoint(
    vae,
    text_encoder,
    tokenizer,
    unet,
    out: Path,
    seed: int,
    step: int,
    seconds: float,  # noqa: ANN001
    final: bool,
) -> None:
    """Export the averaged (--ema) pipeline to DIR/model, sample a grid and log quick scores, so a usable model exists
    at any time."""
    export_pipeline(vae, text_encoder, tokenizer, unet, out / "model")
    pipe = make_pipeline(vae, text_encoder, tokenizer, unet)
    pipe.set_progress_bar_config(disable=True)
    res = sample_scores(pipe, seed)
    save_grid(res.pop("seen_images")[:32] + res.pop("held_out_images")[:32], out / "samples" / f"unet_{step:06d}.png")
    info = {"step": step, "seconds": round(seconds, 1), "final": final, **res}
    with (out / "unet_log.jsonl").open("a") as f:
        f.write(json.dumps(info) + "\n")
    print("checkpoint:", json.dumps(info), flush=True)


def write_slow_tokenizer_files(folder: Path) -> None:
    """vocab.json + merges.txt next to tokenizer.json, for transformers versions that load the slow class."""
    vocab, merges = build_vocab_and_merges(vocabulary())
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=1))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


# ---------------------------------------------------------------------------------------------- main


def checked(kind: Callable[[str], N], what: str, ok: Callable[[N], bool]) -> Callable[[str], N]:
    """An argparse type: `text` read as `kind` and accepted by `ok`, else argparse's one-line error naming `what`
    was wanted. NaN, a negative rate or an odd width would otherwise train a broken model or fail with a traceback,
    possibly an hour into the run."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


share = checked(float, "a share from 0 to 1", lambda v: 0 <= v <= 1)  # a decay or share; false for NaN
positive = checked(float, "a number above 0", lambda v: math.isfinite(v) and v > 0)  # a rate or gamma


def whole(least: int, multiple_of: int = 1) -> Callable[[str], int]:
    """A whole number of at least `least`, and a multiple of `multiple_of` for widths that norm groups or attention
    heads divide."""
    what = f"a whole number of at least {least}" + (f" and a multiple of {multiple_of}" if multiple_of > 1 else "")
    return checked(int, what, lambda v: v >= least and v % multiple_of == 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sdplay.mini.train", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="run folder (vae/, model/, samples/ go here)")
    p.add_argument("--seed", type=whole(0), default=0)
    p.add_argument("--stage", choices=("vae", "unet", "all"), default="all")
    p.add_argument("--threads", type=whole(1), default=2, help="CPU threads (ignored on GPU)")
    p.add_argument(
        "--workers",
        type=whole(0),
        default=0,
        help="processes drawing the UNet's pictures ahead (for a GPU; on the CPU the step itself dominates)",
    )
    p.add_argument("--vae-channels", type=whole(8, multiple_of=VAE_GROUPS), nargs="+", default=[16, 32, 64])
    p.add_argument("--vae-steps", type=whole(1), default=1000)
    p.add_argument("--vae-batch", type=whole(1), default=24)
    p.add_argument("--vae-lr", type=positive, default=2e-3)
    p.add_argument("--unet-channels", type=whole(16, multiple_of=UNET_GROUPS), nargs="+", default=[32, 64, 128])
    p.add_argument("--unet-steps", type=whole(1), default=5200)
    p.add_argument("--snr-gamma", type=positive, default=5.0)
    p.add_argument(
        "--ema",
        type=share,
        default=0.995,
        help="decay of the weight average that is sampled and exported (0: the trained weights themselves); 0.999 lags "
        "the last steps, where shapes still improve",
    )
    p.add_argument("--unet-batch", type=whole(1), default=64)
    p.add_argument("--unet-lr", type=positive, default=1e-3)
    p.add_argument("--text-hidden", type=whole(4, multiple_of=TEXT_HEADS), default=64)
    p.add_argument("--text-layers", type=whole(1), default=2)
    p.add_argument("--grid-every", type=whole(1), default=500)
    p.add_argument("--save-every", type=whole(1), default=600, help="export DIR/model every N steps")
    p.add_argument(
        "--init",
        type=Path,
        help="go on training the UNet and text encoder of this pipeline folder (its VAE too) instead of new ones",
    )
    p.add_argument("--warmup", type=whole(0), default=200, help="UNet learning-rate warm-up steps")
    p.add_argument(
        "--free-geometry-share",
        type=share,
        default=0.2,
        help="share of the pictures below --free-geometry-below drawn at any size and place (0: none)",
    )
    p.add_argument(
        "--square-share",
        type=share,
        default=0.5,
        help="share of UNet training pictures showing a square (circles and triangles share the rest)",
    )
    p.add_argument(
        "--free-geometry-below", type=whole(0), default=500, help="timestep under which geometry may be free"
    )
    p.add_argument(
        "--free-geometry-largest",
        type=whole(FREE_RANGE[0]),
        default=FREE_RANGE[1],
        help="largest free shape side in pixels",
    )
    p.add_argument(
        "--free-geometry-centred",
        type=share,
        default=0.0,
        help="share of the free shapes centred on the picture, where a zoom ends up (near-filling shapes)",
    )
    p.add_argument("--ignore-gate", action="store_true", help="train the UNet even if the VAE failed its gate")
    p.add_argument("--debug", action="store_true", help="let the libraries' warnings and progress bars through")
    args = p.parse_args(argv)
    if problem := missing_input(args):
        p.error(problem)
    return args


def missing_input(args: argparse.Namespace) -> str | None:
    """What the UNet stage would load and is not on disk, said before anything runs: the loaders would otherwise
    fail with a traceback, or ask the hub for a folder that is not there."""
    if args.init:
        for part in ("vae", "text_encoder", "unet"):
            if not (args.init / part / "config.json").is_file():
                return f"--init {args.init} is not a pipeline folder (no {part}/config.json)"
    elif args.stage == "unet":
        vae = args.out / "vae"
        if not (vae / "config.json").is_file():
            return f"{vae} holds no VAE: train one with --stage vae (or --stage all) first"
        if not (args.ignore_gate or (vae / "gate.json").is_file()):
            return f"{vae} has no gate.json (its reconstruction scores); --ignore-gate trains on it anyway"
    return None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    silence_libraries(args.debug)
    dev = device_auto()
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"device {dev}, seed {args.seed}, stage {args.stage}", flush=True)
    if args.stage in ("vae", "all"):
        train_vae(args, args.out, dev)
    if args.stage in ("unet", "all"):
        vae = load_vae(args.init or args.out, dev, check_gate=not (args.ignore_gate or args.init))
        train_unet(args, args.out, dev, vae)


if __name__ == "__main__":
    main()
