"""The `sdplay` command with real files: typer's runner in-process, the installed script once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fresh_process import cli_in_fresh_process
from PIL import Image
from typer.testing import CliRunner

from sdplay.cli import app
from sdplay.devices import torch_sees_no_gpu
from sdplay.output import read_parameters

runner = CliRunner()


def sdplay(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def written(result) -> list[Path]:
    return [Path(line) for line in result.stdout.splitlines() if line.endswith(".png")]


def test_txt2img_writes_images_with_metadata_and_settings(tiny_model, tmp_path) -> None:
    result = sdplay(
        "txt2img",
        "a red circle",
        "--model",
        tiny_model,
        "--steps",
        2,
        "--seed",
        9,
        "--num",
        2,
        "--negative",
        "blurry",
        "--scale",
        6,
        "--outdir",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    paths = written(result)
    assert len(paths) == 2 and all(p.exists() for p in paths)
    assert paths[0].parent.parent == tmp_path / "txt2img"
    meta = read_parameters(paths[1])
    assert (meta["prompt"], meta["negative"], meta["Seed"], meta["CFG scale"]) == (
        "a red circle",
        "blurry",
        "10",
        "6.0",
    )
    assert json.loads((paths[0].parent / "settings.json").read_text())["seed"] == 9


def test_settings_json_reproduces_the_same_pixels(tiny_model, tmp_path) -> None:
    first = written(sdplay("txt2img", "a cat", "--model", tiny_model, "--steps", 2, "--outdir", tmp_path))
    again = sdplay("txt2img", "--config", first[0].parent / "settings.json", "--outdir", tmp_path)
    assert again.exit_code == 0, again.output
    second = written(again)
    assert second[0] != first[0]
    assert np.array_equal(np.asarray(Image.open(first[0])), np.asarray(Image.open(second[0])))


def test_img2img_and_inpaint(tiny_model, picture, mask, tmp_path) -> None:
    result = sdplay(
        "img2img", "x", "--init", picture, "--strength", 0.5, "--model", tiny_model, "--steps", 2, "--outdir", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert read_parameters(written(result)[0])["Denoising strength"] == "0.5"
    result = sdplay(
        "inpaint", "x", "--image", picture, "--mask", mask, "--model", tiny_model, "--steps", 2, "--outdir", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert written(result)[0].parent.parent == tmp_path / "inpaint"


@pytest.mark.parametrize(
    "args, message",
    [
        (["txt2img", "x", "--width", "32"], "width: must be a whole number from 64 to 8192, got 32"),
        (["txt2img", "x", "--steps", "0"], "steps: must be a whole number from 1 to 1000, got 0"),
        (["txt2img", "x", "--scheduler", "nope"], "unknown scheduler"),
        (["txt2img", "x", "--model", "nonsense"], "unknown model"),
        (["txt2img", "x", "--device", "cuda"], "no CUDA GPU"),
        (["img2img", "x", "--init", "missing.png"], "init image not found"),
        (["img2img", "x", "-i", "missing.png"], "init image not found"),
        (
            ["img2img", "x", "--strength", "2", "--init", "missing.png"],
            "strength: must be a finite number from 0 to 1, got 2.0",
        ),
        (["inpaint", "x", "--init", "missing.png"], "mask"),
        (["txt2img"], "no prompt"),
        (["txt2img", "x", "--config", "missing.json"], "cannot read config"),
    ],
)
def test_user_mistakes_are_one_error_line_and_exit_2(tiny_model, args, message) -> None:
    result = sdplay(*args, *(["--model", tiny_model] if "--model" not in args else []))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in result.output


def test_info_and_models() -> None:
    info = sdplay("info", "--device", "cpu")
    assert info.exit_code == 0 and "diffusers" in info.stdout and "cpu" in info.stdout
    assert "cpu bf16" in info.stdout  # whether --dtype bf16 is worth trying here
    models = sdplay("models")
    assert models.exit_code == 0 and "sd15" in models.stdout and "mini" in models.stdout


def test_installed_command_keeps_stderr_for_our_own_messages(tiny_model, tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdplay",
            "txt2img",
            "x",
            "--model",
            str(tiny_model),
            "--steps",
            "2",
            "--outdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).exists()
    assert all(line.startswith(("info:", "warning:")) for line in result.stderr.splitlines()), result.stderr


@pytest.mark.parametrize("args", [["--width", "abc"], ["--no-such-flag"]])
def test_bad_flags_are_one_error_line_and_exit_2(args) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sdplay", "txt2img", "x", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


HEAVY_LIBRARIES = {"torch", "diffusers", "transformers", "scipy", "peft", "accelerate", "openvino"}


def modules_imported_by(args: list[str], cwd: Path) -> tuple[int, set[str], str]:
    """Run `sdplay ARGS` in a fresh interpreter: its exit code, the heavy libraries it imported, its stderr."""
    return cli_in_fresh_process(args, cwd, HEAVY_LIBRARIES)


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["models"], 0),
        (["txt2img", "x", "--steps", "0"], 2),
        (["txt2img", "x", "--scheduler", "nonsense"], 2),
        (["info", "--device", "tpu"], 2),
        (["info", "--dtype", "fp8"], 2),
    ],
)
def test_listing_and_input_errors_import_no_model_library(args, code, tmp_path) -> None:
    exit_code, imported, stderr = modules_imported_by(args, tmp_path)
    assert exit_code == code, stderr
    assert imported == set(), f"sdplay {' '.join(args)} imported {sorted(imported)}"  # each costs seconds


@pytest.mark.skipif(not torch_sees_no_gpu(), reason="a GPU is possible here")
@pytest.mark.parametrize(
    "args",
    [["info", "--device", "cuda"], ["txt2img", "x", "--device", "gpu"], ["dream", "a", "--device", "mps"]],
)
def test_a_gpu_that_is_not_here_is_refused_before_torch_is_imported(args, tmp_path) -> None:
    exit_code, imported, stderr = modules_imported_by(args, tmp_path)
    assert exit_code == 2 and stderr.startswith("error: --device") and stderr.count("\n") == 1, stderr
    assert imported == set()


def test_info_imports_only_what_it_reports_on(tmp_path) -> None:
    exit_code, imported, stderr = modules_imported_by(["info"], tmp_path)
    assert exit_code == 0, stderr
    # OpenVINO's pick; versions come from package metadata, the CPU's facts from the system, and torch is
    # imported only where it could find a GPU (this project's tests run with a CPU-only torch)
    assert imported == ({"openvino"} if torch_sees_no_gpu() else {"torch", "openvino"})


@pytest.mark.parametrize(
    "args, message",
    [
        (["img2img", "x", "--init", "missing.png"], "init image not found: missing.png"),
        (["img2img", "x", "--init", "notes.txt"], "cannot read init image notes.txt: not an image file"),
        (["inpaint", "x", "--init", "missing.png", "--mask", "gone.png"], "init image not found: missing.png"),
        (["inpaint", "x", "--init", "ok.png", "--mask", "gone.png"], "mask image not found: gone.png"),
        (["txt2img", "x", "--control", "canny:missing.png", "--control-model", "a/b"], "control image not found"),
        (["dream", "a", "b", "--image", "missing.png", "--image", "gone.png"], "key point image (--image) not found"),
        (["dream", "a", "--audio", "missing.wav"], "audio file not found: missing.wav"),
        (["animate", "init.json"], "init_image: file not found: missing.png"),
        (["animate", "video.json"], "video_init_path: file not found: missing.mp4"),
    ],
)
def test_a_wrong_input_file_is_reported_before_torch_is_imported(args, message, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("RGB", (64, 64)).save(tmp_path / "ok.png")
    animation = {"prompts": {"0": "x"}, "max_frames": 3}
    (tmp_path / "init.json").write_text(json.dumps({**animation, "use_init": True, "init_image": "missing.png"}))
    video = {**animation, "animation_mode": "Video Input", "video_init_path": "missing.mp4"}
    (tmp_path / "video.json").write_text(json.dumps(video))
    exit_code, imported, stderr = modules_imported_by([*args, "--model", "mini"], tmp_path)
    lines = stderr.splitlines()
    assert exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), stderr
    assert imported == set()  # torch alone takes 1.5-2 s to import
