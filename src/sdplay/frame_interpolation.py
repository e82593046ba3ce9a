"""Frame interpolation for videos and run folders: new frames between every two, originals kept as they are.

The default method needs no download: OpenCV's dense optical flow (DIS) is measured both ways between
two frames, each neighbour is warped toward the in-between time along its flow, and the two warps are
blended by their nearness. With a weights file (`model`), the learned interpolator RIFE (4.26, as
framelift-video builds and runs it in PyTorch) draws the new frames instead. Every original frame is
written again unchanged at its place in the new sequence, so an interpolated run holds the originals
beside the new frames.

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
from .errors import SdplayError, import_extra
from .flow import import_cv2
from .postprocess import DEFAULT_FPS, Source, read_source, with_fields
from .settings import MAX_INTERPOLATION, FramesPerSecond, PathText, Settings, Timing, check_interpolator_file

log = logging.getLogger("sdplay")

METHODS = ("flow",)
RIFE_HINT = "pip install --no-deps framelift-video"  # its opencv-python would sit beside the headless one
RIFE_WEIGHTS = "RIFE 4.26 weights (flownet_v4.26.pkl as vs-rife publishes it, or Practical-RIFE's 4.26 flownet.pkl)"
INTERPOLATED_FOLDER = "interpolated"  # a dream or animate run's --interpolate frames, beside its own

FrameCallback = Callable[[int, int], None]
"""on_frame(done, total)"""


class InterpolateSettings(Settings):
    """An interpolation job over a picture sequence (a video file or a run folder of frames)."""

    source: PathText = Field("", description="A video, or a run folder of numbered frames.")
    multiplier: Annotated[int, Field(ge=2, le=MAX_INTERPOLATION)] = Field(
        2, description="Frames per original interval: 2 puts one new frame between every two."
    )
    method: Literal["flow"] = Field("flow", description="flow: OpenCV dense optical flow, no download.")
    timing: Timing = Field("smooth", description="smooth: the fps times the multiplier; slowmo: the source's fps.")
    fps: FramesPerSecond | None = Field(None, description="The result's frame rate, instead of the timing's.")
    model: PathText | None = Field(None, description="RIFE 4.26 weights file: a learned interpolator instead of flow.")

    @model_validator(mode="after")
    def _has_source(self) -> InterpolateSettings:
        if not self.source:
            raise ValueError("nothing to interpolate: give a video or a run folder of frames")
        check_interpolator_file("model", self.model)
        return self


class FlowInterpolator:
    """In-between frames from dense optical flow measured both ways (OpenCV DIS), no weights needed."""

    name = "optical flow (DIS)"

    def __init__(self) -> None:
        import_cv2("frame interpolation")  # fails here, in one line, when OpenCV is missing

    def between(self, a: np.ndarray, b: np.ndarray, times: list[float]) -> list[np.ndarray]:
        """Frames at each time in (0, 1) between a (time 0) and b (time 1), flows measured once."""
        return flow.between(a, b, times, "DIS Medium")


class RifeInterpolator:
    """In-between frames drawn by RIFE 4.26 from a weights file, through framelift-video's PyTorch network
    (on the GPU when there is one). The network is built for one frame size, on the first pair."""

    def __init__(self, weights: str) -> None:
        import torch

        self.interpolation = import_extra("framelift.interpolation", f"--interpolate-model needs RIFE: {RIFE_HINT}")
        device = import_extra("framelift.device", f"--interpolate-model needs RIFE: {RIFE_HINT}")
        self.device = device.resolve_device("cuda" if torch.cuda.is_available() else "cpu")
        self.weights = str(Path(weights).expanduser())
        self.name = f"RIFE 4.26 ({Path(weights).name})"
        self.networks: dict[tuple[int, int], Any] = {}
        self.network((64, 64))  # a wrong file fails here, before any frame is made

    def network(self, size: tuple[int, int]) -> Any:
        """framelift's FrameInterpolator for frames of `size` (width, height)."""
        if size not in self.networks:
            import pickle

            try:
                self.networks[size] = self.interpolation.FrameInterpolator(self.weights, self.device, *size)
            except (OSError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError, AttributeError) as exc:
                reason = " ".join(str(exc).split())[:160]
                raise SdplayError(f"cannot load {self.weights} as {RIFE_WEIGHTS}: {reason}") from exc
        return self.networks[size]

    def between(self, a: np.ndarray, b: np.ndarray, times: list[float]) -> list[np.ndarray]:
        """Frames at each time in (0, 1) between RGB frames a and b (framelift works in BGR)."""
        network = self.network((a.shape[1], a.shape[0]))
        first, second = network.prepare(a[..., ::-1]), network.prepare(b[..., ::-1])
        return [np.ascontiguousarray(network.between(first, second, t)[..., ::-1]) for t in times]


Interpolator = FlowInterpolator | RifeInterpolator


