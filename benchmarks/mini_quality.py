"""Quality of the bundled mini model, read back with its classifier; prints JSON.

For prompts `a COLOR SHAPE on a BGCOLOR background` (triples seen in training and held out of it) and
prompts with a position phrase, at 64x64 with the model's default steps and guidance, one seed per sample:
foreground-colour, background-colour, shape and position accuracy; plus the classifier's score on freshly
drawn pictures and the VAE's reconstruction scores, so a miss can be traced to the part that caused it.

Two sections measure how well the model holds a picture it is given (what img2img and animation depend on):
- img2img fidelity: drawn and generated pictures through img2img at strengths 0.05-0.5 with the default steps and
  guidance: the mean absolute change (0-255) and how often the output classifies as the input did;
- zoom animation: 16 frames of sdplay's 2D animate (zoom 1.08 a frame, no noise, no colour coherence: matching
  each frame's colour histogram to frame 0's keeps each colour's share of a two-colour picture, which by itself
  undoes a zoom) at strengths 0.85 and 0.65:
  on every frame, whether its pixels keep to the prompt's two colours, and whether each frame is closer to the
  previous frame magnified by the zoom than to the previous frame as it was (where the two differ at all).

    python benchmarks/mini_quality.py [--model DIR] [--n 96] [--sections txt2img img2img animation]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from sdplay.devices import resolve_device
from sdplay.errors import SdplayError
from sdplay.mini import DEFAULT_GUIDANCE, DEFAULT_STEPS, MODEL_DIR, NATIVE_SIZE
from sdplay.mini.classify import classify, nearest_indices, score, self_check
from sdplay.mini.dataset import COLORS, HELD_OUT, POSITIONS, SEEN_TRIPLES, make_caption, sample_batch
from sdplay.quiet import mute_diffusers_bars, silence_libraries

STRENGTHS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
ZOOM, ZOOM_FRAMES, ZOOM_STRENGTHS = 1.08, 16, (0.85, 0.65)
ZOOM_SCENES = (  # the example first; the others centred, so that the zoom keeps them in view longer
    ("a large yellow circle on a blue background", ("yellow", "circle", "blue")),
    ("a red square in the center on a green background", ("red", "square", "green")),
    ("a white triangle in the center on a purple background", ("white", "triangle", "purple")),
)


def load(model: str, device: str):  # noqa: ANN201 - diffusers pipeline
    from diffusers import StableDiffusionPipeline

    mute_diffusers_bars()
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate(pipe, prompts: list[str], seeds: list[int], steps: int, guidance: float, batch: int) -> list:  # noqa: ANN001
    """Batched generation; each picture has its own seeded generator, so results do not depend on batch."""
    images = []
    for i in range(0, len(prompts), batch):
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[i : i + batch]]
        images += pipe(
            prompts[i : i + batch],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=gens,
            height=NATIVE_SIZE,
            width=NATIVE_SIZE,
        ).images
    return images


def pick(pool: tuple, n: int, rng: np.random.Generator) -> list:
    """n items covering the pool evenly (each item once before any repeats), in random order."""
    reps = -(-n // len(pool))
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(reps)])[:n]
    return [pool[int(i)] for i in order]


def seconds_per_image(pipe, steps: int, guidance: float, repeats: int = 3) -> float:  # noqa: ANN001
    """Wall time of one 64x64 picture at the default settings (best of a few, after a warm-up)."""
    prompt = make_caption("red", "circle", "blue")
    generate(pipe, [prompt], [0], steps, guidance, 1)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        generate(pipe, [prompt], [r], steps, guidance, 1)
        times.append(time.perf_counter() - t0)
    return min(times)


def same_reading(outputs: list, inputs: list) -> dict[str, float]:
    """Share of outputs whose foreground, background and shape read the same as their input's."""
    pairs = [(classify(o), classify(i)) for o, i in zip(outputs, inputs, strict=True)]
    fields = ("color", "background", "shape")
    out = {f: float(np.mean([getattr(a, f) == getattr(b, f) for a, b in pairs])) for f in fields}
    out["all_three"] = float(np.mean([all(getattr(a, f) == getattr(b, f) for f in fields) for a, b in pairs]))
    return out


