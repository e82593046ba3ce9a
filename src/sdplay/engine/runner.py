"""The engine: runs any job the same way, whatever its mode and whoever started it.

settings -> inputs read (fail fast, before torch is imported) -> model -> plan (resolved settings) -> run folder ->
pictures written as they are made on the writer pool -> videos, with events to every listener.
Cancel stops within one denoising step and keeps every finished frame; `resume` continues a
run folder and makes exactly the frames an unbroken run makes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..devices import check_device_here
from ..errors import SdplayError
from ..output import BackgroundWriter, ClassicFolder, KnownFrames, Picture, RunFolder, check_output_root
from .control import CancelToken, JobCancelled
from .events import Cancelled, Converting, Event, Failed, FileWritten, Finished, Listener, PictureMade, Started
from .job import Job
from .modes import Outline, Plan, mode_runner, read_inputs, settings_class
from .steps import StepReporter
from .videos import check_videos, finish_videos

log = logging.getLogger("sdplay")


@dataclass
class RunResult:
    """What a job made: the resolved settings, its folder and files, and the pictures kept in memory.

    `images` holds every picture of an image mode, and a video mode's frames when nothing is
    written; each carries its generation parameters in `image.info["parameters"]`. `flagged`
    lists pictures the safety checker blanked or replaced; `diffused` the frames that went
    through the model in this session (animate's cadence skips some). `outline` is the plan's
    (frames, title, video, split): what a farm needs to share the run out (see Job.frames).
    """

    job: Job
    settings: Any
    run_dir: Path | None = None
    paths: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)
    diffused: list[int] = field(default_factory=list)
    cancelled: bool = False
    outline: Outline | None = None

    @property
    def video(self) -> Path | None:
        return self.videos[0] if self.videos else None


class _Broadcast:
    """Sends each event to every listener; a listener's own exception stops the job like any fault."""

    def __init__(self, listeners: Iterable[Listener]) -> None:
        self.listeners = list(listeners)

    def __call__(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)


def run(
    job: Job,
    on_event: Listener | Iterable[Listener] | None = None,
    cancel: CancelToken | None = None,
    previews: bool = False,
) -> RunResult:
    """Run a job to its end, its cancellation or its first error, telling `on_event` what happens.

    A user mistake is sent as a Failed event and raised as SdplayError; a cancelled job returns
    its result with `cancelled=True` after a Cancelled event.
    """
    listeners = [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
    emit = _Broadcast(listeners)
    cancel = cancel or CancelToken()
    state = _RunState(job, emit)
    try:
        return state.run(cancel, previews)
    except JobCancelled:
        state.result.cancelled = True
        emit(Cancelled(job.id, state.result.run_dir, state.done))
        return state.result
    except SdplayError as exc:
        emit(Failed(job.id, str(exc), state.result.run_dir))
        raise
    except Exception as exc:
        emit(Failed(job.id, f"internal error: {type(exc).__name__}: {exc}", state.result.run_dir))
        raise


class _RunState:
    """One run in progress: what has been made so far, for the result and the final events."""

    def __init__(self, job: Job, emit: _Broadcast) -> None:
        self.job, self.emit = job, emit
        self.result = RunResult(job, job.settings)
        self.done = 0

    def run(self, cancel: CancelToken, previews: bool) -> RunResult:
        job = self.job
        settings = job.settings
        folder: RunFolder | ClassicFolder | None = None
        if job.resume is not None:
            folder = RunFolder.reopen(job.resume, job.mode)
            recorded = folder.read_settings()
            made_by = recorded.get("mode", "animate")  # animate's settings are Deforum's keys, without a mode
            if made_by != job.mode:
                raise SdplayError(f"--resume {folder.path}: that is a {made_by} run, not {job.mode}")
            settings = settings_class(job.mode).from_dict(recorded)
        elif job.write:
            check_output_root(job.outdir)
        inputs = read_inputs(job.mode, settings, job.given)  # before torch's import: a wrong file fails in a moment
        check_device_here(settings.device)  # a GPU that is not here, too
        cancel.check()
        from ..models import load_model

        mode = mode_runner(job.mode)
        model = load_model(
            settings.model,
            settings.load_options(job.token, job.local_only),
            on_convert=lambda component, done, total: self.emit(Converting(job.id, component, done, total)),
        )
        cancel.check()
        plan = mode.plan(settings, model, inputs, job)
        check_videos(plan.video)
        result = self.result
        result.settings, result.outline = plan.settings, Outline(plan.total, plan.title, plan.video, plan.split)
        start, stop = job.frames or (0, plan.total)
        stop = min(stop, plan.total)
        if isinstance(folder, RunFolder):
            if plan.settings != settings:
                raise SdplayError(f"{folder.path}/settings.json was edited since the run started; start a new run")
            start = folder.finished()
            log.info("resuming %s at frame %d of %d", folder.path, start, plan.total)
        elif job.write:
            folder = self._open_folder(plan)
        self.result.run_dir = folder.path if folder is not None else None
        self.done = start
        self.emit(Started(job.id, job.mode, self.result.run_dir, plan.total, start))
        previewer = None
        if previews:
            from .preview import previewer_for

            previewer = previewer_for(model)
        steps = StepReporter(job.id, self.emit, cancel, plan.total, start, previewer)
        known = KnownFrames(job.earlier) if job.earlier else None
        self._make(plan, folder, start, stop, steps, cancel, known)
        if isinstance(folder, RunFolder) and job.frames is None:
            self.result.paths = folder.frame_paths(plan.total)
            if plan.video is not None and job.videos:
                self._videos(plan, folder, cancel)
        self.emit(Finished(job.id, self.result))
        return self.result

    def _open_folder(self, plan: Plan) -> RunFolder | ClassicFolder:
        job = self.job
        if job.layout == "classic":
            return ClassicFolder(job.outdir or "images")
        folder = RunFolder.create(job.outdir, job.mode, plan.title)
        path = folder.write_settings(plan.settings.to_dict())
        self.emit(FileWritten(job.id, path, "settings"))
        return folder

    def _make(
        self,
        plan: Plan,
        folder: RunFolder | ClassicFolder | None,
        start: int,
        stop: int,
        steps: StepReporter,
        cancel: CancelToken,
        known: KnownFrames | None = None,
    ) -> None:
        """Pictures `start..stop-1`, written on the pool while the next is made; on any stop the queued
        writes finish first, so no finished frame is lost. Without a folder they are kept in memory,
        and `known` serves the earlier frames a share reads."""
        if start >= stop:
            return
        pictures = plan.pictures(start, folder if isinstance(folder, RunFolder) else known, steps)  # type: ignore[arg-type]
        if folder is None:
            for picture in pictures:
                if picture.index < start:
                    continue
                self._record(picture, None)
                steps.frame_done()
                if picture.index + 1 >= stop:
                    break
                cancel.check()
            return
        with BackgroundWriter(folder.save) as writer:
            try:
                for picture in pictures:
                    if picture.index < start:
                        continue  # remade only to rebuild what follows it; already on disk
                    for written, path in writer.submit(picture):
                        self._record(written, path)
                    steps.frame_done()
                    cancel.check()
            finally:
                for written, path in writer.finish():
                    self._record(written, path)

    def _record(self, picture: Picture, path: Path | None) -> None:
        result = self.result
        if "diffused" in picture.flags:
            result.diffused.append(picture.index)
        if picture.flags & {"nsfw", "replaced"}:
            result.flagged.append(picture.index)
        keep_in_memory = path is None or self.job.mode in ("txt2img", "img2img", "inpaint")
        if keep_in_memory:
            image = picture.render()
            image.info["parameters"] = picture.parameters  # as a PNG's text chunk would carry it
            result.images.append(image)
            if path is None:
                self.emit(PictureMade(self.job.id, picture.index, image, picture.extras()))
        if path is not None:
            if self.job.mode in ("txt2img", "img2img", "inpaint"):
                result.paths.append(path)
            self.emit(FileWritten(self.job.id, path, "frame", picture.index))
        self.done = max(self.done, picture.index + 1)

    def _videos(self, plan: Plan, folder: RunFolder, cancel: CancelToken) -> None:
        assert plan.video is not None
        for path in finish_videos(folder, plan.video, plan.total, cancel.check):
            self.result.videos.append(path)
            self.emit(FileWritten(self.job.id, path, "video"))