def make_interpolator(method: str, model: str | None = None) -> Interpolator:
    """RIFE with a weights file, else the optical-flow method."""
    if model:
        return RifeInterpolator(model)
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
    frames: list[Image.Image],
    multiplier: int = 2,
    interpolator: Interpolator | None = None,
    workers: int = 2,
    start: int = 0,
) -> Iterator[OutFrame]:
    """Every original frame followed by `multiplier - 1` new ones before the next; the last original ends it.
    `interpolator` defaults to the optical-flow one; `start` skips the pairs before original frame `start`
    (a resumed sequence).

    Pairs are worked on `workers` at a time (OpenCV releases the GIL), results handed back in order.
    """
    if len(frames) < 2:
        raise SdplayError(f"interpolation needs at least two frames, got {len(frames)}")
    if len({frame.size for frame in frames}) > 1:
        raise SdplayError("all frames must have one size to be interpolated")
    interpolator = interpolator or make_interpolator("flow")
    times = [k / multiplier for k in range(1, multiplier)]
    arrays = [np.asarray(frame.convert("RGB")) for frame in frames]

    def pair(i: int) -> list[np.ndarray]:
        return interpolator.between(arrays[i], arrays[i + 1], times)

    pairs, window = len(frames) - 1, 2 * max(1, workers)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sdplay-interp") as pool:
        ahead = deque(pool.submit(pair, i) for i in range(start, min(start + window, pairs)))
        for i in range(start, pairs):
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


def frame_parameters(source: Source, frame: OutFrame, multiplier: int, name: str) -> str:
    if frame.t == 0:
        return with_fields(source.parameters[frame.index], {"Original frame": frame.index})
    fields = {"Interpolated between": f"{frame.index} and {frame.index + 1}", "At": round(frame.t, 4)}
    return with_fields(source.parameters[frame.index], {**fields, "Interpolation": f"{name} x{multiplier}"})


def write_sequence(
    folder: Path,
    source: Source,
    multiplier: int,
    interpolator: Interpolator,
    on_frame: FrameCallback | None = None,
    check: Callable[[], None] | None = None,
) -> list[Path]:
    """The source's frames with `multiplier - 1` new ones between every two, written into `folder` as
    NNNN.png as they are made. Frames an interrupted call finished there are kept and the sequence goes
    on after them (a frame cut off mid-write is made again), so a rerun continues where it stopped.
    `check` is called between frames (a cancel raises from it)."""
    from .output import BackgroundWriter, finished_frames, frame_path, save_frame

    if len(source.frames) < 2:
        raise SdplayError(f"{source.path} has one frame; interpolation needs a video or a run of at least two frames")
    folder.mkdir(exist_ok=True)
    total = (len(source.frames) - 1) * multiplier + 1
    done = finished_frames(folder)
    first = min(done // multiplier, len(source.frames) - 1)  # the pair the first missing frame belongs to

    def save(item: tuple[int, OutFrame]) -> Path:
        number, frame = item
        return save_frame(folder, number, frame.image, frame_parameters(source, frame, multiplier, interpolator.name))

    frames = interpolate_frames(source.frames, multiplier, interpolator, start=first) if done < total else iter(())
    with BackgroundWriter(save) as background:  # PNG encoding overlaps the next frames' flow
        for number, frame in enumerate(frames, start=first * multiplier):
            if number >= done:
                background.submit((number, frame))
                if on_frame is not None:
                    on_frame(number + 1, total)
            if check is not None:
                check()
        background.finish()
    return [frame_path(folder)(number) for number in range(total)]


def interpolate_run_folder(
    run_dir: Path, count: int, multiplier: int, check: Callable[[], None] | None = None, model: str | None = None
) -> list[Path]:
    """A dream or animate run's `--interpolate`: its first `count` frames interpolated into the sub-folder
    `interpolated/` (the originals stay as they are, beside them); resumable like `write_sequence`."""
    source = read_source(run_dir)
    source.frames, source.parameters = source.frames[:count], source.parameters[:count]
    interpolator = make_interpolator("flow", model)
    return write_sequence(run_dir / INTERPOLATED_FOLDER, source, multiplier, interpolator, check=check)


def run_interpolate(
    settings: InterpolateSettings | None,
    outdir: str | Path | None = None,
    write: bool = True,
    on_frame: FrameCallback | None = None,
    resume: str | Path | None = None,
) -> InterpolateRun:
    """Read the source, interpolate, write every frame as it is made into a new run folder, then the video.
    `resume` continues an interrupted run folder of this tool instead (its settings.json names the source)."""
    from .postprocess import ResultWriter

    if resume is not None:
        writer = ResultWriter.reopen(resume, "interpolate")
        settings = InterpolateSettings.from_dict(writer.settings)
    assert settings is not None
    source = read_source(settings.source)
    if len(source.frames) < 2:
        raise SdplayError(f"{source.path} has one frame; interpolation needs a video or a run of at least two frames")
    settings = settings.with_values(fps=output_fps(settings, source.fps))
    total = (len(source.frames) - 1) * settings.multiplier + 1
    interpolator = make_interpolator(settings.method, settings.model)  # a wrong weights file: no run folder
    if not write:
        frames = interpolate_frames(source.frames, settings.multiplier, interpolator)
        return InterpolateRun(settings, total, images=[frame.image for frame in frames])
    if resume is None:
        writer = ResultWriter.create(outdir, "interpolate", source.path, settings.to_dict())
    writer.paths = write_sequence(writer.run_dir, source, settings.multiplier, interpolator, on_frame)
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
