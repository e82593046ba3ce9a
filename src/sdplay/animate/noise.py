"""Noise added to the warped frame before img2img (Deforum's `noise_schedule`): it gives the
diffusion fresh detail to work with, so repeated passes do not smear the picture.

Amounts are in Deforum's units, the [-1, 1] pixel range; frames here are in [0, 1], hence the
halving. Noise is drawn on the CPU from the frame's seed, so every device makes the same frames.
"""

from __future__ import annotations

import math

import torch


def add_noise(
    image: torch.Tensor,
    amount: float,
    seed: int,
    kind: str = "normal",
    perlin_size: tuple[int, int] = (8, 8),
    octaves: int = 4,
    persistence: float = 0.5,
) -> torch.Tensor:
    """`image + amount * noise` for a (1, C, H, W) frame in [0, 1]; `kind` is `normal` or `perlin`."""
    if amount == 0:
        return image
    generator = torch.Generator("cpu").manual_seed(seed)
    _, channels, height, width = image.shape
    if kind == "perlin":
        noise = torch.stack(
            [perlin_octaves(height, width, perlin_size, octaves, persistence, generator) for _ in range(channels)]
        )[None]
    else:
        noise = torch.randn(1, channels, height, width, generator=generator)
    return (image + noise.to(image.device, image.dtype) * (amount / 2)).clamp_(0, 1)


def perlin(height: int, width: int, cells: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Gradient noise with `cells` = (columns, rows) lattice cells across the picture, about unit spread."""
    columns, rows = cells
    angles = 2 * math.pi * torch.rand(rows + 1, columns + 1, generator=generator)
    gradients = torch.stack((torch.cos(angles), torch.sin(angles)), dim=-1)
    ys = torch.arange(height) * rows / height
    xs = torch.arange(width) * columns / width
    y0, x0 = ys.floor().long(), xs.floor().long()
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = gradients[(y0 + dy)[:, None], (x0 + dx)[None, :]]
        return g[..., 0] * (fx - dx) + g[..., 1] * (fy - dy)

    def fade(t: torch.Tensor) -> torch.Tensor:
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(fx), fade(fy)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return math.sqrt(2) * (top * (1 - v) + bottom * v)


def perlin_octaves(
    height: int, width: int, cells: tuple[int, int], octaves: int, persistence: float, generator: torch.Generator
) -> torch.Tensor:
    """Octaves of Perlin noise: each twice as fine and `persistence` times as strong as the last."""
    total = torch.zeros(height, width)
    for octave in range(octaves):
        scale = 2**octave
        total += persistence**octave * perlin(height, width, (cells[0] * scale, cells[1] * scale), generator)
    return total
