"""Dream mode on the tiny random pipeline: the walk, its files, resume, images, audio, errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import sdplay
from sdplay.cli import app
from sdplay.dream import DreamSettings
from sdplay.dream.walk import audio_speeds, frame_positions, locate
from sdplay.engine import CancelToken, Job, run
from sdplay.engine.events import Event, FileWritten
from sdplay.errors import SdplayError
from sdplay.interp import lerp, slerp
from sdplay.legacy import main as legacy_main
from sdplay.models import load_model
from sdplay.output import read_parameters
from sdplay.video import ffmpeg_exe, read_video_frames, video_info, write_video

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads, and two threads on a busy machine spin-wait each
    other into 50x slower runs; one thread keeps this file fast and its timing steady."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sdplay.models.use_all_cores", lambda: None)
        yield
    torch.set_num_threads(threads)


def walk(tiny_model: Path, **options) -> dict:
    """Small, fast settings shared by the tests."""
    base = dict(model=str(tiny_model), width=64, height=64, steps=2, device="cpu", seeds=[1, 2])
    return {**base, **options}


def pixels(image: Image.Image | Path) -> np.ndarray:
    if isinstance(image, Path):
        image = Image.open(image)
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


# ------------------------------------------------------------------------------- pure functions


def test_slerp_ends_at_the_key_points_and_keeps_the_norm() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 4, 8, 8, generator=gen)
    assert torch.equal(slerp(0.0, a, b), a) and torch.equal(slerp(1.0, a, b), b)
    unit_a, unit_b = a / a.norm(), b / b.norm()
    for t in (0.1, 0.5, 0.9):
        middle = slerp(t, unit_a, unit_b)
        assert math.isclose(float(middle.norm()), 1.0, rel_tol=1e-5)
        assert math.isclose(float(slerp(t, a, b).norm()), (1 - t) * float(a.norm()) + t * float(b.norm()), rel_tol=1e-5)
    # a straight line cuts inside the sphere: its middle is much quieter than slerp's
    assert float(lerp(0.5, unit_a, unit_b).norm()) < 0.8
    assert torch.equal(lerp(0.0, a, b), a) and torch.equal(lerp(1.0, a, b), b)


def test_positions_put_key_points_on_exact_frames() -> None:
    positions = frame_positions(9, 2, loop=False)
    assert positions.tolist() == [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2]
    assert locate(2.0, 2) == (1, 1.0) and locate(1.0, 2) == (1, 0.0)
    looped = frame_positions(6, 3, loop=True)
    assert looped.tolist() == [0, 0.5, 1, 1.5, 2, 2.5]
    assert frame_positions(4, 1, loop=False, speeds=np.zeros(4)).tolist() == [0, 0, 0, 0]
    assert frame_positions(4, 1, loop=False, speeds=np.array([1, 0, 1, 1.0])).tolist() == [0, 0, 0.5, 1]


def test_audio_speed_is_zero_in_silence_and_high_on_onsets() -> None:
    samples = np.zeros(8000, np.float32)
    samples[4000:4050] = 0.9
    speeds = audio_speeds(samples, 8000, fps=8, count=8)
    assert speeds[:4].tolist() == [0, 0, 0, 0] and speeds[4] == 1.0 and speeds[5:].tolist() == [0, 0, 0]


def test_settings_validation_names_the_option() -> None:
    with pytest.raises(SdplayError, match="frames: must be a whole number from 1"):
        DreamSettings(prompts=("a",), frames=0)
    with pytest.raises(SdplayError, match="seeds: must be whole numbers"):
        DreamSettings(prompts=("a",), seeds="1,two")
    with pytest.raises(SdplayError, match="3 seeds for 3 key points|2 prompts for 3 key points"):
        DreamSettings(prompts=("a", "b"), seeds="1,2,3")
    with pytest.raises(SdplayError, match="two key points"):
        DreamSettings(prompts=("a",), seeds="5")
    with pytest.raises(SdplayError, match="formats: must be mp4, gif or frames"):
        DreamSettings(prompts=("a",), formats="avi")
    assert DreamSettings(prompts="a", seeds="4, 5").seeds == (4, 5)


def test_video_file_round_trip_pads_odd_sizes_and_reads_frame_ranges(tmp_path) -> None:
    frames = [np.full((33, 47, 3), 20 * i, np.uint8) for i in range(10)]
    frames[3] = Image.fromarray(frames[3])  # images, arrays and paths mix
    Image.fromarray(frames[4]).save(tmp_path / "four.png")
    frames[4] = tmp_path / "four.png"
    video = write_video(frames, tmp_path / "clip.mp4", fps=10)
    assert video_info(video) == (10, 1.0)
    picked = read_video_frames(video, every_nth=3, start=1, end=8)
    assert len(picked) == 3 and picked[0].size == (48, 34)  # frames 1, 4, 7; sides made even
    assert [round(pixels(f).mean() / 20) for f in picked] == [1, 4, 7]
    with pytest.raises(SdplayError, match="cannot write"):
        write_video(frames, tmp_path / "clip.avi", fps=10)


# ------------------------------------------------------------------------------------ the walk


def test_frame_count_video_length_and_metadata(tiny_model, tmp_path) -> None:
    run = sdplay.dream("a cat", "a dog", outdir=tmp_path, **walk(tiny_model, frames=3, fps=8, formats="mp4,gif"))
    assert run.settings.total_frames == 4 and len(run.paths) == 4
    assert all(p.exists() for p in run.paths)
    mp4, gif = run.videos
    assert mp4.name == "dream.mp4" and gif.name == "dream.gif"
    frames, seconds = video_info(mp4)
    assert frames == 4 and math.isclose(seconds, 0.5, abs_tol=0.05)
    assert Image.open(gif).n_frames == 4
    assert read_video_frames(mp4, every_nth=2)[1].size == (64, 64)
    last = read_parameters(run.paths[-1])
    assert (last["prompt"], last["Seed"], last["Mode"], last["Frame"]) == ("a dog", "2", "dream", "3")
    saved = json.loads((run.run_dir / "settings.json").read_text())
    assert saved["seeds"] == [1, 2] and saved["total_frames"] == 4


def test_same_seeds_same_frames_and_a_smooth_walk(tiny_model) -> None:
    options = walk(tiny_model, frames=3, batch_size=3, write=False)
    first = [pixels(f) for f in sdplay.dream("a cat", "a dog", **options).images]
    again = [pixels(f) for f in sdplay.dream("a cat", "a dog", **options).images]
    assert len(first) == 4
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    steps = [diff(first[i], first[i + 1]) for i in range(3)]
    assert max(steps) < diff(first[0], first[-1])
    other = sdplay.dream("a cat", "a dog", **{**options, "seeds": [3, 2]}).images
    assert diff(pixels(other[0]), first[0]) > 5


def test_frames_share_unet_calls_and_each_prompt_is_encoded_once(tiny_model) -> None:
    model = load_model(str(tiny_model), device="cpu")
    unet_batches, text_calls = [], []
    hooks = [
        model.base.unet.register_forward_hook(lambda m, args, out: unet_batches.append(args[0].shape[0])),
        model.base.text_encoder.register_forward_hook(lambda m, args, out: text_calls.append(1)),
    ]
    try:
        run = sdplay.dream("a cat", "a dog", **walk(tiny_model, frames=3, batch_size=3, scheduler="ddim", write=False))
    finally:
        for hook in hooks:
            hook.remove()
    assert len(run.images) == 4
    assert unet_batches == [6, 6, 2, 2]  # 2 steps x (3 frames, then 1), each with its unguided twin
    assert len(text_calls) == 4  # 2 prompts, each with the negative prompt: not once per frame


def test_seeds_are_random_when_absent_and_recorded(tiny_model) -> None:
    options = walk(tiny_model, seeds=None, total_frames=2, write=False)
    a, b = sdplay.dream("a cat", **options), sdplay.dream("a cat", **options)
    assert len(a.settings.seeds) == 2 and a.settings.seeds != b.settings.seeds


def test_resume_ends_with_the_frames_of_an_uninterrupted_run(tiny_model, tmp_path) -> None:
    options = walk(tiny_model, seeds=[1, 2, 3], frames=2, loop=True, batch_size=4)
    settings = DreamSettings(prompts=("a cat", "a dog", "a bird"), **options)
    whole = run(Job("dream", settings, outdir=tmp_path / "whole"))
    assert len(whole.paths) == 6
    cancel = CancelToken()

    def cancel_after_frame_3(event: Event) -> None:
        if isinstance(event, FileWritten) and event.frame == 3:
            cancel.cancel()

    cut = run(Job("dream", settings, outdir=tmp_path / "cut"), cancel_after_frame_3, cancel)
    cut_dir = cut.run_dir
    assert cut.cancelled and cut_dir == next((tmp_path / "cut" / "dream").iterdir())
    written = sorted(p.name for p in cut_dir.glob("*.png"))  # frames already being written are finished
    assert written[:4] == [f"{n:04d}.png" for n in range(4)] and len(written) <= 6
    assert not (cut_dir / "dream.mp4").exists()
    (cut_dir / "0004.png").write_bytes((cut_dir / "0004.png").read_bytes()[:40])  # cut off mid-write
    (cut_dir / "0005.png").write_bytes((whole.run_dir / "0005.png").read_bytes())  # and a later one finished

    resumed = sdplay.dream(resume=cut_dir)
    assert resumed.run_dir == cut_dir and resumed.videos == [cut_dir / "dream.mp4"]
    for mine, theirs in zip(resumed.paths, whole.paths, strict=True):
        assert np.array_equal(pixels(mine), pixels(theirs)), mine.name
    assert video_info(cut_dir / "dream.mp4")[0] == 6


def test_safety_checked_frames_are_replaced_by_the_previous_one(tiny_model, monkeypatch, caplog) -> None:
    options = walk(tiny_model, frames=3, batch_size=2, write=False)
    pipe = load_model(str(tiny_model), device="cpu").pipeline("txt2img")
    calls = []

    def flag_second_batchs_first(image, device, dtype):
        calls.append(len(image))
        flags = [len(calls) == 2 and i == 0 for i in range(len(image))]
        return torch.where(torch.tensor(flags).view(-1, 1, 1, 1), torch.zeros_like(image), image), flags

    monkeypatch.setattr(pipe, "run_safety_checker", flag_second_batchs_first)
    run = sdplay.dream("a cat", "a dog", **options)
    assert len(run.images) == 4 and run.flagged == [2]
    assert np.array_equal(pixels(run.images[2]), pixels(run.images[1]))
    assert pixels(run.images[2]).mean() > 0
    assert "frame 2 was blanked by the safety checker" in caplog.text


@pytest.fixture
def loud_vae_model(tiny_model, tmp_path) -> Path:
    """The tiny model with latents 27x larger (VAE scaling factor 5): images then stand out of the
    noise, so even random weights show where a walk starts and ends."""
    folder = tmp_path / "tiny-loud-vae"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "vae" / "config.json").read_text())
    (folder / "vae" / "config.json").write_text(json.dumps({**config, "scaling_factor": 5.0}))
    return folder


def vae_round_trip(model_dir: Path, picture: Path) -> np.ndarray:
    """What the model's VAE makes of a picture on its own: the reference for 'near that image'."""
    model = load_model(str(model_dir), device="cpu")
    processor, vae = model.base.image_processor, model.base.vae
    with torch.inference_mode():
        decoded = vae.decode(vae.encode(processor.preprocess(Image.open(picture).convert("RGB"))).latent_dist.mode())
    return pixels(processor.postprocess(decoded.sample)[0])


