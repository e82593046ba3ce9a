"""What runs on a Ray worker: the engine making what an Order asks, its events streamed back to the
driver (cluster.py) as they happen, its pictures sent back or written into a shared output root."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import events as ev
from ..errors import SdplayError
from ..output import BackgroundWriter, RunFolder, frame_path
from .local import VIDEO_MODES
from .shares import Joiner, Made

PROGRESS_S = 0.1  # a worker's step progress goes at most this often (the last step of a call always)


@dataclass(frozen=True)
class Order:
    """What a worker is asked to make: a video job's outline (frames (0, 0)), a job whole, or a frame range.

    `folder`: a shared output root's run folder the worker writes into (a whole video job continues
    there). `outdir`: a shared output root where an image job writes its folder when whole. Without them the
    pictures are sent back; a whole video job then continues from `files`, its run folder as it stands.
    """

    mode: str
    settings: dict[str, Any]
    kind: str
    frames: tuple[int, int] | None = None
    earlier: dict[int, Image.Image] = field(default_factory=dict)
    folder: str | None = None
    outdir: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)


class FarmWorker:
    """Runs on a Ray worker: makes what an Order asks through the engine and streams back what happens:
    ("progress", Progress), ("made", Made) or ("written", index) per picture, then ("done", info) or
    ("error", line). A whole video job writes its frames as it goes, so a lost worker's successor
    continues from the last one written (the engine's resume).

    The engine keeps the last model loaded in this process, so consecutive jobs of one model load it once.
    """

    def __init__(self) -> None:
        from ..quiet import silence_libraries

        silence_libraries()
        logging.getLogger("sdplay").setLevel(logging.ERROR)

    def pid(self) -> int:
        return os.getpid()

    def sees(self, marker: str, root: str) -> str | None:
        """None when `marker` (a file the driver wrote under the output root) is here and `root` is
        writable: the same filesystem at the same path. Else this machine's name, for the error line."""
        if Path(marker).is_file() and os.access(root, os.W_OK | os.X_OK):
            return None
        return socket.gethostname()

    def make(self, order: Order) -> Iterator[tuple[str, Any]]:
        """The engine runs on a thread; its events come out here in order. Step progress goes at most
        every PROGRESS_S and the last step of each call always, a newer one waiting replacing an older:
        fast steps cost no message each, and a slow link never holds the job up."""
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        progress_sent = 0.0

        def work() -> None:
            try:
                inbox.put(("done", self._run(order, inbox.put)))
            except SdplayError as exc:
                inbox.put(("error", str(exc)))
            except BaseException as exc:  # a bug: raised on the driver as the job's failure
                inbox.put(("raise", exc))

        threading.Thread(target=work, name="sdplay-farm-job", daemon=True).start()
        while True:
            messages = [inbox.get()]
            while not inbox.empty():
                messages.append(inbox.get_nowait())
            last_progress = max((i for i, m in enumerate(messages) if m[0] == "progress"), default=-1)
            for i, (kind, value) in enumerate(messages):
                if kind == "raise":
                    raise value
                if kind == "progress":
                    now = time.monotonic()
                    if i != last_progress or (value.step < value.steps and now - progress_sent < PROGRESS_S):
                        continue
                    progress_sent = now
                yield kind, value
                if kind in ("done", "error"):
                    return

    def _run(self, order: Order, send: Callable[[tuple[str, Any]], None]) -> dict[str, Any]:
        from ..engine import Job, run

        scratch = None
        if order.kind == "whole" and order.mode in VIDEO_MODES:
            if order.folder is None:  # a copy of the run folder here, continued and sent back frame by frame
                scratch = Path(tempfile.mkdtemp(prefix="sdplay-farm-"))
                for name, data in order.files.items():
                    (scratch / name).parent.mkdir(parents=True, exist_ok=True)
                    (scratch / name).write_bytes(data)
            job = Job(order.mode, None, resume=order.folder or scratch, videos=False)  # the driver encodes them
        else:
            job = Job.from_dict(order.mode, order.settings, write=False, frames=order.frames, earlier=order.earlier)
        relay = Relay(order, send, scratch)
        try:
            result = run(job, relay)
        finally:
            relay.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        info = {"settings": result.settings.to_dict(), "outline": result.outline, "run_dir": None, "paths": []}
        if order.outdir is not None:  # an image job, written whole: a lost worker leaves no half a folder
            joiner = Joiner.open(order.outdir, order.mode, result.outline, info["settings"])
            joiner.add(relay.kept)
            info["run_dir"], info["paths"] = str(joiner.folder.path), [str(path) for path in joiner.frames()]
        return info


class Relay:
    """A worker's engine listener: step progress, and each picture sent back or written where the order says."""

    def __init__(self, order: Order, send: Callable[[tuple[str, Any]], None], scratch: Path | None) -> None:
        self.order, self.send, self.scratch = order, send, scratch
        self.kept: list[Made] = []  # a shared image job's pictures, written once they are all made
        self.writer = None  # a shared range's frames, written on threads while the next are made
        if order.folder and order.kind == "range":
            self.writer = BackgroundWriter(lambda made: self._write(RunFolder(Path(order.folder)), made))

    @staticmethod
    def _write(folder: RunFolder, made: Made) -> Path:
        folder.save_once(made.picture)
        return frame_path(folder.path)(made.index)

    def _written(self, done: list[tuple[Made, Path]]) -> None:
        for made, _ in done:
            self.send(("written", made.index))

    def close(self) -> None:
        """Wait for the frames still being written (also after a failure: every finished frame is kept)."""
        if self.writer is not None:
            with self.writer:
                self._written(self.writer.finish())

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress):
            self.send(("progress", event))
        elif isinstance(event, ev.PictureMade):  # made in memory: a range's or an image job's
            made = Made(event.index, event.image.info.get("parameters", ""), event.image, event.extras)
            if self.order.outdir is not None:
                self.kept.append(made)
            elif self.writer is not None:
                self._written(self.writer.submit(made))
            else:
                self.send(("made", made))
        elif isinstance(event, ev.FileWritten) and event.kind == "frame" and event.frame is not None:
            if self.scratch is not None:
                self.send(("made", read_made(self.scratch, event.frame)))
            else:
                self.send(("written", event.frame))


def read_made(folder: Path, index: int) -> Made:
    """Frame `index` of a run folder and its extras (sub-folders), as sent back."""

    def load(path: Path) -> Image.Image:
        with Image.open(path) as image:
            image.load()
            return image

    image = load(frame_path(folder)(index))
    extras = {
        sub.name: load(frame_path(sub)(index))
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and frame_path(sub)(index).is_file()
    }
    return Made(index, image.info.get("parameters", ""), image, extras)
