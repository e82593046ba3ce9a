"""Dream mode: a video that walks the latent space between key points (prompt, seed[, image]).

`sdplay.dream(...)` is the Python entry point; the names below are what the CLI, run.py, the
benchmarks, animate and the tests use.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .run import (
    DreamFrame,
    DreamRun,
    DreamSettings,
    audio_speeds,
    finished_frames,
    frame_positions,
    lerp,
    locate,
    read_run_settings,
    run_dream,
    slerp,
)

__all__ = [
    "DreamFrame",
    "DreamRun",
    "DreamSettings",
    "audio_speeds",
    "dream",
    "finished_frames",
    "frame_positions",
    "lerp",
    "locate",
    "read_run_settings",
    "run_dream",
    "slerp",
]


def dream(
    *prompts: str | Sequence[str],
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    write: bool = True,
    **options: Any,
) -> DreamRun:
    """Python entry point: `sdplay.dream("a cat", "a dog", seeds=[1, 2], frames=12, model="mini")`.

    Keyword options are the fields of DreamSettings. The run folder goes under `outdir`
    (default ./outputs); `write=False` returns the frames instead of writing anything.
    """
    if resume is not None:
        return run_dream(resume=resume, token=token, local_only=local_only)
    flat: list[str] = []
    for item in prompts:
        flat.extend([item] if isinstance(item, str) else item)
    settings = DreamSettings(prompts=tuple(flat), **options)
    return run_dream(settings, outdir, token=token, local_only=local_only, write=write)


class _CallableModule(types.ModuleType):
    """`sdplay.dream(...)` must call the function even after this package was imported.

    Importing `sdplay.dream` makes the package attribute `dream` this package (Python sets
    it), which would hide the function `__init__.__getattr__` hands out; so the package calls it.
    """

    def __call__(self, *prompts: str | Sequence[str], **options: Any) -> DreamRun:
        return dream(*prompts, **options)


sys.modules[__name__].__class__ = _CallableModule
