"""The OpenVINO backend beside PyTorch fp32, measured in turns in one process.

    python benchmarks/cpu_backends.py [--model mini|random:sd15|SPEC] [--size N] [--steps 20] [--rounds 3]
                                  [--variants pytorch:fp32,pytorch:bf16,openvino:auto,openvino:fp32]

Each variant is loaded once (the first OpenVINO load converts the model into the cache; its time
is reported apart), then every round times each variant in turn: UNet steps (batch 2, as with
guidance), the same step through the compiled OpenVINO model called directly (our wrapper's
overhead), and a whole txt2img of `--steps` steps. Prints JSON with medians and ratios to
PyTorch fp32. random:sd15 is SD 1.5's architecture with random weights (speed does not depend
on the weights); its conversion takes minutes and about 4 GB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sdplay.models import load_model
from sdplay.quiet import silence_libraries


def model_path(spec: str, scratch: Path) -> str:
    if spec.startswith("random:"):
        from sdplay.bench.random_models import save_random_pipeline

        return str(save_random_pipeline(spec.removeprefix("random:"), scratch))
    return spec


def timed(call: Any, repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini")
    parser.add_argument("--size", type=int, default=None, help="picture side in pixels (default: the model's)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--unet-calls", type=int, default=3, help="UNet calls timed per variant and round")
    parser.add_argument("--variants", default="pytorch:fp32,pytorch:bf16,openvino:auto,openvino:fp32")
    options = parser.parse_args()
    silence_libraries()
    variants = [tuple(v.split(":")) for v in options.variants.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        path = model_path(options.model, Path(scratch))
        models, report = {}, {}
        for backend, dtype in variants:
            start = time.perf_counter()
            models[(backend, dtype)] = load_model(path, device="cpu", backend=backend, dtype=dtype)
            report[f"{backend} {dtype}"] = {"load s (conversion included the first time)": time.perf_counter() - start}
        first = next(iter(models.values()))
        size = options.size or first.native_size
        unet = first.base.unet.config
        latents = torch.randn(2, unet.in_channels, size // 8, size // 8)
        embeds = torch.randn(2, 77, unet.cross_attention_dim)
        t = torch.tensor(500)

        def unet_step(model: Any) -> Any:
            with torch.inference_mode():
                return model.base.unet(latents.to(model.dtype), t, embeds.to(model.dtype), return_dict=False)

        def direct_step(model: Any) -> Any:
            run = model.base.unet.openvino
            compiled = run.by_shape[next(reversed(run.by_shape))]
            arrays = [latents.numpy(), torch.full((2,), 500.0).numpy(), embeds.numpy()]
            return compiled(arrays, share_inputs=True)

        def txt2img(model: Any) -> Any:
            pipe = model.pipeline("txt2img")
            with torch.inference_mode():
                generator = torch.Generator().manual_seed(1)
                return pipe("a red circle", num_inference_steps=options.steps, height=size, width=size,
                            generator=generator, output_type="np")  # fmt: skip

        for (backend, dtype), model in models.items():  # first calls compile each shape: reported apart
            figures = report[f"{backend} {dtype}"]
            figures["first UNet call s (compiles on OpenVINO)"] = timed(lambda m=model: unet_step(m), 1)
            figures["first txt2img s"] = timed(lambda m=model: txt2img(m), 1)
        samples: dict[str, dict[str, list[float]]] = {name: {} for name in report}
        for _ in range(options.rounds):
            for (backend, dtype), model in models.items():
                row = samples[f"{backend} {dtype}"]
                row.setdefault("ms per UNet step", []).append(
                    1000 * timed(lambda m=model: unet_step(m), options.unet_calls)
                )
                if backend == "openvino":
                    row.setdefault("ms per UNet step, OpenVINO called directly", []).append(
                        1000 * timed(lambda m=model: direct_step(m), options.unet_calls)
                    )
                row.setdefault("s per txt2img", []).append(timed(lambda m=model: txt2img(m), 1))
        base = {k: statistics.median(v) for k, v in samples.get("pytorch fp32", {}).items()}
        for name, row in samples.items():
            for key, values in row.items():
                report[name][key] = round(statistics.median(values), 3)
                if key in base and name != "pytorch fp32":
                    report[name][f"{key}: speed-up vs pytorch fp32"] = round(base[key] / statistics.median(values), 2)
            direct = row.get("ms per UNet step, OpenVINO called directly")
            if direct:
                report[name]["our overhead vs direct"] = round(
                    statistics.median(row["ms per UNet step"]) / statistics.median(direct), 3
                )
        for figures in report.values():
            for key, value in figures.items():
                figures[key] = round(value, 3)
    print(json.dumps({"model": options.model, "size": size, "steps": options.steps, "threads": torch.get_num_threads(),
                      "rounds": options.rounds, "variants": report}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
