"""Input files that are corrupt, empty, folders or of the wrong kind: one `error:` line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sdplay.cli import app
from sdplay.video import write_video

runner = CliRunner()


def bad_file(kind: str, tmp_path: Path, suffix: str) -> Path:
    """A file (or folder) that is not what its name promises."""
    path = tmp_path / f"bad-{kind}{suffix}"
    if kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 if suffix == ".png" else bytes(range(256)) * 40)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("these are words, not pixels or sound\n")
    elif kind == "truncated":
        good = tmp_path / f"good{suffix}"
        if suffix == ".png":
            Image.new("RGB", (64, 64), "red").save(good)
        else:
            write_video([np.full((64, 64, 3), 90, np.uint8)] * 8, good, fps=8)
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    return path


KINDS = ["corrupt", "empty", "folder", "text", "truncated"]


def assert_refused(result, out: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(word in lines[0] for word in words), lines[0]
    assert not list(out.glob("*/*/*.png")), "a run folder with frames was left behind"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ["--init", "--mask"])
def test_a_bad_init_image_or_mask(kind, role, tiny_model, picture, mask, tmp_path) -> None:
    bad = bad_file(kind, tmp_path, ".png")
    files = {"--init": picture, "--mask": mask, role: bad}
    args = ["inpaint", "x", "--init", str(files["--init"]), "--mask", str(files["--mask"])]
    result = runner.invoke(app, [*args, "--model", str(tiny_model), "--device", "cpu", "-o", str(tmp_path / "out")])
    assert_refused(result, tmp_path / "out", "image")


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_dream_key_point_image_or_audio_file(kind, tiny_model, tmp_path) -> None:
    out = tmp_path / "out"
    base = ["dream", "a", "b", "--model", str(tiny_model), "--device", "cpu", "-o", str(out)]
    image = bad_file(kind, tmp_path, ".png")
    assert_refused(runner.invoke(app, [*base, "--image", str(image)]), out, "image")
    audio = bad_file(kind, tmp_path, ".wav") if kind != "truncated" else bad_file("corrupt", tmp_path, ".mp3")
    assert_refused(runner.invoke(app, [*base, "--audio", str(audio)]), out, "audio")


def test_a_picture_given_as_audio_is_refused(tiny_model, picture, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["dream", "a", "b", "--audio", str(picture), "--model", str(tiny_model), "-o", str(out)]
    assert_refused(runner.invoke(app, args), out, "audio")


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_video_for_video_input_or_init_image_for_animate(kind, tiny_model, tmp_path) -> None:
    out = tmp_path / "out"
    video = bad_file(kind, tmp_path, ".mp4")
    base = ["animate", "--set", "W=64", "--set", "H=64", "--set", "steps=2", "--model", str(tiny_model), "-o", str(out)]
    result = runner.invoke(app, [*base, "--set", "animation_mode=Video Input", "--set", f"video_init_path={video}"])
    assert_refused(result, out, "video")
    image = bad_file(kind, tmp_path, ".png")
    result = runner.invoke(app, [*base, "--set", "use_init=true", "--set", f"init_image={image}"])
    assert_refused(result, out, "init_image")
