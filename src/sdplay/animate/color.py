"""Per-frame image adjustments before img2img: colour coherence, contrast and unsharp mask.

Colour coherence pulls each frame's histogram towards a reference (the first frame, or the
current video frame) so colours do not drift over hundreds of img2img passes; it uses
scikit-image's `match_histograms` in RGB, HSV or LAB, the one step that visits the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def match_colors(image: torch.Tensor, reference: torch.Tensor, mode: str) -> torch.Tensor:
    """Match a (1, 3, H, W) frame's per-channel histograms to the reference's in `mode` space."""
    from skimage import color
    from skimage.exposure import match_histograms

    to_space, from_space = {
        "RGB": (lambda a: a, lambda a: a),
        "HSV": (color.rgb2hsv, color.hsv2rgb),
        "LAB": (color.rgb2lab, color.lab2rgb),
    }[mode]
    source = _to_numpy(image)
    target = _to_numpy(reference)
    matched = from_space(match_histograms(to_space(source), to_space(target), channel_axis=-1))
    out = torch.from_numpy(np.ascontiguousarray(matched)).permute(2, 0, 1)[None]
    return out.to(image.device, image.dtype).clamp_(0, 1)


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).double().clamp(0, 1).cpu().numpy()


def adjust_contrast(image: torch.Tensor, contrast: float) -> torch.Tensor:
    """Deforum's contrast: every value scaled by `contrast` (1 = unchanged), clipped."""
    return image if contrast == 1 else (image * contrast).clamp_(0, 1)


def gaussian_blur(image: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur with an odd kernel size (even sizes are raised by one)."""
    kernel += 1 - kernel % 2
    x = torch.arange(kernel, device=image.device, dtype=image.dtype) - kernel // 2
    weights = torch.exp(-(x**2) / (2 * max(sigma, 1e-6) ** 2))
    weights = weights / weights.sum()
    channels = image.shape[1]
    pad = kernel // 2
    out = F.pad(image, (pad, pad, 0, 0), mode="replicate")
    out = F.conv2d(out, weights.view(1, 1, 1, -1).expand(channels, 1, 1, kernel), groups=channels)
    out = F.pad(out, (0, 0, pad, pad), mode="replicate")
    return F.conv2d(out, weights.view(1, 1, -1, 1).expand(channels, 1, kernel, 1), groups=channels)


def unsharp_mask(image: torch.Tensor, kernel: int, sigma: float, amount: float, threshold: float) -> torch.Tensor:
    """Sharpen by `amount` against a Gaussian blur; differences below `threshold` (0-255 units) are kept."""
    if amount == 0:
        return image
    blurred = gaussian_blur(image, int(kernel), sigma)
    sharpened = ((amount + 1) * image - amount * blurred).clamp_(0, 1)
    if threshold > 0:
        sharpened = torch.where((image - blurred).abs() * 255 < threshold, image, sharpened)
    return sharpened
