"""A real sdplay server in a subprocess on a free loopback port, and a few calls tests make to it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

SRC = str(Path(__file__).resolve().parents[1] / "src")
START_TIMEOUT = 240.0  # a busy CI machine imports torch and loads the mini model before the first job


@contextmanager
def running_server(outdir: Path, *options: str, page: bool = False) -> Iterator[str]:
    """`sdplay serve|ui --port 0 ...` until the block ends; yields its base URL once it answers."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [sys.executable, "-m", "sdplay", "ui" if page else "serve", "--port", "0", "--outdir", str(outdir)]
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115  not a pipe: a chatty server must never block on a full one
    process = subprocess.Popen(
        [*command, "--model", "mini", *options], stdout=subprocess.PIPE, stderr=log, text=True, env=env
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if " on http://" not in line:
            process.kill()
            raise RuntimeError(f"the server did not start: {line}{read(log)}")
        url = line.split(" on ", 1)[1].split()[0]
        wait_until_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if "Traceback" in read(log):
            print(read(log), file=sys.stderr)  # shown by pytest beside a failure
        log.close()


def read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()


def wait_until_ready(url: str, process: subprocess.Popen, log: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {read(log)}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=5).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT:.0f} s")


def submit(client: httpx.Client, mode: str, settings: dict[str, Any], **options: Any) -> dict[str, Any]:
    response = client.post("/jobs", json={"mode": mode, "settings": settings, **options})
    assert response.status_code == 202, response.text
    return response.json()


def wait(client: httpx.Client, job_id: str, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """The job once it has ended (long polls of at most a minute each)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}", params={"wait": 60}).json()
        if job["state"] in ("finished", "failed", "cancelled") or time.monotonic() > deadline:
            return job


def wait_for_progress(client: httpx.Client, job_id: str, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["progress"] is not None:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} made no progress in {timeout:.0f} s")
