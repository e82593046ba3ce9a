"""What a server is started with: where it listens, who may call, its defaults and its limits."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SdplayError


@dataclass(frozen=True)
class Limits:
    """Server-side bounds so one request cannot occupy the machine for hours or fill its disk."""

    max_pixels: int = 1024 * 1024  # width x height of one picture
    max_steps: int = 150
    max_frames: int = 1000  # dream's and animate's frames per job
    max_num: int = 16  # pictures per image job
    max_upload_mb: float = 20.0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    outdir: Path = Path("outputs")
    model: str | None = None  # the default model of jobs that name none
    device: str = "auto"
    dtype: str = "auto"
    keep_models: int = 1
    auth: str | None = None  # USER:PASS for HTTP Basic
    token: str | None = None  # a bearer token
    insecure_no_auth: bool = False
    preload: bool = True  # load the default model when the server starts, so the first job pays no load
    limits: Limits = field(default_factory=Limits)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def check(self) -> None:
        """Refuse to listen beyond loopback without authentication, unless the opt-out is named."""
        if self.auth is not None and (":" not in self.auth or not self.auth.split(":", 1)[0]):
            raise SdplayError("--auth must be USER:PASS")
        if self.token is not None and len(self.token) < 8:
            raise SdplayError("--token must be at least 8 characters")
        if not self.loopback and not (self.auth or self.token or self.insecure_no_auth):
            raise SdplayError(
                f"--host {self.host} is reachable from other machines: give --auth USER:PASS or --token TOKEN "
                "(or --insecure-no-auth to let anyone on the network run jobs and read outputs)"
            )
        if self.keep_models < 1:
            raise SdplayError(f"--keep-models must be at least 1, got {self.keep_models}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
