"""The HTTP job API: FastAPI routes over one JobQueue. Requests become engine Jobs; the settings
classes validate them, and each refusal is a 4xx whose body is `{"detail": "<one line>"}`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from .. import __version__
from ..engine import Job
from ..engine.modes import MODE_NAMES
from ..errors import SdplayError
from ..output import SETTINGS_FILE
from .config import ServerConfig
from .jobs import JobQueue, JobRecord
from .policy import FILE_KEYS, PathPolicy, check_frames, check_limits, refuse_downloads
from .schemas import JOB_KEYS, add_request_schemas
from .uploads import Uploads

EVENT_POLL = 0.02  # seconds between looks at a job for its event stream and long polls
MAX_WAIT = 60.0
BODY_MARGIN = 1 << 20  # room for the multipart framing and the job's JSON beside the files


class Refused(Exception):
    """A request refused with `status` and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Server:
    """What the routes share: the configuration, the queue, the uploads and the file policy."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.root = config.outdir.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uploads = Uploads(self.root, config.limits.max_upload_bytes)
        self.policy = PathPolicy(self.root, self._upload_path, config.loopback, config.model)
        self.queue = JobQueue(self.root, self._check_total)

    def _upload_path(self, upload_id: str) -> Path:
        return self.uploads.path(upload_id)

    def _check_total(self, mode: str, total: int) -> None:
        if mode in ("dream", "animate"):
            check_frames(total, self.config.limits)

    def job_from(self, body: Any, refs: dict[str, list[str]]) -> tuple[Job, bool]:
        """A validated engine Job from a request's JSON and the uploads sent with it: (job, previews)."""
        if not isinstance(body, dict):
            raise Refused(422, "the request body must be a JSON object with mode and settings")
        unknown = sorted(set(body) - set(JOB_KEYS))
        if unknown:
            raise Refused(422, f"unknown field(s) {', '.join(map(str, unknown))}; known: {', '.join(JOB_KEYS)}")
        mode, settings = body.get("mode"), body.get("settings", {})
        if mode not in MODE_NAMES:
            raise Refused(422, f"mode must be one of {', '.join(MODE_NAMES)}, got {mode!r}")
        if not isinstance(settings, dict):
            raise Refused(422, "settings must be a JSON object of setting names to values")
        if mode in ("txt2img", "img2img", "inpaint") and settings.get("mode", mode) != mode:
            raise Refused(422, f"settings are for {settings['mode']!r}, but the job's mode is {mode!r}")
        previews, video_format, resume = (
            body.get("previews", False),
            body.get("video_format", "mp4"),
            body.get("resume"),
        )
        if not isinstance(previews, bool):
            raise Refused(422, f"previews must be true or false, got {previews!r}")
        if not isinstance(video_format, str) or not isinstance(resume, (str, type(None))):
            raise Refused(422, "video_format and resume must be strings")
        data = dict(settings)
        for key, values in refs.items():
            data[key] = values if key == "images" else values[-1]
        config = self.config
        for key, value in (("model", config.model), ("device", config.device), ("dtype", config.dtype)):
            if data.get(key) is None and value is not None:
                data[key] = value
        with refused_as(403):
            data = self.policy.apply(data)
            run_dir = None if resume is None else self.policy.inside(resume, "resume")
        if run_dir is not None and run_dir.parent != self.root / mode:
            raise Refused(422, f"resume: give a {mode} run as {mode}/<name> (GET /runs lists them), got {resume!r}")
        options = {"outdir": self.root, "video_format": video_format}
        with refused_as(422):
            if run_dir is not None:
                if settings:
                    raise SdplayError("resume takes everything from the run's settings.json; leave out settings")
                from ..output import RunFolder

                job = Job(mode, None, resume=run_dir, **options)
                planned = Job.from_dict(mode, RunFolder.reopen(run_dir, mode).read_settings()).settings
            else:
                job = Job.from_dict(mode, data, **options)
                planned = job.settings
            check_limits(mode, planned, config.limits)
        with refused_as(403):
            refuse_downloads(planned)
        return job, previews

    async def save_upload(self, upload: StarletteUpload) -> dict[str, Any]:
        with refused_as(413):
            saved = await run_in_threadpool(self.uploads.save, upload.filename, upload.file)
        return saved.to_dict()

    def runs(self, limit: int) -> list[dict[str, Any]]:
        """Past runs under the output root, newest first, each with its settings.json and file names."""
        found = []
        for mode in MODE_NAMES:
            folder = self.root / mode
            if folder.is_dir():
                found += [path for path in folder.iterdir() if path.is_dir() and not path.is_symlink()]
        found.sort(key=lambda path: (path.stat().st_mtime, path.name), reverse=True)
        return [describe_run(self.root, path) for path in found[:limit]]

    def run_file(self, mode: str, run: str, file: str) -> Path:
        if mode not in MODE_NAMES:
            raise Refused(404, f"no runs of mode {mode!r}; modes: {', '.join(MODE_NAMES)}")
        with refused_as(403):
            run_dir = self.policy.inside(run, "run", self.root / mode)
            path = self.policy.inside(file, "file", run_dir)
        if not path.is_file():
            raise Refused(404, f"no file {file!r} in run {mode}/{run}")
        return path


