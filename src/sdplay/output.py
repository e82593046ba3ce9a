"""Where results go: run folders, never-overwrite naming, PNG metadata, settings.json, videos.

Every file is opened with exclusive creation, so an existing name is never replaced even when
two runs race for it; the next free number is taken instead. A write that fails (a full disk,
a folder that went away) removes its half-written file and is one user-facing error line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from .errors import SdplayError

T = TypeVar("T")
log = logging.getLogger("sdplay")

DEFAULT_ROOT = Path("outputs")
SETTINGS_FILE = "settings.json"


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "untitled"


def check_output_root(root: str | Path | None) -> Path:
    """Make sure outputs can go under `root` before any model loads: it is a writable folder (made if missing)."""
    path = Path(root or DEFAULT_ROOT)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SdplayError(f"output folder {path} is a file; give another --outdir") from None
    except OSError as exc:
        raise SdplayError(f"cannot create the output folder {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise SdplayError(f"output folder {path} is not a folder; give another --outdir")
    if not os.access(path, os.W_OK | os.X_OK):
        raise SdplayError(f"cannot write into the output folder {path}; give another --outdir")
    return path


def new_run_dir(root: str | Path | None, mode: str, prompt: str) -> Path:
    """Create `root/<mode>/<YYYYmmdd-HHMMSS>-<slug>`, numbered when that name is taken."""
    parent = check_output_root(root) / mode
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slugify(prompt)}"
    try:
        parent.mkdir(exist_ok=True)
        for n in range(1, 10_000):
            path = parent / (base if n == 1 else f"{base}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise SdplayError(f"cannot create a run folder under {parent}: {exc.strerror or exc}") from None
    raise SdplayError(f"no free run folder name under {parent}")


def write_new(path: Path, write: Callable[[Any], None]) -> bool:
    """Write a file that must not exist yet; False when it does. A failed write leaves no half file."""
    try:
        handle = open(path, "xb")  # noqa: SIM115 - closed below, after the failure cases are told apart
    except FileExistsError:
        return False
    except OSError as exc:
        raise SdplayError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            write(handle)
    except OSError as exc:  # a full disk, a vanished folder
        path.unlink(missing_ok=True)
        raise SdplayError(f"cannot write {path}: {exc.strerror or exc}; the files before it were kept") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def write_exclusive(path_for: Callable[[int], Path], start: int, write: Callable[[Any], None]) -> Path:
    """Write to the first free `path_for(n)` with n >= start; never replaces an existing file."""
    n = start
    while not write_new(path_for(n), write):
        n += 1
    return path_for(n)


def save_png(image: Image.Image, path_for: Callable[[int], Path], start: int, parameters: str) -> Path:
    """Save a PNG with the generation parameters in its `parameters` text chunk."""
    info = PngInfo()
    info.add_text("parameters", parameters)
    return write_exclusive(path_for, start, lambda handle: image.save(handle, format="PNG", pnginfo=info))


def frame_path(run_dir: Path) -> Callable[[int], Path]:
    return lambda n: run_dir / f"{n:04d}.png"


def save_frame(run_dir: Path, index: int, image: Image.Image, parameters: str) -> Path:
    """Frame N of a video run as exactly NNNN.png; a file already there is never replaced."""
    path = save_png(image, frame_path(run_dir), index, parameters)
    if path != frame_path(run_dir)(index):
        path.unlink()
        raise SdplayError(f"{frame_path(run_dir)(index)} already exists; resume from a copy of {run_dir}")
    return path


def finished_frames(run_dir: Path) -> int:
    """How many frames (0000.png, 0001.png, ...) an interrupted video run finished in a row.

    Frames are written on several threads, so an interrupt can leave a frame cut off mid-write
    (it does not open) or missing while later ones are whole. That frame and every one after it
    are removed, to be made again identically.
    """
    path_of = frame_path(run_dir)
    done = 0
    while path_of(done).exists() and _opens(path_of(done)):
        done += 1
    later = sorted(path for path in run_dir.glob("*.png") if path.stem.isdigit() and int(path.stem) >= done)
    if later:
        log.warning("frames from %s on were cut off by the interrupt; they are made again", path_of(done).name)
        for path in later:
            path.unlink()
    return done


def _whole(path: Path) -> bool:
    """Whether a whole picture is at `path`; one cut off mid-write by a kill is removed, to be made again."""
    if not path.exists():
        return False
    if _opens(path):
        return True
    path.unlink()
    return False


def _opens(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError):
        return False
    return True


def format_parameters(prompt: str, negative: str, fields: dict[str, Any]) -> str:
    """The widely read parameters text: prompt, `Negative prompt:` line, then `Key: value, ...`."""
    details = ", ".join(f"{key}: {value}" for key, value in fields.items() if value is not None)
    return f"{prompt}\nNegative prompt: {negative}\n{details}"


def parse_parameters(text: str) -> dict[str, str]:
    """Read a parameters text back into a dict (prompt, negative and every `Key: value`)."""
    lines = text.split("\n")
    details = lines[-1]
    prompt_lines, negative = lines[:-1], ""
    for i, line in enumerate(prompt_lines):
        if line.startswith("Negative prompt:"):
            negative = "\n".join([line[len("Negative prompt:") :].strip(), *prompt_lines[i + 1 :]])
            prompt_lines = prompt_lines[:i]
            break
    result = {"prompt": "\n".join(prompt_lines), "negative": negative}
    for match in re.finditer(r"\s*([^:,]+):\s*([^,]*)", details):
        result[match.group(1).strip()] = match.group(2).strip()
    return result


def read_parameters(path: str | Path) -> dict[str, str]:
    with Image.open(path) as image:
        return parse_parameters(image.info.get("parameters", ""))


def write_settings(run_dir: Path, settings: dict[str, Any]) -> Path:
    """Record the resolved settings of a run; a later run with them repeats it exactly."""
    path = run_dir / SETTINGS_FILE
    text = (json.dumps(settings, indent=2) + "\n").encode()
    if not write_new(path, lambda handle: handle.write(text)):
        raise SdplayError(f"{path} already exists; a run folder records its settings once")
    return path


def _no_extras() -> dict[str, Image.Image]:
    return {}


@dataclass(frozen=True)
class Picture:
    """One finished image or frame as a mode hands it over; `render` runs on a writer thread.

    `extras` are pictures that belong to it in sub-folders of the run (a 3D frame's depth map);
    `flags` say how it was made ("nsfw": blanked by the safety checker, "replaced": shows the
    previous frame instead, "diffused": went through the model).
    """

    index: int
    parameters: str
    render: Callable[[], Image.Image]
    extras: Callable[[], dict[str, Image.Image]] = _no_extras
    flags: frozenset[str] = frozenset()

    @classmethod
    def of(cls, index: int, parameters: str, image: Image.Image, *flags: str) -> Picture:
        """A picture that is already a PIL image."""
        return cls(index, parameters, lambda: image, flags=frozenset(flags))


class RunFolder:
    """One run's folder: settings.json, each frame as exactly NNNN.png (extras in sub-folders), videos."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, root: str | Path | None, mode: str, title: str) -> RunFolder:
        return cls(new_run_dir(root, mode, title))

    @classmethod
    def reopen(cls, path: str | Path, mode: str) -> RunFolder:
        """An interrupted run's folder, to resume; it must hold the run's settings.json."""
        path = Path(path)
        if not (path / SETTINGS_FILE).is_file():
            raise SdplayError(f"--resume {path}: no {SETTINGS_FILE} there; give a {mode} run folder")
        return cls(path)

    def read_settings(self) -> dict[str, Any]:
        from .settings import read_config

        return read_config(self.path / SETTINGS_FILE)

    def write_settings(self, settings: dict[str, Any]) -> Path:
        return write_settings(self.path, settings)

    def save(self, picture: Picture) -> Path:
        """Frame N as exactly NNNN.png (never replacing a file), and its extras in their sub-folders.

        The extras go first: a run killed in between then finds the frame missing and makes it
        again, whereas a whole frame without its depth map or key picture would be kept as finished.
        An extra already there is the same picture from an earlier try; one cut off is replaced.
        """
        for folder_name, extra in picture.extras().items():
            folder = self.path / folder_name
            folder.mkdir(exist_ok=True)
            if not _whole(frame_path(folder)(picture.index)):
                save_png(extra, frame_path(folder), picture.index, f"{folder_name} of frame {picture.index}")
        return save_frame(self.path, picture.index, picture.render(), picture.parameters)

    def save_once(self, picture: Picture) -> Path | None:
        """Frame N unless a whole one is there already (a farm share made again after its worker was
        lost); one cut off mid-write is replaced. None when it was there."""
        if _whole(frame_path(self.path)(picture.index)):
            return None
        return self.save(picture)

    def files(self) -> dict[str, bytes]:
        """The pictures and settings.json as they stand (no videos), by path inside the folder: a copy
        to continue the run from elsewhere."""
        found = [self.path / SETTINGS_FILE, *sorted(self.path.rglob("*.png"))]
        return {str(path.relative_to(self.path)): path.read_bytes() for path in found}

    def finished(self) -> int:
        return finished_frames(self.path)

    def frame(self, index: int) -> Image.Image:
        with Image.open(frame_path(self.path)(index)) as image:
            return image.convert("RGB")

    def frame_paths(self, count: int) -> list[Path]:
        return [frame_path(self.path)(n) for n in range(count)]

    def video(
        self,
        name: str,
        kind: str,
        count: int,
        fps: float,
        audio: str | Path | None = None,
        frames: list[Path] | None = None,
    ) -> Path:
        """`name.kind` from the first `count` frames on disk (or `frames`, such as interpolated ones);
        a finished video already there is kept."""
        from .video import write_video

        target = self.path / f"{name}.{kind}"
        if target.exists():
            log.info("%s is already there; kept as it is", target)
            return target
        paths = self.frame_paths(count) if frames is None else frames
        return write_video(paths, target, fps, audio=audio if kind == "mp4" else None)


class KnownFrames:
    """Frames made elsewhere, served the way a RunFolder serves the frames on its disk (a farm share's reads)."""

    def __init__(self, frames: Mapping[int, Image.Image]) -> None:
        self.frames = dict(frames)

    def frame(self, index: int) -> Image.Image:
        if index not in self.frames:
            raise SdplayError(f"frame {index} was not handed to this share of the run")
        return self.frames[index].convert("RGB")


class ClassicFolder:
    """The classic tool's `images/image_N.png` (run.py --save), taking the next free N instead of overwriting."""

    def __init__(self, folder: str | Path = "images") -> None:
        self.path = Path(folder)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SdplayError(f"cannot create the folder {self.path}: {exc.strerror or exc}") from None

    def write_settings(self, settings: dict[str, Any]) -> None:
        """The classic layout keeps no settings.json; each PNG's parameters chunk still records its settings."""

    def save(self, picture: Picture) -> Path:
        return save_png(picture.render(), lambda n: self.path / f"image_{n}.png", 0, picture.parameters)


class BackgroundWriter(Generic[T]):
    """Writes frames on worker threads while the next one is computed, and hands them back in order.

    Encoding a 512x512 PNG takes 20-40 ms on one core, as long as a whole frame takes on a fast
    GPU; written in line it would halve a real-time loop's frame rate, and two threads top out
    near 60 frames/s, so machines with the cores get up to four. PIL and zlib release the GIL
    while encoding, so the writes overlap the denoising. At most `depth` writes wait (two per
    thread by default), so a slow disk slows the run down instead of filling memory. Leaving the
    `with` block waits for every queued write, also after an error or Ctrl-C, so no finished
    frame is lost.
    """

    def __init__(self, write: Callable[[T], Path], workers: int | None = None, depth: int | None = None) -> None:
        workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.write, self.depth = write, depth or 2 * workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sdplay-writer")
        self.pending: deque[tuple[T, Future[Path]]] = deque()

    def __enter__(self) -> BackgroundWriter[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=True)

    def submit(self, item: T) -> list[tuple[T, Path]]:
        """Queue one write; returns the writes finished since the last call, oldest first."""
        self.pending.append((item, self.pool.submit(self.write, item)))
        return self._collect(wait_for=len(self.pending) - self.depth)

    def finish(self) -> list[tuple[T, Path]]:
        """Wait for every queued write; returns the ones not handed back yet, in order."""
        return self._collect(wait_for=len(self.pending))

    def _collect(self, wait_for: int) -> list[tuple[T, Path]]:
        finished = []
        while self.pending and (wait_for > 0 or self.pending[0][1].done()):
            item, future = self.pending.popleft()
            finished.append((item, future.result()))  # a failed write raises here, in the caller's thread
            wait_for -= 1
        return finished