def test_a_walk_between_two_images_goes_from_one_to_the_other(loud_vae_model, picture, tmp_path) -> None:
    yellow = tmp_path / "yellow.png"
    Image.new("RGB", (64, 64), (240, 240, 40)).save(yellow)
    near_a, near_b = vae_round_trip(loud_vae_model, picture), vae_round_trip(loud_vae_model, yellow)
    options = walk(loud_vae_model, steps=10, images=[str(picture), str(yellow)], strength=0.1, frames=4, write=False)
    frames = [pixels(f) for f in sdplay.dream("x", **options).images]
    assert len(frames) == 5
    assert diff(frames[0], near_a) < 0.75 * diff(frames[0], near_b)
    assert diff(frames[-1], near_b) < 0.75 * diff(frames[-1], near_a)
    assert diff(frames[0], near_b) > diff(frames[2], near_b) > diff(frames[4], near_b)
    assert diff(frames[0], near_a) < diff(frames[2], near_a) < diff(frames[4], near_a)


def clicks_after_silence(path: Path, rate: int = 8000) -> Path:
    """Half a second of silence, then half a second of short clicks, one per video frame at 8 fps."""
    samples = np.zeros(rate, np.int16)
    for k in range(4):
        start = rate // 2 + k * rate // 8 + rate // 32  # inside a frame, not on its edge
        samples[start : start + 40] = 20000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def test_audio_sets_the_length_stills_silence_moves_on_clicks_and_is_muxed(tiny_model, tmp_path) -> None:
    audio = clicks_after_silence(tmp_path / "clicks.wav")
    run = sdplay.dream("a cat", "a dog", outdir=tmp_path, **walk(tiny_model, audio=str(audio), fps=8, batch_size=4))
    assert run.settings.total_frames == 8
    frames = [pixels(p) for p in run.paths]
    silent = [diff(frames[i], frames[i + 1]) for i in range(3)]
    moving = [diff(frames[i], frames[i + 1]) for i in range(3, 7)]
    assert max(silent) < 0.5 and min(moving) > 2, (silent, moving)
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(run.videos[0])], capture_output=True, text=True)
    assert "Audio: aac" in probe.stderr and "Video: h264" in probe.stderr and "yuv420p" in probe.stderr
    assert math.isclose(video_info(run.videos[0])[1], 1.0, abs_tol=0.15)


