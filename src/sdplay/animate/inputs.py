"""An animation's input files, read before torch or a model loads, so that a wrong file fails in a moment.

Every file the settings name is found first (an http(s) URL downloaded once, as Deforum's files may name one),
then the pictures are read, then the videos decoded by ffmpeg: a wrong file fails before anything slow.
Imports PIL and numpy, nothing heavier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from ..downloads import is_url, local_file
from ..errors import SdplayError
from ..flow import import_cv2
from ..inputs import load_image
from ..video import read_video_frames

if TYPE_CHECKING:
    from .settings import AnimationSettings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")  # a cn_N_vid_path with these is one picture for every frame


@dataclass(frozen=True)
class AnimationInputs:
    """The files the settings name, read before any model loads so mistakes fail fast."""

    init: Image.Image | None = None
    video: list[Image.Image] = field(default_factory=list)
    color_image: Image.Image | None = None  # the reference of color_coherence: Image
    controls: dict[int, list[Image.Image]] = field(default_factory=dict)  # ControlNet unit -> its pictures


def read_animation_inputs(settings: AnimationSettings) -> AnimationInputs:
    """The init picture, colour picture, ControlNet units' pictures and init video frames the settings name."""
    for key in ("optical_flow_cadence", "optical_flow_redo_generation"):
        if getattr(settings, key) != "None":
            import_cv2(key)
    files = settings.files_read()
    paths = {key: _found(location, key) for key, location in files.items()}
    init = _picture(paths, files, "init_image")
    color_image = _picture(paths, files, "color_coherence_image_path")
    controls = _unit_pictures(settings, paths)
    video: list[Image.Image] = []
    if "video_init_path" in paths:
        video = read_video_frames(paths["video_init_path"], *_extract_range(settings))
        if not video:
            raise SdplayError(f"video_init_path: no frames in {settings.video_init_path} for the extract_* range")
    return AnimationInputs(init, video, color_image, controls)


def _found(location: str | None, key: str) -> Path:
    path = local_file(location or "", key)
    if not path.is_file():
        raise SdplayError(f"{key}: file not found: {location}")
    return path


def _picture(paths: dict[str, Path], files: dict[str, str | None], key: str) -> Image.Image | None:
    if key not in paths:
        return None
    location = files[key] or ""
    return load_image(paths[key], f"{key} {location}" if is_url(location) else key)


def _extract_range(settings: AnimationSettings) -> tuple[int, int, int | None]:
    """(every nth, first, stop) of Deforum's extract_* keys, for read_video_frames."""
    stop = None if settings.extract_to_frame < 0 else settings.extract_to_frame + 1
    return settings.extract_nth_frame, settings.extract_from_frame, stop


def _unit_pictures(settings: AnimationSettings, paths: dict[str, Path]) -> dict[int, list[Image.Image]]:
    """Each ControlNet unit's pictures that come from a file: one picture, or a video's frames (in Video Input
    over the init video's extract_* range, else from the first frame on)."""
    out = {}
    for unit in settings.controlnet_units():
        key = f"cn_{unit}_vid_path"
        if key not in paths:
            continue
        path = paths[key]
        if path.suffix.lower() in IMAGE_SUFFIXES:
            out[unit] = [load_image(path, key)]
            continue
        if settings.animation_mode == "Video Input":
            frames = read_video_frames(path, *_extract_range(settings))
        else:
            frames = read_video_frames(path, 1, 0, settings.max_frames)
        if not frames:
            raise SdplayError(f"{key}: no frames in {getattr(settings, key)} for this animation")
        out[unit] = frames
    return out
