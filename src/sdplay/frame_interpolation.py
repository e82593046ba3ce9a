"""Frame interpolation for videos and run folders: new frames between every two, originals kept as they are.

The method needs no download: OpenCV's dense optical flow (DIS) is measured both ways between two
frames, each neighbour is warped toward the in-between time along its flow, and the two warps are
blended by their nearness. Every original frame is written again unchanged at its place in the new
sequence, so an interpolated run holds the originals beside the new frames.

`smooth` multiplies the frame rate (same duration, more fluid motion); `slowmo` keeps it (the video
lasts `multiplier` times longer).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from . import flow
from .errors import SdplayError
from .flow import import_cv2
from .postprocess import DEFAULT_FPS, Source, read_source, with_fields
from .settings import FramesPerSecond, PathText, Settings

log = logging.getLogger("sdplay")

METHODS = ("flow",)
MAX_MULTIPLIER = 16

FrameCallback = Callable[[int, int], None]
"""on_frame(done, total)"""


class InterpolateSettings(Settings):
    """An interpolation job over a picture sequence (a video file or a run folder of frames)."""

    source: PathText = Field("", description="A video, or a run folder of numbered frames.")
    multiplier: Annotated[int, Field(ge=2, le=MAX_MULTIPLIER)] = Field(
        2, description="Frames per original interval: 2 puts one new frame between every two."
    )
    method: Literal["flow"] = Field("flow", description="flow: OpenCV dense optical flow, no download.")
    timing: Literal["smooth", "slowmo"] = Field(
        "smooth", description="smooth: the fps times the multiplier; slowmo: the source's fps."
    )
    fps: FramesPerSecond | None = Field(None, description="The result's frame rate, instead of the timing's.")

    @model_validator(mode="after")
    def _has_source(self) -> InterpolateSettings:
        if not self.source:
            raise ValueError("nothing to interpolate: give a video or a run folder of frames")
        return self


class FlowInterpolator:
    """In-between frames from dense optical flow measured both ways (OpenCV DIS), no weights needed."""

    name = "optical flow (DIS)"

    def __init__(self) -> None:
        import_cv2("frame interpolation")  # fails here, in one line, when OpenCV is missing

    def between(self, a: np.ndarray, b: np.ndarray, times: list[float]) -> list[np.ndarray]:
        """Frames at each time in (0, 1) between a (time 0) and b (time 1), flows measured once."""
        return flow.between(a, b, times, "DIS Medium")


def make_interpolator(method: str) -> FlowInterpolator:
    if method == "flow":
        return FlowInterpolator()
    raise SdplayError(f"unknown interpolation method {method!r}; choose {', '.join(METHODS)}")


@dataclass(frozen=True)
class OutFrame:
    """One frame of the result: an original (t == 0) or one made between originals `index` and `index + 1`."""

    image: Image.Image
    index: int
    t: float


def interpolate_frames(
    frames: list[Image.Image], multiplier: int = 2, method: str = "flow", workers: int = 2
) -> Iterator[OutFrame]:
    """Every original frame followed by `multiplier - 1` new ones before the next; the last original ends it.

    Pairs are worked on `workers` at a time (OpenCV releases the GIL), results handed back in order.
    This is what dream and animate call for their `--interpolate` option.
    """
    if len(frames) < 2:
        raise SdplayError(f"interpolation needs at least two frames, got {len(frames)}")
    if len({frame.size for frame in frames}) > 1:
        raise SdplayError("all frames must have one size to be interpolated")
    interpolator = make_interpolator(method)
    times = [k / multiplier for k in range(1, multiplier)]
    arrays = [np.asarray(frame.convert("RGB")) for frame in frames]

    def pair(i: int) -> list[np.ndarray]:
        return interpolator.between(arrays[i], arrays[i + 1], times)

    pairs, window = len(frames) - 1, 2 * max(1, workers)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sdplay-interp") as pool:
        ahead = deque(pool.submit(pair, i) for i in range(min(window, pairs)))
        for i in range(pairs):
            made = ahead.popleft().result()
            if i + window < pairs:  # at most `window` pairs made ahead of the writer
                ahead.append(pool.submit(pair, i + window))
            yield OutFrame(frames[i], i, 0.0)
            for t, array in zip(times, made, strict=True):
                yield OutFrame(Image.fromarray(array), i, t)
    yield OutFrame(frames[-1], len(frames) - 1, 0.0)


@dataclass
class InterpolateRun:
    settings: InterpolateSettings
    frame_count: int
    run_dir: Path | None = None
    paths: list[Path] | None = None
    video: Path | None = None
    images: list[Image.Image] | None = None  # only when nothing is written


def output_fps(settings: InterpolateSettings, source_fps: float | None) -> float:
    if settings.fps is not None:
        return float(settings.fps)
    fps = source_fps or DEFAULT_FPS
    return fps * settings.multiplier if settings.timing == "smooth" else fps


def frame_parameters(source: Source, frame: OutFrame, settings: InterpolateSettings, name: str) -> str:
    if frame.t == 0:
        return with_fields(source.parameters[frame.index], {"Original frame": frame.index})
    fields = {"Interpolated between": f"{frame.index} and {frame.index + 1}", "At": round(frame.t, 4)}
    return with_fields(source.parameters[frame.index], {**fields, "Interpolation": f"{name} x{settings.multiplier}"})


def run_interpolate(
    settings: InterpolateSettings,
    outdir: str | Path | None = None,
    write: bool = True,
    on_frame: FrameCallback | None = None,
) -> InterpolateRun:
    """Read the source, interpolate, write every frame as it is made into a new run folder, then the video."""
    from .output import BackgroundWriter
    from .postprocess import ResultWriter

    source = read_source(settings.source)
    if len(source.frames) < 2:
        raise SdplayError(f"{source.path} has one frame; interpolation needs a video or a run of at least two frames")
    settings = settings.with_values(fps=output_fps(settings, source.fps))
    name = make_interpolator(settings.method).name
    total = (len(source.frames) - 1) * settings.multiplier + 1
    frames = interpolate_frames(source.frames, settings.multiplier, settings.method)
    if not write:
        return InterpolateRun(settings, total, images=[frame.image for frame in frames])
    writer = ResultWriter(outdir, "interpolate", source.path, settings.to_dict())
    with BackgroundWriter(writer.save_numbered) as background:  # PNG encoding overlaps the next frames' flow
        for number, frame in enumerate(frames):
            done = background.submit((number, frame.image, frame_parameters(source, frame, settings, name)))
            writer.paths.extend(path for _, path in done)
            if on_frame is not None:
                on_frame(number + 1, total)
        writer.paths.extend(path for _, path in background.finish())
    video = writer.encode(source.video or f"{source.path.stem}.mp4", settings.fps or DEFAULT_FPS)
    return InterpolateRun(settings, total, writer.run_dir, writer.paths, video)


def interpolate(
    source: str | Path,
    *,
    multiplier: int = 2,
    outdir: str | Path | None = None,
    write: bool = True,
    **options: Any,
) -> InterpolateRun:
    """Python entry point: `sdplay.interpolate("outputs/dream/...", multiplier=2, timing="slowmo").video`."""
    settings = InterpolateSettings(source=str(source), multiplier=multiplier, **options)
    return run_interpolate(settings, outdir, write)
