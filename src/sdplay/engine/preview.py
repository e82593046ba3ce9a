"""Live previews: the current latents as a small RGB picture, for any Stable Diffusion model.

Decoding with the VAE every few steps would cost as much as a denoising step on a CPU. A VAE's
latents map to colours almost linearly, so each model's own map is fitted once, by least
squares, from one small calibration picture sent through that model's VAE encoder (its tiny
VAE where one is loaded). That works for SD 1.x/2.x, SDXL and the bundled mini model alike,
whatever their latent channels, and a preview then costs one small matrix product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from ..models import Model

CALIBRATION_CELLS = 8  # the calibration picture is a grid of this many cells a side, in latent pixels each


def calibration_picture(size: int) -> np.ndarray:
    """A size x size RGB picture in [0, 1]: colour patches over smooth gradients, so every hue and level appears."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / max(1, size - 1)
    gradient = np.stack([x, y, 1 - (x + y) / 2], axis=-1)
    cell = max(1, size // CALIBRATION_CELLS)
    patches = rng.random((CALIBRATION_CELLS, CALIBRATION_CELLS, 3)).repeat(cell, 0).repeat(cell, 1)[:size, :size]
    rows, columns = np.indices((size, size)) // cell
    checker = ((rows + columns) % 2 == 0)[..., None]
    return np.where(checker, patches, gradient).astype(np.float32)


class LatentPreviewer:
    """latents (B, C, h, w) of the model's pipelines -> a small RGB picture of the first one."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.weights, self.bias = self._fit()

    def _fit(self) -> tuple[torch.Tensor, torch.Tensor]:
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

        vae, factor = self.model.base.vae, self.model.vae_scale_factor
        cells = CALIBRATION_CELLS * 4
        picture = calibration_picture(cells * factor)
        pixels = torch.from_numpy(picture).permute(2, 0, 1)[None] * 2 - 1
        with torch.inference_mode():
            encoded = retrieve_latents(vae.encode(pixels.to(self.model.device, vae.dtype)), sample_mode="argmax")
        latents = encoded.float().cpu() * getattr(vae.config, "scaling_factor", 1.0)
        target = torch.nn.functional.avg_pool2d(torch.from_numpy(picture).permute(2, 0, 1)[None], factor)
        channels = latents.shape[1]
        inputs = torch.cat([latents[0].reshape(channels, -1), torch.ones(1, cells * cells)]).T  # (pixels, C + 1)
        solution = torch.linalg.lstsq(inputs.double(), target[0].reshape(3, -1).T.double()).solution.float()
        return solution[:channels], solution[channels]

    def __call__(self, latents: torch.Tensor) -> Image.Image:
        first = latents[0].detach().float().cpu()
        rgb = torch.einsum("chw,cr->hwr", first, self.weights) + self.bias
        return Image.fromarray((rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
