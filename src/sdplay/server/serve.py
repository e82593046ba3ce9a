"""Start the server: the API (and with `page=True` the Gradio page on the same app and queue) under uvicorn."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace

from ..errors import SdplayError, import_extra
from .config import ServerConfig

log = logging.getLogger("sdplay")


def build(config: ServerConfig, page: bool):
    """The ASGI app to serve (auth around everything) and the Server behind it."""
    config.check()
    from .. import models
    from ..settings import ImageSettings

    ImageSettings.from_dict({"device": config.device, "dtype": config.dtype})  # the jobs' defaults, checked as theirs
    from .app import create_app
    from .auth import Credentials, RequireAuth

    models.KEEP_MODELS = config.keep_models
    app, server = create_app(config)
    if page:
        from .ui import mount_page

        mount_page(app, server)
    if config.preload:
        server.queue.call_first(lambda: preload(config))
    if config.auth or config.token:
        return RequireAuth(app, Credentials(config.auth, config.token)), server
    return app, server


def preload(config: ServerConfig) -> None:
    """Load the default model on the worker before any job, so even the first job pays no load."""
    from ..models import LoadOptions, load_model

    try:
        load_model(config.model, LoadOptions(device=config.device, dtype=config.dtype))
    except SdplayError as exc:
        log.warning("the default model was not loaded: %s", exc)


def serve(config: ServerConfig, page: bool) -> None:
    """Serve until Ctrl-C; prints the address once the socket listens (`--port 0` picks a free port)."""
    for module in ("fastapi", "uvicorn"):
        import_extra(module, 'the server needs its extra: pip install "sdplay[server]"')
    if page:
        import_extra("gradio", 'the web page needs its extra: pip install "sdplay[ui]"')
    import uvicorn

    sock = listen(config.host, config.port)
    config = replace(config, port=sock.getsockname()[1])
    app, server = build(config, page)
    print(f"sdplay {'ui' if page else 'api'} on {config.url}  (API docs: {config.url}/docs)", flush=True)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2))
    try:
        uv.run(sockets=[sock])
    finally:
        server.queue.close()


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or exc
        raise SdplayError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.listen(128)
    return sock
