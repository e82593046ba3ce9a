"""Animate mode: Deforum-compatible frame-by-frame animation (None, 2D, 3D, Video Input, Interpolation).

    import sdplay
    run = sdplay.animate("animation.yaml", max_frames=24, model="mini")   # a file, keys on top
    run = sdplay.animate(prompts={0: "a forest"}, zoom="0: (1.03)", max_frames=12, model="mini")
    print(run.video)

Settings flow settings.py -> loop.py (model, frames, writer); nothing here touches tensors.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loop import AnimationRun


def animate(
    settings_file: str | Path | None = None,
    *,
    outdir: str | Path | None = None,
    resume: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    video_format: str = "mp4",
    **options: Any,
) -> AnimationRun:
    """Python entry point: a settings file (ours or Deforum's) and/or settings keys as keywords.

    The run folder goes under `outdir` (default ./outputs/animate); `resume` continues a run folder.
    """
    from .loop import run_animation
    from .settings import settings_from

    settings = None if resume is not None else settings_from(settings_file, options)
    return run_animation(settings, outdir, resume, token, local_only, video_format)


class _CallableModule(types.ModuleType):
    """`sdplay.animate(...)` calls the function even after this package was imported (which makes
    the package attribute `sdplay.animate` this module, hiding `sdplay.__getattr__`)."""

    def __call__(self, *args: Any, **options: Any) -> AnimationRun:
        return animate(*args, **options)


sys.modules[__name__].__class__ = _CallableModule
