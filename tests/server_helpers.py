"""Calls the server tests make to a real sdplay server (started by sdplay.server.process)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from sdplay.server.process import START_TIMEOUT, server_process

SRC = str(Path(__file__).resolve().parents[1] / "src")
running_server = server_process


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
