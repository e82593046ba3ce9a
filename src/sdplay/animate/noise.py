"""Noise blended into the warped frame before img2img (Deforum's `noise_schedule`): it gives the
diffusion fresh detail to work with, so repeated passes do not smear the picture.

As in Deforum, the frame is blended toward a noise picture by the scheduled amount,
`frame * (1 - amount) + noise_picture * amount`. The noise picture is white grain around mid-grey
(`0.5 + 0.5 * N(0, 1)`, clipped and cut to 8 bits); with `perlin` the grain's strength is modulated
by a Perlin pattern ((pattern + 1) / 2), so it is fine grain in patches, not the smooth pattern itself.
The blend also pulls every pixel toward mid-grey by `amount`. `uniform` (Deforum's name) and `normal`
are the plain white grain. The grain is drawn at the size rounded down to a multiple of 64 (as Deforum
does, so the Perlin cells fit) and stretched to the frame, from the frame's seed on the CPU, so every
device makes the same frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

WHITE = ("uniform", "normal")
KINDS = (*WHITE, "perlin")


def add_noise(
    image: torch.Tensor,
    amount: float,
    seed: int,
    kind: str = "perlin",
    perlin_size: tuple[float, float] = (8, 8),
    octaves: int = 4,
    persistence: float = 0.5,
) -> torch.Tensor:
    """Blend a (1, C, H, W) frame in [0, 1] toward a noise picture by `amount` (see the module's note)."""
    if amount == 0:
        return image
    if kind not in KINDS:
        raise ValueError(f"noise kind {kind!r} is not one of {KINDS}")
    generator = torch.Generator("cpu").manual_seed(seed)
    _, channels, height, width = image.shape
    rows, columns = _grid(height), _grid(width)
    grain = torch.randn(channels, rows, columns, generator=generator)
    if kind == "perlin":
        cells = (max(1, int(perlin_size[0])), max(1, int(perlin_size[1])))
        grain = grain * (perlin_octaves(rows, columns, cells, int(octaves), persistence, generator) + 1) / 2
    if (rows, columns) != (height, width):
        grain = F.interpolate(grain[None], size=(height, width), mode="nearest")[0]
    picture = torch.floor((grain * 0.5 + 0.5).clamp(0, 1) * 255) / 255  # Deforum's sample_to_cv2: cut to 8 bits
    return (image * (1 - amount) + picture[None].to(image.device, image.dtype) * amount).clamp_(0, 1)


@contextmanager
def scaled_start_noise(scheduler: Any, multiplier: float) -> Iterator[None]:
    """img2img's starting noise times `multiplier` for the duration (Deforum's `noise_multiplier_schedule`,
    the web UI's initial noise multiplier: `x *= multiplier` before sampling). diffusers draws that noise
    inside the pipeline and hands it to `scheduler.add_noise`, so that one call is scaled."""
    if multiplier == 1:
        yield
        return
    original = scheduler.add_noise
    scheduler.add_noise = lambda samples, noise, timesteps: original(samples, noise * multiplier, timesteps)
    try:
        yield
    finally:
        del scheduler.add_noise  # the class's own method again


def _grid(size: int) -> int:
    """The size rounded down to a multiple of 64 (the size itself below 64)."""
    return size - size % 64 if size >= 64 else size


def perlin(height: int, width: int, cells: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Gradient noise with `cells` = (columns, rows) lattice cells across the picture, in about [-1, 1]."""
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
