"""Sharing one run out across workers and joining what comes back: frame ranges cut where the plan's
Split allows (so every frame comes out as in one unbroken run), and a run folder on the machine that
started the batch, written as the shares arrive and finished with one video."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine.modes import Outline, Split
from ..engine.videos import finish_videos
from ..output import Picture, RunFolder


@dataclass(frozen=True)
class Made:
    """A picture a worker made and sent back: its index, its parameters text, its pixels, and its
    extras by sub-folder (a 3D frame's depth map, a key picture of a run with a cadence)."""

    index: int
    parameters: str
    image: Image.Image
    extras: dict[str, Image.Image] = field(default_factory=dict)

    @property
    def picture(self) -> Picture:
        return Picture(self.index, self.parameters, lambda: self.image, lambda: self.extras)


def frame_ranges(split: Split, total: int, start: int, parts: int) -> list[tuple[int, int]]:
    """About `parts` ranges covering frames start..total-1, each beginning at one of the split's cuts
    (the cut at or before `start` for the first: the frames before `start` are remade, not written)."""
    cuts = [cut for cut in split.cuts if cut < total]
    first = max((cut for cut in cuts if cut <= start), default=0)
    cuts = [cut for cut in cuts if cut >= first]
    size = max(1, -(-(total - first) // max(1, parts)))  # frames per range, rounded up
    chosen = [first]
    for cut in cuts[1:]:
        if cut - chosen[-1] >= size:
            chosen.append(cut)
    return list(zip(chosen, [*chosen[1:], total], strict=True))


class Joiner:
    """A video run's folder on this machine: frames written as their shares arrive (each exactly once,
    never over a frame already there), the video encoded once every frame is in."""

    def __init__(self, folder: RunFolder, outline: Outline, start: int) -> None:
        self.folder, self.outline, self.start = folder, outline, start
        self.written = set(range(start))

    @classmethod
    def open(cls, outdir: str | Path | None, mode: str, outline: Outline, settings: dict[str, Any]) -> Joiner:
        folder = RunFolder.create(outdir, mode, outline.title)
        folder.write_settings(settings)
        return cls(folder, outline, 0)

    def add(self, pictures: Iterable[Made]) -> list[Path]:
        paths = []
        for made in pictures:
            if made.index in self.written:
                continue  # before the resume point, or sent twice by a share that was re-run
            path = self.folder.save_once(made.picture)
            paths.extend([path] if path else [])
            self.written.add(made.index)
        return paths

    @property
    def complete(self) -> bool:
        return len(self.written) >= self.outline.total

    def finish(self) -> list[Path]:
        """Encode the videos, once every frame is in (an encode already finished is kept)."""
        video = self.outline.video
        if video is None:
            return []
        return list(finish_videos(self.folder, video, self.outline.total, lambda: None))

    def frames(self) -> list[Path]:
        return self.folder.frame_paths(self.outline.total)
