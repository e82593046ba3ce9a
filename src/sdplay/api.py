"""The one road from settings to files: settings -> model -> mode -> writer.

The CLI, run.py and Python users all come through here, so they behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from .images import GeneratedImage, StepCallback, iter_images, prepare, read_inputs
from .models import Model, load_model
from .settings import ImageSettings, ModelSettings

IN_MEMORY = "<image given in memory>"  # what settings.json records for an init/mask passed as a PIL image


class Writer(Protocol):
    paths: list[Path]

    def start(self, settings: dict[str, Any]) -> None: ...

    def save(self, image: Image.Image, parameters: str) -> Path: ...


@dataclass
class Generation:
    """What a run made: the resolved settings, the images, and where they were written."""

    settings: ImageSettings
    images: list[GeneratedImage] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    @property
    def pil_images(self) -> list[Image.Image]:
        return [g.image for g in self.images]


def model_for(settings: ModelSettings, token: str | None = None, local_only: bool = False) -> Model:
    """Load (or reuse) the model a mode's settings name, placed and accelerated as they ask."""
    return load_model(settings.model, settings.load_options(token, local_only))


def run_images(
    settings: ImageSettings,
    writer: Writer | None = None,
    token: str | None = None,
    local_only: bool = False,
    on_step: StepCallback | None = None,
    inputs: tuple[Image.Image | None, Image.Image | None] | None = None,
) -> Generation:
    """Generate the images the settings describe; each is written the moment it exists.

    `inputs` gives the init image and mask directly instead of reading the files the settings name.
    """
    inputs = inputs if inputs is not None else read_inputs(settings)
    model = model_for(settings, token, local_only)
    run = prepare(settings, model, inputs)
    generation = Generation(run.settings)
    if writer is not None:
        writer.start(run.settings.to_dict())
    for generated in iter_images(run, model, on_step):
        generation.images.append(generated)
        if writer is not None:
            generation.paths.append(writer.save(generated.image, generated.parameters))
    return generation


def generate(
    prompt: str = "",
    *,
    mode: str = "txt2img",
    outdir: str | Path | None = None,
    token: str | None = None,
    local_only: bool = False,
    **options: Any,
) -> Generation:
    """Python entry point: `generate("a red circle", model="mini", seed=1).pil_images[0]`.

    Keyword options are the fields of ImageSettings (width, steps, init, strength, ...); `init`
    and `mask` may be PIL images instead of paths. With `outdir` the images and settings.json
    are written as the CLI writes them.
    """
    from .output import RunWriter

    given = {name: options[name] for name in ("init", "mask") if isinstance(options.get(name), Image.Image)}
    options.update({name: IN_MEMORY for name in given})
    settings = ImageSettings(mode=mode, prompt=prompt, **options)
    writer = RunWriter(outdir, mode, prompt) if outdir is not None else None
    return run_images(settings, writer, token, local_only, inputs=read_inputs(settings, given))
