"""Animation settings: Deforum names and files, type conversion, seeds, one clear error per bad value."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sdplay.animate.settings import AnimationSettings, frame_seed, load_settings_file, parse_overrides
from sdplay.errors import SdplayError

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"


def test_a_deforum_web_ui_file_imports_and_names_its_ignored_keys(caplog) -> None:
    with caplog.at_level(logging.DEBUG, "sdplay"):
        settings = AnimationSettings.from_dict(load_settings_file(DEFORUM_FILE), DEFORUM_FILE.name)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # it turns on nothing sdplay lacks
    unused = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]  # listed for --debug
    assert len(unused) == 1
    assert "deforum_webui_settings.txt" in unused[0] and "hybrid_motion" in unused[0]
    assert "sd_model_hash" in unused[0] and "zoom" not in unused[0].split(": ", 2)[-1].split(", ")
    assert (settings.sampler, settings.diffusion_cadence, settings.noise_type) == ("euler_a", 2, "perlin")
    prompts = settings.frame_prompts()
    assert prompts[0] == ("a beautiful lake by Asher Brown Durand, trending on Artstation", "nsfw, nude nsfw, nude")
    assert prompts[59][0].startswith("a beautiful portrait") and prompts[58][0].startswith("a beautiful lake")
    assert prompts[119] == ("a beautiful coconut", "photo, realistic nsfw, nude")  # joined with " ", as Deforum
    series = settings.series
    assert series["zoom"][0] == pytest.approx(1.0025) and series["translation_x"][1] == pytest.approx(2.0)


def test_classic_colab_spellings_are_renamed() -> None:
    settings = AnimationSettings.from_dict(
        {
            "fov": 40,
            "near_plane": 200,
            "far_plane": 10000,
            "flip_2d_perspective": True,
            "color_coherence": "Match Frame 0 HSV",
            "sampler": "klms",
            "animation_prompts": {"0": "a"},
        }
    )
    assert settings.fov_schedule == "0: (40)" and settings.series["fov_schedule"][0] == 40
    assert settings.enable_perspective_flip and settings.color_coherence == "HSV"
    assert settings.sampler == "lms" and settings.prompts == {"0": "a"}
    colab = AnimationSettings.from_dict({"prompts": ["a still"], "animation_prompts": {"0": "a", "5": "b"}})
    assert colab.prompts == {"0": "a", "5": "b"}  # the notebook's still-image list is not the animation's


def test_overrides_are_converted_by_the_keys_type() -> None:
    values = parse_overrides(["max_frames=24", "use_depth_warping=false", "zoom=0: (1.05)", "scale=6.5"])
    settings = AnimationSettings.from_dict(values)
    assert (settings.max_frames, settings.use_depth_warping, settings.scale) == (24, False, 6.5)
    assert settings.series["zoom"][23] == pytest.approx(1.05)
    assert AnimationSettings(zoom=1.02, sampler="DPM++ 2M Karras").sampler == "dpm++_2m_karras"
    with pytest.raises(SdplayError, match="--set needs key=value"):
        parse_overrides(["max_frames"])


@pytest.mark.parametrize(
    "behavior, expected",
    [
        ({"seed_behavior": "iter"}, [10, 11, 12, 13, 14]),
        ({"seed_behavior": "iter", "seed_iter_N": 2}, [10, 11, 11, 12, 12]),
        ({"seed_behavior": "fixed"}, [10] * 5),
        ({"seed_behavior": "ladder"}, [10, 12, 11, 13, 12]),
        ({"seed_behavior": "alternate"}, [10, 11, 10, 11, 10]),
        ({"seed_behavior": "schedule", "seed_schedule": "0: (s), 2: (s+5)"}, [10, 10, 15, 15, 15]),
    ],
)
def test_seed_behaviors_follow_deforum(behavior: dict, expected: list[int]) -> None:
    settings = AnimationSettings(seed=10, max_frames=5, **behavior)
    scheduled = settings.series["seed_schedule"]
    assert [frame_seed(settings, i, i, scheduled[i]) for i in range(5)] == expected


def test_random_seeds_differ_per_frame_and_repeat_per_seed() -> None:
    settings = AnimationSettings(seed=10, seed_behavior="random")
    seeds = [frame_seed(settings, i, i, 0) for i in range(4)]
    assert len(set(seeds)) == 4 and seeds == [frame_seed(settings, i, i, 0) for i in range(4)]


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"W": 32}, "W"),
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": "many"}, "max_frames"),
        ({"diffusion_cadence": 51}, "diffusion_cadence"),
        ({"diffusion_cadence": "1.5"}, "diffusion_cadence"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -2}, "seed"),
        ({"seed_behavior": "spiral"}, "seed_behavior"),
        ({"sampler": "warp_drive"}, "sampler"),
        ({"animation_mode": "4D"}, "animation_mode"),
        ({"border": "mirror"}, "border"),
        ({"padding_mode": "wrap"}, "padding_mode"),
        ({"color_coherence": "CMYK"}, "color_coherence"),
        ({"noise_type": "pink"}, "noise_type"),
        ({"strength_schedule": "0: (nan)"}, "strength_schedule"),
        ({"zoom": "0: (1), 3: (0), 4: (1)"}, "zoom"),
        ({"zoom": "0: (1.0"}, "zoom"),
        ({"angle": "0: (t + nope)"}, "angle"),
        ({"use_depth_warping": "maybe"}, "use_depth_warping"),
        ({"strength": 2}, "strength"),
        ({"fps": 0}, "fps"),
        ({"use_init": True}, "init_image"),
        ({"animation_mode": "Video Input"}, "video_init_path"),
        ({"prompts": {"x": "a"}}, "prompts"),
        ({"prompts": {"0": 5}}, "prompts"),
        ({"steps_schedule": "0: (0)"}, "steps_schedule"),
    ],
)
def test_every_bad_value_is_one_error_naming_its_key(bad: dict, key: str) -> None:
    with pytest.raises(SdplayError) as info:
        AnimationSettings.from_dict(bad)
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message


def model_like(steps: int) -> SimpleNamespace:
    """What `resolved` reads from a loaded model, for a model whose default is `steps` steps."""
    return SimpleNamespace(
        native_size=64,
        vae_scale_factor=8,
        default_steps=steps,
        default_guidance=0.0,
        default_scheduler=None,
        device=torch.device("cpu"),
        name="model",
    )


@pytest.mark.parametrize(("model_steps", "steps", "denoised"), [(1, 3, 1), (4, 12, 4), (25, 25, 8)])
def test_few_step_models_get_enough_steps_to_denoise_every_frame(model_steps: int, steps: int, denoised: int) -> None:
    resolved = AnimationSettings(strength_schedule="0: (0.65)").resolved(model_like(model_steps))
    assert resolved.steps == steps and int(resolved.steps * (1 - 0.65)) == denoised
    assert AnimationSettings(steps=1).resolved(model_like(1)).steps == 1  # asked for: Deforum's rule holds
    assert AnimationSettings(animation_mode="None").resolved(model_like(1)).steps == 1  # txt2img only


def test_strength_out_of_0_to_1_is_clamped_as_deforum_does_and_said_once(caplog) -> None:
    spec = "0: (1.5), 4: (-0.5)"
    with caplog.at_level(logging.WARNING, "sdplay"):
        settings = AnimationSettings(strength_schedule=spec, max_frames=5)
        settings.with_values(seed=3)  # validated again: not said again
    assert settings.series["strength_schedule"].tolist() == [1.0, 1.0, 0.5, 0.0, 0.0]  # 1.5, 1, 0.5, 0, -0.5
    assert [r.getMessage() for r in caplog.records] == [
        "strength_schedule: 2 frame(s) outside 0..1 (frame 0 gives 1.5) are clamped into it, as Deforum does"
    ]


def test_values_deforum_uses_below_zero_are_kept() -> None:
    """Negative noise blends away from the noise picture, negative contrast is black, a sigma of 0 is OpenCV's
    default for the kernel, a negative zoom turns the picture half round; Deforum's own code takes them all."""
    settings = AnimationSettings(
        noise_schedule="0: (-0.1)", contrast_schedule="0: (-1)", sigma_schedule="0: (0)", zoom="0: (-1.02)"
    )
    assert [float(settings.series[name][0]) for name in ("noise_schedule", "sigma_schedule", "zoom")] == [
        -0.1,
        0.0,
        -1.02,
    ]
