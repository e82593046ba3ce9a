"""Colour coherence, contrast, unsharp mask and noise on synthetic frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from animate_helpers import texture

from sdplay.animate.color import (
    ColorCoherence,
    adjust_contrast,
    color_reference,
    gaussian_blur,
    hsv_to_rgb,
    lab_to_rgb,
    match_colors,
    rgb_to_hsv,
    rgb_to_lab,
    unsharp_mask,
)


@pytest.mark.parametrize("mode", ["RGB", "HSV", "LAB"])
def test_colour_coherence_pulls_a_frame_to_the_reference_histogram(mode: str) -> None:
    reference = texture(64, 64, seed=1)
    drifted = texture(64, 64, seed=2) * torch.tensor([0.5, 0.6, 0.4]).view(1, 3, 1, 1) + 0.3
    matched = match_colors(drifted, color_reference(reference, mode))
    levels = torch.linspace(0.1, 0.9, 9)

    def quantiles(image: torch.Tensor) -> torch.Tensor:
        return torch.quantile(image[0].flatten(1), levels, dim=1)

    distance = lambda image: (quantiles(image) - quantiles(reference)).abs().mean()  # noqa: E731
    assert distance(matched) < (0.1 if mode == "RGB" else 0.5) * distance(drifted)  # RGB matches exactly
    assert matched.shape == drifted.shape and float(matched.min()) >= 0 and float(matched.max()) <= 1


def scikit_image_match(image: torch.Tensor, reference: torch.Tensor, mode: str) -> torch.Tensor:
    """The oracle: scikit-image's conversions and match_histograms on float64 numpy copies."""
    from skimage import color
    from skimage.exposure import match_histograms

    to_space, from_space = {
        "RGB": (lambda a: a, lambda a: a),
        "HSV": (color.rgb2hsv, color.hsv2rgb),
        "LAB": (color.rgb2lab, color.lab2rgb),
    }[mode]
    as_numpy = lambda frame: frame[0].permute(1, 2, 0).double().numpy()  # noqa: E731
    matched = from_space(match_histograms(to_space(as_numpy(image)), to_space(as_numpy(reference)), channel_axis=-1))
    return torch.from_numpy(np.clip(matched, 0, 1)).permute(2, 0, 1)[None]


@pytest.mark.parametrize("mode", ["RGB", "HSV", "LAB"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_colour_coherence_gives_scikit_images_result(mode: str, seed: int) -> None:
    reference = texture(64, 64, seed=seed)
    drifted = texture(64, 64, seed=seed + 10) * torch.tensor([0.5, 0.6, 0.4]).view(1, 3, 1, 1) + 0.3
    matched = match_colors(drifted, color_reference(reference, mode))
    assert matched.dtype == drifted.dtype
    # Computed in float64 like scikit-image (~1e-14 apart); what is left is the float32 result's rounding.
    assert torch.allclose(matched.double(), scikit_image_match(drifted, reference, mode), rtol=0, atol=1e-6)


def test_colour_coherence_copes_with_a_grey_reference() -> None:
    grey = torch.full((1, 3, 32, 32), 0.5)  # one value per channel, hue and saturation 0
    for mode in ("RGB", "HSV", "LAB"):
        matched = match_colors(texture(32, 32), color_reference(grey, mode))
        assert torch.allclose(matched, grey, atol=1e-5), mode


def test_colour_spaces_convert_there_and_back() -> None:
    rgb = texture(64, 64, seed=5)[0].double()
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, rtol=0, atol=1e-5)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, rtol=0, atol=1e-5)
    white_lab = rgb_to_lab(torch.ones(3, 1, 1, dtype=torch.float64)).flatten()
    assert torch.allclose(white_lab, torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), atol=1e-2)  # L 100, neutral


def test_contrast_scales_values() -> None:
    image = texture(32, 32)
    assert torch.allclose(adjust_contrast(image, 0.5), image * 0.5)
    assert adjust_contrast(image, 1.0) is image


