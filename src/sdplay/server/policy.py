"""Which files a request may name and how big a job may be: the server's only checks of its own.

Every settings key that names a file is rewritten to a path the engine reads, and refused unless
it lies under the output root (uploads included) after following symlinks: `..`, absolute paths
elsewhere, backslashes, NUL and URL-encoded spellings are refused before anything is resolved.
An absolute path inside the root is accepted, so a run's own settings.json goes back in unchanged.
An http(s) URL is refused where the run would read it (the engine would download it; `refuse_downloads`), and
left alone in a key the settings do not use (Deforum's files name an init picture and a video even when those are
switched off). Model keys may name local paths only on a loopback server. Each refusal is one SdplayError line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from PIL import Image

from ..controlnet_names import CONTROLNET_UNITS, controlnet_model_spec
from ..downloads import is_url
from ..errors import SdplayError
from ..settings import CONTROL_KEY, FILE_KEYS, URL_KEYS
from .config import Limits

UNIT_MODELS = tuple(f"cn_{unit}_model" for unit in CONTROLNET_UNITS)  # animate's ControlNet units
MODEL_KEYS = ("model", "model_config", "tiny_vae", "lora", "depth_model", "control_model", "hires_upscaler")
MODEL_KEYS += ("interpolate_model",)  # RIFE weights: a local file, so on loopback only
MODEL_KEYS += UNIT_MODELS
MODEL_WORDS = ("auto", "none", "lanczos")  # tiny_vae / depth_model / hires_upscaler values that name no path
UPLOAD_PREFIX = "upload:"
NO_DOWNLOADS = "{key}: this server does not download URLs; upload the file (POST /uploads)"


class PathPolicy:
    """Maps the file names a request gives onto files under `root`; `upload(id)` finds an upload's file."""

    def __init__(self, root: Path, upload: Callable[[str], Path], loopback: bool, default_model: str | None) -> None:
        self.root = root.resolve()
        self.upload = upload
        self.loopback = loopback
        self.default_model = default_model

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """The settings with every file key made a checked path; model keys checked beyond loopback."""
        out = dict(data)
        for key in FILE_KEYS:
            value = out.get(key)
            if value in (None, ""):
                continue
            if isinstance(value, list) and key == "images":
                out[key] = [self.file(key, item) for item in value]
            else:
                out[key] = self.file(key, value)
        if isinstance(out.get(CONTROL_KEY), list):
            out[CONTROL_KEY] = [self.control(item) for item in out[CONTROL_KEY]]
        elif isinstance(out.get(CONTROL_KEY), str):
            out[CONTROL_KEY] = self.control(out[CONTROL_KEY])
        if not self.loopback:
            for key in MODEL_KEYS:
                values = out.get(key)
                for value in values if isinstance(values, list) else [values]:
                    self.check_model(key, value)
        return out

    def control(self, item: Any) -> Any:
        """`TYPE:IMAGE[:WEIGHT]` with IMAGE made a checked path (an `upload:<id>` included); a malformed
        item goes on unchanged for the settings to refuse in their own words."""
        from ..controlnet import CONTROL

        if not isinstance(item, str):
            return item
        kind, _, rest = item.partition(":")
        if rest.startswith(UPLOAD_PREFIX):
            upload_id, _, weight = rest[len(UPLOAD_PREFIX) :].partition(":")
            image = UPLOAD_PREFIX + upload_id
        else:
            match = CONTROL.match(item.strip())
            if match is None:
                return item
            image, weight = match.group("image"), match.group("weight") or ""
        return f"{kind}:{self.file(CONTROL_KEY, image)}" + (f":{weight}" if weight else "")

    def file(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise SdplayError(f"{key}: must be a file name (a string), got {type(value).__name__}")
        if value.startswith(UPLOAD_PREFIX):
            return str(self.upload(value[len(UPLOAD_PREFIX) :]))
        if is_url(value):
            if key in URL_KEYS:
                return value  # refused by refuse_downloads if the settings read it
            raise SdplayError(NO_DOWNLOADS.format(key=key))
        return str(self.inside(value, key))

    def inside(self, name: str, what: str, base: Path | None = None) -> Path:
        """`name` (relative to `base`, default the root) as a real path under `base`, or a one-line refusal."""
        base = (base or self.root).resolve()
        if "\x00" in name or "\\" in name:
            raise SdplayError(f"{what}: {name!r} holds a NUL or a backslash; use plain '/'-separated names")
        if unquote(name) != name:
            raise SdplayError(f"{what}: {name!r} is URL-encoded; give the plain file name")
        path = PurePosixPath(name)
        if ".." in path.parts:
            raise SdplayError(f"{what}: {name!r} leaves the server's files ('..' is refused)")
        resolved = (Path(name) if path.is_absolute() else base / name).resolve()
        if not resolved.is_relative_to(base):
            raise SdplayError(
                f"{what}: {name!r} is outside the server's files; upload it (POST /uploads) "
                "or name a file under the output root"
            )
        return resolved

    def check_model(self, key: str, value: Any) -> None:
        """Beyond loopback a model key is an alias, a hub id or the server's own model: never a local path."""
        from ..specs import ALIASES, HUB_ID

        if value in (None, "") or value == self.default_model:
            return
        if not isinstance(value, str):
            raise SdplayError(f"{key}: must be a model name (a string), got {type(value).__name__}")
        if value.lower() in ALIASES or value.lower() in MODEL_WORDS:
            return
        if key in UNIT_MODELS:  # a web-UI model name stands for its hub copy
            with suppress(ValueError):  # a name with no hub copy: the settings refuse it in their own words
                value = controlnet_model_spec(value)
        looks_local = value.startswith((".", "/", "~")) or "\\" in value or Path(value).exists()
        if looks_local or not HUB_ID.match(value):
            raise SdplayError(
                f"{key}: {value!r} is not an alias or a hub id; this server refuses local model paths "
                "from the network (start it on loopback to use them)"
            )


def refuse_downloads(settings: Any) -> None:
    """A server fetches nothing a request names: refuse a URL in any input the run would read."""
    files_read = getattr(settings, "files_read", None)  # the settings of modes that download (animate)
    for key, location in (files_read() if files_read else {}).items():
        if is_url(location or ""):
            raise SdplayError(NO_DOWNLOADS.format(key=key))


def check_limits(mode: str, settings: Any, limits: Limits) -> None:
    """Refuse a job bigger than the server allows, before it is queued, naming the key and the bound."""
    width = _first(settings, "width", "W")
    height = _first(settings, "height", "H")
    if width is None or height is None:
        size = _first_image_size(settings)
        if size is not None:
            width, height = width or size[0], height or size[1]
    if width is not None and height is not None and width * height > limits.max_pixels:
        side = int(math.isqrt(limits.max_pixels))
        raise SdplayError(
            f"size: {width}x{height} is more than this server allows ({limits.max_pixels} pixels, e.g. {side}x{side})"
        )
    steps = [_first(settings, "steps")]
    if getattr(settings, "enable_steps_scheduling", False):
        steps.append(int(settings.series["steps_schedule"].max()))
    for value in steps:
        if value is not None and value > limits.max_steps:
            raise SdplayError(f"steps: {value} is more than this server allows ({limits.max_steps})")
    for key in ("num", "batch_size"):
        value = _first(settings, key)
        if value is not None and value > limits.max_num:
            raise SdplayError(f"{key}: {value} is more than this server allows ({limits.max_num})")
    frames = planned_frames(mode, settings)
    if frames is not None:
        check_frames((frames - 1) * getattr(settings, "interpolate", 1) + 1, limits)  # interpolated ones count too


def check_frames(frames: int, limits: Limits) -> None:
    if frames > limits.max_frames:
        raise SdplayError(f"frames: {frames} is more than this server allows ({limits.max_frames})")


def planned_frames(mode: str, settings: Any) -> int | None:
    """The frames a video job will make, where the settings alone say (dream with audio learns it later)."""
    if mode == "animate":
        return int(settings.max_frames)
    if mode == "dream":
        if settings.total_frames is not None:
            return int(settings.total_frames)
        if settings.audio and settings.frames is None:
            return None
        from ..dream.settings import DEFAULT_FRAMES_PER_SEGMENT

        return (settings.frames or DEFAULT_FRAMES_PER_SEGMENT) * settings.segments
    return None


def _first(settings: Any, *names: str) -> Any:
    for name in names:
        value = getattr(settings, name, None)
        if value is not None:
            return value
    return None


def _first_image_size(settings: Any) -> tuple[int, int] | None:
    """The size of the picture an open width/height is taken from (image modes' init, dream's first image)."""
    path = getattr(settings, "init", None) or next(iter(getattr(settings, "images", ()) or ()), None)
    if not path:
        return None
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None  # not readable as a picture: the mode says so when it reads it
