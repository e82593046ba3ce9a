"""Animate mode: Deforum-compatible frame-by-frame animation (None, 2D, 3D, Video Input, Interpolation).

    import sdplay
    run = sdplay.animate("animation.yaml", max_frames=24, model="mini")   # a file, keys on top
    run = sdplay.animate(prompts={0: "a forest"}, zoom="0: (1.03)", max_frames=12, model="mini")
    print(run.video)

settings.py (settings, Deforum import) -> inputs.py (the files they name) -> renderer.py (one frame)
-> frames.py (each mode's frames) -> run.py (the engine's entry); nothing here touches tensors.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..engine import RunResult
    from ..engine.events import Listener


def animate(
    settings_file: str | Path | None = None,
    *,
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    video_format: str = "mp4",
    on_event: Listener | Iterable[Listener] | None = None,
    **options: Any,
) -> RunResult:
    """Python entry point: a settings file (ours or Deforum's) and/or settings keys as keywords.

    The run folder goes under `outdir` (default ./outputs/animate); `resume` continues a run folder.
    """
    from ..engine import Job, run
    from .settings import settings_from

    settings = None if resume is not None else settings_from(settings_file, options)
    where = {"outdir": outdir, "resume": resume, "video_format": video_format}
    return run(Job("animate", settings, **where, token=token, local_only=local_only), on_event)


class _CallableModule(types.ModuleType):
    """`sdplay.animate(...)` calls the function even after this package was imported (which makes
    the package attribute `sdplay.animate` this module, hiding `sdplay.__getattr__`)."""

    def __call__(self, *args: Any, **options: Any) -> RunResult:
        return animate(*args, **options)


sys.modules[__name__].__class__ = _CallableModule
