"""ControlNet in animate under Deforum's cn_1_* ... cn_5_* keys, with the tiny random ControlNet (conftest)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdplay.animate.control import FrameControls, fit_to
from sdplay.animate.inputs import read_animation_inputs
from sdplay.animate.settings import AnimationSettings
from sdplay.controlnet import preprocess
from sdplay.depth import DepthEstimator
from sdplay.engine import Job, run
from sdplay.output import read_parameters
from sdplay.video import write_video

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"
FLAT = DepthEstimator("none", torch.device("cpu"))


def squares(count: int, size: int = 64) -> list[Image.Image]:
    """A white square moving right on black, one step a frame: a different edge map each frame."""
    out = []
    for i in range(count):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[16:48, 8 + 4 * i : 40 + 4 * i] = 255
        out.append(Image.fromarray(pixels))
    return out


@pytest.fixture
def moving_video(tmp_path: Path) -> Path:
    path = tmp_path / "moving.mp4"
    write_video(squares(4), path, fps=4)
    return path


def deforum(tiny_model: Path, **changes: object) -> AnimationSettings:
    """Deforum's own settings file made small, with the changes on top."""
    data = json.loads(DEFORUM_FILE.read_text())
    small = {"W": 64, "H": 64, "steps": 4, "seed": 5, "max_frames": 3, "sampler": "Euler", "diffusion_cadence": 1}
    return AnimationSettings.from_dict({**data, **small, "model": str(tiny_model), "device": "cpu", **changes})


def frames_of(settings: AnimationSettings, outdir: Path) -> list[np.ndarray]:
    result = run(Job("animate", settings, outdir=outdir))
    return [np.asarray(Image.open(path).convert("RGB")) for path in result.paths]


def test_a_deforum_file_with_controlnet_on_runs_it_and_weight_0_is_no_control(
    tiny_model, tiny_controlnet, moving_video, tmp_path, caplog
) -> None:
    units = {
        "cn_1_enabled": True,
        "cn_1_module": "canny",
        "cn_1_model": str(tiny_controlnet),
        "cn_1_vid_path": str(moving_video),
        "cn_1_threshold_a": 100,
        "cn_1_threshold_b": 200,
        "cn_1_low_vram": False,  # keys of the web UI's extension sdplay has no use for are read and ignored
        "cn_1_pixel_perfect": True,
        "cn_1_overwrite_frames": True,
        "cn_2_enabled": True,
        "cn_2_module": "none",
        "cn_2_model": str(tiny_controlnet),
        "cn_2_loopback_mode": True,
        "cn_2_weight": "0:(0.5)",
    }
    with caplog.at_level(logging.INFO, logger="sdplay"):
        controlled = frames_of(deforum(tiny_model, **units), tmp_path / "on")
    assert "turns on" not in caplog.text  # ControlNet is no longer among the features sdplay does not do
    off = {**units, "cn_1_weight": "0:(0)", "cn_2_weight": "0:(0)"}
    silent = frames_of(deforum(tiny_model, **off), tmp_path / "zero")
    plain = frames_of(deforum(tiny_model), tmp_path / "plain")
    assert all(np.array_equal(a, b) for a, b in zip(silent, plain, strict=True))  # weight 0: exactly no control
    assert not any(np.array_equal(a, b) for a, b in zip(controlled, plain, strict=True))
    parameters = read_parameters(sorted((tmp_path / "on").rglob("0001.png"))[0])
    assert parameters["ControlNet"] == f"1: canny {tiny_controlnet} 1; 2: none {tiny_controlnet} 0.5"


def test_each_frame_gets_its_own_video_frame_a_picture_serves_all_and_a_short_video_ends(
    tiny_model, moving_video, tmp_path, caplog
) -> None:
    picture = tmp_path / "edges.png"
    squares(1)[0].save(picture)
    settings = AnimationSettings(
        model=str(tiny_model), W=64, H=64, max_frames=6,
        cn_1_enabled=True, cn_1_module="canny", cn_1_model="./m", cn_1_vid_path=str(moving_video),
        cn_2_enabled=True, cn_2_module="none", cn_2_model="./m", cn_2_vid_path=str(picture),
    )  # fmt: skip
    pictures = read_animation_inputs(settings).controls
    assert [len(pictures[1]), len(pictures[2])] == [4, 1]
    with caplog.at_level(logging.WARNING, logger="sdplay"):
        controls = FrameControls(settings, pictures, FLAT)
    assert "cn_1_vid_path has 4 frames; frames 4 to 5 run without ControlNet 1" in caplog.text
    kwargs = controls.kwargs([1, 2], [None, None], txt2img=False)
    edges, still = kwargs["control_image"]
    for row, frame in enumerate((1, 2)):
        expected = np.asarray(preprocess("canny", squares(4)[frame]))[..., 0] / 255
        assert np.abs(edges[row, 0].numpy() - expected).mean() < 0.05  # the video's own frame (mp4 is lossy)
    assert torch.equal(still[0], still[1])  # one picture for every frame
    assert kwargs["controlnet_conditioning_scale"] == [1.0, 1.0]
    assert controls.values(4, True)[0] == 0.0 and controls.values(4, True)[3] == 1.0  # past the video's end


