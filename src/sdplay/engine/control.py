"""Cancelling a job from another thread (a server's DELETE, the CLI's Ctrl-C, a script).

The engine checks the token between frames and the step callback checks it after every
denoising step, so a running job stops within one step and keeps every finished frame.
"""

from __future__ import annotations

import threading


class JobCancelled(Exception):
    """Raised inside the running job when its token is cancelled; the engine turns it into a Cancelled event."""


class CancelToken:
    """A flag one thread sets and the running job checks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise JobCancelled
