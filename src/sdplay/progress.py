"""A rich progress bar for denoising steps, fed by the modes' step callbacks."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class StepProgress:
    """`update(step, steps, batch, batches)` as a bar on stderr; does nothing when disabled."""

    def __init__(self, console: Console, enabled: bool = True, label: str = "batch") -> None:
        self.label = label
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=True,
        )
        self.task = self.progress.add_task("starting", total=None)

        self.started = False

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.started:
            self.progress.stop()

    def update(self, step: int, steps: int, batch: int, batches: int) -> None:
        if not self.started:  # start on the first step, so early errors print no empty bar
            self.progress.start()
            self.started = True
        description = f"{self.label} {batch + 1}/{batches}" if batches > 1 else "denoising"
        self.progress.update(self.task, completed=step, total=steps, description=description)
