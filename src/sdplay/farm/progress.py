"""The terminal's view of a batch: jobs done / total, and the running job's own denoising progress."""

from __future__ import annotations

import logging

from rich.console import Console

from ..engine import events as ev
from ..progress import terminal_bars
from .local import BatchListener
from .manifest import JobRecord

log = logging.getLogger("sdplay")


class BatchBar(BatchListener):
    """Two bars on stderr (jobs, then the running job's steps); one info line per finished job."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress = terminal_bars(console, enabled)
        self.jobs = self.progress.add_task("jobs", total=None)
        self.steps = self.progress.add_task("", total=None)
        self.label = ""

    def __enter__(self) -> BatchBar:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def job_started(self, record: JobRecord, done: int, total: int) -> None:
        self.label = record.name or record.mode
        self.progress.update(self.jobs, completed=done, total=total, description="jobs")
        self.progress.update(self.steps, completed=0, total=None, description=f"{self.label}: starting")

    def job_ended(self, record: JobRecord, done: int, total: int) -> None:
        self.progress.update(self.jobs, completed=done, total=total)
        if record.state == "done":
            log.info("job %d/%d %s: %s", record.id + 1, total, record.name or record.mode, record.run_dir)

    def frames_done(self, record: JobRecord, done: int, total: int) -> None:
        self.progress.update(
            self.steps, completed=done, total=total, description=f"{record.name or record.mode}: frames"
        )

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Progress):
            where = f"frame {event.frame + 1}/{event.frames}" if event.frames > 1 else "denoising"
            self.progress.update(
                self.steps, completed=event.step, total=event.steps, description=f"{self.label}: {where}"
            )