def test_loopback_takes_the_picture_the_frame_is_redrawn_from_and_nothing_at_a_drawn_frame_0(tiny_model) -> None:
    settings = AnimationSettings(
        model=str(tiny_model), W=64, H=64, max_frames=3, cn_3_enabled=True, cn_3_module="none", cn_3_model="./m",
        cn_3_loopback_mode=True, cn_3_guidance_end="0:(0.5)",
    )  # fmt: skip
    controls = FrameControls(settings, {}, FLAT)
    assert controls.loops_back and controls.values(0, has_source=False) == (0.0, 0.0, 0.5)
    source = squares(2)[1]
    kwargs = controls.kwargs([1], [source], txt2img=False)
    assert torch.equal(kwargs["control_image"][0], torch.from_numpy(np.asarray(source)).permute(2, 0, 1) / 255)
    assert controls.kwargs([0], [None], txt2img=True)["controlnet_conditioning_scale"] == 0.0


def test_resize_modes_crop_pad_or_stretch() -> None:
    wide = Image.new("RGB", (128, 64), (255, 255, 255))
    assert fit_to(wide, (64, 64), "Inner Fit (Scale to Fit)").getpixel((0, 0)) == (255, 255, 255)  # cropped
    assert fit_to(wide, (64, 64), "Outer Fit (Shrink to Fit)").getpixel((0, 0)) == (0, 0, 0)  # padded
    assert fit_to(wide, (64, 64), "Just Resize").size == (64, 64)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["cn_1_module=openpose_full"], "cn_1_module: preprocessor 'openpose_full' is not available in sdplay"),
        (["cn_1_model=None"], "cn_1_model: ControlNet 1 is enabled but names no model"),
        (["cn_1_model=my_controlnet [0123abcd]"], "cn_1_model: 'my_controlnet' is a web-UI model name"),
        (["cn_1_vid_path=./missing.mp4"], "cn_1_vid_path: file not found: ./missing.mp4"),
        (["cn_1_guidance_start=0:(0.5), 1:(0.9)", "cn_1_guidance_end=0:(0.8)"], "frame 1 gives 0.9 and 0.8"),
        (["cn_1_weight=0:(2.5)"], "cn_1_weight must stay between 0 and 2"),
        (["cn_1_resize_mode=Crop"], "cn_1_resize_mode: must be one of Inner Fit"),
    ],
)
def test_bad_controlnet_units_are_one_error_line(tiny_model, tmp_path, sets, message) -> None:
    base = ["max_frames=2", "W=64", "H=64", "cn_1_enabled=true", "cn_1_module=canny", "cn_1_model=./m"]
    args = [arg for pair in [*base, *sets] for arg in ("--set", pair)]
    command = [sys.executable, "-m", "sdplay", "animate", *args, "-m", str(tiny_model), "-o", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not list(tmp_path.rglob("settings.json"))  # refused before a run folder was made


def test_web_ui_model_names_map_to_their_hub_copies() -> None:
    from sdplay.controlnet_names import controlnet_model_spec, preprocessor_of

    assert controlnet_model_spec("control_v11p_sd15_canny [d14c016b]") == "lllyasviel/control_v11p_sd15_canny"
    assert controlnet_model_spec("control_v11f1p_sd15_depth_fp16") == "lllyasviel/control_v11f1p_sd15_depth"
    assert controlnet_model_spec("control_sd15_depth [fef5e48e]") == "lllyasviel/sd-controlnet-depth"
    assert controlnet_model_spec("org/net@v2") == "org/net@v2"
    assert [preprocessor_of(m) for m in ("depth_midas", "depth_anything_v2", "Canny", "none")] == [
        "depth", "depth", "canny", "none",
    ]  # fmt: skip
