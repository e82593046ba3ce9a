"""A server in a child process, for scripts, benchmarks and tests that drive it over HTTP like any client."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

START_TIMEOUT = 240.0  # a busy machine imports torch and loads the model before it answers


@contextmanager
def server_process(outdir: Path, *options: str, page: bool = False, model: str = "mini") -> Iterator[str]:
    """`sdplay serve|ui --port 0 --model MODEL ...` until the block ends; yields its base URL once it answers.

    Its stderr goes to a file (never a pipe a chatty server could fill) and is printed if it holds a traceback.
    """
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [sys.executable, "-m", "sdplay", "ui" if page else "serve", "--port", "0", "--outdir", str(outdir)]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [*command, "--model", model, *options], stdout=subprocess.PIPE, stderr=log, text=True, env=env
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            if " on http://" not in line:
                process.kill()
                raise RuntimeError(f"the server did not start: {line}{_read(log)}")
            url = line.split(" on ", 1)[1].split()[0]
            _wait_until_ready(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
            if "Traceback" in _read(log):
                print(_read(log), file=sys.stderr)


def _wait_until_ready(url: str, process: subprocess.Popen, log: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {_read(log)}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=5).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT:.0f} s")


def _read(log: IO[str]) -> str:
    log.seek(0)
    return log.read()
