"""Deforum's behaviours through whole runs on the tiny pipeline: colour after generation, a chosen colour
picture, the noise multiplier, the perspective flip in 3D, Video Input frames sent as they are."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from animate_helpers import save_tiny_depth_model
from PIL import Image

from sdplay.animate.settings import AnimationSettings, frame_seed
from sdplay.depth import nearer_is_larger
from sdplay.depth_names import DEFAULT_DEPTH_MODEL
from sdplay.engine import Job, run
from sdplay.errors import SdplayError
from sdplay.output import read_parameters
from sdplay.video import write_video

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"


def small(tiny_model: Path, **options) -> AnimationSettings:
    base = {"model": str(tiny_model), "W": 64, "H": 64, "steps": 4, "seed": 5, "device": "cpu", "prompts": {"0": "a"}}
    base.update(strength_schedule=0.5, sampler="euler", max_frames=3, noise_schedule=0)
    return AnimationSettings(**{**base, **options})


def frames(settings: AnimationSettings, outdir: Path) -> list[np.ndarray]:
    result = run(Job("animate", settings, outdir=outdir))
    return [np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) for path in result.paths]


def colour_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference of the per-channel mean and spread of two pictures, in grey levels."""
    return float(max(np.abs(a.mean((0, 1)) - b.mean((0, 1))).max(), np.abs(a.std((0, 1)) - b.std((0, 1))).max()))


def test_each_generated_frame_is_matched_to_frame_0_unless_legacy(tiny_model, tmp_path) -> None:
    settings = small(tiny_model, color_coherence="RGB", zoom="0: (1.1)", strength_schedule=0.2)
    matched = frames(settings, tmp_path / "a")
    legacy = frames(settings.with_values(legacy_colormatch=True), tmp_path / "b")
    near = max(colour_gap(frame, matched[0]) for frame in matched[1:])
    far = max(colour_gap(frame, legacy[0]) for frame in legacy[1:])
    assert near < 0.5 and far > 2  # measured: 0.2 and 3.0 levels; matched frames keep frame 0's RGB histograms


