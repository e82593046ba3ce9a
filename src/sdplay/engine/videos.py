"""A finished run's videos, made the same way by the engine and by a farm joining shares of a run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..output import RunFolder
from .modes import VideoSpec


def check_videos(video: VideoSpec | None) -> None:
    """What the videos need that could be wrong (a RIFE weights file that does not load) fails before the run."""
    if video is not None and video.interpolate > 1 and video.interpolate_model:
        from ..frame_interpolation import make_interpolator

        make_interpolator("flow", video.interpolate_model)


def finish_videos(folder: RunFolder, video: VideoSpec, total: int, check: Callable[[], None]) -> Iterator[Path]:
    """Each video of the run, as it is complete (one already there is kept); `check` runs between steps
    (a cancel raises from it). The interpolated frames are written as they are made, so a resumed
    run continues them."""
    for kind in video.kinds:
        check()
        yield folder.video(video.name, kind, total, video.fps, video.audio)
    if video.interpolate < 2:
        return
    from ..frame_interpolation import interpolate_run_folder

    frames = interpolate_run_folder(folder.path, total, video.interpolate, check, video.interpolate_model)
    smooth = video.timing == "smooth"
    fps = video.fps * video.interpolate if smooth else video.fps
    for kind in video.kinds:
        check()
        name = f"{video.name}-x{video.interpolate}"
        yield folder.video(name, kind, len(frames), fps, video.audio if smooth else None, frames)
