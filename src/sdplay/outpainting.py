"""Outpainting: a picture grown on any side, the new strips drawn by the inpaint mode.

The canvas is the picture with its edge pixels stretched outward; the mask is white over the new
strips and fades to black over `blend` pixels inside the picture, so the seam is redrawn and
composited softly. Inpainting checkpoints fill the strips with their own mask input; plain models
through inpaint's latent blending. Without a prompt, the picture's own prompt (its PNG parameters) is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from .errors import SdplayError
from .inputs import load_image
from .settings import MIN_SIZE, ImageSettings, PathText, Settings

IN_MEMORY = "<outpaint canvas>"  # what the inner inpaint settings name as init and mask
CANVAS_KEYS = ("mode", "init", "mask", "width", "height")  # the canvas decides these image settings
SIZE_MULTIPLE = 8
MAX_GROWTH = 4096


Side = Annotated[int, Field(ge=0, le=MAX_GROWTH)]


@dataclass(frozen=True)
class Growth:
    """Pixels added on each side."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    @classmethod
    def to_size(cls, size: tuple[int, int], target: str) -> Growth:
        """`--expand WxH`: grow to that size, half on each side (the odd pixel right/bottom)."""
        width, height = (int(side) for side in target.lower().split("x"))
        if width < size[0] or height < size[1]:
            raise SdplayError(f"--expand {width}x{height} is smaller than the picture ({size[0]}x{size[1]})")
        dx, dy = width - size[0], height - size[1]
        return cls(dx // 2, dx - dx // 2, dy // 2, dy - dy // 2)

    def rounded(self, size: tuple[int, int]) -> Growth:
        """Grown so the new size is a multiple of 8 (what the VAE needs): the extra goes right (bottom),
        or left (top) when only that side grows."""
        extra_w = -(size[0] + self.left + self.right) % SIZE_MULTIPLE
        extra_h = -(size[1] + self.top + self.bottom) % SIZE_MULTIPLE
        to_left, to_top = bool(self.left and not self.right), bool(self.top and not self.bottom)
        return Growth(
            self.left + extra_w * to_left,
            self.right + extra_w * (not to_left),
            self.top + extra_h * to_top,
            self.bottom + extra_h * (not to_top),
        )

    def __bool__(self) -> bool:
        return any((self.left, self.right, self.top, self.bottom))


class OutpaintOptions(Settings):
    """The outpaint part of a job's settings; the rest are the inpaint mode's image settings."""

    source: PathText = Field("", description="The picture to grow.")
    left: Side = Field(0, description="Pixels to add on the left.")
    right: Side = Field(0, description="Pixels to add on the right.")
    top: Side = Field(0, description="Pixels to add at the top.")
    bottom: Side = Field(0, description="Pixels to add at the bottom.")
    expand: Annotated[str, Field(pattern=r"^[0-9]{1,5}[xX][0-9]{1,5}$")] | None = Field(
        None,
        description="Grow to WIDTHxHEIGHT, half on each side, instead of the four sides.",
        json_schema_extra={"x-allowed": "WIDTHxHEIGHT, e.g. 768x512"},
    )
    blend: Annotated[int, Field(ge=0, le=256)] = Field(8, description="Pixels inside the picture the seam fades over.")

    @model_validator(mode="after")
    def _something_to_add(self) -> OutpaintOptions:
        sides = any((self.left, self.right, self.top, self.bottom))
        if not self.source:
            raise ValueError("nothing to outpaint: give a picture")
        if self.expand and sides:
            raise ValueError("give either --expand or --left/--right/--top/--bottom, not both")
        if not self.expand and not sides:
            raise ValueError("nothing to add: give --left/--right/--top/--bottom PIXELS or --expand WxH")
        return self

    def growth(self, size: tuple[int, int]) -> Growth:
        """The pixels to add to a picture of `size`, rounded so the result fits the VAE."""
        grown = (
            Growth.to_size(size, self.expand) if self.expand else Growth(self.left, self.right, self.top, self.bottom)
        )
        return grown.rounded(size)


@dataclass(frozen=True)
class OutpaintSettings:
    """An outpaint job: how the picture grows, and the inpaint settings that draw the new strips."""

    options: OutpaintOptions
    image: ImageSettings  # mode inpaint; its init and mask are the canvas made from the picture

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutpaintSettings:
        """Flat settings (a run's settings.json, the CLI's flags): the outpaint keys and any image setting."""
        own = OutpaintOptions.known_keys()
        options = OutpaintOptions.from_dict({k: v for k, v in data.items() if k in own})
        image = {k: v for k, v in data.items() if k not in own and k not in CANVAS_KEYS}
        return cls(options, ImageSettings.from_dict({**image, "mode": "inpaint", "init": IN_MEMORY, "mask": IN_MEMORY}))

    def to_dict(self) -> dict[str, Any]:
        image = {k: v for k, v in self.image.to_dict().items() if k not in CANVAS_KEYS}
        return {**self.options.to_dict(), **image}


def canvas_and_mask(picture: Image.Image, growth: Growth, blend: int) -> tuple[Image.Image, Image.Image]:
    """The grown canvas (edge pixels stretched into the new strips) and the soft mask (white = draw)."""
    pixels = np.asarray(picture.convert("RGB"))
    pad = ((growth.top, growth.bottom), (growth.left, growth.right), (0, 0))
    canvas = np.pad(pixels, pad, mode="edge")
    height, width = canvas.shape[:2]
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    inside_from = []  # distance into the picture from each side that grows
    if growth.left:
        inside_from.append(xs - growth.left)
    if growth.right:
        inside_from.append(width - growth.right - 1 - xs)
    if growth.top:
        inside_from.append(ys - growth.top)
    if growth.bottom:
        inside_from.append(height - growth.bottom - 1 - ys)
    distance = np.min(np.stack(inside_from), axis=0)
    mask = np.clip(1 - (distance + 1) / (blend + 1), 0, 1) if blend else (distance < 0).astype(np.float32)
    mask[distance < 0] = 1.0
    return Image.fromarray(canvas), Image.fromarray((mask * 255).round().astype(np.uint8), "L")


@dataclass
class OutpaintRun:
    settings: OutpaintSettings
    images: list[Image.Image]
    run_dir: Path | None = None
    paths: list[Path] | None = None


def run_outpaint(
    settings: OutpaintSettings,
    outdir: str | Path | None = None,
    write: bool = True,
    token: str | None = None,
    local_only: bool = False,
    on_event: Any = None,
) -> OutpaintRun:
    """Grow the picture, draw the new strips with the inpaint mode, write a new outpaint run folder."""
    from .engine import Job, run
    from .postprocess import ResultWriter, with_fields

    options = settings.options
    picture = load_image(options.source, "picture")
    growth = options.growth(picture.size)
    canvas, mask = canvas_and_mask(picture, growth, options.blend)
    if min(canvas.size) < MIN_SIZE:
        raise SdplayError(
            f"the grown picture would be {canvas.width}x{canvas.height}; models draw at least {MIN_SIZE} pixels "
            "a side: add more pixels"
        )
    image = settings.image.with_values(
        prompt=settings.image.prompt or _own_prompt(Path(options.source)), width=canvas.width, height=canvas.height
    )
    job = Job("inpaint", image, write=False, given={"init": canvas, "mask": mask}, token=token, local_only=local_only)
    result = run(job, on_event)
    resolved = options.with_values(expand=None, **asdict(growth))
    settings = OutpaintSettings(resolved, result.settings)
    made = OutpaintRun(settings, result.images)
    if write:
        writer = ResultWriter.create(outdir, "outpaint", Path(options.source), settings.to_dict())
        sides = ", ".join(f"{side} {pixels}" for side, pixels in asdict(growth).items() if pixels)
        for picture_made in result.images:
            parameters = with_fields(picture_made.info.get("parameters"), {"Outpaint": sides, "Blend": options.blend})
            writer.save(picture_made, parameters)
        made.run_dir, made.paths = writer.run_dir, writer.paths
    return made


def _own_prompt(path: Path) -> str:
    from .output import read_parameters

    try:
        return read_parameters(path).get("prompt", "")
    except OSError:
        return ""


def outpaint(
    source: str | Path,
    prompt: str = "",
    *,
    outdir: str | Path | None = None,
    write: bool = True,
    token: str | None = None,
    local_only: bool = False,
    **options: Any,
) -> OutpaintRun:
    """Python entry point: `sdplay.outpaint("picture.png", right=128, model="mini").images[0]`.

    Keywords: left/right/top/bottom (pixels) or expand="WxH", blend, and the image settings
    (model, negative, steps, seed, num, strength, ...).
    """
    settings = OutpaintSettings.from_dict({"source": str(source), "prompt": prompt, **options})
    return run_outpaint(settings, outdir, write, token, local_only)
