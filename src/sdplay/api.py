"""The Python API's image entry point and the model a settings object names.

Every front door (CLI, run.py, these functions, the servers) builds a Job and hands it to the
engine, so they all behave the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from .engine import Job, RunResult, run
from .engine.events import Listener
from .models import Model, load_model
from .settings import ImageSettings, ModelSettings

IN_MEMORY = "<image given in memory>"  # what settings.json records for an init/mask passed as a PIL image


def model_for(settings: ModelSettings, token: str | None = None, local_only: bool = False) -> Model:
    """Load (or reuse) the model a mode's settings name, placed and accelerated as they ask."""
    return load_model(settings.model, settings.load_options(token, local_only))


def generate(
    prompt: str = "",
    *,
    mode: str = "txt2img",
    outdir: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    on_event: Listener | Iterable[Listener] | None = None,
    **options: Any,
) -> RunResult:
    """Python entry point: `generate("a red circle", model="mini", seed=1).images[0]`.

    Keyword options are the fields of ImageSettings (width, steps, init, strength, ...); `init`
    and `mask` may be PIL images instead of paths. With `outdir` the images and settings.json
    are written as the CLI writes them.
    """
    given = {name: options[name] for name in ("init", "mask") if isinstance(options.get(name), Image.Image)}
    options.update({name: IN_MEMORY for name in given})
    settings = ImageSettings(mode=mode, prompt=prompt, **options)
    job = Job(
        mode,
        settings,
        outdir=outdir,
        write=outdir is not None,
        given=given,
        token=token,
        local_only=local_only,
    )
    return run(job, on_event)