class refused_as:
    """Turns an SdplayError raised inside the block into a refusal with the given status."""

    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, SdplayError):
            raise Refused(self.status, str(exc)) from None


def describe_run(root: Path, path: Path) -> dict[str, Any]:
    settings_path = path / SETTINGS_FILE
    try:
        settings = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.is_file() else None
    except (OSError, ValueError):
        settings = None
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    run = path.relative_to(root).as_posix()
    return {
        "run": run,
        "mode": path.parent.name,
        "created": path.stat().st_mtime,
        "settings": settings,
        "files": files,
        "urls": [f"/runs/{run}/{name}" for name in files],
    }


def job_view(server: Server, record: JobRecord) -> dict[str, Any]:
    return {**record.snapshot(), "position": server.queue.position(record), "events": f"/jobs/{record.id}/events"}


async def wait_until_ended(record: JobRecord, seconds: float) -> None:
    """Returns as soon as the job ends (woken by it, not polling), or after `seconds`."""
    if seconds > 0 and not record.ended.is_set():
        await run_in_threadpool(record.ended.wait, min(seconds, MAX_WAIT))


async def event_stream(record: JobRecord) -> AsyncIterator[str]:
    """Server-sent events: the job's history first (late listeners catch up), then progress,
    previews and files as they happen; the stream ends after the job's last event."""
    sent, progress, previews = 0, None, 0
    while True:
        ended = record.ended.is_set()
        if record.progress is not progress:
            progress = record.progress
            yield sse(progress)
        if record.preview_count != previews:
            previews = record.preview_count
            preview = record.preview_event()
            if preview is not None:
                yield sse(preview)
        history = record.history
        while sent < len(history):
            yield sse(history[sent])
            sent += 1
        if ended:
            yield sse({"type": "end", "state": record.state})
            return
        await asyncio.sleep(EVENT_POLL)


def sse(data: dict[str, Any]) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"


