"""Quality of the bundled mini model, read back with its classifier; prints JSON.

For prompts `a COLOR SHAPE on a BGCOLOR background` (triples seen in training and held out of it) and
prompts with a position phrase, at 64x64 with the model's default steps and guidance, one seed per sample:
foreground-colour, background-colour, shape and position accuracy; plus the classifier's score on freshly
drawn pictures and the VAE's reconstruction scores, so a miss can be traced to the part that caused it.

    python benchmarks/mini_quality.py [--model DIR] [--n 96]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from sdplay.mini import DEFAULT_GUIDANCE, DEFAULT_STEPS, MODEL_DIR, NATIVE_SIZE
from sdplay.mini.classify import score, self_check
from sdplay.mini.dataset import HELD_OUT, POSITIONS, SEEN_TRIPLES, make_caption


def load(model: str):  # noqa: ANN201 - diffusers pipeline
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(MODEL_DIR))
    p.add_argument("--n", type=int, default=96, help="samples per set (seen, held-out, position)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-vae", action="store_true", help="skip the VAE reconstruction scores")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    pipe = load(args.model)
    result: dict[str, object] = {
        "model": args.model,
        "steps": args.steps,
        "guidance": args.guidance,
        "size": NATIVE_SIZE,
        "n_per_set": args.n,
    }
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
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
