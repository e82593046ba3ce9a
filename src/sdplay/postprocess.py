"""What the tools that rework finished results share: a picture, a run folder or a video read as frames,
and a new run folder for the result (frames with metadata, settings.json, the video re-encoded).

Upscaling and frame interpolation both take "IMAGE | RUN_DIR | VIDEO" and never touch the original.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import SdplayError
from .inputs import load_image
from .output import SETTINGS_FILE, format_parameters, new_run_dir, parse_parameters, save_frame, write_settings

log = logging.getLogger("sdplay")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm", ".mov", ".mkv", ".avi")
DEFAULT_FPS = 24.0


@dataclass
class Source:
    """The frames of what the user named, with what is known about them."""

    path: Path
    kind: str  # "image" | "frames" | "video"
    frames: list[Image.Image]
    parameters: list[str | None]  # each frame's PNG `parameters` text, where it had one
    fps: float | None = None  # frames per second of a video or a video run
    video: str | None = None  # the source's video file name: the result is encoded under the same name


def read_source(path: str | Path) -> Source:
    """A picture file, a video file, or a folder of numbered frames (a dream/animate run folder)."""
    path = Path(path)
    if not path.exists():
        raise SdplayError(f"not found: {path}")
    if path.is_dir():
        return _read_folder(path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        from .video import read_video_frames, video_info

        frames = read_video_frames(path)
        if not frames:
            raise SdplayError(f"{path} holds no frames")
        count, seconds = video_info(path)
        fps = count / seconds if seconds > 0 else DEFAULT_FPS
        video = path.name if suffix == ".gif" else f"{path.stem}.mp4"
        return Source(path, "video", frames, [None] * len(frames), fps, video)
    image, parameters = _read_image(path)
    return Source(path, "image", [image], [parameters])


def _read_image(path: Path) -> tuple[Image.Image, str | None]:
    image = load_image(path)
    try:
        with Image.open(path) as opened:
            return image, opened.info.get("parameters")
    except OSError:
        return image, None


def _read_folder(path: Path) -> Source:
    """Numbered frames (0000.png, ...) in order; the fps and video format from the run's settings.json."""
    frames = sorted((p for p in path.iterdir() if p.suffix.lower() == ".png" and p.stem.isdigit()), key=_number)
    if not frames:
        raise SdplayError(f"{path} holds no numbered frames (0000.png, 0001.png, ...); give a run folder or a file")
    images, parameters = zip(*(_read_image(p) for p in frames), strict=True)
    fps, video = _run_video(path)
    return Source(path, "frames", list(images), list(parameters), fps, video)


def _number(path: Path) -> int:
    return int(path.stem)


def _run_video(run_dir: Path) -> tuple[float | None, str | None]:
    """The frame rate a run folder was made with (dream and animate record it) and its video's name."""
    from .settings import read_config

    settings: dict[str, Any] = {}
    if (run_dir / SETTINGS_FILE).is_file():
        try:
            settings = read_config(run_dir / SETTINGS_FILE)
        except SdplayError:
            log.warning("%s cannot be read; the frame rate is taken as %g", run_dir / SETTINGS_FILE, DEFAULT_FPS)
    fps = settings.get("fps")
    fps = float(fps) if isinstance(fps, (int, float)) and fps > 0 else None
    videos = sorted(p.name for p in run_dir.iterdir() if p.suffix in (".mp4", ".gif") and p.name[:1] != ".")
    mp4s = [name for name in videos if name.endswith(".mp4")]
    return fps, (mp4s or videos or [None])[0]


def with_fields(parameters: str | None, fields: dict[str, Any]) -> str:
    """A frame's parameters text with more `Key: value` fields after its own (or on their own)."""
    if parameters:
        known = parse_parameters(parameters)
        prompt, negative = known.pop("prompt"), known.pop("negative")
        return format_parameters(prompt, negative, {**known, **fields})
    return format_parameters("", "", fields)


class ResultWriter:
    """A tool's run folder `root/<tool>/<time>-<slug>` holding frames NNNN.png, settings.json and a video."""

    def __init__(self, run_dir: Path, settings: dict[str, Any]) -> None:
        self.run_dir, self.settings = run_dir, settings
        self.paths: list[Path] = []

    @classmethod
    def create(cls, root: str | Path | None, tool: str, source: Path, settings: dict[str, Any]) -> ResultWriter:
        """A new run folder with the settings it is made with."""
        run_dir = new_run_dir(root, tool, source.stem or source.name)
        write_settings(run_dir, settings)
        return cls(run_dir, settings)

    @classmethod
    def reopen(cls, path: str | Path, tool: str) -> ResultWriter:
        """An interrupted run folder of `tool`, to continue with the settings it was started with."""
        from .settings import read_config

        path = Path(path)
        if not (path / SETTINGS_FILE).is_file():
            raise SdplayError(f"--resume {path}: no {SETTINGS_FILE} there; give a {tool} run folder")
        return cls(path, read_config(path / SETTINGS_FILE))

    def save(self, image: Image.Image, parameters: str) -> Path:
        path = save_frame(self.run_dir, len(self.paths), image, parameters)
        self.paths.append(path)
        return path

    def save_numbered(self, item: tuple[int, Image.Image, str]) -> Path:
        """Frame `number` as NNNN.png, from a writer thread; the caller records the paths in order."""
        number, image, parameters = item
        return save_frame(self.run_dir, number, image, parameters)

    def encode(self, name: str, fps: float) -> Path:
        """Encode the written frames as `name` (.mp4 or .gif) under a temporary name, renamed when complete."""
        from .video import write_video

        target = self.run_dir / name
        if target.exists():  # a resumed run that was stopped after its video
            return target
        unfinished = self.run_dir / f".partial-{name}"
        unfinished.unlink(missing_ok=True)  # cut off by an interrupt
        write_video(self.paths, unfinished, fps)
        os.replace(unfinished, target)  # the run folder is new: nothing of the user's can be there
        return target