def test_a_colour_picture_sets_the_colours_from_frame_0(tiny_model, tmp_path) -> None:
    rng = np.random.default_rng(0)
    picture = np.clip(rng.normal((200, 80, 40), 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "palette.png"
    Image.fromarray(picture).save(path)
    made = frames(small(tiny_model, color_coherence="Image", color_coherence_image_path=str(path)), tmp_path / "a")
    means = [frame.mean((0, 1)) for frame in made]
    assert all(np.abs(mean - picture.mean((0, 1))).max() < 6 for mean in means)  # matched in LAB, so not exact
    with pytest.raises(SdplayError, match="color_coherence: 'Image' needs a color_coherence_image_path"):
        small(tiny_model, color_coherence="Image")


def test_video_colours_steer_a_2d_animation(tiny_model, tmp_path) -> None:
    colours = [(230, 40, 40), (40, 40, 230)]
    video = write_video([np.full((64, 64, 3), c, np.uint8) for c in colours], tmp_path / "in.mp4", fps=2)
    made = frames(
        small(tiny_model, max_frames=2, color_coherence="Video Input", video_init_path=str(video)), tmp_path / "a"
    )
    for frame, colour in zip(made, colours, strict=True):
        assert np.abs(frame.mean((0, 1)) - colour).max() < 15


def test_the_noise_multiplier_changes_img2img_and_can_be_turned_off(tiny_model, tmp_path) -> None:
    settings = small(tiny_model, max_frames=2, noise_multiplier_schedule="0: (1.3)")
    off = frames(settings.with_values(enable_noise_multiplier_scheduling=False), tmp_path / "off")
    one = frames(settings.with_values(noise_multiplier_schedule="0: (1)"), tmp_path / "one")
    more = frames(settings, tmp_path / "more")
    assert np.array_equal(off[1], one[1]) and np.array_equal(off[0], more[0])  # txt2img is not touched
    assert np.abs(more[1] - off[1]).mean() > 1


def test_the_perspective_flip_moves_3d_frames_too(tiny_model, tmp_path) -> None:
    depth = save_tiny_depth_model(tmp_path)
    settings = small(tiny_model, animation_mode="3D", depth_model=str(depth), strength_schedule=1.0)
    plain = frames(settings, tmp_path / "plain")
    flipped = frames(settings.with_values(enable_perspective_flip=True, perspective_flip_phi="0: (20)"), tmp_path / "f")
    assert np.array_equal(plain[0], flipped[0]) and np.abs(plain[1] - flipped[1]).mean() > 2


def test_video_frames_go_to_img2img_as_they_are(tiny_model, tmp_path) -> None:
    colours = [(200, 120, 60), (60, 120, 200)]
    video = write_video([np.full((64, 64, 3), c, np.uint8) for c in colours], tmp_path / "in.mp4", fps=2)
    settings = small(
        tiny_model,
        animation_mode="Video Input",
        video_init_path=str(video),
        strength_schedule=1.0,  # keep every video frame: what img2img was given is what is written
        contrast_schedule="0: (0.5)",
        noise_schedule="0: (0.3)",
        amount_schedule="0: (1)",
        color_coherence="LAB",
    )
    for frame, colour in zip(frames(settings, tmp_path / "a"), colours, strict=True):
        assert np.abs(frame.mean((0, 1)) - colour).max() < 6  # not darkened, noised or sharpened


def deforum_file(tmp_path: Path, **changes: object) -> Path:
    data = json.loads(DEFORUM_FILE.read_text())
    path = tmp_path / "deforum.txt"
    path.write_text(json.dumps({**data, **changes}))
    return path


def test_features_the_file_turns_on_are_named_in_one_line(tmp_path, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="sdplay"):
        AnimationSettings.from_dict(json.loads(DEFORUM_FILE.read_text()), "default.txt")
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]  # Deforum's defaults: the key list for --debug only
    assert "key(s) have no meaning here and were ignored: add_soundtrack" in caplog.records[0].getMessage()
    caplog.clear()
    changed = {"cn_2_mask_vid_path": "m.mp4", "hybrid_composite": "Normal", "use_mask_video": True, "use_mask": False}
    with caplog.at_level(logging.INFO, logger="sdplay"):
        AnimationSettings.from_dict({**json.loads(DEFORUM_FILE.read_text()), **changed}, "mine.txt")
    assert [r.getMessage() for r in caplog.records] == [
        "mine.txt: this file turns on ControlNet masks (cn_2_mask_vid_path), hybrid video (hybrid_composite) and "
        "masks (use_mask_video); sdplay does not do them, so the result will differ"
    ]


def test_random_seeds_start_from_the_given_seed_and_schedules_truncate_like_deforum() -> None:
    settings = AnimationSettings(seed=1234, seed_behavior="random", max_frames=3)
    seeds = [frame_seed(settings, frame, frame, 0) for frame in range(3)]
    assert seeds[0] == 1234 and len(set(seeds)) == 3  # Deforum draws a new seed after each frame
    series = AnimationSettings(
        max_frames=2, steps_schedule="0: (25.9)", kernel_schedule="0: (5.7)", seed_schedule="0: (7.99)"
    ).series
    assert [series[name][0] for name in ("steps_schedule", "kernel_schedule", "seed_schedule")] == [25, 5, 7]


def test_backtick_maths_in_prompts_and_parts_joined_with_a_space() -> None:
    settings = AnimationSettings(
        max_frames=3,
        prompts={"0": "a (cat:`1+t/10`) --neg dog:`t*2`"},
        positive_prompts="oil painting,",
        negative_prompts="blurry",
    )
    assert settings.frame_prompts()[2] == ("oil painting, a (cat:1.2)", "dog:4.0 blurry")
    with pytest.raises(SdplayError, match=r"^prompts: unknown name 'x'"):
        AnimationSettings(max_frames=2, prompts={"0": "a `x+1` cat"})
    with pytest.raises(SdplayError, match=r"^prompts: '`1/t`' is not a finite number at frame 0"):
        AnimationSettings(max_frames=2, prompts={"0": "a `1/t` cat"})


def test_depth_algorithm_names_the_transformers_depth_model(caplog) -> None:
    from transformers import DepthAnythingConfig, DPTConfig, ZoeDepthConfig

    assert AnimationSettings(depth_algorithm="Midas-3-Hybrid").depth_model == "Intel/dpt-hybrid-midas"
    assert AnimationSettings(depth_algorithm="zoe").depth_model == "Intel/zoedepth-nyu-kitti"
    assert AnimationSettings().depth_model == DEFAULT_DEPTH_MODEL  # sdplay's own files: Depth Anything V2
    assert AnimationSettings(depth_algorithm="Zoe", depth_model="my/depth").depth_model == "my/depth"  # given wins
    with caplog.at_level(logging.WARNING, logger="sdplay"):
        assert AnimationSettings(depth_algorithm="LeReS").depth_model == DEFAULT_DEPTH_MODEL
    assert caplog.records[0].getMessage() == (
        f"depth_algorithm 'LeReS' has no transformers model; using {DEFAULT_DEPTH_MODEL} instead"
    )
    with pytest.raises(SdplayError, match="^depth_algorithm must be one of midas-3-hybrid, "):
        AnimationSettings(depth_algorithm="sonar")
    # ZoeDepth predicts metric depth (larger = farther); DPT/MiDaS and Depth Anything predict disparity
    assert not nearer_is_larger(ZoeDepthConfig()) and nearer_is_larger(DPTConfig())
    assert nearer_is_larger(DepthAnythingConfig()) and not nearer_is_larger(
        DepthAnythingConfig(depth_estimation_type="metric")
    )


def test_cadence_blends_the_earlier_key_into_key_k_until_k_shows_fully_at_k_plus_n_minus_1(
    tiny_model, tmp_path
) -> None:
    """Deforum's timing, N = 3, no motion: frames K..K+2 are (1 - w) * key before + w * key K, w = 1/3, 2/3, 1."""
    settings = small(tiny_model, max_frames=7, diffusion_cadence=3, zoom="0: (1)", color_coherence="None")
    result = run(Job("animate", settings, outdir=tmp_path / "a"))
    frame = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) for p in result.paths]
    keys = {k: np.asarray(Image.open(result.run_dir / "keys" / f"{k:04d}.png"), dtype=np.float64) for k in (3, 6)}
    keys[0] = frame[0]
    assert result.diffused == [0, 3, 6] and np.abs(keys[3] - keys[0]).mean() > 5
    expected = {1: keys[0], 2: keys[0], 5: keys[3]}
    for t, (before, key) in {3: (0, 3), 4: (0, 3), 6: (3, 6)}.items():
        weight = (t - key + 1) / 3
        expected[t] = (1 - weight) * keys[before] + weight * keys[key]
    for t, picture in expected.items():
        assert np.abs(frame[t] - picture).max() <= 1, t
    cut = tmp_path / "cut"  # killed after frame 6 was written but before its diffused picture was
    shutil.copytree(result.run_dir, cut)
    for path in (cut / "0006.png", cut / "keys" / "0006.png", cut / "keys" / "0003.png", cut / "animation.mp4"):
        path.unlink()
    (cut / "0005.png").unlink()
    resumed = run(Job("animate", None, resume=cut))
    for a, b in zip(result.paths, resumed.paths, strict=True):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), b.name


def test_interpolation_spans_max_frames_between_the_prompts_own_frames(tiny_model, tmp_path) -> None:
    settings = small(
        tiny_model,
        animation_mode="Interpolation",
        max_frames=6,
        prompts={"0": "a red cat", "4": "a blue dog"},
        seed_behavior="fixed",
    )
    result = run(Job("animate", settings, outdir=tmp_path / "a"))
    assert result.settings.max_frames == 6 and len(result.paths) == 6  # the web UI's way: the file's own length
    made = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) for p in result.paths]
    shares = [read_parameters(p).get("Interpolation") for p in result.paths]
    assert shares == [None, "0.250 from the key prompt at frame 0", "0.500 from the key prompt at frame 0",
                      "0.750 from the key prompt at frame 0", None, None]  # fmt: skip
    assert np.array_equal(made[4], made[5]) and all(np.abs(made[i + 1] - made[i]).mean() > 0 for i in range(4))
