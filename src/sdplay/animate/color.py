"""Per-frame image adjustments before img2img: colour coherence, contrast and unsharp mask.

Colour coherence pulls each frame's histogram towards a reference (the first frame, a chosen
picture, or the current video frame) so colours do not drift over hundreds of img2img passes. It
is scikit-image's `match_histograms` in RGB, HSV or LAB (with skimage's colour conversions)
rewritten in torch, so the frame stays on its device from warp to VAE encode. `ColorCoherence`
holds Deforum's rules for which reference is used and which pictures are matched to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# sRGB (D65) -> CIE XYZ and the D65 2-degree white point, as in skimage.color.
_XYZ_FROM_RGB = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64).view(3, 1, 1)
# For each sixth of the hue circle, which of (v, q, p, t) each of R, G, B takes (skimage's hsv2rgb).
_HSV_SECTORS = torch.tensor([[0, 3, 2], [1, 0, 2], [2, 0, 3], [2, 1, 0], [3, 2, 0], [0, 2, 1]])


@dataclass(frozen=True)
class ColorReference:
    """A reference frame's histograms in one colour space (per channel: its distinct values and
    their cumulative quantiles), computed once and matched against every frame after it."""

    mode: str
    values: list[torch.Tensor]
    quantiles: list[torch.Tensor]


class ColorCoherence:
    """Deforum's colour coherence over one run: the reference, and which pictures are matched to it.

    `RGB`, `HSV`, `LAB`: the reference is frame 0's result (when frame 0 came from an init image,
    the first warped frame instead). `Image` and `Video Input`: the reference is given (a picture,
    or the video frame of every N-th frame) and matched in LAB, frame 0's result included. Each
    img2img input is matched; with `legacy_colormatch` off (Deforum's default) each generated frame
    is matched as well; with it on, the reference is renewed from every frame that kept nothing.
    """

    FIXED = ("Image", "Video Input")

    def __init__(self, mode: str, legacy: bool = False) -> None:
        self.mode, self.legacy = mode, legacy
        self.space = "LAB" if mode in self.FIXED else mode
        self.reference: ColorReference | None = None

    def use(self, image: torch.Tensor) -> None:
        """Match later pictures to this one (its histograms are computed once, here)."""
        self.reference = color_reference(image, self.space)

    def before(self, image: torch.Tensor) -> torch.Tensor:
        """An img2img input (a warped frame): matched, or, with no reference yet, made the reference."""
        if self.mode == "None":
            return image
        if self.reference is None:
            self.use(image)
            return image
        return match_colors(image, self.reference)

    def after(self, image: torch.Tensor, frame: int, keep: float, from_init: bool = False) -> torch.Tensor:
        """A generated frame (`keep`: Deforum's strength it was made with; `from_init`: frame 0 from an image)."""
        if self.mode == "None":
            return image
        fixed = self.mode in self.FIXED
        if self.reference is not None and ((fixed and frame == 0) or not self.legacy):
            image = match_colors(image, self.reference)
        renew = (not self.legacy and frame == 0 and not from_init) or (self.legacy and keep == 0)
        if renew and not fixed:
            self.use(image)
        return image


def color_reference(reference: torch.Tensor, mode: str) -> ColorReference:
    """The histograms of a (1, 3, H, W) frame in `mode` space (RGB, HSV or LAB).

    Computed in float64 where the device has it (all but MPS): float32 merges nearby colours,
    which moves the matched values by up to ~2e-3 against scikit-image's.
    """
    dtype = torch.float32 if reference.device.type == "mps" else torch.float64
    template = _SPACES[mode][0](reference[0].to(dtype).clamp(0, 1))
    values, quantiles = [], []
    for channel in template:
        distinct, counts = torch.unique(channel.flatten(), return_counts=True)
        values.append(distinct)
        quantiles.append(counts.cumsum(0).to(dtype) / channel.numel())
    return ColorReference(mode, values, quantiles)


def match_colors(image: torch.Tensor, reference: ColorReference) -> torch.Tensor:
    """Match a (1, 3, H, W) frame's per-channel histograms to the reference's, on the frame's device."""
    to_space, from_space = _SPACES[reference.mode]
    source = to_space(image[0].to(reference.values[0].dtype).clamp(0, 1))
    matched = torch.stack(
        [match_histogram(*parts) for parts in zip(source, reference.values, reference.quantiles, strict=True)]
    )
    return from_space(matched).clamp_(0, 1)[None].to(image.dtype)


def match_histogram(source: torch.Tensor, values: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """skimage's histogram matching of one float channel: each source value becomes the
    template value at the same quantile (cumulative share of pixels), linearly interpolated."""
    _, lookup, counts = torch.unique(source.flatten(), return_inverse=True, return_counts=True)
    source_quantiles = counts.cumsum(0).to(source.dtype) / source.numel()
    return interp(source_quantiles, quantiles, values)[lookup].view_as(source)


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """np.interp: piecewise linear through increasing `xp` and `fp`, held at the end values outside."""
    if len(xp) == 1:
        return fp.expand_as(x)
    x = x.clamp(xp[0], xp[-1])
    right = torch.searchsorted(xp, x, right=True).clamp_(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    return f0 + (f1 - f0) / (x1 - x0) * (x - x0)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(3, H, W) sRGB in [0, 1] -> CIE LAB (D65), as skimage.color.rgb2lab."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.tensordot(_XYZ_FROM_RGB.to(rgb), linear, 1) / _WHITE.to(rgb)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856) ** (1 / 3), 7.787 * xyz + 16 / 116)
    x, y, z = f
    return torch.stack([116 * y - 16, 500 * (x - y), 200 * (y - z)])


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE LAB (D65) -> sRGB clipped to [0, 1], as skimage.color.lab2rgb (negative Z clipped to 0)."""
    lightness, a, b = lab
    y = (lightness + 16) / 116
    f = torch.stack([a / 500 + y, y, (y - b / 200).clamp(min=0)])
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / 7.787) * _WHITE.to(lab)
    linear = torch.tensordot(_RGB_FROM_XYZ.to(lab), xyz, 1)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0, 1)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB -> HSV with hue in [0, 1), as skimage.color.rgb2hsv (grey pixels get hue 0)."""
    r, g, b = rgb
    value = rgb.amax(0)
    delta = value - rgb.amin(0)
    grey = delta == 0
    delta = torch.where(grey, 1, delta)
    # skimage lets blue win a tie for the maximum over green, and green over red.
    hue = torch.where(b == value, 4 + (r - g) / delta, torch.where(g == value, 2 + (b - r) / delta, (g - b) / delta))
    hue = torch.where(grey, 0, (hue / 6) % 1)
    saturation = torch.where(grey, 0, delta / value)
    return torch.stack([hue, saturation, value])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """HSV -> RGB, as skimage.color.hsv2rgb."""
    hue, saturation, value = hsv
    sector = torch.floor(hue * 6)
    f = hue * 6 - sector
    p = value * (1 - saturation)
    q = value * (1 - f * saturation)
    t = value * (1 - (1 - f) * saturation)
    pick = _HSV_SECTORS.to(hsv.device)[sector.long() % 6].permute(2, 0, 1)
    return torch.stack([value, q, p, t]).gather(0, pick)


def _same(image: torch.Tensor) -> torch.Tensor:
    return image


_SPACES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "RGB": (_same, _same),
    "HSV": (rgb_to_hsv, hsv_to_rgb),
    "LAB": (rgb_to_lab, lab_to_rgb),
}


def adjust_contrast(image: torch.Tensor, contrast: float) -> torch.Tensor:
    """Deforum's contrast: every value scaled by `contrast` (1 = unchanged), clipped."""
    return image if contrast == 1 else (image * contrast).clamp_(0, 1)


OPENCV_SMALL_KERNELS = {  # OpenCV's getGaussianKernel for these sizes when sigma is 0 or less, in 256ths
    3: (64, 128, 64),
    5: (16, 64, 96, 64, 16),
    7: (8, 28, 56, 72, 56, 28, 8),
    9: (4, 13, 30, 51, 60, 51, 30, 13, 4),
}


def gaussian_blur(image: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur with an odd kernel size (even sizes are raised by one); a sigma of 0 or
    less is OpenCV's (and so Deforum's) default for the kernel size: its fixed kernels up to 9 taps, else
    sigma = 0.3 * ((kernel - 1) / 2 - 1) + 0.8."""
    kernel += 1 - kernel % 2
    if sigma <= 0 and kernel in OPENCV_SMALL_KERNELS:
        weights = torch.tensor(OPENCV_SMALL_KERNELS[kernel], device=image.device, dtype=image.dtype) / 256
    else:
        sigma = sigma if sigma > 0 else 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
        x = torch.arange(kernel, device=image.device, dtype=image.dtype) - kernel // 2
        weights = torch.exp(-(x**2) / (2 * sigma**2))
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
