"""The terminal's view of a batch: jobs done / total, and each running job's own denoising progress
(one bar here; on Ray one per worker, as its steps come in)."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.progress import TaskID

from ..engine import events as ev
from ..progress import terminal_bars
from .local import BatchListener
from .manifest import JobRecord

log = logging.getLogger("sdplay")


class BatchBar(BatchListener):
    """Bars on stderr: jobs, then one per lane (a worker) with its job's steps; one info line per finished job."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = terminal_bars(console, enabled)
        self.jobs = self.progress.add_task("jobs", total=None)
        self.lanes: dict[int, TaskID] = {0: self.progress.add_task("", total=None)}
        self.running: JobRecord | None = None

    def __enter__(self) -> BatchBar:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def job_started(self, record: JobRecord, done: int, total: int) -> None:
        self.running = record
        self.progress.update(self.jobs, completed=done, total=total, description="jobs")

    def job_ended(self, record: JobRecord, done: int, total: int) -> None:
        self.progress.update(self.jobs, completed=done, total=total)
        if record.state == "done":
            log.info("job %d/%d %s: %s", record.id + 1, total, record.name or record.mode, record.run_dir)

    def step(self, record: JobRecord, lane: int, event: ev.Progress) -> None:
        if lane not in self.lanes:
            self.lanes[lane] = self.progress.add_task("", total=None)
        where = f"frame {event.frame + 1}/{event.frames}" if event.frames > 1 else "denoising"
        label = f"{record.name or record.mode}: {where}"
        if len(self.lanes) > 1:
            label = f"worker {lane + 1} {label}"
        self.progress.update(self.lanes[lane], completed=event.step, total=event.steps, description=label)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and self.running is not None:
            self.step(self.running, 0, event)
