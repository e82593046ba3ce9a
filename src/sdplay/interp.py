"""Blending maths that dream and animate share: straight and spherical interpolation of tensors."""

from __future__ import annotations

import torch


def lerp(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Straight-line blend; exact at t = 0 and t = 1."""
    if t == 0:
        return v0.clone()
    if t == 1:
        return v1.clone()
    return (1 - t) * v0 + t * v1


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, parallel: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation: the direction turns along the great circle, the norm moves linearly.

    Gaussian noise lives near a sphere; a straight line between two samples cuts inside it,
    where latents are too "quiet" and frames go grey mid-walk. Exact at t = 0 and t = 1.
    """
    if t == 0:
        return v0.clone()
    if t == 1:
        return v1.clone()
    a, b = v0.double(), v1.double()
    norm_a, norm_b = a.norm(), b.norm()
    if norm_a == 0 or norm_b == 0:
        return lerp(t, v0, v1)
    unit_a, unit_b = a / norm_a, b / norm_b
    cos = torch.clamp((unit_a * unit_b).sum(), -1.0, 1.0)
    if cos.abs() > parallel:  # nearly parallel: the great circle is a line
        direction = (1 - t) * unit_a + t * unit_b
        direction = direction / direction.norm()
    else:
        theta = torch.acos(cos)
        direction = (torch.sin((1 - t) * theta) * unit_a + torch.sin(t * theta) * unit_b) / torch.sin(theta)
    return (direction * ((1 - t) * norm_a + t * norm_b)).to(v0.dtype)
