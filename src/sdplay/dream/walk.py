"""The walk's geometry: where each frame lies between the key points, and how it blends them.

Every frame is a position on the walk: between key points a and b at fraction t, the initial
latents are slerp(t) of the key points' noise (or noised image latents) and the text embeddings
are lerp(t) (or slerp) of the key points' embeddings. Nothing here touches a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..interp import lerp, slerp
from ..output import format_parameters
from .settings import DreamSettings

SILENCE = 0.02  # audio speed below this share of the loudest frame counts as silence: no movement


def frame_positions(count: int, segments: int, loop: bool, speeds: np.ndarray | None = None) -> np.ndarray:
    """Where on the walk (0 .. segments) each frame lies.

    The move from frame j-1 to j is proportional to speeds[j] (evenly spaced without audio);
    a loop's last move, back to the start, uses speeds[0].
    """
    if speeds is None:
        speeds = np.ones(count)
    moves = np.asarray(speeds[1:count], dtype=np.float64)
    if loop:
        moves = np.append(moves, float(speeds[0]))
    total = moves.sum()
    if total == 0:
        return np.zeros(count)
    distance = np.concatenate([[0.0], np.cumsum(moves)[: count - 1]])
    return distance * segments / total


def locate(position: float, segments: int) -> tuple[int, float]:
    """(segment, t in 0..1) of a position; the walk's end is t = 1 of its last segment."""
    segment = min(int(math.floor(position)), segments - 1)
    return segment, float(position - segment)


def audio_speeds(samples: np.ndarray, sample_rate: int, fps: float, count: int) -> np.ndarray:
    """Movement per frame from the audio: loudness (RMS) plus twice its rise (onsets), 0 in silence."""
    hop = sample_rate / fps
    rms = np.zeros(count)
    for j in range(count):
        window = samples[int(round(j * hop)) : int(round((j + 1) * hop))]
        if window.size:
            rms[j] = math.sqrt(float(np.mean(np.square(window, dtype=np.float64))))
    onset = np.maximum(0.0, np.diff(rms, prepend=0.0))
    speed = rms + 2 * onset
    peak = speed.max()
    if peak <= 0:
        return np.zeros(count)
    speed = speed / peak
    speed[speed < SILENCE] = 0.0
    return speed


def key_point_value(values: Sequence[Any], index: int) -> Any:
    """Prompts, seeds and images come one for all key points or one per key point."""
    return values[index] if len(values) > 1 else values[0]


@dataclass
class WalkPlan:
    """The resolved settings plus one latent and one embedding per key point, and each frame's position."""

    settings: DreamSettings
    latents: list[torch.Tensor]  # CPU float32, 1x4xhxw: noise, or noised image latents
    embeds: list[torch.Tensor]  # on the device: 1xTxD
    negative: torch.Tensor | None
    positions: np.ndarray
    sampler: str

    @property
    def count(self) -> int:
        return len(self.positions)

    def key_index(self, segment: int, end: bool) -> int:
        return (segment + int(end)) % len(self.latents)

    def frame_input(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The initial latents and prompt embedding of one frame."""
        segment, t = locate(self.positions[index], self.settings.segments)
        a, b = self.key_index(segment, False), self.key_index(segment, True)
        mix = slerp if self.settings.prompt_interp == "slerp" else lerp
        return slerp(t, self.latents[a], self.latents[b]), mix(t, self.embeds[a], self.embeds[b])

    def parameters(self, index: int) -> str:
        """The frame's PNG `parameters` text: the nearer key point's prompt and seed, and where it lies."""
        s = self.settings
        segment, t = locate(self.positions[index], s.segments)
        a, b = self.key_index(segment, False), self.key_index(segment, True)
        near = a if t < 0.5 else b
        details: dict[str, Any] = {
            "Steps": s.steps,
            "Sampler": self.sampler,
            "CFG scale": s.guidance,
            "Seed": key_point_value(s.seeds, near),
            "Size": f"{s.width}x{s.height}",
            "Model": s.model,
            "Denoising strength": s.strength,
            "Mode": "dream",
            "Frame": index,
            "Walk": f"key {a} to {b} at {t:.4f}",
        }
        if s.control:
            details["ControlNet"] = "; ".join(s.control)
        return format_parameters(key_point_value(s.prompts, near) if s.prompts else "", s.negative, details)