def mean_abs_change(outputs: list, inputs: list) -> float:
    return float(
        np.mean(
            [np.abs(np.asarray(o, float) - np.asarray(i, float)).mean() for o, i in zip(outputs, inputs, strict=True)]
        )
    )


def img2img_fidelity(pipe, n: int, steps: int, guidance: float, batch: int, seed: int) -> dict:  # noqa: ANN001
    """img2img of drawn and of generated pictures, with their own captions, at each strength in STRENGTHS."""
    from diffusers import StableDiffusionImg2ImgPipeline

    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    img2img.set_progress_bar_config(disable=True)
    pixels, drawn_captions, _ = sample_batch(np.random.default_rng(seed), n)
    rng = np.random.default_rng(seed + 1)
    gen_captions = [make_caption(*t) for t in pick(SEEN_TRIPLES + HELD_OUT, n, rng)]
    sources = {
        "drawn": ([Image.fromarray(p) for p in pixels], drawn_captions),
        "generated": (generate(pipe, gen_captions, list(range(n)), steps, guidance, batch), gen_captions),
    }
    result: dict[str, dict] = {}
    for name, (inputs, captions) in sources.items():
        rows = {}
        for strength in STRENGTHS:
            outputs = []
            for i in range(0, n, batch):
                gens = [torch.Generator("cpu").manual_seed(seed + k) for k in range(i, min(i + batch, n))]
                outputs += img2img(
                    captions[i : i + batch],
                    image=inputs[i : i + batch],
                    strength=strength,
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=gens,
                ).images
            rows[str(strength)] = {
                "mean_abs_change": round(mean_abs_change(outputs, inputs), 2),
                "classifies_as_input": same_reading(outputs, inputs),
            }
        result[name] = rows
    return result


def magnified(frame: Image.Image, zoom: float) -> Image.Image:
    """The frame magnified about its centre, as a 2D zoom of `zoom` a frame shows it."""
    w, h = frame.size
    cw, ch = w / zoom, h / zoom
    box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
    return frame.resize((w, h), Image.Resampling.BICUBIC, box=box)


def colours_held(frame: Image.Image, color: str, background: str) -> bool:
    """At least 95% of the pixels are nearest to the prompt's two colours: no specks or blobs of others. (Which of
    the two is where is the zoom's business: a shape magnified 1.08x a frame may fill the picture.)"""
    nearest = nearest_indices(np.asarray(frame, dtype=np.float32)[..., :3])
    return float(np.isin(nearest, (COLORS.index(color), COLORS.index(background))).mean()) >= 0.95


def follows_zoom(prev: Image.Image, cur: Image.Image) -> bool | None:
    """Whether `cur` is nearer the magnified `prev` than `prev` itself (mean absolute difference); None where the
    two hypotheses differ by less than 2 grey levels (a flat picture looks the same magnified or not)."""
    before, zoomed, now = (np.asarray(im, dtype=np.float32) for im in (prev, magnified(prev, ZOOM), cur))
    if np.abs(zoomed - before).mean() < 2.0:
        return None
    return bool(np.abs(now - zoomed).mean() < np.abs(now - before).mean())


