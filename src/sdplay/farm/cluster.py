"""The same batch on a Ray cluster: one worker (actor) per GPU, or per group of CPU cores, each
keeping its loaded model; jobs go preferably to a worker that holds their model.

Dream walks and the animate modes whose frames stand alone are shared out in frame ranges and
joined into one run folder and one video, identical to a run in one process. Workers stream back
their step progress and their pictures as they make them, so outputs land under this machine's
output root, or, with a shared output root, write the pictures there themselves. A worker that dies
has its range re-run, or its whole 2D/3D job continued from the last frame written, on another; a
frame is written only once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

from ..engine import CancelToken
from ..errors import SdplayError, import_extra
from ..output import RunFolder
from .local import VIDEO_MODES, BatchListener, model_key, record_failure
from .manifest import JobRecord, Manifest
from .shares import Joiner, Made, frame_ranges
from .worker import FarmWorker, Order

log = logging.getLogger("sdplay")

INSTALL = 'pip install "sdplay[farm]"'
CORES_PER_WORKER = 4  # on CPU-only nodes: fewer, larger workers keep each model's layers busy
MAX_ATTEMPTS = 3  # a share that kills this many workers (out of memory, say) fails its job instead
WAIT_S = 0.2  # how often the driver looks at the cancel token while shares run


def import_ray() -> Any:
    return import_extra("ray", f"--ray needs Ray, an optional extra: {INSTALL}")


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
    sees: Any = None  # with a shared output root: a Ray reference to whether it sees the batch folder


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
        self.early: list[Made] = []  # an image job's pictures, until its folder is made with them
        self.failed = False


class Farm:
    """The driver: a queue of tasks, idle workers take the next one (their model's first).

    With `shared` (the output root is a filesystem every worker sees at the same path) workers write
    their frames into the run folders themselves; otherwise frames are sent back and written here.
    """

    def __init__(
        self,
        ray: Any,
        manifest: Manifest,
        pool: WorkerPool,
        listener: BatchListener,
        cancel: CancelToken,
        on_dispatch: Callable[[Task, Worker], None] | None = None,
        shared: bool = False,
    ) -> None:
        self.ray, self.manifest, self.listener, self.cancel = ray, manifest, listener, cancel
        self.on_dispatch = on_dispatch
        self.pool = pool
        self.shared = shared
        self.outdir = Path(manifest.outdir).absolute()  # workers may start in another folder
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
                for stream in ready:
                    self._receive(stream)
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
            self._share(run, Task(record, "whole", settings))  # continues in the run folder, frame by frame
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

    def _picture(self, run: JobRun, made: Made | None, index: int) -> None:
        """A picture sent back (`made`) or written by a worker into the shared run folder (`index`)."""
        if run.joiner is None:  # an image job's: its folder is made when the job ends
            run.early.extend([made] if made else [])
            return
        if made is not None:
            run.joiner.add([made])
        else:
            run.joiner.written.add(index)

    def _finished(self, run: JobRun, task: Task, info: dict[str, Any]) -> None:
        record = run.record
        if task.kind == "outline":
            self._outlined(run, info["settings"], info["outline"])
            return
        if run.joiner is None and info["run_dir"] is not None:  # an image job a worker wrote itself
            record.run_dir, record.paths = info["run_dir"], info["paths"]
            return
        if run.joiner is None:  # an image job sent back: its folder, with its pictures
            run.joiner = Joiner.open(self.manifest.outdir, record.mode, info["outline"], info["settings"])
            record.run_dir = str(run.joiner.folder.path)
            run.joiner.add(run.early)
            run.early = []
        elif task.kind == "whole":  # the engine made the run to its end: every frame is in the folder
            run.joiner.written.update(range(run.joiner.outline.total))
        if run.waiting and not run.out:
            needs = run.joiner.outline.split.needs  # type: ignore[union-attr]
            earlier = {n: run.joiner.folder.frame(n) for n in needs}
            for waiting in run.waiting:
                waiting.earlier = earlier
                self._share(run, waiting)
            run.waiting = []

    def _end(self, run: JobRun) -> None:
        record, joiner = run.record, run.joiner
        if joiner is not None:
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
            if self.shared and not self._can_write(worker):
                continue
            task = next((t for t in self.queue if model_key(t.record) == worker.model), self.queue[0])
            self.queue.remove(task)
            worker.model = model_key(task.record)
            run = self.runs[task.record.id]
            if not run.announced:
                run.announced = True
                self.listener.job_started(task.record, self.manifest.counts()["done"], len(self.manifest.jobs))
            stream = worker.actor.make.remote(self._order(task, worker))
            self.flight[stream] = (task, worker)
            if self.on_dispatch is not None:
                self.on_dispatch(task, worker)

    def _order(self, task: Task, worker: Worker) -> Order:
        record = task.record
        order = Order(record.mode, task.settings, task.kind, task.frames, task.earlier)
        if self.shared:
            if task.kind == "outline":
                return order
            if record.mode not in VIDEO_MODES:
                return replace(order, outdir=str(self.outdir))
            return replace(order, folder=str(Path(record.run_dir).absolute()))  # type: ignore[arg-type]
        if task.kind == "whole" and record.mode in VIDEO_MODES:
            return replace(order, files=RunFolder(Path(record.run_dir)).files())  # type: ignore[arg-type]
        return order

    def _can_write(self, worker: Worker) -> bool:
        """Whether a worker sees the shared output root (asked once); one that cannot stops the batch,
        one lost before it answered is replaced (False: it takes no task this time)."""
        from ray.exceptions import RayError

        if worker.sees is None:
            worker.sees = worker.actor.sees.remote(str(self.manifest.path.absolute()), str(self.outdir))
        try:
            host = self.ray.get(worker.sees)
        except RayError:
            self.pool.replace(worker)
            return False
        if host is not None:
            raise SdplayError(
                f"--shared-outdir: a worker on {host} cannot see or write {self.outdir}; mount it at the "
                "same path on every machine, or leave out --shared-outdir (frames are then sent back)"
            )
        return True

    def _receive(self, stream: Any) -> None:
        from ray.exceptions import RayError, RayTaskError

        task, worker = self.flight[stream]
        run = self.runs[task.record.id]
        try:
            kind, value = self.ray.get(next(stream))
        except StopIteration:  # the worker ended without its last word: as if it were lost
            kind, value = "lost", None
        except RayTaskError as exc:  # a bug in a worker: its job fails, the batch goes on
            del self.flight[stream]
            self._fail(run, exc.cause if isinstance(exc.cause, BaseException) else exc)
            return
        except RayError:  # the worker died (killed, out of memory, node lost): another one takes the task
            kind, value = "lost", None
        if kind == "lost":
            del self.flight[stream]
            self._lost(run, task, worker)
            return
        if kind in ("done", "error"):
            del self.flight[stream]
        if run.failed:
            return
        if kind == "progress":
            lane = self.pool.workers.index(worker) if worker in self.pool.workers else 0
            self.listener.step(task.record, lane, value)
        elif kind in ("made", "written"):
            self._picture(run, value if kind == "made" else None, value if kind == "written" else -1)
        elif kind == "error":
            run.out -= 1
            self._fail(run, SdplayError(value))
        else:
            run.out -= 1
            self._finished(run, task, value)
            if not run.out and (run.joiner is None or run.joiner.complete):
                self._end(run)

    def _lost(self, run: JobRun, task: Task, worker: Worker) -> None:
        self.pool.replace(worker)
        task.attempts += 1
        if task.attempts >= MAX_ATTEMPTS:
            self._fail(run, SdplayError(f"{MAX_ATTEMPTS} workers were lost making this job"))
        elif not run.failed:
            log.warning("a worker was lost; its %s of %s runs again on another", task.kind, task.record.name)
            self.queue.appendleft(task)


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
    shared: bool = False,
) -> bool:
    """Run the manifest's unfinished jobs on Ray; False when cancelled (the manifest then resumes).
    `shared`: the output root is one filesystem that every worker sees at the same path (see Farm)."""
    ray = import_ray()
    with connected(ray, address):
        pool = WorkerPool(ray, workers)
        try:
            return run_on_pool(manifest, pool, listener, cancel, on_dispatch, shared)
        finally:
            pool.close()


def run_on_pool(
    manifest: Manifest,
    pool: WorkerPool,
    listener: BatchListener | None = None,
    cancel: CancelToken | None = None,
    on_dispatch: Callable[[Task, Worker], None] | None = None,
    shared: bool = False,
) -> bool:
    """Run the manifest's unfinished jobs on the pool's workers, which keep their models afterwards."""
    listener, cancel = listener or BatchListener(), cancel or CancelToken()
    farm = Farm(pool.ray, manifest, pool, listener, cancel, on_dispatch, shared)
    return farm.run()
