"""The same batch on a Ray cluster: one worker (actor) per GPU, or per group of CPU cores, each
keeping its loaded model; jobs go preferably to a worker that holds their model.

Dream walks and the animate modes whose frames stand alone are shared out in frame ranges and
joined here into one run folder and one video, identical to a run in one process. Workers make
pictures in memory and send them back, so outputs land under this machine's output root; a worker
that dies has its job or range re-run on another, and a frame is written only once, here.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import CancelToken
from ..errors import SdplayError, import_extra
from ..output import RunFolder
from .local import VIDEO_MODES, BatchListener, model_key, record_failure
from .manifest import JobRecord, Manifest
from .shares import Joiner, Made, frame_ranges

log = logging.getLogger("sdplay")

INSTALL = 'pip install "sdplay[farm]"'
CORES_PER_WORKER = 4  # on CPU-only nodes: fewer, larger workers keep each model's layers busy
MAX_ATTEMPTS = 3  # a share that kills this many workers (out of memory, say) fails its job instead
WAIT_S = 0.2  # how often the driver looks at the cancel token while shares run


def import_ray() -> Any:
    return import_extra("ray", f"--ray needs Ray, an optional extra: {INSTALL}")


class FarmWorker:
    """Runs on a Ray worker: makes whole jobs, frame ranges and outlines through the engine, in memory.

    The engine keeps the last model loaded in this process, so consecutive jobs of one model load it once.
    """

    def __init__(self) -> None:
        from ..quiet import silence_libraries

        silence_libraries()
        logging.getLogger("sdplay").setLevel(logging.ERROR)

    def pid(self) -> int:
        import os

        return os.getpid()

    def make(
        self, mode: str, settings: dict[str, Any], frames: tuple[int, int] | None, earlier: dict[int, Image.Image]
    ) -> dict[str, Any]:
        from ..engine import Job, run

        try:
            job = Job.from_dict(mode, settings, write=False, frames=frames, earlier=earlier)
            result = run(job)
        except SdplayError as exc:
            return {"error": str(exc)}
        first = frames[0] if frames else 0
        made = [Made(first + i, image.info.get("parameters", ""), image) for i, image in enumerate(result.images)]
        return {"settings": result.settings.to_dict(), "outline": result.outline, "made": made}


@dataclass
class Task:
    """One call to a worker: `outline` (resolve a video job), `whole` (a job in one go) or `range`."""

    record: JobRecord
    kind: str
    settings: dict[str, Any]
    frames: tuple[int, int] | None = None
    earlier: dict[int, Image.Image] = field(default_factory=dict)
    attempts: int = 0


@dataclass
class Worker:
    actor: Any
    pid: Any  # a Ray reference to its process id, asked for before any work so it answers at once
    model: str | None = None  # the model key of the last job it ran: the one it holds


class WorkerPool:
    """The batch's workers: one per GPU, or per group of CPU cores, unless told how many and how big.

    A pool outlives one batch when its owner keeps it (a benchmark, a service): workers keep their models.
    """

    def __init__(self, ray: Any, count: int | None = None, cpus: float | None = None, gpus: float | None = None):
        self.ray, self.remote = ray, ray.remote(FarmWorker)
        workers, default_cpus, default_gpus = worker_shape(ray, count)
        self.cpus = default_cpus if cpus is None else cpus
        self.gpus = default_gpus if gpus is None else gpus
        self.workers = [self.start() for _ in range(workers)]

    def start(self) -> Worker:
        actor = self.remote.options(num_cpus=self.cpus, num_gpus=self.gpus).remote()
        return Worker(actor, actor.pid.remote())

    def replace(self, worker: Worker) -> None:
        """A lost worker's place goes to a new one (Ray starts it wherever the resources are)."""
        self.workers[self.workers.index(worker)] = self.start()

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker.actor)
        self.workers = []


class JobRun:
    """One record on its way: its run folder here once known, and the shares still out."""

    def __init__(self, record: JobRecord) -> None:
        self.record = record
        self.joiner: Joiner | None = None
        self.out = 1  # its first task: the job whole, or the outline of a video job
        self.announced = False
        self.waiting: list[Task] = []  # ranges that read frames a first range has still to make
        self.failed = False


