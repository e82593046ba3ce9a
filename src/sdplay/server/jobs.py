"""One job queue per server: jobs run one at a time, in order, on a single worker thread over the
loaded model; each records what its engine events said, for GET /jobs/{id}, its event stream and the page.

A queued job is cancelled by taking it off the queue; the running one through its CancelToken, so
it stops within one denoising step and keeps its frames.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import CancelToken, Job
from ..engine import events as ev
from ..errors import SdplayError

log = logging.getLogger("sdplay")

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED = "queued", "running", "finished", "failed", "cancelled"
ENDED = (FINISHED, FAILED, CANCELLED)
KEEP_ENDED = 500  # records of ended jobs kept for GET /jobs/{id}; the oldest are forgotten first


class JobRecord:
    """A job and everything its events said so far. Written by the worker thread, read by request handlers."""

    def __init__(self, job: Job, previews: bool, root: Path, check_total: Callable[[int], None]) -> None:
        self.job, self.previews, self.root = job, previews, root
        self.check_total = check_total
        self.cancel_token = CancelToken()
        self.state = QUEUED
        self.created = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.run: str | None = None  # "mode/name" under the output root
        self.total: int | None = None
        self.files: list[dict[str, Any]] = []
        self.error: str | None = None
        self.settings: dict[str, Any] | None = None  # resolved, once the run has started
        self.history: list[dict[str, Any]] = []  # started, file, finished/failed/cancelled: replayed to late listeners
        self.progress: dict[str, Any] | None = None  # only the latest progress and preview are kept
        self.preview: Image.Image | None = None
        self.preview_step: tuple[int, int] | None = None  # (frame, step) of the preview
        self.preview_count = 0
        self._preview_png: tuple[int, str] | None = None
        self.changed = 0  # bumped on every event, so listeners know when to look again
        self.ended = threading.Event()

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def mode(self) -> str:
        return self.job.mode

    def on_event(self, event: ev.Event) -> None:
        """The engine listener: keeps the event as plain data."""
        if isinstance(event, ev.Started):
            self.check_total(event.total)
            self.run = self.relative(event.run_dir)
            self.total = event.total
            self._add({"type": "started", "run": self.run, "total": event.total, "start": event.start})
        elif isinstance(event, ev.Progress):
            self.progress = {
                "type": "progress",
                "step": event.step,
                "steps": event.steps,
                "frame": event.frame,
                "frames": event.frames,
                "eta": None if event.eta is None else round(event.eta, 2),
            }
        elif isinstance(event, ev.Preview):
            self.preview, self.preview_step = event.image, (event.frame, event.step)
            self.preview_count += 1
        elif isinstance(event, ev.FileWritten):
            path = self.relative(event.path)
            entry = {"kind": event.kind, "frame": event.frame, "path": path, "url": f"/runs/{path}"}
            self.files.append(entry)
            self._add({"type": "file", **entry})
        elif isinstance(event, ev.Finished):
            self.settings = event.result.settings.to_dict()
            self._add({"type": "finished", "run": self.run})
        elif isinstance(event, ev.Failed):
            self.error = event.message
            self._add({"type": "failed", "error": event.message})
        elif isinstance(event, ev.Cancelled):
            self._add({"type": "cancelled", "frames_done": event.frames_done})
        self.changed += 1

    def _add(self, entry: dict[str, Any]) -> None:
        self.history.append(entry)

    def relative(self, path: Path | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def preview_event(self) -> dict[str, Any] | None:
        """The latest preview as a base64 PNG, encoded once for however many listeners ask."""
        image, count = self.preview, self.preview_count
        if image is None or self.preview_step is None:
            return None
        if self._preview_png is None or self._preview_png[0] != count:
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            self._preview_png = (count, base64.b64encode(buffer.getvalue()).decode())
        frame, step = self.preview_step
        return {"type": "preview", "frame": frame, "step": step, "png": self._preview_png[1]}

    def end(self, state: str, error: str | None = None) -> None:
        self.state = state
        self.error = error or self.error
        self.ended_at = time.time()
        self.changed += 1
        self.ended.set()

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "mode": self.mode,
            "state": self.state,
            "created": self.created,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "run": self.run,
            "total": self.total,
            "progress": self.progress,
            "files": list(self.files),
            "error": self.error,
            "settings": self.settings,
        }


class JobQueue:
    """Jobs in order on one worker thread; `tasks` put before any job (the model preload) run first."""

    def __init__(self, root: Path, check_total: Callable[[str, int], None]) -> None:
        self.root = root.resolve()
        self.check_total = check_total
        self.records: OrderedDict[str, JobRecord] = OrderedDict()
        self.pending: deque[JobRecord | Callable[[], None]] = deque()
        self.current: JobRecord | None = None
        self.condition = threading.Condition()
        self.closed = False
        self.worker = threading.Thread(target=self._work, name="sdplay-jobs", daemon=True)
        self.worker.start()

    def submit(self, job: Job, previews: bool = False) -> JobRecord:
        record = JobRecord(job, previews, self.root, lambda total: self.check_total(job.mode, total))
        with self.condition:
            self.records[record.id] = record
            self.pending.append(record)
            self._forget_old()
            self.condition.notify()
        return record

    def call_first(self, task: Callable[[], None]) -> None:
        """Run `task` on the worker before the queued jobs (e.g. load the default model)."""
        with self.condition:
            self.pending.appendleft(task)
            self.condition.notify()

    def get(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    def jobs(self) -> list[JobRecord]:
        with self.condition:
            return list(self.records.values())

    def position(self, record: JobRecord) -> int | None:
        """0 for the running job, 1.. for queued ones, None once ended."""
        with self.condition:
            if record is self.current:
                return 0
            queued = [r for r in self.pending if isinstance(r, JobRecord)]
            return queued.index(record) + 1 if record in queued else None

    def cancel(self, job_id: str) -> JobRecord | None:
        """Take a queued job off the queue, or tell the running one to stop; None if there is no such job."""
        with self.condition:
            record = self.records.get(job_id)
            if record is None:
                return None
            if record in self.pending:
                self.pending.remove(record)
                record.on_event(ev.Cancelled(record.id, None, 0))
                record.end(CANCELLED)
                return record
        record.cancel_token.cancel()
        return record

    def close(self) -> None:
        with self.condition:
            self.closed = True
            for item in self.pending:
                if isinstance(item, JobRecord):
                    item.cancel_token.cancel()
            self.pending.clear()
            if self.current is not None:
                self.current.cancel_token.cancel()
            self.condition.notify()

    def _forget_old(self) -> None:
        ended = [key for key, record in self.records.items() if record.state in ENDED]
        for key in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self.records[key]

    def _work(self) -> None:
        while True:
            with self.condition:
                while not self.pending and not self.closed:
                    self.condition.wait()
                if self.closed:
                    return
                item = self.pending.popleft()
                self.current = item if isinstance(item, JobRecord) else None
            try:
                if isinstance(item, JobRecord):
                    self._run(item)
                else:
                    item()
            except Exception:  # the worker outlives any fault; the traceback goes to the server's log
                log.exception("the job worker met an error")
            finally:
                with self.condition:
                    self.current = None

    def _run(self, record: JobRecord) -> None:
        from ..engine import run

        record.state = RUNNING
        record.started_at = time.time()
        record.changed += 1
        try:
            result = run(record.job, record.on_event, record.cancel_token, record.previews)
        except SdplayError as exc:
            record.end(FAILED, str(exc))
            return
        except Exception as exc:
            log.exception("job %s failed", record.id)
            record.end(FAILED, f"internal error: {type(exc).__name__}: {exc}")
            return
        record.end(CANCELLED if result.cancelled else FINISHED)
