"""Dream mode: a video that walks the latent space between key points (prompt, seed[, image]).

settings.py validates what a walk needs; walk.py places each frame between the key points;
plan.py encodes each key point once; scheduler.py gives the walk its own scheduler; denoise.py
makes the frames in batches; run.py writes them and resumes interrupted runs. `sdplay.dream(...)`
is the Python entry point; the names re-exported below are what other code imports from here.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .denoise import DreamFrame
from .run import DreamRun, read_run_settings, run_dream
from .settings import DreamSettings
from .walk import audio_speeds, frame_positions, lerp, locate, slerp

__all__ = [
    "DreamFrame",
    "DreamRun",
    "DreamSettings",
    "audio_speeds",
    "dream",
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

    Importing `sdplay.dream` sets the attribute `sdplay.dream` to this package (Python does that
    for every submodule), which would hide the function `sdplay.__getattr__` hands out; so the
    package itself calls it.
    """

    def __call__(self, *prompts: str | Sequence[str], **options: Any) -> DreamRun:
        return dream(*prompts, **options)


sys.modules[__name__].__class__ = _CallableModule
