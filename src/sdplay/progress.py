"""The terminal's listeners: a rich progress bar for denoising steps, and Ctrl-C as a cancel."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .engine import CancelToken
from .engine import events as ev


def terminal_bars(console: Console, enabled: bool) -> Progress:
    """sdplay's progress bars on stderr: what, bar, done/total, time left; gone when finished."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )


class ProgressBar:
    """Listens for Progress (and Converting) events and shows them as a bar on stderr; does nothing when disabled."""

    def __init__(self, console: Console, enabled: bool = True, label: str = "image") -> None:
        self.label = label
        self.progress = terminal_bars(console, enabled)
        self.task = self.progress.add_task("starting", total=None)
        self.started = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.started:
            self.progress.stop()

    def __call__(self, event: ev.Event) -> None:
        if not isinstance(event, (ev.Progress, ev.Converting)):
            return
        if not self.started:  # start on the first step, so early errors print no empty bar
            self.progress.start()
            self.started = True
        if isinstance(event, ev.Converting):  # once per model, before the first step: parts converted
            what = f"converting the {event.component.replace('_', ' ')} for OpenVINO (once per model)"
            if event.done == event.total:
                what = "converted for OpenVINO; compiling for this size"
            self.progress.update(self.task, completed=event.done, total=event.total, description=what)
            self.progress.refresh()  # now, not at the next tick: each part then takes seconds to minutes
            return
        where = f"{self.label} {event.frame + 1}/{event.frames}" if event.frames > 1 else "denoising"
        self.progress.update(self.task, completed=event.step, total=event.steps, description=where)


@contextmanager
def ctrl_c_cancels(cancel: CancelToken, console: Console) -> Iterator[list[bool]]:
    """While a job runs, the first Ctrl-C cancels it through the engine (it stops within one denoising
    step and keeps its frames); before it has started, or at a second Ctrl-C, it interrupts at once.

    Yields a one-item list the caller sets to True once the job has started writing.
    """
    started = [False]
    if threading.current_thread() is not threading.main_thread():
        yield started
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if not started[0] or cancel.cancelled:
            raise KeyboardInterrupt
        console.print("stopping after this step (Ctrl-C again to stop at once)", highlight=False)
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield started
    finally:
        signal.signal(signal.SIGINT, previous)


def run_in_terminal(job: Any, console: Console, bar: bool, label: str, on_event: ev.Listener | None = None) -> Any:
    """Run a job through the engine with a progress bar (when `bar`) and Ctrl-C as a cancel; the engine's result."""
    from .engine import run

    cancel = CancelToken()
    with ProgressBar(console, enabled=bar, label=label) as progress, ctrl_c_cancels(cancel, console) as started:

        def listen(event: ev.Event) -> None:
            progress(event)
            started[0] = started[0] or isinstance(event, ev.Started)
            if on_event is not None:
                on_event(event)

        return run(job, listen, cancel)