def zoom_animation(model: str, seeds: int, seed: int, steps: int, guidance: float, device: str) -> dict:
    """sdplay's own 2D animate on the model: per strength, per frame, the colour check and the zoom check. Steps and
    guidance are passed on: a model given as a folder would otherwise get sdplay's defaults for unknown models."""
    import sdplay

    result = {}
    for strength in ZOOM_STRENGTHS:
        held, followed, classified = [], [], []
        for k in range(seeds):
            prompt, (color, shape, background) = ZOOM_SCENES[k % len(ZOOM_SCENES)]
            with tempfile.TemporaryDirectory() as out:
                run = sdplay.animate(
                    model=model,
                    prompts={0: prompt},
                    max_frames=ZOOM_FRAMES,
                    zoom=f"0: ({ZOOM})",
                    strength_schedule=f"0: ({strength})",
                    noise_schedule="0: (0)",
                    color_coherence="None",
                    seed=seed + k,
                    steps=steps,
                    scale=guidance,
                    outdir=out,
                    video_format="gif",
                    device=device,
                    dtype="fp32",  # as the other sections, whatever the device
                )
                frames = [Image.open(p).convert("RGB") for p in run.paths]
            held += [colours_held(f, color, background) for f in frames]
            reading = classify(frames[0])
            classified.append((reading.color, reading.shape, reading.background) == (color, shape, background))
            followed += [follows_zoom(prev, cur) for prev, cur in zip(frames, frames[1:], strict=False)]
        telling = [f for f in followed if f is not None]
        result[str(strength)] = {
            "animations": seeds,
            "frames": len(held),
            "frames_with_colours_held": float(np.mean(held)),
            "frame_pairs_that_can_tell": len(telling),
            "of_those_following_the_zoom": float(np.mean(telling)) if telling else None,
            "first_frames_classified_right": float(np.mean(classified)),
        }
    return result


def txt2img_scores(pipe, args: argparse.Namespace) -> dict:  # noqa: ANN001
    """Seen and held-out triples, position phrases, the classifier and VAE ceilings, seconds per picture."""
    rng = np.random.default_rng(args.seed)
    result: dict[str, object] = {"n_per_set": args.n}
    seed_base = args.seed * 100_000
    for name, pool in (("seen", SEEN_TRIPLES), ("held_out", HELD_OUT)):
        triples = pick(pool, args.n, rng)
        seeds = [seed_base + i for i in range(args.n)]
        images = generate(pipe, [make_caption(*t) for t in triples], seeds, args.steps, args.guidance, args.batch)
        result[name] = score(images, [(*t, None) for t in triples])
        del result[name]["position"]  # type: ignore[attr-defined]
        seed_base += args.n
    triples = pick(SEEN_TRIPLES, args.n, rng)
    places = pick(tuple(POSITIONS), args.n, rng)
    images = generate(
        pipe,
        [make_caption(*t, None, pos) for t, pos in zip(triples, places, strict=True)],
        [seed_base + i for i in range(args.n)],
        args.steps,
        args.guidance,
        args.batch,
    )
    result["with_position_phrase"] = score(images, [(*t, pos) for t, pos in zip(triples, places, strict=True)])
    result["classifier_on_drawn"] = self_check(1000, seed=args.seed)
    if not args.skip_vae:
        from sdplay.mini.train import vae_reconstruction_scores

        result["vae_reconstruction"] = vae_reconstruction_scores(pipe.vae, args.seed)
    result["seconds_per_image"] = round(seconds_per_image(pipe, args.steps, args.guidance), 3)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(MODEL_DIR))
    p.add_argument("--n", type=int, default=96, help="samples per set (seen, held-out, position)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda; the model runs in fp32 on any")
    p.add_argument("--skip-vae", action="store_true", help="skip the VAE reconstruction scores")
    p.add_argument("--sections", nargs="+", default=["txt2img", "img2img", "animation"])
    p.add_argument("--img2img-n", type=int, default=48, help="pictures per source (drawn, generated)")
    p.add_argument("--animations", type=int, default=6, help="zoom animations per strength")
    args = p.parse_args()
    try:  # a device that is not here stops with one line before the model loads
        device = str(resolve_device(args.device))
    except SdplayError as err:
        p.error(str(err))
    silence_libraries()
    torch.set_num_threads(args.threads)
    pipe = load(args.model, device)
    result: dict[str, object] = {
        "model": args.model,
        "steps": args.steps,
        "guidance": args.guidance,
        "size": NATIVE_SIZE,
    }
    if "txt2img" in args.sections:
        result["txt2img"] = txt2img_scores(pipe, args)
    if "img2img" in args.sections:
        result["img2img"] = img2img_fidelity(pipe, args.img2img_n, args.steps, args.guidance, args.batch, args.seed)
    if "animation" in args.sections:
        result["animation"] = zoom_animation(args.model, args.animations, args.seed, args.steps, args.guidance, device)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
