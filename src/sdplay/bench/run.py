"""Run the benchmark sections and report them as a rich table and as JSON."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from ..depth import check_depth_spec
from ..devices import resolve_device
from ..errors import SdplayError
from ..settings import ImageSettings
from .animate import bench_animate
from .backends import bench_backends, check_figures, label, parse_variants
from .dream import bench_dream
from .images import bench_images
from .random_models import ARCHITECTURES, save_random_depth_model, save_random_pipeline, save_random_tiny_vae


def machine() -> dict[str, Any]:
    """What the figures were measured on (and how busy it was: the figures are only as good as that)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_bench(
    model: str = "mini",
    device: str = "auto",
    dtype: str = "auto",
    repeats: int = 3,
    steps: int | None = None,
    size: int | None = None,
    naive: bool = True,
    compile: bool = False,
    tiny_vae: str | None = None,
    depth_model: str = "none",
    on_section: Callable[[dict[str, Any]], None] | None = None,
    backends: list[str] | None = None,
    figures: list[str] | None = None,
) -> dict[str, Any]:
    """Measure every section on one model; `model` may be `random:sd15` (or `random:sd15-turbo`) for
    SD 1.5's architecture with random weights, `tiny_vae` `random` for TAESD's and `depth_model`
    `random` for Depth Anything V2 Small's. `on_section` gets the report so far after each section
    (images, dream, animate): a run cut short keeps what it finished. `backends` (e.g. `openvino`,
    `pytorch:bf16`) measures those CPU backends beside PyTorch fp32 instead (bench/backends.py), `figures`
    only those groups of its figures."""
    # a device that is not there is an error before minutes of building models, and so are a depth
    # folder that is not there and a backend that cannot run here
    if resolve_device(device).type != "cpu" and backends:
        raise SdplayError("--backend compares backends on the CPU; add --device cpu")
    check_depth_spec(depth_model)
    variants = parse_variants(backends, dtype) if backends else []
    chosen = check_figures(figures)
    if figures and not variants:
        raise SdplayError("--figures picks figures of --backend; add --backend")
    with tempfile.TemporaryDirectory() as scratch:
        if model.startswith("random:"):
            arch = model.split(":", 1)[1]
            if arch not in ARCHITECTURES:
                raise SdplayError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
            spec = str(save_random_pipeline(arch, Path(scratch)))
        else:
            spec = model
        tiny_vae_label = tiny_vae
        if tiny_vae == "random":
            tiny_vae = str(save_random_tiny_vae(Path(scratch)))
        depth_spec = str(save_random_depth_model(Path(scratch))) if depth_model == "random" else depth_model
        base = ImageSettings(
            prompt="a red circle on a blue background",
            model=spec,
            device=device,
            dtype=dtype,
            steps=steps,
            width=size,
            height=size,
            seed=0,
            safety_checker=False,
            compile=compile,
            tiny_vae=tiny_vae,
        )
        started = time.perf_counter()
        report = {
            "machine": machine(),
            "model": model,
            "device": device,
            "dtype": dtype,
            "repeats": repeats,
            "depth_model": depth_model,
            "backends": [label(v) for v in variants],
            "figure_groups": list(chosen) if variants else [],
            "settings": {"steps": steps, "size": size, "compile": compile, "tiny_vae": tiny_vae_label, "naive": naive},
            "seconds": 0.0,
            "figures": [],
        }
        sections = (
            (lambda: bench_backends(base, variants, repeats, chosen),)
            if variants
            else (
                lambda: bench_images(base, repeats, naive),
                lambda: bench_dream(base, repeats),
                lambda: bench_animate(base, repeats, depth_spec, depth_model, naive=naive),
            )
        )
        for section in sections:
            report["figures"] += section()
            report["seconds"] = round(time.perf_counter() - started, 1)
            if on_section is not None:
                on_section(report)
    return report


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"sdplay bench: {report['model']} on {report['machine'].get('gpu', 'CPU')}")
    for column in ("figure", "ours", "baseline", "ratio", "baseline is"):
        table.add_column(column, justify="left" if column in ("figure", "baseline is") else "right")
    for row in report["figures"]:
        unit = row["unit"]
        table.add_row(
            row["figure"],
            f"{row['ours']:.4g} {unit}",
            f"{row['baseline']:.4g} {unit}" if "baseline" in row else "",
            f"{row['ratio']:.2f}x" if "ratio" in row else "",
            row.get("baseline_is", ""),
        )
    console.print(table)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def print_json(report: dict[str, Any], path: Path | None = None) -> None:
    """The report on stdout, and in `path` too when one is given (the standalone benchmark scripts)."""
    print(json.dumps(report, indent=2))
    if path is not None:
        write_json(report, path)