class BodyLimit:
    """Refuses a request body larger than the upload limit (plus framing) before anything reads it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope.get("headers", []))
            length = headers.get(b"content-length")
            message = None
            if length is None and b"chunked" in headers.get(b"transfer-encoding", b""):
                status, message = 411, "send the request with a Content-Length"
            elif length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                mib = (self.max_bytes - BODY_MARGIN) / 2**20
                status, message = 413, f"the request is larger than this server allows ({mib:g} MiB of files)"
            if message is not None:
                response = JSONResponse({"detail": message}, status_code=status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(config: ServerConfig) -> tuple[FastAPI, Server]:
    server = Server(config)
    app = FastAPI(
        title="sdplay",
        version=__version__,
        description="Stable Diffusion jobs (txt2img, img2img, inpaint, dream, animate) on one queue. "
        'Settings are what a run\'s settings.json holds; errors are `{"detail": "<one line>"}`.',
    )
    app.state.server = server

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
        return JSONResponse({"detail": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.post("/uploads", status_code=201, summary="Upload a file (picture, mask, audio, video, settings file)")
    async def upload(file: UploadFile = File(...)) -> dict[str, Any]:
        """Returns its `ref` (`upload:<id>`), which any settings key that names a file accepts."""
        return await server.save_upload(file)

    @app.post("/jobs", status_code=202, summary="Queue a job")
    async def submit(request: Request) -> dict[str, Any]:
        """JSON `{"mode": ..., "settings": {...}}`, or multipart with that JSON in the `job` field and files
        in parts named by the settings key they fill (`init`, `mask`, `images`, `audio`, ...)."""
        body, refs = await read_job_request(server, request)
        try:
            job, previews = await run_in_threadpool(server.job_from, body, refs)
        except Refused:
            for ref in (ref for values in refs.values() for ref in values):
                server.uploads.discard(ref)  # a refused job leaves nothing behind
            raise
        record = server.queue.submit(job, previews)
        return job_view(server, record)

    @app.get("/jobs", summary="The queue: every job this server knows, oldest first")
    async def jobs() -> list[dict[str, Any]]:
        return [job_view(server, record) for record in server.queue.jobs()]

    @app.get("/jobs/{job_id}", summary="A job's state, progress, files so far and error line")
    async def job(job_id: str, wait: float = Query(0.0, ge=0, le=MAX_WAIT)) -> dict[str, Any]:
        """With `wait=S`, answers when the job has ended or after S seconds."""
        record = find(server, job_id)
        await wait_until_ended(record, wait)
        return job_view(server, record)

    @app.get("/jobs/{job_id}/events", summary="Server-sent events: progress, preview (base64 PNG), file, end")
    async def events(job_id: str) -> StreamingResponse:
        record = find(server, job_id)
        return StreamingResponse(
            event_stream(record), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.delete("/jobs/{job_id}", summary="Cancel a job (the running one stops within one step)")
    async def cancel(job_id: str) -> dict[str, Any]:
        """Answers once the job has stopped; a finished job is left as it is."""
        record = server.queue.cancel(job_id)
        if record is None:
            raise Refused(404, f"no job {job_id!r} on this server")
        await wait_until_ended(record, 30.0)
        return job_view(server, record)

    @app.get("/runs", summary="Past runs under the output root, newest first")
    async def runs(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        return await run_in_threadpool(server.runs, limit)

    @app.get("/runs/{mode}/{run}/{file:path}", summary="A file of a run")
    async def run_file(mode: str, run: str, file: str) -> FileResponse:
        return FileResponse(await run_in_threadpool(server.run_file, mode, run, file))

    @app.get("/models", summary="Model aliases, cached hub models and the models loaded now")
    async def models() -> dict[str, Any]:
        return await run_in_threadpool(describe_models, config)

    @app.get("/info", summary="Versions, device, dtype, the server's defaults and limits")
    async def info() -> dict[str, Any]:
        from ..catalog import describe_environment

        environment = await run_in_threadpool(describe_environment, config.device, config.dtype)
        limits = config.limits
        return {
            "environment": environment,
            "model": config.model,
            "loopback": config.loopback,
            "auth": bool(config.auth or config.token),
            "limits": {name: getattr(limits, name) for name in limits.__dataclass_fields__},
            "file_keys": list(FILE_KEYS),
        }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = add_request_schemas(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_upload_bytes + BODY_MARGIN)
    return app, server


def find(server: Server, job_id: str) -> JobRecord:
    record = server.queue.get(job_id)
    if record is None:
        raise Refused(404, f"no job {job_id!r} on this server")
    return record


async def read_job_request(server: Server, request: Request) -> tuple[Any, dict[str, list[str]]]:
    """The job's JSON and the refs of the files sent with it, by settings key."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return parse_json(await request.body(), "the request body"), {}
    if kind != "multipart/form-data":
        raise Refused(415, "send the job as application/json, or multipart/form-data with a `job` field")
    try:
        form = await request.form(max_files=32, max_fields=64)
    except Exception as exc:  # starlette's parser errors: a malformed multipart body
        raise Refused(400, f"cannot read the multipart body: {exc}") from None
    text = form.get("job")
    if not isinstance(text, str):
        raise Refused(422, "the multipart body needs a `job` field holding the job's JSON")
    body = parse_json(text, "the `job` field")
    refs: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if key == "job":
            continue
        if key not in FILE_KEYS or not isinstance(value, StarletteUpload):
            raise Refused(
                422, f"unexpected part {key!r}; file parts are named by a settings key: {', '.join(FILE_KEYS)}"
            )
        refs.setdefault(key, []).append((await server.save_upload(value))["ref"])
    return body, refs


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON as a settings file is read: a key given twice is refused, not silently the last one."""

    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise Refused(400, f"{what} gives {', '.join(map(repr, twice))} twice")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicates)
    except (ValueError, RecursionError):
        raise Refused(400, f"{what} is not valid JSON (or is nested too deeply)") from None


def describe_models(config: ServerConfig) -> dict[str, Any]:
    from ..catalog import cached_models
    from ..models import loaded_models
    from ..specs import ALIASES, default_model_spec

    return {
        "default": config.model or default_model_spec(),
        "aliases": [{"name": name, "location": a.location, "about": a.about} for name, a in ALIASES.items()],
        "cached": [{"repo": repo, "bytes": size} for repo, size in cached_models()],
        "loaded": [{"name": m.name, "device": str(m.device), "dtype": str(m.dtype)} for m in loaded_models()],
        "keep": config.keep_models,
    }