class Farm:
    """The driver: a queue of tasks, idle workers take the next one (their model's first)."""

    def __init__(
        self,
        ray: Any,
        manifest: Manifest,
        pool: WorkerPool,
        listener: BatchListener,
        cancel: CancelToken,
        on_dispatch: Callable[[Task, Worker], None] | None = None,
    ) -> None:
        self.ray, self.manifest, self.listener, self.cancel = ray, manifest, listener, cancel
        self.on_dispatch = on_dispatch
        self.pool = pool
        self.queue: deque[Task] = deque()
        self.flight: dict[Any, tuple[Task, Worker]] = {}
        self.runs: dict[int, JobRun] = {}

    def run(self) -> bool:
        for record in self.manifest.unfinished():
            self._begin(record)
        self.manifest.save()
        try:
            while self.queue or self.flight:
                if self.cancel.cancelled:
                    return False
                self._dispatch()
                ready, _ = self.ray.wait(list(self.flight), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    self._collect(ref)
            return True
        finally:  # cancelled: the shares still out are dropped (run_on_ray's pool ends them); the manifest resumes
            self.manifest.save()

    # ------------------------------------------------------------------ jobs

    def _begin(self, record: JobRecord) -> None:
        self.runs[record.id] = JobRun(record)
        record.state, record.error = "running", None
        if record.mode not in VIDEO_MODES:
            self.queue.append(Task(record, "whole", record.settings))
            return
        settings = record.settings
        if record.run_dir and (Path(record.run_dir) / "settings.json").is_file():
            settings = RunFolder.reopen(record.run_dir, record.mode).read_settings()  # resolved: resumes alike
        else:
            record.run_dir = None
        self.queue.append(Task(record, "outline", settings, (0, 0)))  # makes nothing: resolves the run

    def _outlined(self, run: JobRun, settings: dict[str, Any], outline: Any) -> None:
        record = run.record
        if record.run_dir is None:
            run.joiner = Joiner.open(self.manifest.outdir, record.mode, outline, settings)
            record.run_dir = str(run.joiner.folder.path)
        else:
            folder = RunFolder.reopen(record.run_dir, record.mode)
            run.joiner = Joiner(folder, outline, folder.finished())
        self.manifest.save()
        start = run.joiner.start
        if run.joiner.complete:
            return
        if outline.split is None or outline.total < 2:
            self._share(run, Task(record, "whole", settings))
            return
        ranges = frame_ranges(outline.split, outline.total, start, len(self.pool.workers))
        tasks = [Task(record, "range", settings, frames) for frames in ranges]
        needs = [n for n in outline.split.needs if n < outline.total]
        if needs and not set(needs) <= run.joiner.written:
            self._share(run, tasks[0])  # it makes the frames the others read
            run.waiting = tasks[1:]
            return
        earlier = {n: run.joiner.folder.frame(n) for n in needs}
        for task in tasks:
            task.earlier = earlier
            self._share(run, task)

    def _share(self, run: JobRun, task: Task) -> None:
        run.out += 1
        self.queue.append(task)

    def _made(self, run: JobRun, task: Task, result: dict[str, Any]) -> None:
        record = run.record
        if run.joiner is None:  # an image job: its folder is made with its pictures
            run.joiner = Joiner.open(self.manifest.outdir, record.mode, result["outline"], result["settings"])
            record.run_dir = str(run.joiner.folder.path)
        run.joiner.add(result["made"])
        self.listener.frames_done(record, len(run.joiner.written), run.joiner.outline.total)
        if run.waiting and not run.out:
            needs = run.joiner.outline.split.needs  # type: ignore[union-attr]
            earlier = {n: run.joiner.folder.frame(n) for n in needs}
            for waiting in run.waiting:
                waiting.earlier = earlier
                self._share(run, waiting)
            run.waiting = []

    def _end(self, run: JobRun) -> None:
        record, joiner = run.record, run.joiner
        assert joiner is not None
        record.videos = [str(path) for path in joiner.finish()]
        record.paths = [str(path) for path in joiner.frames()]
        record.state = "done"
        self.manifest.save()
        self.listener.job_ended(record, self.manifest.counts()["done"], len(self.manifest.jobs))

    def _fail(self, run: JobRun, exc: BaseException) -> None:
        run.failed = True
        record_failure(run.record, exc)
        self.queue = deque(task for task in self.queue if task.record is not run.record)
        self.manifest.save()
        self.listener.job_ended(run.record, self.manifest.counts()["done"], len(self.manifest.jobs))

    # ------------------------------------------------------------------ workers

    def _dispatch(self) -> None:
        busy = {id(worker) for _, worker in self.flight.values()}
        for worker in [w for w in self.pool.workers if id(w) not in busy]:
            if not self.queue:
                return
            task = next((t for t in self.queue if model_key(t.record) == worker.model), self.queue[0])
            self.queue.remove(task)
            worker.model = model_key(task.record)
            run = self.runs[task.record.id]
            if not run.announced:
                run.announced = True
                self.listener.job_started(task.record, self.manifest.counts()["done"], len(self.manifest.jobs))
            ref = worker.actor.make.remote(task.record.mode, task.settings, task.frames, task.earlier)
            self.flight[ref] = (task, worker)
            if self.on_dispatch is not None:
                self.on_dispatch(task, worker)

    def _collect(self, ref: Any) -> None:
        from ray.exceptions import RayError, RayTaskError

        task, worker = self.flight.pop(ref)
        run = self.runs[task.record.id]
        try:
            result = self.ray.get(ref)
        except RayTaskError as exc:  # a bug in a worker: its job fails, the batch goes on
            self._fail(run, exc.cause if isinstance(exc.cause, BaseException) else exc)
            return
        except RayError:  # the worker died (killed, out of memory, node lost): another one takes the task
            self.pool.replace(worker)
            task.attempts += 1
            if task.attempts >= MAX_ATTEMPTS:
                self._fail(run, SdplayError(f"{MAX_ATTEMPTS} workers were lost making this job"))
            elif not run.failed:
                log.warning("a worker was lost; its %s of %s runs again on another", task.kind, task.record.name)
                self.queue.appendleft(task)
            return
        if run.failed:
            return
        run.out -= 1
        if "error" in result:
            self._fail(run, SdplayError(result["error"]))
            return
        if task.kind == "outline":
            self._outlined(run, result["settings"], result["outline"])
        else:
            self._made(run, task, result)
        if not run.out and run.joiner is not None and run.joiner.complete:
            self._end(run)


def worker_shape(ray: Any, count: int | None) -> tuple[int, float, float]:
    """(workers, CPUs each, GPUs each): one per GPU, else one per CORES_PER_WORKER cores; or `count`."""
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1)), float(resources.get("GPU", 0))
    if count is not None and count < 1:
        raise SdplayError(f"--workers must be at least 1, got {count}")
    if gpus >= 1:
        workers = count or int(gpus)
        return workers, max(1.0, cpus // workers) if cpus >= workers else 0.0, gpus / workers if count else 1.0
    workers = count or max(1, int(cpus) // CORES_PER_WORKER)
    return workers, max(1.0, cpus // workers), 0.0


@contextmanager
def connected(ray: Any, address: str) -> Iterator[None]:
    """Use the Ray instance this process already joined, or join `address` (auto, host:port, ray://...),
    or start a local one (`local`, loopback only) for the length of the batch."""
    if ray.is_initialized():
        yield
        return
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": log.isEnabledFor(10)}
    try:
        if address == "local":
            ray.init(address="local", _node_ip_address="127.0.0.1", **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SdplayError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    try:
        yield
    finally:
        ray.shutdown()


def run_on_ray(
    manifest: Manifest,
    address: str,
    workers: int | None = None,
    listener: BatchListener | None = None,
    cancel: CancelToken | None = None,
    on_dispatch: Callable[[Task, Worker], None] | None = None,
) -> bool:
    """Run the manifest's unfinished jobs on Ray; False when cancelled (the manifest then resumes)."""
    ray = import_ray()
    with connected(ray, address):
        pool = WorkerPool(ray, workers)
        try:
            return run_on_pool(manifest, pool, listener, cancel, on_dispatch)
        finally:
            pool.close()


def run_on_pool(
    manifest: Manifest,
    pool: WorkerPool,
    listener: BatchListener | None = None,
    cancel: CancelToken | None = None,
    on_dispatch: Callable[[Task, Worker], None] | None = None,
) -> bool:
    """Run the manifest's unfinished jobs on the pool's workers, which keep their models afterwards."""
    farm = Farm(pool.ray, manifest, pool, listener or BatchListener(), cancel or CancelToken(), on_dispatch)
    return farm.run()