# ------------------------------------------------------------------------------- front doors


def test_cli_dream_writes_video_and_frames(tiny_model, tmp_path) -> None:
    args = ["dream", "a cat", "a dog", "--seeds", "1,2", "--frames", "2", "--loop", "--fps", "6"]
    args += ["--model", str(tiny_model), "-W", "64", "-H", "64", "--steps", "2", "-o", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    video = Path(result.stdout.strip().splitlines()[-1])
    assert video.name == "dream.mp4" and video.parent.parent == tmp_path / "dream"
    assert len(list(video.parent.glob("*.png"))) == 4 and video_info(video)[0] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["a cat", "--audio", "{bad_audio}"], "cannot read audio file"),
        (["a cat", "--frames", "0"], "frames: must be a whole number from 1 to 100000, got 0"),
        (["a cat", "--seeds", "1,x"], "seeds: must be whole numbers"),
        (["a cat", "a dog", "--seeds", "1,2,3"], "key points"),
        (["a cat", "--image", "missing.png"], "key point image (--image) not found"),
        (["a cat", "--format", "avi"], "formats: must be mp4, gif or frames"),
        (["--resume", "{tmp}"], "no settings.json there"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(tiny_model, tmp_path, args, message) -> None:
    bad_audio = tmp_path / "bad.wav"
    bad_audio.write_bytes(b"RIFF this is not audio")
    args = [a.format(bad_audio=bad_audio, tmp=tmp_path) for a in args]
    result = runner.invoke(app, ["dream", *args, "--model", str(tiny_model), "-o", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "dream").exists()


def test_classic_run_py_dream_writes_frames_and_video_without_overwriting(tiny_model, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--mode", "dream", "--device", "cpu", "--save", "--num", "3", "--local", "--model", str(tiny_model)]
    for _ in range(2):
        answers = iter(["a cat | a dog", "64 64"])
        monkeypatch.setattr("builtins.input", lambda question, answers=answers: next(answers))
        assert legacy_main(args) == 0
    runs = sorted((tmp_path / "images" / "dream").iterdir())
    assert len(runs) == 2
    for run_dir in runs:
        assert len(list(run_dir.glob("*.png"))) == 3 and video_info(run_dir / "dream.mp4")[0] == 3
