"""The frame loop on the tiny pipeline: cadence, Deforum's strength, resume, Video Input, Interpolation."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from animate_helpers import save_tiny_depth_model
from PIL import Image

from sdplay.animate.renderer import Renderer
from sdplay.animate.settings import AnimationSettings, load_settings_file
from sdplay.api import model_for
from sdplay.engine import Job, RunResult, run
from sdplay.engine.events import Event, Progress
from sdplay.output import read_parameters
from sdplay.video import read_video_frames, write_video

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_depth_model(tmp_path_factory.mktemp("depth"))


def small(tiny_model: Path, **options) -> AnimationSettings:
    base = {"model": str(tiny_model), "W": 64, "H": 64, "steps": 4, "seed": 5, "device": "cpu", "prompts": {"0": "a"}}
    base.update(strength_schedule=0.5, sampler="euler")  # 2 of the 4 steps; Euler runs exactly the steps asked
    return AnimationSettings(**{**base, **options})


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def run_animation(
    settings: AnimationSettings | None = None, outdir: Path | None = None, resume: Path | None = None, on_event=None
) -> RunResult:
    return run(Job("animate", settings, outdir=outdir, resume=resume), on_event)


class StepLog:
    """Which pipeline calls ran denoising steps (by the first frame each makes), and how many steps each ran."""

    def __init__(self) -> None:
        self.steps: dict[int, int] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.steps[event.frame] = event.step


def test_cadence_writes_every_frame_and_diffuses_every_nth(tiny_model, tmp_path) -> None:
    steps = StepLog()
    settings = small(tiny_model, max_frames=8, diffusion_cadence=3, zoom="0: (1.05)", translation_x="0: (2)")
    run = run_animation(settings, tmp_path, on_event=steps)
    assert sorted(steps.steps) == [0, 3, 6] and run.diffused == [0, 3, 6]
    assert [p.name for p in sorted(run.run_dir.glob("*.png"))] == [f"{n:04d}.png" for n in range(8)]
    assert run.video == run.run_dir / "animation.mp4" and run.video.stat().st_size > 0
    assert read_video_frames(run.video)[0].size == (64, 64) and len(read_video_frames(run.video)) == 8
    between = [pixels(run.paths[n]) for n in range(3)]
    assert not np.array_equal(between[1], between[0]) and not np.array_equal(between[1], between[2])
    assert "Cadence" in read_parameters(run.paths[7])  # the tail after the last diffused frame


def test_strength_schedule_is_the_share_kept(tiny_model, tmp_path) -> None:
    steps = StepLog()
    settings = small(tiny_model, max_frames=3, steps=4, strength_schedule="0: (0.75), 2: (0.25)", noise_schedule=0)
    run = run_animation(settings, tmp_path, on_event=steps)
    assert steps.steps == {0: 4, 1: 2, 2: 3}  # keep 0.5 (between the keys): 2 of 4 steps; keep 0.25: 3
    assert read_parameters(run.paths[2])["Denoising strength"] == "0.75"
    still = small(tiny_model, max_frames=2, strength_schedule=1.0, noise_schedule=0, color_coherence="None")
    kept = run_animation(still, tmp_path)
    assert kept.diffused == [0, 1] and np.array_equal(pixels(kept.paths[1]), pixels(kept.paths[0]))


def test_resume_makes_exactly_the_frames_of_an_uninterrupted_run(tiny_model, depth_model, tmp_path, caplog) -> None:
    settings = small(
        tiny_model,
        animation_mode="3D",
        max_frames=6,
        diffusion_cadence=2,
        translation_z="0: (10)",
        rotation_3d_y="0: (2)",
        noise_type="perlin",
        depth_model=str(depth_model),
        save_depth_maps=True,
        seed=-1,
    )
    full = run_animation(settings, tmp_path / "a")
    assert sorted(p.name for p in (full.run_dir / "depth").iterdir()) == ["0000.png", "0002.png", "0004.png"]
    cut = tmp_path / "cut"
    shutil.copytree(full.run_dir, cut)
    for name in ("0003.png", "0004.png", "0005.png", "animation.mp4"):
        (cut / name).unlink()
    resumed = run_animation(resume=cut)
    assert resumed.diffused == [4]  # frame 2 was redone to rebuild frame 3, but not written again
    for a, b in zip(full.paths, resumed.paths, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), b.name
    assert json.loads((cut / "settings.json").read_text())["seed"] == full.settings.seed != -1


def test_video_input_redraws_each_extracted_frame(tiny_model, tmp_path) -> None:
    colours = [(250, 20, 20), (20, 250, 20), (20, 20, 250), (250, 250, 20), (20, 250, 250), (250, 20, 250)]
    video = write_video([np.full((64, 64, 3), c, np.uint8) for c in colours], tmp_path / "in.mp4", fps=6)
    settings = small(
        tiny_model,
        animation_mode="Video Input",
        video_init_path=str(video),
        extract_nth_frame=2,
        strength_schedule=1.0,
        noise_schedule=0,
        color_coherence="None",
    )
    run = run_animation(settings, tmp_path / "out")
    assert run.settings.max_frames == 3 and len(run.paths) == 3
    for path, colour in zip(run.paths, colours[::2], strict=True):
        assert np.abs(pixels(path).mean(axis=(0, 1)) - colour).max() < 12  # kept all of the video frame
    coherent = settings.with_values(
        extract_nth_frame=1,
        extract_to_frame=3,
        color_coherence="Video Input",
        color_coherence_video_every_N_frames=2,
    )
    run = run_animation(coherent, tmp_path / "coherent")
    means = [pixels(path).mean(axis=(0, 1)) for path in run.paths]
    for index, anchor in ((1, 0), (3, 2)):  # pulled to the colours of the video frame every 2nd frame
        assert np.abs(means[index] - colours[anchor]).max() < 12


def test_independent_frames_go_through_the_unet_in_batches_and_resume_mid_batch(tiny_model, tmp_path) -> None:
    frames = [np.full((64, 64, 3), (40 * i, 250 - 40 * i, 120), np.uint8) for i in range(6)]
    video = write_video(frames, tmp_path / "in.mp4", fps=6)
    settings = small(
        tiny_model, animation_mode="Video Input", video_init_path=str(video), color_coherence="None", batch_size=3
    )
    calls = StepLog()
    batched = run_animation(settings, tmp_path / "batched", on_event=calls)
    assert sorted(calls.steps) == [0, 1, 4]  # frame 0 alone, then frames 1-3 and 4-5 in one call each
    single = run_animation(settings.with_values(batch_size=1), tmp_path / "single")
    for a, b in zip(batched.paths, single.paths, strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= 2, b.name  # the same frames, up to float rounding
    cut = tmp_path / "cut"
    shutil.copytree(batched.run_dir, cut)
    for name in ("0002.png", "0003.png", "0004.png", "0005.png", "animation.mp4"):
        (cut / name).unlink()
    resumed = run_animation(resume=cut)
    assert resumed.diffused == [2, 3, 4, 5]  # frame 1 was made again with its batch, not written again
    for a, b in zip(batched.paths, resumed.paths, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), b.name


def test_interpolation_walks_between_key_prompts(tiny_model, tmp_path) -> None:
    settings = small(
        tiny_model,
        animation_mode="Interpolation",
        prompts={"0": "a red cat", "max_f": "a blue dog"},
        interpolate_key_frames=False,  # the Colab notebook's way: interpolate_x_frames between each pair
        interpolate_x_frames=2,
        seed_behavior="fixed",
    )
    run = run_animation(settings, tmp_path)
    assert run.settings.max_frames == 4 and run.settings.prompts == {"0": "a red cat", "3": "a blue dog"}
    frames = [pixels(p) for p in run.paths]
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(3)]
    assert all(s > 0 for s in steps)
    assert read_parameters(run.paths[3])["prompt"] == "a blue dog"


def test_a_deforum_settings_file_runs_a_few_frames(tiny_model, tmp_path, caplog) -> None:
    data = {**load_settings_file(DEFORUM_FILE), "max_frames": 3, "model": str(tiny_model), "device": "cpu"}
    with caplog.at_level(logging.DEBUG, "sdplay"):
        settings = AnimationSettings.from_dict(data, DEFORUM_FILE.name)
        run = run_animation(settings, tmp_path)
    assert "have no meaning here" in caplog.text  # the unused keys, at debug level
    assert run.diffused == [0, 2] and len(run.paths) == 3
    meta = read_parameters(run.paths[2])
    assert meta["prompt"] == "a beautiful coconut" and meta["negative"] == "photo, realistic nsfw, nude"
    assert meta["Sampler"] == "euler_a" and meta["Seed"] == "1235"  # iter: the second diffused frame
    assert meta["CFG scale"] == "7.0" and json.loads((run.run_dir / "settings.json").read_text())["W"] == 64


def test_init_image_and_still_frames(tiny_model, picture, tmp_path) -> None:
    settings = small(tiny_model, animation_mode="None", max_frames=2, use_init=True, init_image=str(picture))
    run = run_animation(settings, tmp_path)
    assert len(run.paths) == 2 and run.diffused == [0, 1]
    kept = small(tiny_model, max_frames=1, use_init=True, init_image=str(picture), strength=1.0)
    first = run_animation(kept, tmp_path).paths[0]
    assert np.array_equal(pixels(first), pixels(picture))


@pytest.mark.parametrize(
    ("native", "dtype", "expected"),
    [(True, "auto", torch.bfloat16), (True, "fp32", torch.float32), (False, "auto", torch.float32)],
)
def test_depth_runs_in_bf16_on_a_cpu_with_native_bf16_unless_fp32_was_asked_for(
    tiny_model, depth_model, monkeypatch, native, dtype, expected
) -> None:
    monkeypatch.setattr("sdplay.devices.cpu_has_native_bf16", lambda: native)
    settings = small(tiny_model, animation_mode="3D", depth_model=str(depth_model), dtype=dtype)
    renderer = Renderer(settings, model_for(settings))
    assert renderer.model.dtype == torch.float32 and renderer.depth_model.dtype == expected
    depth, _ = renderer.depth_of(torch.rand(1, 3, 64, 64))
    assert depth.dtype == torch.float32 and float(depth.min()) == pytest.approx(1.0)
