"""Shared pieces of the animate tests: a tiny random depth model and synthetic pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def save_tiny_depth_model(folder: Path) -> Path:
    """A random Depth Anything model a few kilobytes large, saved with its (PIL) image processor."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt import DPTImageProcessorPil

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        patch_size=14,
        image_size=28,
        out_features=["stage1", "stage2"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 16],
        fusion_hidden_size=16,
        head_hidden_size=8,
        patch_size=14,
        reassemble_factors=[2, 1],
    )
    path = folder / "tiny-depth"
    DepthAnythingForDepthEstimation(config).save_pretrained(path)
    DPTImageProcessorPil(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14, do_pad=False
    ).save_pretrained(path)
    return path


def texture(height: int = 96, width: int = 96, seed: int = 0) -> torch.Tensor:
    """A smooth random (1, 3, H, W) picture in [0, 1]: rich enough for phase correlation."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 8, width // 8, generator=generator)
    return torch.nn.functional.interpolate(coarse, (height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def square(size: int = 96, side: int = 40) -> torch.Tensor:
    """A white centred square on black, (1, 3, size, size)."""
    image = torch.zeros(1, 3, size, size)
    start = (size - side) // 2
    image[..., start : start + side, start : start + side] = 1.0
    return image


def shift_of(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    """(dy, dx) by which the content moved from `before` to `after`, by phase correlation.

    A Hann window keeps the picture's edges (replicated or empty after a warp) out of the measure.
    """
    from skimage.filters import window
    from skimage.registration import phase_cross_correlation

    hann = window("hann", tuple(before.shape[-2:]))
    a = before[0].mean(0).numpy() * hann
    b = after[0].mean(0).numpy() * hann
    shift, _, _ = phase_cross_correlation(a, b, upsample_factor=20)
    return -shift


def centroid(image: torch.Tensor) -> tuple[float, float]:
    """(y, x) of the bright mass of a picture."""
    weight = image[0].mean(0)
    ys, xs = torch.meshgrid(torch.arange(weight.shape[0]), torch.arange(weight.shape[1]), indexing="ij")
    total = weight.sum()
    return float((weight * ys).sum() / total), float((weight * xs).sum() / total)
