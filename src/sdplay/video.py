"""Frames -> video and video/audio files -> frames and samples, through imageio-ffmpeg's ffmpeg.

Shared by dream and animate. MP4 is H.264 in yuv420p (what every player and browser plays),
which needs even dimensions: odd frames get their last row/column repeated. GIFs are written
with Pillow, which builds a proper palette per frame. Every video is encoded to a hidden
temporary name and takes its real name only when complete, so an interrupted or killed encode
never leaves a truncated video that a resume would then keep.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import SdplayError

Frame = Image.Image | np.ndarray | str | Path
VIDEO_FORMATS = ("mp4", "gif")


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg ships (or finds), so no system ffmpeg is needed."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def as_rgb_array(frame: Frame) -> np.ndarray:
    """Any accepted frame (PIL image, HxWx3 array, or a path to an image file) as uint8 RGB."""
    if isinstance(frame, (str, Path)):
        with Image.open(frame) as image:
            return np.asarray(image.convert("RGB"))
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"a frame must be HxWx3 RGB, got shape {array.shape}")
    return array.astype(np.uint8, copy=False)


def even_size(array: np.ndarray) -> np.ndarray:
    """Repeat the last row/column where a side is odd: yuv420p halves the chroma resolution."""
    height, width = array.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    return np.pad(array, pad, mode="edge") if any(p[1] for p in pad) else array


def write_video(
    frames_or_paths: Iterable[Frame], path: str | Path, fps: float, audio: str | Path | None = None
) -> Path:
    """Encode frames (images, arrays or image paths, streamed) as .mp4 (H.264) or .gif.

    `audio` (any file ffmpeg reads) is muxed into an mp4 as AAC; a GIF has no sound.
    """
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in VIDEO_FORMATS:
        raise SdplayError(f"cannot write {path.name}: choose a .mp4 or .gif file name")
    if fps <= 0:
        raise SdplayError(f"--fps must be a number > 0, got {fps!r}")
    if path.exists():
        raise SdplayError(f"{path} already exists; videos are never overwritten")
    arrays = (as_rgb_array(frame) for frame in frames_or_paths)
    unfinished = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        if kind == "gif":
            _write_gif(arrays, unfinished, fps)
        else:
            _write_mp4(arrays, unfinished, fps, audio)
    except OSError as exc:
        unfinished.unlink(missing_ok=True)
        raise SdplayError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        unfinished.unlink(missing_ok=True)
        raise
    claim(unfinished, path)
    return path


def claim(unfinished: Path, target: Path) -> None:
    """Give a finished file its name only if that name is still free (hard link, then unlink)."""
    try:
        os.link(unfinished, target)
    except FileExistsError:
        raise SdplayError(f"{target} appeared while encoding; the new video is kept as {unfinished}") from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise SdplayError(f"{target} appeared while encoding; the new video is kept as {unfinished}") from None
        unfinished.rename(target)
        return
    unfinished.unlink()


def _write_mp4(arrays: Iterator[np.ndarray], path: Path, fps: float, audio: str | Path | None) -> Path:
    import imageio_ffmpeg

    first = next(arrays, None)
    if first is None:
        raise SdplayError(f"no frames to write into {path}")
    first = even_size(first)
    size = (first.shape[1], first.shape[0])
    writer = imageio_ffmpeg.write_frames(
        str(path),
        size,
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        quality=8,
        audio_path=str(audio) if audio else None,
        audio_codec="aac" if audio else None,
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)  # start ffmpeg
    try:
        writer.send(np.ascontiguousarray(first))
        for array in arrays:
            array = even_size(array)
            if (array.shape[1], array.shape[0]) != size:
                raise ValueError(f"all frames must have one size: {size} then {array.shape[1::-1]}")
            writer.send(np.ascontiguousarray(array))
    finally:
        writer.close()
    return path


def _write_gif(arrays: Iterator[np.ndarray], path: Path, fps: float) -> Path:
    images = [Image.fromarray(array) for array in arrays]
    if not images:
        raise SdplayError(f"no frames to write into {path}")
    duration = max(20, round(1000 / fps))  # browsers slow down GIF frames shorter than 20 ms
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def read_video_frames(
    path: str | Path, every_nth: int = 1, start: int = 0, end: int | None = None
) -> list[Image.Image]:
    """Frames `start, start+every_nth, ...` before `end` (exclusive; None = to the end) as RGB images."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise SdplayError(f"video not found: {path}")
    if every_nth < 1 or start < 0 or (end is not None and end < start):
        raise SdplayError(f"bad frame range for {path.name}: every_nth >= 1 and 0 <= start <= end are needed")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        frames = []
        for index, raw in enumerate(reader):
            if end is not None and index >= end:
                break
            if index >= start and (index - start) % every_nth == 0:
                array = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
                frames.append(Image.fromarray(array.copy()))
        reader.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise SdplayError(f"cannot read video {path}: {_last_line(exc)}") from exc
    return frames


def read_audio(path: str | Path, sample_rate: int = 22050) -> np.ndarray:
    """Decode any audio file ffmpeg reads (wav, mp3, ogg, ...) to mono float32 samples in -1..1."""
    path = Path(path)
    if not path.is_file():
        raise SdplayError(f"audio file not found: {path}")
    command = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate)]
    command += ["-f", "s16le", "-acodec", "pcm_s16le", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        reason = _last_line(result.stderr.decode(errors="replace")) or "no audio stream in it"
        raise SdplayError(f"cannot read audio file {path}: {reason}")
    return np.frombuffer(result.stdout, np.int16).astype(np.float32) / 32768.0


def video_info(path: str | Path) -> tuple[int, float]:
    """(frame count, seconds) of a video file, as ffmpeg counts them."""
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))


def _last_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else ""
