"""A walk's input files, read before torch or a model loads, so that a wrong file fails in a moment.

Imports PIL and numpy, nothing heavier; the audio is decoded by ffmpeg in a subprocess, after every picture is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..inputs import load_image, read_control_images
from ..video import read_audio

if TYPE_CHECKING:
    from .settings import DreamSettings

AUDIO_SAMPLE_RATE = 22050


@dataclass(frozen=True)
class DreamInputs:
    """What the settings name, read before any model loads so mistakes fail fast."""

    images: list[Image.Image] = field(default_factory=list)
    audio: np.ndarray | None = None

    @property
    def image_size(self) -> tuple[int, int] | None:
        return self.images[0].size if self.images else None

    def audio_frames(self, fps: float) -> int | None:
        if self.audio is None:
            return None
        return int(round(len(self.audio) / AUDIO_SAMPLE_RATE * fps))


def read_dream_inputs(settings: DreamSettings) -> DreamInputs:
    """Open the control pictures and key point images, then decode the audio."""
    read_control_images(settings)
    images = [load_image(path, "key point image (--image)") for path in settings.images]
    audio = read_audio(settings.audio, AUDIO_SAMPLE_RATE) if settings.audio else None
    return DreamInputs(images, audio)
