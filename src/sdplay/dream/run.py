"""A whole dream run: plan, denoise, write each frame as it comes, then the videos; and resume."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image

from ..errors import SdplayError
from ..output import (
    SETTINGS_FILE,
    BackgroundWriter,
    finished_frames,
    frame_path,
    new_run_dir,
    save_frame,
    write_settings,
)
from ..settings import read_config
from .denoise import DreamFrame, StepCallback, iter_frames
from .plan import plan_walk, read_dream_inputs
from .settings import DreamSettings

log = logging.getLogger("sdplay")

VIDEO_NAME = "dream"


@dataclass
class DreamRun:
    """What a walk made: the resolved settings, where it was written, and how many frames were replaced."""

    settings: DreamSettings
    run_dir: Path | None = None
    frame_paths: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    frames: list[Image.Image] = field(default_factory=list)  # kept only when nothing is written
    replaced: int = 0


def read_run_settings(run_dir: str | Path) -> DreamSettings:
    run_dir = Path(run_dir)
    if not (run_dir / SETTINGS_FILE).is_file():
        raise SdplayError(f"--resume {run_dir}: no {SETTINGS_FILE} there; give a dream run folder")
    return DreamSettings.from_dict(read_config(run_dir / SETTINGS_FILE))


def write_frame(run_dir: Path, frame: DreamFrame) -> Path:
    return save_frame(run_dir, frame.index, frame.image, frame.parameters)


def write_videos(run_dir: Path, settings: DreamSettings, count: int) -> list[Path]:
    """Encode the run's frames into each requested video format; existing videos are kept."""
    from ..video import write_video

    paths = [frame_path(run_dir)(n) for n in range(count)]
    written = []
    for kind in (f for f in settings.formats if f != "frames"):
        target = run_dir / f"{VIDEO_NAME}.{kind}"
        if target.exists():
            log.info("%s is already there; kept as it is", target)
            written.append(target)
            continue
        unfinished = run_dir / f".{VIDEO_NAME}.partial.{kind}"
        audio = settings.audio if kind == "mp4" else None
        write_video(paths, unfinished, settings.fps, audio=audio)
        _claim(unfinished, target)
        written.append(target)
    return written


def _claim(partial: Path, target: Path) -> None:
    """Give the finished file its name only if that name is free (an interrupted encode leaves no half video)."""
    import os

    try:
        os.link(partial, target)
    except FileExistsError:
        raise SdplayError(f"{target} appeared while encoding; the new video is kept as {partial}") from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise SdplayError(f"{target} appeared while encoding; the new video is kept as {partial}") from None
        partial.rename(target)
        return
    partial.unlink()


FrameCallback = Callable[[DreamFrame, Path | None], None]


def run_dream(
    settings: DreamSettings | None = None,
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    on_step: StepCallback | None = None,
    on_frame: FrameCallback | None = None,
    write: bool = True,
) -> DreamRun:
    """A whole walk: read inputs, load the model, plan, make and write frames, then the videos.

    With `resume` the run folder's settings.json is the source of truth and the walk goes on
    after its last finished frame. With `write=False` nothing is written and frames are returned.
    """
    from ..api import model_for

    run_dir = Path(resume) if resume is not None else None
    if run_dir is not None:
        settings = read_run_settings(run_dir)
    if settings is None:
        raise SdplayError("nothing to dream: give prompts (or --resume RUN_DIR)")
    inputs = read_dream_inputs(settings)
    model = model_for(settings, token, local_only)
    resolved = settings.resolved(model, inputs.image_size, inputs.audio_frames(settings.fps))
    if run_dir is not None and resolved != settings:
        raise SdplayError(f"{run_dir / SETTINGS_FILE} is not a finished plan (edited?); start a new run instead")
    start, previous = 0, None
    if run_dir is not None:
        start = finished_frames(run_dir)
        if start:
            with Image.open(frame_path(run_dir)(start - 1)) as last:
                previous = last.convert("RGB")
        log.info("resuming %s at frame %d of %d", run_dir, start, resolved.total_frames)
    elif write:
        run_dir = new_run_dir(outdir, "dream", (resolved.prompts or ("dream",))[0])
        write_settings(run_dir, resolved.to_dict())
    run = DreamRun(resolved, run_dir if write else None)
    if start < resolved.total_frames:
        plan = plan_walk(resolved, model, inputs)
        frames = iter_frames(plan, model, start, previous, on_step)
        if run.run_dir is None:
            for frame in frames:
                _record(run, [(frame, None)], on_frame)
        else:
            with BackgroundWriter(partial(write_frame, run.run_dir)) as writer:
                for frame in frames:
                    _record(run, writer.submit(frame), on_frame)
                _record(run, writer.finish(), on_frame)
    if run.replaced:
        log.warning("%d frame(s) blanked by the safety checker were replaced by the previous frame", run.replaced)
    if run.run_dir is not None:
        run.frame_paths = [frame_path(run.run_dir)(n) for n in range(resolved.total_frames)]
        run.videos = write_videos(run.run_dir, resolved, resolved.total_frames)
    return run


def _record(run: DreamRun, made: list[tuple[DreamFrame, Path | None]], on_frame: FrameCallback | None) -> None:
    """Count finished frames (kept in memory when nothing is written) and tell the caller, in order."""
    for frame, path in made:
        run.replaced += int(frame.replaced)
        if path is None:
            run.frames.append(frame.image)
        if on_frame is not None:
            on_frame(frame, path)
