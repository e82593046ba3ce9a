"""The one step callback every mode hands to its diffusers pipeline calls.

After each denoising step it checks for cancellation (so a job stops within one step), reports
progress with an ETA for the whole job, and makes a preview when a listener asked for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .control import CancelToken
from .events import Event, Preview, Progress

PREVIEW_INTERVAL = 0.25  # seconds between previews of one job; the last step of a call always gets one

StepCallback = Callable[[Any, int, Any, dict], dict]


class StepReporter:
    """Made by the engine for one run; modes call `callback(frames)` for each pipeline call."""

    def __init__(
        self,
        job_id: str,
        emit: Callable[[Event], None],
        cancel: CancelToken,
        total: int,
        start: int = 0,
        previewer: Callable[[Any], Any] | None = None,
    ) -> None:
        self.job_id, self.emit, self.cancel = job_id, emit, cancel
        self.total, self.start = total, start
        self.previewer = previewer
        self.began = time.perf_counter()
        self.last_preview = 0.0
        self.frames_done = 0  # frames finished since the start, counted by the engine

    def frame_done(self) -> None:
        self.frames_done += 1

    def eta(self, share_of_call: float, call_frames: int) -> float | None:
        """Seconds left, from the pace of the frames made in this session so far."""
        remaining_total = self.total - self.start
        done = min(remaining_total, self.frames_done + share_of_call * call_frames)
        if done <= 0:
            return None
        elapsed = time.perf_counter() - self.began
        return max(0.0, elapsed * (remaining_total - done) / done)

    def callback(self, frames: Sequence[int]) -> StepCallback:
        """A diffusers `callback_on_step_end` for one call that makes `frames`."""
        first = frames[0]

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            self.cancel.check()
            steps = int(getattr(pipe, "num_timesteps", 0) or step + 1)
            done = step + 1
            self.emit(Progress(self.job_id, done, steps, first, self.total, self.eta(done / steps, len(frames))))
            if self.previewer is not None and "latents" in tensors:
                now = time.perf_counter()
                if done >= steps or now - self.last_preview >= PREVIEW_INTERVAL:
                    self.last_preview = now
                    self.emit(Preview(self.job_id, first, done, self.previewer(tensors["latents"])))
            return tensors

        return on_step_end
