"""A batch's manifest: every expanded job with its run folder and state, rewritten after each change,
so that `sdplay batch --resume BATCH_DIR` re-runs only what did not finish (and continues an
interrupted video job in its own run folder)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SdplayError
from ..output import new_run_dir
from .batchfile import Batch, BatchJob, Grid

MANIFEST = "manifest.json"
STATES = ("pending", "running", "done", "failed")


@dataclass
class JobRecord:
    """One job of the batch and what became of it; `error` is the one line a failed job ended with."""

    id: int
    mode: str
    name: str
    entry: int
    axes: dict[str, Any]
    settings: dict[str, Any]
    state: str = "pending"
    run_dir: str | None = None
    error: str | None = None
    paths: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, number: int, job: BatchJob) -> JobRecord:
        return cls(number, job.mode, job.name, job.entry, job.axes, job.settings)


@dataclass
class GridRecord:
    entry: int
    axes: list[str]
    path: str | None = None


class Manifest:
    """The batch folder's manifest.json; the folder also holds the batch's grids."""

    def __init__(self, folder: Path, source: str, outdir: str, jobs: list[JobRecord], grids: list[GridRecord]):
        self.folder, self.source, self.outdir = folder, source, outdir
        self.jobs, self.grids = jobs, grids

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    @classmethod
    def create(cls, batch: Batch, source: Path, outdir: Path | None) -> Manifest:
        """A new batch folder `outdir/batch/<time>-<file name>/` with every job pending."""
        folder = new_run_dir(outdir, "batch", source.stem)
        jobs = [JobRecord.of(number, job) for number, job in enumerate(batch.jobs)]
        grids = [GridRecord(grid.entry, list(grid.axes)) for grid in batch.grids]
        manifest = cls(folder, str(source), str(outdir or "outputs"), jobs, grids)
        manifest.save()
        return manifest

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise SdplayError(f"--resume {folder}: no {MANIFEST} there; give a batch folder (outputs/batch/...)")
        try:
            data = json.loads(path.read_text())
            jobs = [JobRecord(**job) for job in data["jobs"]]
            grids = [GridRecord(**grid) for grid in data["grids"]]
            manifest = cls(folder, data["source"], data["outdir"], jobs, grids)
        except (ValueError, KeyError, TypeError) as exc:
            raise SdplayError(f"{path} is not a batch manifest sdplay wrote ({exc})") from None
        if any(job.state not in STATES for job in jobs):
            raise SdplayError(f"{path}: a job state is not one of {', '.join(STATES)}")
        return manifest

    def save(self) -> None:
        """Written whole to a temporary name and renamed, so an interrupt never leaves half a manifest."""
        data = {
            "source": self.source,
            "outdir": self.outdir,
            "jobs": [asdict(job) for job in self.jobs],
            "grids": [asdict(grid) for grid in self.grids],
        }
        temporary = self.path.with_suffix(".json.partial")
        try:
            temporary.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            raise SdplayError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def unfinished(self) -> list[JobRecord]:
        return [job for job in self.jobs if job.state != "done"]

    def grid_of(self, record: GridRecord) -> Grid:
        return Grid(record.entry, tuple(record.axes))

    def counts(self) -> dict[str, int]:
        return {state: sum(job.state == state for job in self.jobs) for state in STATES}
