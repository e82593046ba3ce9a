"""Where results go: run folders, never-overwrite naming, PNG metadata and settings.json.

Every file is opened with exclusive creation, so an existing name is never replaced even when
two runs race for it; the next free number is taken instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


def new_run_dir(root: str | Path | None, mode: str, prompt: str) -> Path:
    """Create `root/<mode>/<YYYYmmdd-HHMMSS>-<slug>`, numbered when that name is taken."""
    parent = Path(root or DEFAULT_ROOT) / mode
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slugify(prompt)}"
    for n in range(1, 10_000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder name under {parent}")


def write_exclusive(path_for: Callable[[int], Path], start: int, write: Callable[[Any], None]) -> Path:
    """Write to the first free `path_for(n)` with n >= start; never replaces an existing file."""
    n = start
    while True:
        path = path_for(n)
        try:
            with open(path, "xb") as handle:
                write(handle)
            return path
        except FileExistsError:
            n += 1


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
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


class RunWriter:
    """Writes one run: its folder, settings.json, and each image as `NNNN.png` as soon as it exists."""

    def __init__(self, root: str | Path | None, mode: str, prompt: str) -> None:
        self.root, self.mode, self.prompt = root, mode, prompt
        self.run_dir: Path | None = None
        self.paths: list[Path] = []

    def start(self, settings: dict[str, Any]) -> None:
        """Create the run folder only once the run is known to start (no empty folders on errors)."""
        self.run_dir = new_run_dir(self.root, self.mode, self.prompt)
        write_settings(self.run_dir, settings)

    def save(self, image: Image.Image, parameters: str) -> Path:
        assert self.run_dir is not None, "start() must come first"
        path = save_png(image, frame_path(self.run_dir), len(self.paths), parameters)
        self.paths.append(path)
        return path


class LegacyWriter:
    """The classic tool's `images/image_N.png`, taking the next free N instead of overwriting."""

    def __init__(self, folder: str | Path = "images") -> None:
        self.folder = Path(folder)
        self.paths: list[Path] = []

    def start(self, settings: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, image: Image.Image, parameters: str) -> Path:
        path = save_png(image, lambda n: self.folder / f"image_{n}.png", 0, parameters)
        self.paths.append(path)
        return path


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
