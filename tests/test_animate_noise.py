"""Deforum's frame noise: white grain around mid-grey blended in by the noise amount, its strength
modulated by a Perlin pattern for `perlin`, measured on small flat pictures."""

from __future__ import annotations

import math

import pytest
import torch

from sdplay.animate.noise import add_noise, scaled_start_noise

BRIGHT = 200 / 255


def low_frequency_share(image: torch.Tensor) -> float:
    """Share of the picture's (non-constant) energy within the lowest eighth of frequencies on each axis."""
    power = torch.fft.fft2(image - image.mean(dim=(-2, -1), keepdim=True)).abs() ** 2
    n = image.shape[-1]
    band = torch.fft.fftfreq(n).abs() < 1 / 8
    return float(power[..., band[:, None] & band[None, :]].sum() / power.sum())


def block_spread(grain: torch.Tensor, block: int = 16) -> float:
    """How much the grain's strength varies from patch to patch (spread of the patches' std / mean std)."""
    patches = grain.unfold(-2, block, block).unfold(-2, block, block).reshape(-1, block * block).std(dim=1)
    return float(patches.std() / patches.mean())


@pytest.mark.parametrize("kind", ["perlin", "uniform", "normal"])
def test_the_noise_is_fine_grain_not_a_smooth_pattern(kind: str) -> None:
    grey = torch.full((1, 1, 128, 128), 0.5)
    grain = add_noise(grey, 0.5, seed=1, kind=kind) - grey
    assert low_frequency_share(grain) < 0.12  # white grain: about 1/16 of its energy is that low


def test_perlin_modulates_the_grain_strength_in_patches() -> None:
    grey = torch.full((1, 1, 128, 128), 0.5)
    perlin = add_noise(grey, 0.5, seed=1, kind="perlin") - grey
    uniform = add_noise(grey, 0.5, seed=1, kind="uniform") - grey
    assert block_spread(perlin, 8) > 3 * block_spread(uniform, 8)  # measured: 0.21 against 0.05
    assert float(perlin.std()) < float(uniform.std())  # (pattern + 1) / 2 is about a half on average


@pytest.mark.parametrize("kind", ["perlin", "uniform"])
def test_the_blend_pulls_every_pixel_toward_mid_grey_by_the_amount(kind: str) -> None:
    bright = torch.full((1, 3, 256, 256), BRIGHT)
    noisy = add_noise(bright, 0.065, seed=7, kind=kind)
    shift = float(noisy.mean() - BRIGHT) * 255
    # the noise picture averages 127 (mid-grey, cut to 8 bits): 200 -> 200 * 0.935 + 127 * 0.065
    assert shift == pytest.approx(-(200 - 127.0) * 0.065, abs=0.3)
    away = float(add_noise(bright, -0.065, seed=7, kind=kind).mean() - BRIGHT) * 255  # Deforum's addWeighted too
    assert away == pytest.approx((200 - 127.0) * 0.065, abs=0.3)


def test_uniform_grain_has_deforums_strength() -> None:
    grey = torch.full((1, 3, 256, 256), 0.5)
    grain = (add_noise(grey, 0.065, seed=2, kind="uniform") - grey) * 255
    # 0.5 + 0.5 * N(0, 1) clipped to [0, 1]: std 0.5 * sqrt(E[min(N^2, 1)]) = 0.359 of 255 levels, times 0.065
    clipped_std = 0.5 * math.sqrt(math.erf(1 / math.sqrt(2)) - 2 * math.exp(-0.5) / math.sqrt(2 * math.pi) + 0.3173)
    assert float(grain.std()) == pytest.approx(clipped_std * 255 * 0.065, rel=0.05)


def test_noise_repeats_per_seed_and_fits_any_size() -> None:
    grey = torch.full((1, 3, 72, 100), 0.5)
    noisy = add_noise(grey, 0.1, seed=3)
    assert noisy.shape == grey.shape
    assert torch.equal(noisy, add_noise(grey, 0.1, seed=3))
    assert not torch.equal(noisy, add_noise(grey, 0.1, seed=4))
    assert add_noise(grey, 0.0, seed=3) is grey


def test_the_noise_multiplier_scales_img2imgs_starting_noise_for_the_call_only() -> None:
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    scheduler.set_timesteps(10)
    latents, noise, t = torch.zeros(1, 4, 8, 8), torch.randn(1, 4, 8, 8), scheduler.timesteps[3:4]
    plain = scheduler.add_noise(latents, noise, t)
    with scaled_start_noise(scheduler, 1.05):
        assert torch.allclose(scheduler.add_noise(latents, noise, t), plain * 1.05)
    assert "add_noise" not in vars(scheduler) and torch.equal(scheduler.add_noise(latents, noise, t), plain)
