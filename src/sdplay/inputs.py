"""The picture files a run names, read before torch or a model loads, so that a wrong file fails in a moment.

Imports PIL and nothing heavier: a missing or unreadable file is one error line within a second.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from .errors import SdplayError

if TYPE_CHECKING:
    from .settings import ControlSettings, ImageSettings

log = logging.getLogger("sdplay")


def load_image(path: str | Path, what: str = "image") -> Image.Image:
    """Open an image file as RGB, or fail with one line saying which file and why."""
    path = Path(path)
    if not path.is_file():
        raise SdplayError(f"{what} not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise SdplayError(f"cannot read {what} {path}: not an image file or damaged") from exc


def fit_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize a mask to the image size when only the scale differs; refuse a different shape."""
    mask = mask.convert("L")
    if mask.size == size:
        return mask
    ratio_mask, ratio_image = mask.size[0] / mask.size[1], size[0] / size[1]
    if abs(ratio_mask / ratio_image - 1) > 0.02:
        raise SdplayError(
            f"mask is {mask.size[0]}x{mask.size[1]} but the image is {size[0]}x{size[1]}: "
            "a different shape cannot be resized without distortion; make the mask the image's size"
        )
    log.warning("mask resized from %dx%d to %dx%d", *mask.size, *size)
    return mask.resize(size, Image.Resampling.NEAREST)


def read_control_images(settings: ControlSettings) -> None:
    """Open every `--control` picture, so that a wrong file fails before the model loads."""
    for path in settings.control_images():
        load_image(path, "control image")


def read_image_inputs(
    settings: ImageSettings, init: Image.Image | None = None, mask: Image.Image | None = None
) -> tuple[Image.Image | None, Image.Image | None]:
    """The init image and mask (fitted to the init image) an image mode needs, and its control pictures checked.

    `init` and `mask` are pictures passed in memory (Python API), used instead of reading the settings' paths.
    """
    read_control_images(settings)
    if settings.mode == "txt2img":
        return None, None
    init = init.convert("RGB") if init is not None else load_image(settings.init, "init image")
    if settings.mode != "inpaint":
        return init, None
    mask = mask if mask is not None else load_image(settings.mask, "mask image")
    return init, fit_mask(mask, init.size)