def test_unsharp_mask_adds_edge_contrast_and_respects_threshold() -> None:
    image = torch.zeros(1, 3, 32, 32)
    image[..., 16:] = 0.5
    sharp = unsharp_mask(image, 5, 1.0, 1.0, 0)
    assert float(sharp[0, 0, 0, 16]) > 0.5 and float(sharp[0, 0, 0, 15]) == 0.0  # overshoot on the bright side
    assert torch.equal(unsharp_mask(image, 5, 1.0, 0.0, 0), image)
    assert torch.equal(unsharp_mask(image, 5, 1.0, 1.0, 255), image)  # every difference is under the threshold


@pytest.mark.parametrize("kernel", [1, 3, 5, 9, 11])
def test_a_sigma_of_zero_is_opencvs_default_for_the_kernel(kernel: int) -> None:
    """What OpenCV (and so Deforum) blurs with when given sigma 0: fixed kernels up to 9 taps, else
    sigma 0.3 * ((k - 1) / 2 - 1) + 0.8."""
    cv2 = pytest.importorskip("cv2")
    image = texture(32, 32)
    ours = gaussian_blur(image, kernel, 0.0)
    theirs = cv2.GaussianBlur(image[0].permute(1, 2, 0).numpy(), (kernel, kernel), 0, borderType=cv2.BORDER_REPLICATE)
    assert np.abs(ours[0].permute(1, 2, 0).numpy() - theirs).max() < 1e-5


def tinted(image: torch.Tensor, shift: tuple[float, float, float]) -> torch.Tensor:
    return (image + torch.tensor(shift).view(1, 3, 1, 1)).clamp(0, 1)


def mean_colour(image: torch.Tensor) -> torch.Tensor:
    return image.mean(dim=(0, 2, 3))


def test_generated_frames_are_matched_to_frame_0_unless_legacy() -> None:
    frame_0, drifted = texture(), tinted(texture(seed=1), (0.15, -0.1, 0.05))
    coherence = ColorCoherence("LAB")
    assert (
        coherence.after(frame_0, 0, keep=0.65) is frame_0 and coherence.reference is not None
    )  # frame 0 is the reference
    matched = coherence.after(drifted, 5, keep=0.65)  # Deforum's default: each generated frame is matched too
    assert (mean_colour(matched) - mean_colour(frame_0)).abs().max() < 0.02
    assert (mean_colour(drifted) - mean_colour(frame_0)).abs().max() > 0.09
    legacy = ColorCoherence("LAB", legacy=True)
    legacy.after(frame_0, 0, keep=0.65)
    assert legacy.reference is None and legacy.after(drifted, 5, keep=0.65) is drifted
    assert legacy.before(frame_0) is frame_0 and legacy.reference is not None  # the first warped input is the reference
    assert (mean_colour(legacy.before(drifted)) - mean_colour(frame_0)).abs().max() < 0.02


def test_an_init_frame_leaves_the_reference_to_the_first_warped_frame() -> None:
    coherence = ColorCoherence("RGB")
    coherence.after(texture(), 0, keep=0.65, from_init=True)
    assert coherence.reference is None
    warped = texture(seed=2)
    assert coherence.before(warped) is warped and coherence.reference is not None


def test_a_chosen_image_is_the_reference_from_frame_0_on_in_lab() -> None:
    picture, frame_0 = tinted(texture(seed=3), (0.2, 0.0, -0.2)), texture()
    for legacy in (False, True):
        coherence = ColorCoherence("Image", legacy)
        coherence.use(picture)
        assert coherence.space == "LAB"
        matched = coherence.after(frame_0, 0, keep=0.0)  # frame 0 is matched even with the legacy match
        assert (mean_colour(matched) - mean_colour(picture)).abs().max() < 0.03
        before = coherence.reference
        coherence.after(frame_0, 0, keep=0.0)
        assert coherence.reference is before  # a chosen picture is never replaced by a frame
    assert ColorCoherence("None").after(frame_0, 0, keep=0.0) is frame_0
