"""Running a batch in this process: jobs grouped by model so each model loads once, one after the
other through the engine; a failing job is recorded and the others still run."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from ..engine import CancelToken, Job, RunResult, run
from ..engine import events as ev
from ..errors import SdplayError
from ..settings import ModelSettings
from .manifest import JobRecord, Manifest

log = logging.getLogger("sdplay")

VIDEO_MODES = ("dream", "animate")
MODEL_KEYS = sorted(ModelSettings.known_keys())


def model_key(record: JobRecord) -> str:
    """What decides the loaded weights: jobs with the same key share one load."""
    return json.dumps({key: record.settings.get(key) for key in MODEL_KEYS}, sort_keys=True)


def in_model_order(records: Iterable[JobRecord]) -> list[JobRecord]:
    """Jobs grouped by model, the groups in the order their first job appears in the batch."""
    records = list(records)
    first: dict[str, int] = {}
    for position, record in enumerate(records):
        first.setdefault(model_key(record), position)
    return sorted(records, key=lambda record: first[model_key(record)])


def job_of(record: JobRecord, outdir: str | Path | None) -> Job:
    """The engine job of a record: a video job whose folder was started continues there."""
    if record.mode in VIDEO_MODES and record.run_dir and (Path(record.run_dir) / "settings.json").is_file():
        return Job(record.mode, None, resume=record.run_dir)
    return Job.from_dict(record.mode, record.settings, outdir=outdir)


def record_result(record: JobRecord, result: RunResult) -> None:
    record.state, record.error = "done", None
    record.run_dir = str(result.run_dir) if result.run_dir else record.run_dir
    record.paths = [str(path) for path in result.paths]
    record.videos = [str(path) for path in result.videos]


def record_failure(record: JobRecord, exc: BaseException) -> None:
    record.state = "failed"
    record.error = str(exc) if isinstance(exc, SdplayError) else f"internal error: {type(exc).__name__}: {exc}"
    log.error("%s failed: %s", record.name or f"job {record.id + 1}", record.error)


class BatchListener:
    """What a front door hears of a batch: each job as it starts (k of n) and its engine events."""

    def job_started(self, record: JobRecord, done: int, total: int) -> None: ...

    def job_ended(self, record: JobRecord, done: int, total: int) -> None: ...

    def step(self, record: JobRecord, lane: int, event: ev.Progress) -> None:
        """On Ray: a running job's denoising progress; `lane` (the worker) tells jobs running at once apart."""

    def __call__(self, event: ev.Event) -> None:
        """Here: every engine event of the one running job."""


def run_local(
    manifest: Manifest,
    listener: BatchListener | None = None,
    cancel: CancelToken | None = None,
    runner: Callable[..., RunResult] = run,
) -> bool:
    """Run every unfinished job of the manifest; False when cancelled (the manifest then resumes)."""
    listener = listener or BatchListener()
    cancel = cancel or CancelToken()
    total = len(manifest.jobs)
    for record in in_model_order(manifest.unfinished()):
        done = manifest.counts()["done"]
        listener.job_started(record, done, total)

        def remember_folder(event: ev.Event, record: JobRecord = record) -> None:
            if isinstance(event, ev.Started) and event.run_dir is not None:
                record.run_dir = str(event.run_dir)
                manifest.save()

        record.state = "running"
        manifest.save()
        try:
            result = runner(job_of(record, manifest.outdir), [listener, remember_folder], cancel)
        except Exception as exc:  # a failing job is recorded; the batch goes on
            if not isinstance(exc, SdplayError):
                log.debug("job %d failed", record.id, exc_info=True)
            record_failure(record, exc)
            manifest.save()
            listener.job_ended(record, manifest.counts()["done"], total)
            continue
        if result.cancelled:
            manifest.save()
            return False
        record_result(record, result)
        manifest.save()
        listener.job_ended(record, manifest.counts()["done"], total)
    return True
