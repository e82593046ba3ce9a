"""Deforum files that name their init picture, video or colour picture by http(s) URL: downloaded once
(from a server on loopback here), read like local files; an unreachable one is one line."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdplay import downloads
from sdplay.animate.settings import AnimationSettings
from sdplay.engine import Job, run
from sdplay.errors import SdplayError
from sdplay.video import write_video


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """(base URL, folder): files put in the folder are served on 127.0.0.1; downloads go to a fresh cache."""
    monkeypatch.setattr(downloads, "CACHE", tmp_path / "cache")
    folder = tmp_path / "site"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def small(tiny_model: Path, **options) -> AnimationSettings:
    base = {"model": str(tiny_model), "W": 64, "H": 64, "steps": 4, "seed": 5, "device": "cpu", "prompts": {"0": "a"}}
    base.update(sampler="euler", max_frames=1, noise_schedule=0)
    return AnimationSettings(**{**base, **options})


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_an_init_picture_by_url_is_downloaded_once_and_used(tiny_model, served, picture, tmp_path) -> None:
    base, site = served
    (site / "start.png").write_bytes(picture.read_bytes())
    settings = small(tiny_model, use_init=True, init_image=f"{base}/start.png", strength=1.0, color_coherence="None")
    first = run(Job("animate", settings, outdir=tmp_path / "a")).paths[0]
    assert np.array_equal(pixels(first), pixels(picture))  # all of it kept: the picture itself
    (site / "start.png").unlink()  # gone from the server: the cached copy is read
    again = run(Job("animate", settings, outdir=tmp_path / "b")).paths[0]
    assert np.array_equal(pixels(again), pixels(picture)) and len(list(downloads.CACHE.iterdir())) == 1


def test_a_video_and_a_colour_picture_by_url(tiny_model, served, tmp_path) -> None:
    base, site = served
    colours = [(200, 120, 60), (60, 120, 200)]
    write_video([np.full((64, 64, 3), c, np.uint8) for c in colours], site / "in.mp4", fps=2)
    Image.new("RGB", (64, 64), (30, 200, 40)).save(site / "palette.png")
    video = small(tiny_model, animation_mode="Video Input", video_init_path=f"{base}/in.mp4", strength_schedule=1.0)
    made = run(Job("animate", video.with_values(color_coherence="None"), outdir=tmp_path / "v")).paths
    for path, colour in zip(made, colours, strict=True):
        assert np.abs(pixels(path).mean((0, 1)) - colour).max() < 6  # every video frame kept as it is
    coloured = small(tiny_model, color_coherence="Image", color_coherence_image_path=f"{base}/palette.png")
    first = run(Job("animate", coloured, outdir=tmp_path / "c")).paths[0]
    assert np.abs(pixels(first).mean((0, 1)) - (30, 200, 40)).max() < 6


def test_a_controlnet_video_by_url(tiny_model, served, tmp_path) -> None:
    from sdplay.animate.inputs import read_animation_inputs

    base, site = served
    write_video([np.full((64, 64, 3), 40 * n, np.uint8) for n in range(3)], site / "pose.mp4", fps=3)
    unit = {"cn_1_enabled": True, "cn_1_module": "none", "cn_1_model": "./m", "cn_1_vid_path": f"{base}/pose.mp4"}
    pictures = read_animation_inputs(small(tiny_model, max_frames=3, **unit)).controls[1]
    assert np.allclose([np.asarray(p).mean() for p in pictures], [0, 40, 80], atol=3)  # mp4 is lossy
    with pytest.raises(SdplayError, match=r"cn_1_vid_path: cannot download .*/gone.mp4: HTTP 404"):
        read_animation_inputs(small(tiny_model, **{**unit, "cn_1_vid_path": f"{base}/gone.mp4"}))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("{base}/missing.png", "HTTP 404 File not found"),
        ("http://127.0.0.1:1/x.png", "Connection refused"),
        ("http://", "no host given"),
        ("https://[::1/x.png", "Invalid IPv6 URL"),
    ],
)
def test_a_url_that_cannot_be_fetched_is_one_line_before_any_model_loads(served, tmp_path, url, reason) -> None:
    url = url.format(base=served[0])
    settings = AnimationSettings(model="nowhere/no-model", use_init=True, init_image=url, max_frames=1)
    with pytest.raises(SdplayError) as info:
        run(Job("animate", settings, outdir=tmp_path))
    assert str(info.value) == f"init_image: cannot download {url}: {reason}"
    assert not list(downloads.CACHE.glob("*"))  # nothing half-written is left to be read later
