"""Dream mode: a video that walks the latent space between key points (prompt, seed[, image]).

settings.py validates what a walk needs; walk.py places each frame between the key points;
plan.py encodes each key point once; scheduler.py gives the walk its own scheduler; denoise.py
makes the frames in batches; run.py hands them to the engine, which writes them and resumes
interrupted runs. `sdplay.dream(...)` is the Python entry point.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import DreamSettings

if TYPE_CHECKING:
    from ..engine import RunResult
    from ..engine.events import Listener

__all__ = ["DreamSettings", "dream"]


def dream(
    *prompts: str | Sequence[str],
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    write: bool = True,
    on_event: Listener | Iterable[Listener] | None = None,
    **options: Any,
) -> RunResult:
    """Python entry point: `sdplay.dream("a cat", "a dog", seeds=[1, 2], frames=12, model="mini")`.

    Keyword options are the fields of DreamSettings. The run folder goes under `outdir`
    (default ./outputs); `write=False` returns the frames (`.images`) instead of writing anything.
    """
    from ..engine import Job, run

    settings = None
    if resume is None:
        flat: list[str] = []
        for item in prompts:
            flat.extend([item] if isinstance(item, str) else item)
        settings = DreamSettings(prompts=tuple(flat), **options)
    job = Job(
        "dream",
        settings,
        outdir=outdir,
        resume=resume,
        write=write,
        token=token,
        local_only=local_only,
    )
    return run(job, on_event)


class _CallableModule(types.ModuleType):
    """`sdplay.dream(...)` must call the function even after this package was imported.

    Importing `sdplay.dream` sets the attribute `sdplay.dream` to this package (Python does that
    for every submodule), which would hide the function `sdplay.__getattr__` hands out; so the
    package itself calls it.
    """

    def __call__(self, *prompts: str | Sequence[str], **options: Any) -> RunResult:
        return dream(*prompts, **options)


sys.modules[__name__].__class__ = _CallableModule
